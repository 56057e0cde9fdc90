//! What a fetch returns: [`Response`] and its [`Timing`].

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, Version};

/// Where a fetch's time went, as Tornado's `time_info` and curl's
/// `--write-out` timings say it. Phases summed over redirects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timing {
    /// Waiting for a slot (`max_clients`) or a connection
    /// (`max_connections_per_host`).
    pub queue: Duration,
    /// Resolving and connecting (zero on a reused connection).
    pub connect: Duration,
    /// The TLS handshake (zero for `http://` or a reused connection).
    pub tls: Duration,
    /// From the start to the final response's first byte.
    pub first_byte: Duration,
    /// From the start to the body's end.
    pub total: Duration,
    /// Redirects followed.
    pub redirects: u32,
    /// The final response came over a pooled connection.
    pub reused: bool,
}

/// A response: status, headers, body, the URL it came from (after
/// redirects) and its [`Timing`]. Every status is a response, 4xx and
/// 5xx included: see [`error_for_status`](Self::error_for_status).
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: Version,
    /// The header fields. A body decoded from gzip or deflate no longer
    /// has `Content-Encoding` (it is in `X-Consumed-Content-Encoding`,
    /// as Tornado does) and its `Content-Length` is the decoded length
    /// (none when the body was streamed to a callback).
    pub headers: HeaderMap,
    /// The body (decoded); empty when it went to the request's
    /// `on_chunk` callback.
    pub body: Bytes,
    /// Trailer fields of a chunked body, if any.
    pub trailers: HeaderMap,
    /// The URL of the final response, after redirects.
    pub url: Uri,
    /// Where the time went.
    pub timing: Timing,
}

impl Response {
    /// The body as UTF-8 text (`None` if it is not valid UTF-8).
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The response, or an [`HttpStatusError`] for a 4xx or 5xx status
    /// (Tornado's `raise_error=True`).
    pub fn error_for_status(self) -> Result<Response, HttpStatusError> {
        if self.status.is_client_error() || self.status.is_server_error() {
            Err(HttpStatusError(Box::new(self)))
        } else {
            Ok(self)
        }
    }
}

/// A response with an error status, from [`Response::error_for_status`].
#[derive(Debug, thiserror::Error)]
#[error("HTTP {} from {}", .0.status, .0.url)]
pub struct HttpStatusError(pub Box<Response>);
