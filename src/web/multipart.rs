//! `multipart/form-data` bodies (RFC 7578), parsed from a complete body
//! into fields and files that share its buffer.

use bytes::Bytes;

use super::error::HttpError;

/// The most parts a body may have: a body of tiny parts must not cost a
/// huge number of allocations.
pub(crate) const MAX_PARTS: usize = 1_000;

/// The largest head of one part (its header lines).
pub(crate) const MAX_PART_HEAD: usize = 8 * 1024;

/// An uploaded file from a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field's name.
    pub name: String,
    /// The file name the client gave (not a path to trust).
    pub filename: String,
    /// The part's `Content-Type` (`application/octet-stream` if none).
    pub content_type: String,
    /// The contents (a view of the request body).
    pub body: Bytes,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        // RFC 2046 §5.1.1: 1 to 70 characters.
        (!v.is_empty() && v.len() <= 70).then(|| v.to_string())
    })
}

fn bad(why: &str) -> HttpError {
    HttpError::new(http::StatusCode::BAD_REQUEST).reason(format!("malformed multipart body: {why}"))
}

/// The `; key=value` parameters after a header value's first item. Values
/// may be quoted strings holding `;` (browsers send `filename="a;b.pdf"`
/// as is) and backslash escapes (RFC 9110 §5.6.4): they come unquoted.
fn params(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    // Skip the first item ("form-data").
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_string();
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            val.push(e);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
            // Up to the next parameter.
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ';' {
                    break;
                }
                val.push(c);
            }
            val = val.trim().to_string();
        }
        if !key.is_empty() {
            out.push((key, val));
        }
        if chars.peek().is_none() {
            return out;
        }
    }
}

/// Form fields: (name, value) pairs in order.
pub(crate) type Fields = Vec<(String, String)>;

/// Splits `body` into fields (name, value) and files.
pub(crate) fn parse(
    body: &Bytes,
    boundary: &str,
) -> Result<(Fields, Vec<UploadedFile>), HttpError> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(next_delimiter.as_bytes());
    let mut fields = Vec::new();
    let mut files = Vec::new();
    // The preamble (before the first delimiter) is ignored.
    let first =
        memchr::memmem::find(body, delimiter.as_bytes()).ok_or_else(|| bad("no boundary"))?;
    let mut pos = first + delimiter.len();
    for _ in 0..=MAX_PARTS {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok((fields, files)); // the close delimiter
        }
        let rest = rest
            .strip_prefix(b"\r\n")
            .ok_or_else(|| bad("boundary not followed by CRLF"))?;
        let start = body.len() - rest.len();
        let end = start
            + finder
                .find(rest)
                .ok_or_else(|| bad("part not closed by a boundary"))?;
        let part = &body[start..end];
        let head_end = memchr::memmem::find(part, b"\r\n\r\n")
            .ok_or_else(|| bad("part without a blank line after its head"))?;
        if head_end > MAX_PART_HEAD {
            return Err(bad("part head too large"));
        }
        let head =
            std::str::from_utf8(&part[..head_end]).map_err(|_| bad("part head not UTF-8"))?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                return Err(bad("part head line without a colon"));
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for (k, v) in params(v) {
                    if k.eq_ignore_ascii_case("name") {
                        name.get_or_insert(v);
                    } else if k.eq_ignore_ascii_case("filename") {
                        filename.get_or_insert(v);
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_string());
            }
        }
        let name = name.ok_or_else(|| bad("part without a name"))?;
        let value = body.slice(start + head_end + 4..end);
        match filename {
            Some(filename) => files.push(UploadedFile {
                name,
                filename,
                content_type: content_type
                    .unwrap_or_else(|| "application/octet-stream".to_string()),
                body: value,
            }),
            None => fields.push((name, String::from_utf8_lossy(&value).into_owned())),
        }
        pos = end + next_delimiter.len();
    }
    Err(bad("too many parts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One parameter of a Content-Disposition value (the first if repeated,
    /// as the parser takes it).
    fn disposition_param(value: &str, param: &str) -> Option<String> {
        params(value)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(param))
            .map(|(_, v)| v)
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(boundary("text/plain; boundary=abc"), None);
    }

    #[test]
    fn fields_and_files_are_separated() {
        let body = Bytes::from_static(
            b"preamble\r\n--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
              --XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.txt\"\r\n\
              Content-Type: text/plain\r\n\r\nfile\r\nbody\r\n--XX--\r\n",
        );
        let (fields, files) = parse(&body, "XX").unwrap();
        assert_eq!(fields, vec![("a".to_string(), "1".to_string())]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].filename, "x.txt");
        assert_eq!(files[0].content_type, "text/plain");
        assert_eq!(&files[0].body[..], b"file\r\nbody");
    }

    #[test]
    fn quoted_parameters_may_hold_semicolons_and_escapes() {
        let v = r#"form-data; name="f"; filename="report;v2 \"final\".pdf""#;
        assert_eq!(disposition_param(v, "name").as_deref(), Some("f"));
        assert_eq!(
            disposition_param(v, "filename").as_deref(),
            Some(r#"report;v2 "final".pdf"#)
        );
        assert_eq!(
            disposition_param("form-data; name=plain", "name").as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn an_unterminated_part_is_a_bad_request() {
        let body =
            Bytes::from_static(b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1");
        assert_eq!(
            parse(&body, "XX").unwrap_err().status,
            http::StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn more_than_max_parts_is_a_bad_request() {
        let mut body = Vec::new();
        for _ in 0..=MAX_PARTS {
            body.extend_from_slice(
                b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n",
            );
        }
        body.extend_from_slice(b"--XX--\r\n");
        assert!(parse(&Bytes::from(body), "XX").is_err());
    }
}
