//! Why a fetch failed: [`FetchError`], with the kind of timeout.

use std::io;
use std::net::SocketAddr;

use crate::iostream::StreamError;

/// Which limit a [`FetchError::Timeout`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// Waiting for a free slot (`max_clients`) or connection
    /// (`max_connections_per_host`), as Tornado's "Timeout in request
    /// queue".
    Queue,
    /// Resolving, connecting, the TLS handshake or the proxy's `CONNECT`
    /// took longer than `connect_timeout`.
    Connect,
    /// The whole fetch (queue, connection, request, response, redirects)
    /// took longer than `request_timeout`, after the queue.
    Request,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Queue => "in the request queue (request_timeout)",
            TimeoutKind::Connect => "connecting (connect_timeout)",
            TimeoutKind::Request => "before the response was complete (request_timeout)",
        })
    }
}

/// Why [`HttpClient::fetch`](super::HttpClient::fetch) returned no
/// response. A response with any status, 4xx and 5xx included, is not an
/// error (see [`Response::error_for_status`](super::Response::error_for_status)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL cannot be fetched (not `http(s)://`, no host, not a URL).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header name or value given for the request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The host name did not resolve.
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// Every address refused or failed (see [`is_refused`](Self::is_refused)).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why (`ConnectionRefused`, `HostUnreachable`, ...).
        source: io::Error,
    },
    /// A limit ran out; which one is said.
    #[error("timed out {0}")]
    Timeout(TimeoutKind),
    /// The TLS handshake failed; the source says why (a
    /// [`tls::TlsError`](crate::tls::TlsError) through
    /// [`tls::tls_error`](crate::tls::tls_error)).
    #[error("TLS with {host}: {source}")]
    Tls {
        /// The host the certificate was checked for.
        host: String,
        /// The handshake's error.
        source: StreamError,
    },
    /// The proxy refused to open a tunnel (its `CONNECT` answer).
    #[error("the proxy refused the tunnel: {status}")]
    Proxy {
        /// The proxy's status.
        status: http::StatusCode,
    },
    /// The server's answer is not a valid HTTP/1.x response; what was
    /// wrong is said.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// More redirects than `max_redirects`.
    #[error("too many redirects (more than {max}), the last to {location}")]
    TooManyRedirects {
        /// The limit.
        max: usize,
        /// Where the last redirect pointed.
        location: String,
    },
    /// The connection ended before the body did.
    #[error("the body ended after {received} bytes{}", match .expected { Some(n) => format!(" of the {n} its Content-Length says"), None => " inside a chunk".to_string() })]
    ShortBody {
        /// The Content-Length, if the body had one (`None`: chunked).
        expected: Option<u64>,
        /// The bytes that arrived.
        received: u64,
    },
    /// The body (after decoding) is larger than `max_body_size`, or the
    /// head than `max_header_size`.
    #[error("the response's {what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// `"body"` or `"head"`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The server closed the connection before any response.
    #[error("the server closed the connection without a response")]
    NoResponse,
    /// The connection failed in the middle of the exchange (reset).
    #[error("connection failed: {0}")]
    Stream(StreamError),
    /// The request's body producer returned an error (or wrote more or
    /// less than the length it declared).
    #[error("the request body failed: {0}")]
    Upload(io::Error),
}

impl FetchError {
    /// Whether the server refused the connection (nothing listening).
    pub fn is_refused(&self) -> bool {
        matches!(self, FetchError::Connect { source, .. }
            if source.kind() == io::ErrorKind::ConnectionRefused)
    }

    /// Whether this is a timeout, of any kind.
    pub fn is_timeout(&self) -> bool {
        matches!(self, FetchError::Timeout(_))
    }
}

impl From<crate::tcpclient::ConnectError> for FetchError {
    fn from(e: crate::tcpclient::ConnectError) -> FetchError {
        use crate::tcpclient::ConnectError as C;
        match e {
            C::Resolve { host, source } => FetchError::Resolve { host, source },
            C::Connect { addr, source } => FetchError::Connect { addr, source },
            C::Timeout { .. } => FetchError::Timeout(TimeoutKind::Connect),
            C::Tls { host, source } => FetchError::Tls { host, source },
        }
    }
}
