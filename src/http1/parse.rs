//! The request head: parsed with `httparse`, validated, turned into
//! `http` types (RFC 9112 §2-§5).

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, Version};

use super::error::RequestError;

/// Header slots kept on the stack: the default `max_headers` (100) plus
/// one fits; a larger configured limit uses a vector.
const STACK_SLOTS: usize = 128;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields.
    pub headers: HeaderMap,
    /// Which fields that decide framing and persistence were present,
    /// noted while parsing so the connection looks up only those.
    pub seen: Seen,
}

/// Header fields the server acts on, noted as they are parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    /// `Connection`.
    pub connection: bool,
    /// `Transfer-Encoding`.
    pub transfer_encoding: bool,
    /// `Content-Length`.
    pub content_length: bool,
    /// `Expect`.
    pub expect: bool,
}

/// Parses a complete head (`head` ends with the blank line). At most
/// `max_headers` header lines are accepted. Header values share `head`'s
/// buffer (no copy, no allocation per value).
///
/// A request line naming `HTTP/1.2` to `HTTP/1.9` is read as HTTP/1.1
/// (RFC 9110 §2.5: a later minor version of the same major version is
/// processed as the highest one the recipient implements); other versions
/// are [`RequestError::Version`] (505), and a request line that is not
/// three parts separated by single spaces is malformed (400), a space in
/// the target included.
pub fn parse_head(head: Bytes, max_headers: usize) -> Result<RequestHead, RequestError> {
    match parse_exact(head.clone(), max_headers) {
        Err(RequestError::Version) => match version_of(&head) {
            LineVersion::Later1x(at) => {
                // Rare: parsed again from a copy that says 1.1.
                let mut copy = head.to_vec();
                copy[at] = b'1';
                parse_exact(Bytes::from(copy), max_headers)
            }
            LineVersion::Other => Err(RequestError::Version),
            LineVersion::Malformed => Err(RequestError::Malformed("invalid request line")),
        },
        other => other,
    }
}

/// What the version of a request line httparse refused is.
#[derive(Debug, PartialEq, Eq)]
enum LineVersion {
    /// `HTTP/1.x`, x from 2 to 9: the offset of x in the head.
    Later1x(usize),
    /// `HTTP/d.d` of another major version (`HTTP/2.0`, `HTTP/0.9`).
    Other,
    /// Not `method SP target SP HTTP/d.d`.
    Malformed,
}

/// Reads the request line's version by RFC 9112 §3's grammar.
fn version_of(head: &[u8]) -> LineVersion {
    // Empty lines before the request line are allowed (RFC 9112 §2.2).
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    let rest = &head[start..];
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]),
        None => return LineVersion::Malformed,
    };
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return LineVersion::Malformed;
    };
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if !method.is_empty()
                && !target.is_empty()
                && major.is_ascii_digit()
                && minor.is_ascii_digit() =>
        {
            if *major == b'1' && *minor >= b'2' {
                // The minor digit is the line's last byte.
                LineVersion::Later1x(start + line.len() - 1)
            } else {
                LineVersion::Other
            }
        }
        _ => LineVersion::Malformed,
    }
}

/// [`parse_head`] without the version's second look.
fn parse_exact(head: Bytes, max_headers: usize) -> Result<RequestHead, RequestError> {
    // RFC 9112 §2.2 lets a recipient accept a bare LF as a line end;
    // refusing it closes a smuggling door: a bare-LF blank line would end
    // the head early for httparse but not for a proxy in front (or vice
    // versa), and the bytes after it would be read two different ways.
    if has_bare_lf(&head) {
        return Err(RequestError::Malformed("bare LF in the request head"));
    }
    // One slot more than allowed tells "exactly max" from "too many". The
    // usual limit fits on the stack, uninitialised (httparse writes the
    // slots it uses): no allocation and no 3 KiB memset per request.
    let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_SLOTS];
    let mut heap;
    let slots: &mut [MaybeUninit<httparse::Header<'_>>] = if max_headers < STACK_SLOTS {
        &mut stack[..=max_headers]
    } else {
        heap = Vec::with_capacity(max_headers + 1);
        heap.resize_with(max_headers + 1, MaybeUninit::uninit);
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let status =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, &head, slots);
    match status {
        // Everything read must be the head: nothing may be left unparsed.
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        Ok(httparse::Status::Complete(_)) => {
            return Err(RequestError::Malformed("bytes after the head"));
        }
        Ok(httparse::Status::Partial) => return Err(RequestError::Malformed("incomplete head")),
        Err(e) => return Err(map_httparse(e)),
    }
    if req.headers.len() > max_headers {
        return Err(RequestError::TooManyHeaders);
    }
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(RequestError::Version),
    };
    let method = req
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(RequestError::Malformed("invalid method"))?;
    // The target shares the head's buffer, like the header values; the
    // commonest one of all is a constant (no reference count to touch).
    let uri = match req.path {
        Some("/") => Uri::from_static("/"),
        // RFC 3986 §2: a URI is ASCII; httparse and `Uri` let UTF-8
        // through, which would route a target a proxy in front may read
        // (or percent-encode) differently.
        Some(p) if !p.is_ascii() => {
            return Err(RequestError::Malformed(
                "non-ASCII byte in the request target",
            ));
        }
        Some(p) => Uri::from_maybe_shared(head.slice_ref(p.as_bytes()))
            .map_err(|_| RequestError::Malformed("invalid request target"))?,
        None => return Err(RequestError::Malformed("invalid request target")),
    };
    let mut headers = super::message::spare_header_map();
    headers.reserve(req.headers.len());
    let mut seen = Seen::default();
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| RequestError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value))
            .map_err(|_| RequestError::Malformed("invalid header value"))?;
        // Standard names compare as enum values: cheap next to a lookup.
        if name == header::HOST {
            if !valid_host(value.as_bytes()) {
                return Err(RequestError::Malformed("invalid Host header"));
            }
            hosts += 1;
        } else if name == header::CONNECTION {
            seen.connection = true;
        } else if name == header::TRANSFER_ENCODING {
            seen.transfer_encoding = true;
        } else if name == header::CONTENT_LENGTH {
            seen.content_length = true;
        } else if name == header::EXPECT {
            seen.expect = true;
        }
        headers.append(name, value);
    }
    if version == Version::HTTP_11 && hosts != 1 {
        return Err(RequestError::Host);
    }
    Ok(RequestHead {
        method,
        uri,
        version,
        headers,
        seen,
    })
}

