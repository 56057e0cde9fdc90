//! A request's head as it goes on the wire (RFC 9112 §3): the request
//! line (origin form, or absolute form to a forward proxy), `Host`, the
//! body's framing, then the caller's fields.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method};

use super::url::Target;

/// What the head says beyond the caller's fields.
pub(crate) struct HeadParts<'a> {
    pub(crate) method: &'a Method,
    pub(crate) target: &'a Target<'a>,
    pub(crate) headers: &'a HeaderMap,
    /// The body's length (`None`: chunked).
    pub(crate) body_len: Option<u64>,
    /// To a forward proxy: the absolute form, and its credentials.
    pub(crate) forward_proxy: Option<Option<&'a HeaderValue>>,
    pub(crate) accept_gzip: bool,
    pub(crate) user_agent: Option<&'a HeaderValue>,
}

/// Fields the client writes itself: a caller's would frame the body a
/// second way. (A caller's `Host` replaces the URL's: virtual hosts are
/// tested that way, as with curl's `-H 'Host: ...'`; a caller's
/// `Connection: close` is sent, and the server's answer closes it.)
fn ours(name: &header::HeaderName) -> bool {
    name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING
}

/// Encodes the head.
pub(crate) fn head(p: &HeadParts<'_>) -> Bytes {
    let t = p.target;
    let mut out = BytesMut::with_capacity(128 + t.path_and_query.len() + 32 * p.headers.len());
    out.put_slice(p.method.as_str().as_bytes());
    out.put_u8(b' ');
    if p.forward_proxy.is_some() {
        out.put_slice(b"http://");
        out.put_slice(t.authority.as_bytes());
    }
    out.put_slice(t.path_and_query.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    if !p.headers.contains_key(header::HOST) {
        out.put_slice(b"Host: ");
        out.put_slice(t.authority.as_bytes());
        out.put_slice(b"\r\n");
    }
    match p.body_len {
        // RFC 9110 §8.6: a request whose method gives a body meaning says
        // its length even when it is zero; GET, HEAD and friends do not.
        Some(0) if !matches!(*p.method, Method::POST | Method::PUT | Method::PATCH) => {}
        Some(n) => {
            out.put_slice(b"Content-Length: ");
            out.put_slice(itoa::Buffer::new().format(n).as_bytes());
            out.put_slice(b"\r\n");
        }
        None => out.put_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    if p.accept_gzip && !p.headers.contains_key(header::ACCEPT_ENCODING) {
        out.put_slice(b"Accept-Encoding: gzip\r\n");
    }
    if let Some(ua) = p.user_agent
        && !p.headers.contains_key(header::USER_AGENT)
    {
        field(&mut out, b"User-Agent", ua);
    }
    if let Some(Some(auth)) = p.forward_proxy {
        field(&mut out, b"Proxy-Authorization", auth);
    }
    for (name, value) in p.headers {
        if !ours(name) {
            field(&mut out, name.as_str().as_bytes(), value);
        }
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

fn field(out: &mut BytesMut, name: &[u8], value: &HeaderValue) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target<'static> {
        let uri: &'static http::Uri = Box::leak(Box::new(url.parse().unwrap()));
        Target::parse(uri).unwrap()
    }

    fn encode(method: Method, url: &str, headers: HeaderMap, len: Option<u64>) -> String {
        let t = target(url);
        let parts = HeadParts {
            method: &method,
            target: &t,
            headers: &headers,
            body_len: len,
            forward_proxy: None,
            accept_gzip: false,
            user_agent: None,
        };
        String::from_utf8(head(&parts).to_vec()).unwrap()
    }

    #[test]
    fn a_get_has_the_origin_form_target_and_host() {
        assert_eq!(
            encode(Method::GET, "http://h:81/a?b=c", HeaderMap::new(), Some(0)),
            "GET /a?b=c HTTP/1.1\r\nHost: h:81\r\n\r\n"
        );
    }

    #[test]
    fn a_post_says_its_length_even_when_zero_and_chunked_when_unknown() {
        let empty = encode(Method::POST, "http://h/", HeaderMap::new(), Some(0));
        assert!(empty.contains("\r\nContent-Length: 0\r\n"));
        let chunked = encode(Method::PUT, "http://h/", HeaderMap::new(), None);
        assert!(chunked.contains("\r\nTransfer-Encoding: chunked\r\n"));
    }

    #[test]
    fn callers_cannot_frame_the_body_a_second_way() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        let got = encode(Method::POST, "http://h/", h, Some(3));
        assert_eq!(
            got,
            "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nx-kept: 1\r\n\r\n"
        );
    }

    #[test]
    fn a_callers_connection_close_is_sent() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let got = encode(Method::GET, "http://h/", h, Some(0));
        assert_eq!(
            got,
            "GET / HTTP/1.1\r\nHost: h\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn a_callers_host_replaces_the_urls() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("vhost.example"));
        let got = encode(Method::GET, "http://127.0.0.1:8/", h, Some(0));
        assert_eq!(got, "GET / HTTP/1.1\r\nhost: vhost.example\r\n\r\n");
    }

    #[test]
    fn a_forward_proxy_gets_the_absolute_form_and_credentials() {
        let t = target("http://h:8080/p");
        let auth = HeaderValue::from_static("Basic eDp5");
        let headers = HeaderMap::new();
        let parts = HeadParts {
            method: &Method::GET,
            target: &t,
            headers: &headers,
            body_len: Some(0),
            forward_proxy: Some(Some(&auth)),
            accept_gzip: true,
            user_agent: None,
        };
        assert_eq!(
            String::from_utf8(head(&parts).to_vec()).unwrap(),
            "GET http://h:8080/p HTTP/1.1\r\nHost: h:8080\r\nAccept-Encoding: gzip\r\nProxy-Authorization: Basic eDp5\r\n\r\n"
        );
    }
}
