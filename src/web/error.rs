//! [`HttpError`]: an error that becomes an HTTP error page.

use http::StatusCode;

/// An error a handler returns to answer with an error status, like
/// Tornado's `HTTPError`: `Err(HttpError::new(StatusCode::NOT_FOUND))`
/// sends a 404 page. `log_message` is logged (not sent); `reason`
/// replaces the status's standard phrase in the page.
///
/// ```
/// use cyclone::web::HttpError;
/// use http::StatusCode;
///
/// let e = HttpError::new(StatusCode::FORBIDDEN).log("no token");
/// assert_eq!(e.status, StatusCode::FORBIDDEN);
/// let e: HttpError = StatusCode::NOT_FOUND.into();
/// assert_eq!(e.to_string(), "HTTP 404: Not Found");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status sent.
    pub status: StatusCode,
    /// Shown in the page instead of the standard phrase.
    pub reason: Option<String>,
    /// Logged, never sent.
    pub log_message: Option<String>,
    /// Extra header fields for the error response (e.g. `Allow` on 405).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl HttpError {
    /// An error answered with `status`.
    pub fn new(status: StatusCode) -> HttpError {
        HttpError {
            status,
            reason: None,
            log_message: None,
            headers: Vec::new(),
        }
    }

    /// Sets the phrase shown in the page.
    pub fn reason(mut self, reason: impl Into<String>) -> HttpError {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the message logged with the error.
    pub fn log(mut self, message: impl Into<String>) -> HttpError {
        self.log_message = Some(message.into());
        self
    }

    /// Adds a header field to the error response.
    pub fn header(mut self, name: http::HeaderName, value: http::HeaderValue) -> HttpError {
        self.headers.push((name, value));
        self
    }

    /// The phrase for the page: `reason`, or the standard one.
    pub fn phrase(&self) -> &str {
        self.reason
            .as_deref()
            .or(self.status.canonical_reason())
            .unwrap_or("Unknown")
    }
}

impl From<StatusCode> for HttpError {
    fn from(status: StatusCode) -> HttpError {
        HttpError::new(status)
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status.as_u16(), self.phrase())?;
        if let Some(m) = &self.log_message {
            write!(f, " ({m})")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}
