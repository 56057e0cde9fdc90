//! Request body framing, RFC 9112 §6 and §7.1 (chunked).

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

use super::error::RequestError;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (neither header).
    Empty,
    /// Exactly this many bytes (§6.3 rule 6).
    Length(u64),
    /// Chunked transfer coding (§6.3 rule 4: chunked is the final coding).
    Chunked,
}

/// Decides the framing of a request from its headers (RFC 9112 §6.3).
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, RequestError> {
    let te: Vec<_> = headers.get_all(TRANSFER_ENCODING).iter().collect();
    let cl: Vec<_> = headers.get_all(CONTENT_LENGTH).iter().collect();
    if !te.is_empty() {
        // §6.3 rule 3: both present is a smuggling vector; refuse it.
        if !cl.is_empty() {
            return Err(RequestError::Framing(
                "Transfer-Encoding with Content-Length",
            ));
        }
        let mut codings = Vec::new();
        for v in te {
            let v = v
                .to_str()
                .map_err(|_| RequestError::Framing("invalid Transfer-Encoding"))?;
            codings.extend(
                v.split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty()),
            );
        }
        // Only chunked is implemented (§6.1): anything else is 501, and
        // chunked applied twice or not last cannot be framed (§6.3 rule 4).
        if codings.iter().any(|c| c != "chunked") {
            return Err(RequestError::TransferCoding);
        }
        if codings.len() != 1 {
            return Err(RequestError::Framing("chunked applied more than once"));
        }
        return Ok(BodyKind::Chunked);
    }
    let mut length = None;
    for v in cl {
        // A list ("5, 5") counts as repeated values (§6.3 rule 5).
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) || part.len() > 19 {
                return Err(RequestError::Framing("invalid Content-Length"));
            }
            let n: u64 = std::str::from_utf8(part)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(RequestError::Framing("invalid Content-Length"))?;
            match length {
                Some(prev) if prev != n => {
                    return Err(RequestError::Framing("differing Content-Length values"));
                }
                _ => length = Some(n),
            }
        }
    }
    Ok(match length {
        None | Some(0) => BodyKind::Empty,
        Some(n) => BodyKind::Length(n),
    })
}

/// Hex digits allowed in a chunk size: 16 covers 2^64 - 1 (no overflow).
pub const MAX_CHUNK_SIZE_DIGITS: usize = 16;
/// The longest chunk-size line (size, extensions, CRLF) accepted: chunk
/// extensions are tolerated, not an unbounded side channel.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Whether a trailer line is a header field (`token ":" value`): anything
/// else after the last chunk is refused, not skipped, so nothing that looks
/// like a request can hide there.
pub fn is_field_line(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    colon > 0 && line[..colon].iter().all(|&b| is_tchar(b))
}

/// RFC 9110 §5.6.2's `tchar`: the characters of a token (a method, a
/// field name, a parameter name).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The most trailer bytes accepted after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Parses a chunk-size line (without its CRLF): the size in hex, then
/// optional `;extensions`, which are ignored.
pub fn parse_chunk_size(line: &[u8]) -> Result<u64, RequestError> {
    // Whitespace is allowed only before a ';' (BWS, RFC 9112 §7.1.1), and
    // only spaces and tabs: a stray CR or a trailing space is an error.
    let digits = match line.iter().position(|&b| b == b';') {
        Some(i) => {
            let mut d = &line[..i];
            while let [rest @ .., b' ' | b'\t'] = d {
                d = rest;
            }
            d
        }
        None => line,
    };
    if digits.is_empty()
        || digits.len() > MAX_CHUNK_SIZE_DIGITS
        || !digits.iter().all(u8::is_ascii_hexdigit)
    {
        return Err(RequestError::Chunked("invalid chunk size"));
    }
    let s = std::str::from_utf8(digits).map_err(|_| RequestError::Chunked("invalid chunk size"))?;
    u64::from_str_radix(s, 16).map_err(|_| RequestError::Chunked("invalid chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        use RequestError::*;
        type Case = (
            &'static [(&'static str, &'static str)],
            Result<BodyKind, RequestError>,
        );
        let cases: &[Case] = &[
            (&[], Ok(BodyKind::Empty)),
            (&[("content-length", "12")], Ok(BodyKind::Length(12))),
            (
                &[("content-length", "5"), ("content-length", "5")],
                Ok(BodyKind::Length(5)),
            ),
            (&[("content-length", "5, 5")], Ok(BodyKind::Length(5))),
            (
                &[("content-length", "5"), ("content-length", "6")],
                Err(Framing("differing Content-Length values")),
            ),
            (
                &[("content-length", "+5")],
                Err(Framing("invalid Content-Length")),
            ),
            (
                &[("content-length", "0x5")],
                Err(Framing("invalid Content-Length")),
            ),
            (
                &[("content-length", "99999999999999999999")],
                Err(Framing("invalid Content-Length")),
            ),
            (&[("transfer-encoding", "chunked")], Ok(BodyKind::Chunked)),
            (&[("transfer-encoding", "Chunked")], Ok(BodyKind::Chunked)),
            (
                &[("transfer-encoding", "chunked"), ("content-length", "3")],
                Err(Framing("Transfer-Encoding with Content-Length")),
            ),
            (&[("transfer-encoding", "gzip")], Err(TransferCoding)),
            (
                &[("transfer-encoding", "gzip, chunked")],
                Err(TransferCoding),
            ),
            (
                &[("transfer-encoding", "chunked, chunked")],
                Err(Framing("chunked applied more than once")),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(body_kind(&headers(h)), *want, "{h:?}");
        }
    }

    #[test]
    fn chunk_sizes_are_hex_bounded_and_extensions_ignored() {
        assert_eq!(parse_chunk_size(b"1a"), Ok(26));
        assert_eq!(parse_chunk_size(b"A;name=value"), Ok(10));
        assert_eq!(parse_chunk_size(b"A \t;name=value"), Ok(10));
        assert_eq!(parse_chunk_size(b"0"), Ok(0));
        assert_eq!(parse_chunk_size(b"ffffffffffffffff"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"-1",
            b"0x10",
            b"1 2",
            b"g",
            b"10000000000000000",
            b"5\r",
            b"5 ",
            b"5\t",
        ] {
            assert!(parse_chunk_size(bad).is_err(), "{bad:?}");
        }
    }
}
