//! [`Settings`]: what an application decides once for every request.

use std::time::Duration;

/// Application-wide settings, readable by handlers through
/// [`Request::settings`](super::Request::settings).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Show a panic's message and backtrace in the 500 page (never in
    /// production).
    pub debug: bool,
    /// The key for signed cookies; without it they are refused.
    pub cookie_secret: Option<Vec<u8>>,
    /// How long a signed cookie stays valid (Tornado: 31 days).
    pub signed_cookie_max_age: Duration,
    /// Check an `_xsrf` token on POST, PUT, PATCH and DELETE.
    pub xsrf_cookies: bool,
    /// Gzip text responses for clients that accept it.
    pub compress_response: bool,
    /// Add an ETag to GET/HEAD answers and turn a matching
    /// `If-None-Match` into `304 Not Modified`.
    pub etag: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            debug: false,
            cookie_secret: None,
            signed_cookie_max_age: Duration::from_secs(31 * 86_400),
            xsrf_cookies: false,
            compress_response: false,
            etag: true,
        }
    }
}
