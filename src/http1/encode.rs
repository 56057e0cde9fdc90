//! Writing response heads: status lines and the Date value from caches,
//! everything appended to one output buffer (pipelined responses share it).

use std::cell::RefCell;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, SERVER, TRANSFER_ENCODING};
use http::{Method, StatusCode, Version};

use super::message::Response;

thread_local! {
    /// (unix second, "Date: ...\r\n"): the Date value changes once a second,
    /// so it is formatted at most once a second per thread.
    static DATE_LINE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Appends `Date: <IMF-fixdate>\r\n` for the current second.
fn put_date(out: &mut BytesMut) {
    let now = unix_seconds_coarse();
    DATE_LINE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != now {
            date_line(now, &mut cell.1);
            cell.0 = now;
        }
        out.extend_from_slice(&cell.1);
    });
}

/// Replaces `line` with `Date: <IMF-fixdate>\r\n` (RFC 9110 §5.6.7, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`) for `unix_secs`.
fn date_line(unix_secs: u64, line: &mut Vec<u8>) {
    let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(unix_secs));
    line.clear();
    // Writing to a Vec cannot fail.
    let _ = write!(line, "Date: {date}\r\n");
}

/// The wall clock in whole seconds, from the coarse clock: a Date header
/// needs seconds, and the coarse clock is read without the TSC (Linux;
/// elsewhere the ordinary clock).
fn unix_seconds_coarse() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into a live timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
            return ts.tv_sec as u64;
        }
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The status line for `status` (common ones from static bytes).
fn put_status_line(out: &mut BytesMut, version: Version, status: StatusCode) {
    let v = if version == Version::HTTP_10 {
        &b"HTTP/1.0 "[..]
    } else {
        &b"HTTP/1.1 "[..]
    };
    out.extend_from_slice(v);
    let fixed: Option<&[u8]> = match status.as_u16() {
        200 => Some(b"200 OK\r\n"),
        204 => Some(b"204 No Content\r\n"),
        304 => Some(b"304 Not Modified\r\n"),
        400 => Some(b"400 Bad Request\r\n"),
        404 => Some(b"404 Not Found\r\n"),
        _ => None,
    };
    match fixed {
        Some(line) => out.extend_from_slice(line),
        None => {
            out.extend_from_slice(status.as_str().as_bytes());
            out.extend_from_slice(b" ");
            out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Whether a response to `method` with `status` carries a body
/// (RFC 9110 §6.4.1: none for HEAD, 1xx, 204, 304).
pub fn has_body(method: &Method, status: StatusCode) -> bool {
    !(method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
}

/// How the connection ends after this response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Keep it open; HTTP/1.0 clients are told `Connection: keep-alive`.
    KeepAlive,
    /// Close it after the response; the client is told `Connection: close`.
    Close,
}

/// How a response head says its body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadFraming {
    /// `Content-Length: n` (also what HEAD answers with).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 without a known length).
    Chunked,
    /// No framing header: the body ends when the connection closes
    /// (HTTP/1.0 without a known length), or there is no body at all
    /// (204, 1xx).
    None,
}

/// Appends a response head.
pub fn encode_head(
    out: &mut BytesMut,
    version: Version,
    status: StatusCode,
    headers: &http::HeaderMap,
    framing: HeadFraming,
    persist: Persist,
    server_name: &[u8],
) {
    put_status_line(out, version, status);
    // One pass over the handler's fields, noting whether it set Server or
    // Date itself (two map lookups per response otherwise); ours follow.
    let (mut has_server, mut has_date) = (false, false);
    for (name, value) in headers {
        // The server owns the framing and the connection's fate.
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        has_server |= name == SERVER;
        has_date |= name == DATE;
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !has_server && !server_name.is_empty() {
        out.extend_from_slice(b"Server: ");
        out.extend_from_slice(server_name);
        out.extend_from_slice(b"\r\n");
    }
    if !has_date {
        put_date(out);
    }
    match framing {
        HeadFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            let mut b = itoa::Buffer::new();
            out.extend_from_slice(b.format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        HeadFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        HeadFraming::None => {}
    }
    match (persist, version) {
        // A 101 names the upgrade in Connection (RFC 9110 §7.8: Upgrade is
        // hop-by-hop); the connection then belongs to the new protocol.
        _ if status == StatusCode::SWITCHING_PROTOCOLS => {
            out.extend_from_slice(b"Connection: Upgrade\r\n")
        }
        (Persist::Close, _) => out.extend_from_slice(b"Connection: close\r\n"),
        (Persist::KeepAlive, Version::HTTP_10) => {
            out.extend_from_slice(b"Connection: keep-alive\r\n")
        }
        (Persist::KeepAlive, _) => {}
    }
    out.extend_from_slice(b"\r\n");
}

/// The last chunk of a chunked body, with no trailers.
pub const CHUNKED_END: &[u8] = b"0\r\n\r\n";

/// The size line that starts a chunk of `len` bytes (RFC 9112 §7.1):
/// the length in hex, then CRLF; the chunk's data and its own CRLF follow.
pub fn chunk_size_line(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(format!("{len:x}\r\n"))
}

/// Appends `resp` (head and, unless `method`/status forbid it, body).
pub fn encode_response(
    out: &mut BytesMut,
    version: Version,
    method: &Method,
    resp: &Response,
    persist: Persist,
    server_name: &[u8],
) {
    let body = has_body(method, resp.status);
    out.reserve(128 + resp.body.len());
    // HEAD answers with the Content-Length a GET would have; 204 and 1xx
    // must not carry one (RFC 9110 §8.6).
    // A 304 says no length either: its Content-Length would have to be the
    // 200's, which an empty body does not know (RFC 9110 §8.6).
    let no_length = resp.status.is_informational()
        || resp.status == StatusCode::NO_CONTENT
        || resp.status == StatusCode::NOT_MODIFIED;
    let framing = if no_length {
        HeadFraming::None
    } else if body {
        HeadFraming::Length(resp.body.len() as u64)
    } else if method == Method::HEAD {
        // HEAD: the length GET would send. A handler that skips the body
        // for HEAD may say it in its own Content-Length.
        let declared = resp
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(n) if resp.body.is_empty() => HeadFraming::Length(n),
            _ => HeadFraming::Length(resp.body.len() as u64),
        }
    } else {
        HeadFraming::None
    };
    encode_head(
        out,
        version,
        resp.status,
        &resp.headers,
        framing,
        persist,
        server_name,
    );
    if body {
        out.extend_from_slice(&resp.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imf_fixdate(unix_secs: u64) -> String {
        let mut line = Vec::new();
        date_line(unix_secs, &mut line);
        let line = String::from_utf8(line).unwrap();
        line["Date: ".len()..line.len() - 2].to_string()
    }

    #[test]
    fn imf_fixdate_matches_rfc_examples() {
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }

    fn encode(method: Method, resp: Response, persist: Persist, v: Version) -> String {
        let mut out = BytesMut::new();
        encode_response(&mut out, v, &method, &resp, persist, b"Cyclone");
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn head_has_the_get_content_length_and_no_body() {
        let s = encode(
            Method::HEAD,
            Response::text("hello"),
            Persist::KeepAlive,
            Version::HTTP_11,
        );
        assert!(s.contains("Content-Length: 5\r\n"), "{s}");
        assert!(s.ends_with("\r\n\r\n"), "{s}");
    }

    #[test]
    fn head_keeps_the_handlers_content_length_when_it_sends_no_body() {
        let r = Response::new(StatusCode::OK)
            .header(CONTENT_LENGTH, http::HeaderValue::from_static("1234"));
        let s = encode(Method::HEAD, r, Persist::KeepAlive, Version::HTTP_11);
        assert!(s.contains("Content-Length: 1234\r\n"), "{s}");
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        let s = encode(
            Method::GET,
            Response::new(StatusCode::NO_CONTENT).body("x"),
            Persist::KeepAlive,
            Version::HTTP_11,
        );
        assert!(
            s.starts_with("HTTP/1.1 204 No Content\r\n")
                && s.ends_with("\r\n\r\n")
                && !s.contains("Content-Length"),
            "{s}"
        );
        let s = encode(
            Method::GET,
            Response::new(StatusCode::NOT_MODIFIED).body("x"),
            Persist::KeepAlive,
            Version::HTTP_11,
        );
        assert!(s.ends_with("\r\n\r\n"), "{s}");
    }

    #[test]
    fn connection_header_says_what_the_server_means() {
        let s = encode(
            Method::GET,
            Response::text("a"),
            Persist::Close,
            Version::HTTP_11,
        );
        assert!(s.contains("Connection: close\r\n"));
        let s = encode(
            Method::GET,
            Response::text("a"),
            Persist::KeepAlive,
            Version::HTTP_10,
        );
        assert!(s.starts_with("HTTP/1.0 200 OK\r\n") && s.contains("Connection: keep-alive\r\n"));
        let s = encode(
            Method::GET,
            Response::text("a"),
            Persist::KeepAlive,
            Version::HTTP_11,
        );
        assert!(!s.contains("Connection:"));
    }

    #[test]
    fn handler_set_framing_headers_are_replaced() {
        let r = Response::text("abc").header(CONTENT_LENGTH, http::HeaderValue::from_static("99"));
        let s = encode(Method::GET, r, Persist::KeepAlive, Version::HTTP_11);
        assert!(
            s.contains("Content-Length: 3\r\n") && !s.contains("99"),
            "{s}"
        );
    }
}
