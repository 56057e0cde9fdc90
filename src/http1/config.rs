//! [`HttpConfig`]: the limits and timeouts a server applies to every
//! connection.

use std::time::Duration;

/// Limits and timeouts. The defaults follow nginx's where it has one.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request head (request line and headers); larger: 431.
    pub max_header_size: usize,
    /// The most header lines; more: 431.
    pub max_headers: usize,
    /// The largest request body; larger: 413 (before reading it when
    /// Content-Length says so).
    pub max_body_size: usize,
    /// How long a keep-alive connection may wait for its next request
    /// (nginx `keepalive_timeout`: 75 s).
    pub idle_connection_timeout: Duration,
    /// How long the whole request head may take to arrive once it started
    /// (nginx `client_header_timeout`: 60 s); defeats slowloris. 408.
    pub header_timeout: Duration,
    /// How long the body may take (nginx `client_body_timeout`: 60 s). 408.
    pub body_timeout: Duration,
    /// How long one write of the response may wait for the client to read
    /// (nginx `send_timeout`: 60 s); then the connection is closed.
    pub write_timeout: Duration,
    /// The `Server` header value (empty: none).
    pub server_name: String,
    /// Close every connection after one response.
    pub no_keep_alive: bool,
    /// Behind a reverse proxy: take the client's address and scheme from
    /// X-Real-Ip / X-Forwarded-For / X-Forwarded-Proto. X-Forwarded-For
    /// is read from the right, skipping `trusted_downstream` proxies; an
    /// X-Real-Ip wins; invalid values are ignored.
    pub xheaders: bool,
    /// Proxies whose X-Forwarded-For entries are skipped.
    pub trusted_downstream: Vec<std::net::IpAddr>,
    /// Inflate `Content-Encoding: gzip` request bodies before the handler
    /// sees them (limited by `max_body_size` after inflating).
    pub decompress_request: bool,
    /// Serve HTTPS: every connection's TLS handshake runs first (within
    /// the config's `handshake_timeout`), and requests say `https` (see
    /// [`Request::protocol`](super::Request::protocol)).
    pub tls: Option<crate::tls::TlsConfig>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            max_header_size: 64 * 1024,
            max_headers: 100,
            // Tornado's default is 100 MiB; bodies here are held in memory,
            // so the default is the more conservative 10 MiB.
            max_body_size: 10 * 1024 * 1024,
            idle_connection_timeout: Duration::from_secs(75),
            header_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            server_name: "Cyclone".to_string(),
            no_keep_alive: false,
            xheaders: false,
            trusted_downstream: Vec::new(),
            decompress_request: false,
            tls: None,
        }
    }
}
