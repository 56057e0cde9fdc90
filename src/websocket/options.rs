//! [`WebSocketOptions`]: the limits and timers of one connection, the same
//! for a server's handler and a client.

use std::time::Duration;

use super::decoder::DEFAULT_MAX_MESSAGE_SIZE;
use super::negotiation::DeflateConfig;

/// The default bound on a connection's unsent bytes: 16 MiB, room for a
/// message of the default maximum size (10 MiB) with some to spare, so
/// a peer that reads is never cut off for one large message, and a peer
/// that stops reading costs at most this before it is closed.
pub const DEFAULT_MAX_WRITE_BUFFER_SIZE: usize = 16 << 20;

/// How long a closing end waits for the peer's Close (and then for its
/// FIN) before it drops the connection: RFC 6455 gives no figure, 5 s is
/// Tornado's and most browsers' order.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long queued bytes may wait without the peer taking any before the
/// connection is cut off: 60 s, the HTTP server's `write_timeout`.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// One connection's limits and timers. The defaults are Tornado's where
/// Tornado has one (10 MiB messages, no pings, compression off), and
/// bounded where Tornado is not (the write buffer).
///
/// ```
/// use std::time::Duration;
/// use cyclone::websocket::WebSocketOptions;
///
/// let opts = WebSocketOptions::default()
///     .max_message_size(64 << 10)
///     .ping_interval(Duration::from_secs(20));
/// assert_eq!(opts.ping_timeout_or_default(), Some(Duration::from_secs(20)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketOptions {
    /// The largest message accepted, in bytes (after decompression too);
    /// a larger one closes the connection with 1009.
    pub max_message_size: usize,
    /// The most unsent bytes a connection may hold: a message that would
    /// pass it closes the connection instead (the peer is not reading),
    /// so a slow reader cannot grow the server without bound.
    pub max_write_buffer_size: usize,
    /// Send a Ping this often; `None` (the default): never.
    pub ping_interval: Option<Duration>,
    /// How long to wait for the answer to a Ping before closing with 1011;
    /// defaults to, and is capped at, `ping_interval`.
    pub ping_timeout: Option<Duration>,
    /// How long a closing end waits for the peer's part of the close
    /// handshake before it drops the connection.
    pub close_timeout: Duration,
    /// How long queued bytes may wait with the peer taking none of them
    /// before the connection is cut off (reset): so a handler awaiting a
    /// write to a peer that stopped reading does not wait forever. Checked
    /// only while something is queued, to the millisecond (at most
    /// 49 days).
    pub write_timeout: Duration,
    /// permessage-deflate: for a server, `Some` accepts a client's offer
    /// with this configuration; for a client, `Some` offers it. `None`
    /// (the default): off.
    pub compression: Option<DeflateConfig>,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        WebSocketOptions {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_write_buffer_size: DEFAULT_MAX_WRITE_BUFFER_SIZE,
            ping_interval: None,
            ping_timeout: None,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            compression: None,
        }
    }
}

impl WebSocketOptions {
    /// Sets [`max_message_size`](Self::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`max_write_buffer_size`](Self::max_write_buffer_size).
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.max_write_buffer_size = bytes;
        self
    }

    /// Sets [`ping_interval`](Self::ping_interval).
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = Some(every);
        self
    }

    /// Sets [`ping_timeout`](Self::ping_timeout).
    pub fn ping_timeout(mut self, within: Duration) -> Self {
        self.ping_timeout = Some(within);
        self
    }

    /// Sets [`close_timeout`](Self::close_timeout).
    pub fn close_timeout(mut self, within: Duration) -> Self {
        self.close_timeout = within;
        self
    }

    /// Sets [`write_timeout`](Self::write_timeout).
    pub fn write_timeout(mut self, within: Duration) -> Self {
        self.write_timeout = within;
        self
    }

    /// Sets [`compression`](Self::compression).
    pub fn compression(mut self, config: DeflateConfig) -> Self {
        self.compression = Some(config);
        self
    }

    /// The ping timeout in force: the one set, capped at the interval, or
    /// the interval itself; `None` without pings.
    pub fn ping_timeout_or_default(&self) -> Option<Duration> {
        let interval = self.ping_interval?;
        Some(self.ping_timeout.map_or(interval, |t| t.min(interval)))
    }
}
