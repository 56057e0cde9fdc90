//! The receiving half of a connection: messages in, control frames
//! answered, keepalive pings sent and timed, the close handshake carried
//! through to a closed socket. A server's handler loop and the client's
//! `read_message` both pull from a [`Reader`].

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::close_code::CloseCode;
use super::decoder::Decoder;
use super::error::ProtocolError;
use super::message::Message;
use super::socket::WebSocket;
use crate::ioloop::{Sleep, far_future, sleep_until};
use crate::iostream::StreamError;

/// How a connection ended, as `on_close` hears it (RFC 6455 §7.1.5,
/// §7.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseInfo {
    /// The peer's close code; [`CloseCode::NO_STATUS`] (1005) for a Close
    /// without one, [`CloseCode::ABNORMAL`] (1006) if the connection ended
    /// without the peer's Close (it vanished, broke the protocol, or was
    /// timed out).
    pub code: CloseCode,
    /// The peer's reason (empty if none).
    pub reason: String,
}

/// What the reader delivers next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text or binary message.
    Message(Message),
    /// A Ping from the peer (already answered with a Pong).
    Ping(Bytes),
    /// A Pong from the peer.
    Pong(Bytes),
    /// The connection is closed; nothing follows.
    Closed(CloseInfo),
}

/// What a read of the stream ended with.
enum ReadError {
    Protocol(ProtocolError),
    /// The connection failed or the peer vanished (the stream says why).
    Stream,
}

impl From<StreamError> for ReadError {
    fn from(_: StreamError) -> ReadError {
        ReadError::Stream
    }
}

/// Keepalive: a Ping every `interval`, and the connection closed with
/// 1011 when `timeout` passes without an answer. Time the application
/// spends on a message is not counted against the peer: the reader is not
/// reading then, so a Pong could not have been seen.
struct Keepalive {
    interval: Duration,
    timeout: Duration,
    next_ping: Instant,
    /// When the unanswered ping must be answered by.
    pong_due: Option<Instant>,
    /// When the last event went to the application.
    returned_at: Option<Instant>,
}

/// The receiving half of one connection.
pub struct Reader {
    ws: WebSocket,
    decoder: Decoder,
    /// Boxed, as the timer: only connections with pings have one, and an
    /// idle connection should cost little more than its socket.
    keepalive: Option<Box<Keepalive>>,
    /// One timer for keepalive and the close handshake, created lazily.
    timer: Option<Box<Sleep>>,
    /// How the connection ended (boxed: an open connection has none).
    closed: Option<Box<CloseInfo>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("socket", &self.ws)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader decoding with `decoder` on `ws`'s connection, pinging per
    /// `ping` (interval, timeout).
    pub(crate) fn new(
        ws: WebSocket,
        decoder: Decoder,
        ping: Option<(Duration, Duration)>,
    ) -> Reader {
        let keepalive = ping.map(|(interval, timeout)| {
            Box::new(Keepalive {
                interval,
                timeout: timeout.min(interval),
                next_ping: Instant::now() + interval,
                pong_due: None,
                returned_at: None,
            })
        });
        Reader {
            ws,
            decoder,
            keepalive,
            timer: None,
            closed: None,
        }
    }

    /// How the connection ended, once it has.
    pub fn closed_info(&self) -> Option<&CloseInfo> {
        self.closed.as_deref()
    }

    /// The connection's sending half.
    pub fn socket(&self) -> &WebSocket {
        &self.ws
    }

    /// The next event. After [`Event::Closed`] every call returns it again.
    pub async fn next(&mut self) -> Event {
        if let Some(info) = &self.closed {
            return Event::Closed((**info).clone());
        }
        if let Some(k) = &mut self.keepalive
            && let Some(at) = k.returned_at.take()
        {
            // The application's time with the last event is not the peer's.
            let spent = at.elapsed();
            k.next_ping += spent;
            if let Some(due) = &mut k.pong_due {
                *due += spent;
            }
        }
        let event = self.next_event().await;
        if let Event::Closed(info) = &event {
            self.closed = Some(Box::new(info.clone()));
        } else if let Some(k) = &mut self.keepalive {
            k.returned_at = Some(Instant::now());
        }
        event
    }

