//! [`Request`] and [`Response`].

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::iostream::StreamWatcher;
use crate::netutil::PeerAddr;

/// An HTTP request, head and (complete) body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields.
    pub headers: HeaderMap,
    /// The body (empty if there was none).
    pub body: Bytes,
    /// Who sent it: the connection's peer.
    pub remote_addr: PeerAddr,
    /// The client's IP: the peer's, or with `xheaders` the one a trusted
    /// proxy reported (X-Real-Ip / X-Forwarded-For).
    pub remote_ip: Option<IpAddr>,
    /// `"http"`, or with `xheaders` what a proxy reported
    /// (X-Forwarded-Proto / X-Scheme: `"http"` or `"https"`).
    pub protocol: &'static str,
    /// The client connection, for long-polling handlers: `await
    /// req.connection.closed()` completes when the client goes away.
    pub connection: StreamWatcher,
}

impl Request {
    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The Host header (or the target's authority).
    pub fn host(&self) -> Option<&str> {
        self.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.host())
    }

    /// The scheme the client used (see [`Request::protocol`](Self::protocol)
    /// the field).
    pub fn scheme(&self) -> &'static str {
        self.protocol
    }
}

/// An HTTP response with a complete body. `Content-Length` is set when it
/// is written; `Date`, `Server` and `Connection` too.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// Header fields set by the handler.
    pub headers: HeaderMap,
    /// The body (not sent for HEAD, 1xx, 204 and 304).
    pub body: Bytes,
}

impl Response {
    /// An empty response with `status`.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<Bytes>) -> Response {
        Response::new(StatusCode::OK)
            .header(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )
            .body(body)
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Adds a header field.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Response {
        self.headers.append(name, value);
        self
    }
}

impl Default for Response {
    fn default() -> Response {
        Response::new(StatusCode::OK)
    }
}
