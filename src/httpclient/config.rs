//! [`ClientConfig`]: the limits, timeouts and defaults of an
//! [`HttpClient`](super::HttpClient), and the [`Proxy`] it may go through.

use std::time::Duration;

use base64::Engine;
use http::HeaderValue;

use crate::tls::TlsClientConfig;

/// A client's limits and defaults. Tornado's where it has one.
///
/// ```
/// use std::time::Duration;
/// use cyclone::httpclient::ClientConfig;
///
/// let config = ClientConfig {
///     max_clients: 64,
///     max_connections_per_host: 64,
///     request_timeout: Duration::from_secs(5),
///     ..ClientConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Requests running at once; more wait in a FIFO queue, and the wait
    /// counts against their `request_timeout` (Tornado: 10).
    pub max_clients: usize,
    /// Connections open at once to one origin (scheme, host, port); a
    /// request beyond it waits for one to come back (default 10).
    pub max_connections_per_host: usize,
    /// How long an idle pooled connection is kept (default 60 s; servers
    /// close theirs after 5 s (Apache) to 75 s (nginx), and a request
    /// that meets such a close before any answer is retried once when it
    /// is idempotent).
    pub idle_timeout: Duration,
    /// Resolving, connecting, TLS and a proxy's `CONNECT` (Tornado: 20 s).
    pub connect_timeout: Duration,
    /// The whole fetch, queue and redirects included (Tornado: 20 s).
    pub request_timeout: Duration,
    /// Redirects followed before [`FetchError::TooManyRedirects`](super::FetchError::TooManyRedirects)
    /// (Tornado: 5; 0: none are followed and the 3xx is the response).
    pub max_redirects: usize,
    /// Send `Accept-Encoding: gzip` and decode gzip and deflate bodies
    /// (Tornado's `decompress_response`: on).
    pub decompress: bool,
    /// The largest body, after decoding (Tornado: 100 MB).
    pub max_body_size: usize,
    /// The largest response head (Tornado: 64 KiB).
    pub max_header_size: usize,
    /// The `User-Agent` sent when a request has none (`None`: none sent).
    pub user_agent: Option<HeaderValue>,
    /// Whom `https://` trusts (`None`: the system's roots, loaded once per
    /// thread when first needed).
    pub tls: Option<TlsClientConfig>,
    /// A forward proxy for every request.
    pub proxy: Option<Proxy>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_clients: 10,
            max_connections_per_host: 10,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            max_redirects: 5,
            decompress: true,
            max_body_size: 100 * 1024 * 1024,
            max_header_size: 64 * 1024,
            user_agent: Some(HeaderValue::from_static(concat!(
                "cyclone/",
                env!("CARGO_PKG_VERSION")
            ))),
            tls: None,
            proxy: None,
        }
    }
}

/// An HTTP forward proxy: `http://` requests go to it in absolute form,
/// `https://` ones through a `CONNECT` tunnel (so the proxy sees only the
/// host and port), with Basic proxy authentication if given.
///
/// ```
/// use cyclone::httpclient::Proxy;
///
/// let proxy = Proxy::new("proxy.internal", 3128).basic_auth("user", "secret");
/// let same = Proxy::parse("http://user:secret@proxy.internal:3128").unwrap();
/// assert_eq!(proxy, same);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The `Proxy-Authorization` value.
    pub(crate) auth: Option<HeaderValue>,
}

impl Proxy {
    /// The proxy at `host:port`.
    pub fn new(host: &str, port: u16) -> Proxy {
        Proxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            auth: None,
        }
    }

    /// Authenticates with `Proxy-Authorization: Basic` (RFC 7617).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        // Base64 is always a valid header value; marked sensitive, so
        // `Debug` of a config never shows the credentials.
        self.auth = HeaderValue::from_str(&format!("Basic {token}"))
            .ok()
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        self
    }

    /// Parses `http://[user:password@]host[:port]` (port 80 by default;
    /// user and password percent-decoded).
    pub fn parse(url: &str) -> Result<Proxy, &'static str> {
        let rest = url
            .strip_prefix("http://")
            .ok_or("a proxy URL starts with http://")?;
        let authority = rest.split('/').next().unwrap_or("");
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let uri: http::uri::Authority = hostport.parse().map_err(|_| "invalid proxy host")?;
        if uri.host().is_empty() {
            return Err("no proxy host");
        }
        let mut proxy = Proxy::new(uri.host(), uri.port_u16().unwrap_or(80));
        if let Some(userinfo) = userinfo {
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| "proxy credentials are not UTF-8")
            };
            proxy = proxy.basic_auth(&decode(user)?, &decode(password)?);
        }
        Ok(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_proxy_auth_is_base64_of_user_colon_password() {
        let p = Proxy::new("h", 1).basic_auth("Aladdin", "open sesame");
        assert_eq!(p.auth.unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }

    #[test]
    fn debug_output_never_shows_proxy_credentials() {
        let p = Proxy::new("h", 1).basic_auth("user", "secret");
        assert!(!format!("{p:?}").contains("dXNlcjpzZWNyZXQ"), "{p:?}");
    }

    #[test]
    fn a_proxy_url_gives_host_port_and_decoded_credentials() {
        let p = Proxy::parse("http://us%40er:p%3Ass@[::1]:8080/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
        assert_eq!(p, Proxy::new("::1", 8080).basic_auth("us@er", "p:ss"));
        assert_eq!(Proxy::parse("http://proxy").unwrap().port, 80);
        assert!(Proxy::parse("socks5://proxy:1080").is_err());
    }
}
