//! What can be wrong with a request, and the status that says so.

use http::StatusCode;

/// A request the server refuses. Each maps to one precise status; the
/// connection is closed after the error response (nothing after a framing
/// error is ever read as another request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request line or a header is malformed (bad method token, bad
    /// header name, whitespace before a colon, obs-fold, NUL, bare CR...).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// Not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported HTTP version")]
    Version,
    /// HTTP/1.1 without a Host header, or with more than one.
    #[error("HTTP/1.1 requests need exactly one Host header")]
    Host,
    /// The head is larger than `max_header_size`.
    #[error("request head too large")]
    HeadTooLarge,
    /// More than `max_headers` header lines.
    #[error("too many headers")]
    TooManyHeaders,
    /// The framing headers contradict each other or are invalid
    /// (RFC 9112 §6.3: Transfer-Encoding with Content-Length, differing or
    /// non-numeric Content-Length values, chunked not last).
    #[error("bad message framing: {0}")]
    Framing(&'static str),
    /// A transfer coding other than chunked.
    #[error("unsupported transfer coding")]
    TransferCoding,
    /// The chunked body is malformed.
    #[error("bad chunked body: {0}")]
    Chunked(&'static str),
    /// The body is larger than `max_body_size`.
    #[error("request body too large")]
    BodyTooLarge,
}

impl RequestError {
    /// The status of the error response.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Version => StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            RequestError::TransferCoding => StatusCode::NOT_IMPLEMENTED,
            RequestError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}
