//! The client: [`websocket_connect`] opens a connection to a `ws://` URL
//! and returns a [`WebSocketConnection`] to read and write messages.

use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};

use super::close_code::CloseCode;
use super::connection::open;
use super::frame::Role;
use super::handshake::{ClientHandshake, ClientHandshakeError};
use super::keys;
use super::message::Message;
use super::negotiation::{NegotiationError, accept_deflate_response, offer_deflate};
use super::options::WebSocketOptions;
use super::reader::{CloseInfo, Event, Reader};
use super::socket::{Flush, SendError, WebSocket};
use crate::httpclient::url::{self, Target};
use crate::iostream::{IOStream, StreamError};
use crate::tcpclient::{ConnectError as TcpConnectError, TcpClient};

/// The longest response head a client reads: 64 KiB, the HTTP server's
/// own default limit on request heads; a real 101 is a few hundred bytes.
const MAX_RESPONSE_HEAD: usize = 64 << 10;

/// The most header lines a response head may have.
const MAX_RESPONSE_HEADERS: usize = 64;

/// What [`websocket_connect`] takes beyond the URL.
///
/// ```
/// use std::time::Duration;
/// use cyclone::websocket::{ConnectOptions, DeflateConfig};
///
/// let opts = ConnectOptions::default()
///     .protocols(["chat"])
///     .compression(DeflateConfig::default())
///     .connect_timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Limits, timers and compression, as for a server connection
    /// (`compression: Some` offers permessage-deflate).
    pub websocket: WebSocketOptions,
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// Extra request headers (`Origin`, `Authorization`, cookies).
    pub headers: HeaderMap,
    /// Bounds name resolution, the TCP connection and the handshake.
    pub connect_timeout: Duration,
    /// For `wss://`: whom to trust (`None`: the system's roots, loaded
    /// when a `wss://` URL is first used).
    pub tls: Option<crate::tls::TlsClientConfig>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            websocket: WebSocketOptions::default(),
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            // Tornado's connect_timeout default for its HTTP client.
            connect_timeout: Duration::from_secs(20),
            tls: None,
        }
    }
}

impl ConnectOptions {
    /// Sets the subprotocols to offer.
    pub fn protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Offers permessage-deflate with `config`.
    pub fn compression(mut self, config: super::negotiation::DeflateConfig) -> Self {
        self.websocket.compression = Some(config);
        self
    }

