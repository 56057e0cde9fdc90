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
pub fn parse_head(head: Bytes, max_headers: usize) -> Result<RequestHead, RequestError> {
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