    async fn next_event(&mut self) -> Event {
        loop {
            let deadline = self.deadline();
            let stream = self.ws.stream();
            let decoder = &mut self.decoder;
            let read = stream.read_with(|buf| decoder.decode(buf).map_err(ReadError::Protocol));
            let read = match deadline {
                None => Some(read.await),
                Some(deadline) => {
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::new(sleep_until(far_future())));
                    let limit = deadline.saturating_duration_since(Instant::now());
                    timer.within(limit, read).await.ok()
                }
            };
            let message = match read {
                None => match Box::pin(self.on_deadline()).await {
                    Some(event) => return event,
                    None => continue,
                },
                Some(Ok(message)) => message,
                Some(Err(ReadError::Protocol(e))) => return Box::pin(self.fail(e)).await,
                Some(Err(ReadError::Stream)) => return self.ended(CloseCode::ABNORMAL, ""),
            };
            if let Some(k) = &mut self.keepalive {
                // Any frame shows the peer is there.
                k.pong_due = None;
            }
            match message {
                Message::Ping(payload) => {
                    if !self.ws.is_closing() {
                        // A Pong may fail only on a closed connection,
                        // which the next read reports.
                        drop(self.ws.write_message(Message::Pong(payload.clone())));
                    }
                    return Event::Ping(payload);
                }
                Message::Pong(payload) => return Event::Pong(payload),
                Message::Close(frame) => {
                    let (code, reason) = match frame {
                        Some(f) => (f.code, f.reason),
                        None => (CloseCode::NO_STATUS, String::new()),
                    };
                    if !self.ws.is_closing() {
                        // Echo the code (§5.5.1); a Close without one is
                        // answered by a Close without one.
                        let _ = if code == CloseCode::NO_STATUS {
                            self.ws.send_empty_close()
                        } else {
                            self.ws.send_close(code, "")
                        };
                    }
                    Box::pin(self.linger()).await;
                    return self.ended(code, &reason);
                }
                data if self.ws.is_closing() => drop(data), // §7.1.2: after our Close, data is discarded
                data => return Event::Message(data),
            }
        }
    }

    /// The next deadline: the close handshake's, the awaited Pong's or
    /// the next Ping's.
    fn deadline(&self) -> Option<Instant> {
        let closing = self
            .ws
            .shared
            .st
            .borrow()
            .close_sent
            .map(|at| at + self.ws.shared.close_timeout());
        let keepalive = self
            .keepalive
            .as_ref()
            .map(|k| k.pong_due.unwrap_or(k.next_ping));
        match (closing, keepalive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deadline passed: drop a connection that does not answer its
    /// close handshake or its Ping, or send the next Ping.
    async fn on_deadline(&mut self) -> Option<Event> {
        let now = Instant::now();
        let close_sent = self.ws.shared.st.borrow().close_sent;
        if let Some(at) = close_sent
            && now >= at + self.ws.shared.close_timeout()
        {
            self.ws.abort();
            return Some(self.ended(CloseCode::ABNORMAL, ""));
        }
        let k = self.keepalive.as_mut()?;
        if k.pong_due.is_some_and(|due| now >= due) {
            tracing::debug!("websocket peer did not answer a ping in {:?}", k.timeout);
            let _ = self.ws.send_close(CloseCode::INTERNAL, "ping timeout");
            Box::pin(self.linger()).await;
            return Some(self.ended(CloseCode::ABNORMAL, ""));
        }
        if now >= k.next_ping {
            k.next_ping = now + k.interval;
            if k.pong_due.is_none() {
                k.pong_due = Some(now + k.timeout);
            }
            // Failure means a closed connection, which the read reports.
            drop(self.ws.ping(Bytes::new()));
        }
        None
    }

    /// The peer broke the protocol: a Close with the error's code, and
    /// nothing more of what it sent is read (§7.1.7).
    async fn fail(&mut self, e: ProtocolError) -> Event {
        tracing::debug!("websocket protocol error: {e}");
        let mut reason = e.to_string();
        reason.truncate(super::close::MAX_CLOSE_REASON);
        let _ = self.ws.send_close(e.close_code(), &reason);
        Box::pin(self.linger()).await;
        self.ended(CloseCode::ABNORMAL, "")
    }

    /// Ends the connection the way TCP wants it: our last bytes are
    /// flushed and our side shut (the FIN follows them, §7.1.1: the server
    /// closes first), then whatever the peer still sends is read and
    /// dropped, unexamined, until its FIN, so that closing the socket does
    /// not reset the connection and destroy our Close frame in flight.
    /// Bounded by `close_timeout`. (Callers box it: it runs once, and an
    /// idle connection's future should not reserve room for it.)
    async fn linger(&mut self) {
        let stream = self.ws.stream().clone();
        let timeout = self.ws.shared.close_timeout();
        let _ = crate::ioloop::timeout(timeout, async {
            if stream.write(Bytes::new()).await.is_err() {
                return;
            }
            let _ = stream.shutdown_write();
            while stream.read_bytes(64 << 10, true).await.is_ok() {}
        })
        .await;
        stream.close();
    }

    fn ended(&mut self, code: CloseCode, reason: &str) -> Event {
        self.ws.abort();
        let info = CloseInfo {
            code,
            reason: reason.to_string(),
        };
        self.closed = Some(Box::new(info.clone()));
        Event::Closed(info)
    }
}