    /// Sets the connection's limits and timers.
    pub fn websocket(mut self, options: WebSocketOptions) -> Self {
        self.websocket = options;
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

/// Why [`websocket_connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a `ws://` URL with a host.
    #[error("invalid WebSocket URL {0:?}: {1}")]
    Url(String, &'static str),
    /// `wss://` without [`ConnectOptions::tls`], and no usable system
    /// root certificates to trust.
    #[error("wss://: {0}")]
    Tls(crate::tls::TlsError),
    /// Resolving or connecting failed.
    #[error(transparent)]
    Connect(#[from] TcpConnectError),
    /// The handshake took longer than `connect_timeout`.
    #[error("the WebSocket handshake timed out")]
    Timeout,
    /// The connection failed during the handshake.
    #[error("connection failed during the handshake: {0}")]
    Stream(#[from] StreamError),
    /// The server's answer is not an HTTP response head.
    #[error("the server's answer is not a valid HTTP response: {0}")]
    BadResponse(String),
    /// The server refused the upgrade or answered it wrongly.
    #[error(transparent)]
    Handshake(#[from] ClientHandshakeError),
    /// The server's permessage-deflate answer is not acceptable.
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
}

/// An open client connection: [`read_message`](Self::read_message) for
/// what the server sends, [`write_message`](Self::write_message) to send.
/// Pings are answered as they arrive; reading is what lets them arrive,
/// so read even if you only write (or close, which reads for you).
#[derive(Debug)]
pub struct WebSocketConnection {
    reader: Reader,
}

impl WebSocketConnection {
    /// The next text or binary message; `None` once the connection is
    /// closed ([`close_info`](Self::close_info) then says how).
    pub async fn read_message(&mut self) -> Option<Message> {
        loop {
            match self.reader.next().await {
                Event::Message(m) => return Some(m),
                Event::Ping(_) | Event::Pong(_) => {}
                Event::Closed(_) => return None,
            }
        }
    }

    /// The next event, control frames included.
    pub async fn next_event(&mut self) -> Event {
        self.reader.next().await
    }

    /// Sends a message (see [`WebSocket::write_message`]).
    pub fn write_message(&self, message: impl Into<Message>) -> Flush {
        self.reader.socket().write_message(message)
    }

    /// The sending half, to write from other tasks (`Clone`).
    pub fn socket(&self) -> &WebSocket {
        self.reader.socket()
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<String> {
        self.reader.socket().protocol()
    }

    /// Closes with `code` and `reason`: sends the Close, reads (and drops)
    /// what the server still sends until its Close, within the close
    /// timeout. Returns how the connection ended.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<CloseInfo, SendError> {
        let sent = self.reader.socket().send_close(code, reason);
        if let Err(e @ SendError::Invalid(_)) = sent {
            return Err(e);
        }
        loop {
            if let Event::Closed(info) = self.reader.next().await {
                return Ok(info);
            }
        }
    }

    /// How the connection ended, once it has.
    pub fn close_info(&self) -> Option<&CloseInfo> {
        self.reader.closed_info()
    }
}

/// Opens a WebSocket connection to `url` (`ws://host[:port]/path?query`)
/// on the current loop: resolves and connects within
/// `options.connect_timeout`, sends the handshake with a random key (and
/// the subprotocols and permessage-deflate offer asked for) and checks
/// the server's 101.
///
/// ```no_run
/// use cyclone::websocket::{websocket_connect, ConnectOptions};
///
/// cyclone::run_sync(async {
///     let mut conn = websocket_connect("ws://127.0.0.1:8888/ws/echo", ConnectOptions::default())
///         .await
///         .unwrap();
///     conn.write_message("hello").await.unwrap();
///     println!("{:?}", conn.read_message().await);
/// });
/// ```
pub async fn websocket_connect(
    url: &str,
    options: ConnectOptions,
) -> Result<WebSocketConnection, ConnectError> {
    let uri: Uri = url
        .parse()
        .map_err(|_| ConnectError::Url(url.to_string(), "not a URL"))?;
    let target = target(&uri, url)?;
    let limit = options.connect_timeout;
    let started = std::time::Instant::now();
    let stream = if target.secure {
        let config = match &options.tls {
            Some(config) => config.clone(),
            None => {
                crate::tls::TlsClientConfig::shared_system_roots().map_err(ConnectError::Tls)?
            }
        };
        TcpClient::connect_tls(&target.host, target.port, &config, limit).await?
    } else {
        TcpClient::connect(&target.host, target.port, limit).await?
    };
    let _ = stream.set_nodelay(true);
    let rest = limit.saturating_sub(started.elapsed());
    match crate::ioloop::timeout(rest, handshake(stream, &target, options)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout),
    }
}

/// Where a `ws://` or `wss://` URL points (the HTTP client's reading of
/// a URL, with the WebSocket schemes).
fn target<'a>(uri: &'a Uri, url: &str) -> Result<Target<'a>, ConnectError> {
    Target::parse_for(uri, &url::WEBSOCKET).map_err(|why| ConnectError::Url(url.to_string(), why))
}

async fn handshake(
    stream: IOStream,
    target: &Target<'_>,
    options: ConnectOptions,
) -> Result<WebSocketConnection, ConnectError> {
    let mut nonce = [0; 16];
    keys::fill(&mut nonce);
    let mut hs = ClientHandshake::new(nonce).protocols(options.protocols.iter().cloned());
    if let Some(config) = &options.websocket.compression {
        hs = hs.extensions(offer_deflate(config));
    }
    let mut head = BytesMut::with_capacity(512);
    head.extend_from_slice(b"GET ");
    head.extend_from_slice(target.path_and_query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(target.authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    let ours = hs.request_headers().map_err(|_| {
        ConnectError::Url(target.path_and_query.to_string(), "bad subprotocol name")
    })?;
    for (name, value) in ours.iter().chain(options.headers.iter()) {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write(head.freeze()).await?;
    let answer = stream
        .read_until(b"\r\n\r\n", Some(MAX_RESPONSE_HEAD))
        .await?;
    let (status, headers) = parse_response_head(&answer)?;
    let accepted = hs.check_response(status, &headers)?;
    let agreement = match (&options.websocket.compression, &accepted.extensions) {
        (Some(config), Some(answer)) => Some(accept_deflate_response(answer, config)?),
        (None, Some(_)) => return Err(ClientHandshakeError::UnofferedExtension.into()),
        (_, None) => None,
    };
    let mut websocket = options.websocket;
    if agreement.is_none() {
        websocket.compression = None;
    }
    // Frames the server sent right behind its 101 stay in the buffer.
    let (_, reader) = open(
        Rc::new(stream),
        Role::Client,
        agreement,
        accepted.protocol,
        &websocket,
    );
    Ok(WebSocketConnection { reader })
}

/// The status and headers of a response head.
fn parse_response_head(head: &[u8]) -> Result<(StatusCode, HeaderMap), ConnectError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(ConnectError::BadResponse("incomplete head".into()));
        }
        Err(e) => return Err(ConnectError::BadResponse(e.to_string())),
    }
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| ConnectError::BadResponse("no status code".into()))?;
    let mut headers = HeaderMap::new();
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| ConnectError::BadResponse(format!("bad header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| ConnectError::BadResponse(format!("bad value for {name}")))?;
        headers.append(name, value);
    }
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target of `url`, its URI kept for the test's length.
    fn parse(url: &str) -> Result<Target<'static>, ConnectError> {
        let uri: &'static Uri = Box::leak(Box::new(url.parse().unwrap()));
        target(uri, url)
    }

    #[test]
    fn a_ws_url_gives_host_port_and_path() {
        let t = parse("ws://example.com:9000/chat?room=1").unwrap();
        assert_eq!((&*t.host, t.port), ("example.com", 9000));
        assert_eq!(t.path_and_query, "/chat?room=1");
        assert_eq!(t.authority, "example.com:9000");
    }

    #[test]
    fn a_ws_url_without_port_uses_80_and_root_path() {
        let t = parse("ws://example.com").unwrap();
        assert_eq!((t.port, &*t.path_and_query), (80, "/"));
    }

    #[test]
    fn an_ipv6_literal_is_connected_to_without_brackets() {
        let t = parse("ws://[::1]:8888/ws").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.authority, "[::1]:8888");
    }

    #[test]
    fn wss_is_secure_and_defaults_to_port_443() {
        let t = parse("wss://example.com/chat").unwrap();
        assert!(t.secure);
        assert_eq!((t.port, &*t.path_and_query), (443, "/chat"));
        assert!(!parse("ws://example.com/").unwrap().secure);
    }

    #[test]
    fn an_http_url_is_refused() {
        assert!(matches!(
            parse("http://example.com/"),
            Err(ConnectError::Url(..))
        ));
    }

    #[test]
    fn a_response_head_parses_into_status_and_headers() {
        let (status, headers) =
            parse_response_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
                .unwrap();
        assert_eq!(status, StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(headers["upgrade"], "websocket");
    }

    #[test]
    fn a_garbled_response_head_is_a_bad_response() {
        assert!(matches!(
            parse_response_head(b"HTTP/1.1 abc\r\n\r\n"),
            Err(ConnectError::BadResponse(_))
        ));
    }
}