/// Whether `host` is a Host value by RFC 9112 §3.2 and RFC 3986 §3.2.2:
/// `uri-host [ ":" port ]`, the host a registered name or IPv4 address
/// (unreserved characters, percent-escapes, sub-delims) or a bracketed
/// IP literal, the port digits only. No whitespace, no userinfo (`@`),
/// no path. Empty is allowed: it is what a client sends when the target
/// has no authority.
pub(crate) fn valid_host(host: &[u8]) -> bool {
    let (name, port) = if let Some(literal) = host.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let inside = &literal[..end];
        if inside.is_empty()
            || !inside
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match &literal[end + 1..] {
            [] => return true,
            [b':', port @ ..] => (&[][..], port),
            _ => return false,
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(colon) => (&host[..colon], &host[colon + 1..]),
            None => (host, &[][..]),
        }
    };
    port.iter().all(u8::is_ascii_digit) && reg_name(name)
}

/// RFC 3986's reg-name (which also covers IPv4 addresses).
fn reg_name(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'%' => {
                let escape = name.get(i + 1..i + 3);
                if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
                continue;
            }
            b if b.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' => {}
            b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// Whether a `\n` is not preceded by `\r`. A fold without an early exit:
/// the compiler vectorises it, and a head is short (one memchr call per
/// line costs more).
fn has_bare_lf(head: &[u8]) -> bool {
    let Some((&first, rest)) = head.split_first() else {
        return false;
    };
    first == b'\n'
        || rest.iter().zip(head).fold(false, |bad, (&b, &prev)| {
            bad | (b == b'\n' && prev != b'\r')
        })
}

fn map_httparse(e: httparse::Error) -> RequestError {
    match e {
        httparse::Error::Version => RequestError::Version,
        httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
        httparse::Error::HeaderName => RequestError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => RequestError::Malformed("invalid header value"),
        httparse::Error::NewLine => RequestError::Malformed("invalid line ending"),
        httparse::Error::Token => RequestError::Malformed("invalid token"),
        httparse::Error::Status => RequestError::Malformed("invalid status"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<RequestHead, RequestError> {
        parse_head(Bytes::copy_from_slice(s.as_bytes()), 100)
    }

    #[test]
    fn a_simple_get_parses() {
        let h = parse("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Y: z\r\n\r\n").unwrap();
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri.path(), "/a");
        assert_eq!(h.version, Version::HTTP_11);
        assert_eq!(h.headers["x-y"], "z");
    }

    #[test]
    fn hostile_heads_are_refused_with_precise_errors() {
        let cases: &[(&str, RequestError)] = &[
            (
                "G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
                RequestError::Malformed("invalid token"),
            ),
            (
                "GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
                RequestError::Malformed("invalid header name"),
            ),
            (
                "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                RequestError::Malformed("invalid header name"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",
                RequestError::Malformed("invalid header name"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n",
                RequestError::Malformed("invalid header value"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\ry: z\r\n\r\n",
                RequestError::Malformed("invalid header value"),
            ),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", RequestError::Version),
            ("GET / HTTP/1.1\r\n\r\n", RequestError::Host),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                RequestError::Host,
            ),
            (
                "GET /a HTTP/1.1\nHost: x\n\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
                RequestError::Malformed("bare LF in the request head"),
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
                RequestError::Malformed("bare LF in the request head"),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(raw).unwrap_err(), *want, "{raw:?}");
        }
    }

    #[test]
    fn fields_that_decide_framing_and_persistence_are_noted_as_seen() {
        let h =
            parse("POST / HTTP/1.1\r\nHost: x\r\nconnection: close\r\nContent-Length: 1\r\n\r\n")
                .unwrap();
        let want = Seen {
            connection: true,
            content_length: true,
            ..Seen::default()
        };
        assert_eq!(h.seen, want);
        let h = parse("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
            .unwrap();
        let want = Seen {
            transfer_encoding: true,
            expect: true,
            ..Seen::default()
        };
        assert_eq!(h.seen, want);
    }

    #[test]
    fn an_empty_head_is_an_error_not_a_panic() {
        assert_eq!(
            parse_head(Bytes::new(), 100).unwrap_err(),
            RequestError::Malformed("incomplete head")
        );
    }

    #[test]
    fn http_1_0_needs_no_host() {
        assert!(parse("GET / HTTP/1.0\r\n\r\n").is_ok());
    }

    #[test]
    fn more_than_max_headers_is_too_many() {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..100 {
            s.push_str(&format!("h{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert_eq!(parse(&s).unwrap_err(), RequestError::TooManyHeaders);
    }
}
