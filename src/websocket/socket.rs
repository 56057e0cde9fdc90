//! [`WebSocket`]: the sending half of an open connection, a cheap `Clone`
//! handle on the loop's thread. Frames are encoded and queued on the
//! stream the moment a message is written, so messages go out whole and
//! in call order whoever writes them; the future each write returns is its
//! flow control.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::close::{CloseFrame, MAX_CLOSE_REASON};
use super::close_code::CloseCode;
use super::encoder::Encoder;
use super::encoder::Sharing;
use super::error::EncodeError;
use super::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, Role, encode_header};
use super::keys::mask_key;
use super::message::Message;
use crate::iostream::{Flushed, IOStream, StreamError};

/// Payloads from this size on are sent from their own bytes rather than
/// copied behind their header: below it one copy costs less than a second
/// piece in the gathered write.
const ZERO_COPY_MIN: usize = 4096;

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The connection is closed, or closing (our Close was sent: nothing
    /// may follow it, RFC 6455 §5.5.1).
    #[error("the WebSocket is closed")]
    Closed,
    /// The peer stopped reading: the message would have passed
    /// `max_write_buffer_size`, so the connection was closed instead.
    #[error("the peer is not reading: write buffer limit reached, connection closed")]
    SlowReader,
    /// The message breaks a rule of the protocol (a Ping over 125 bytes,
    /// a Close reason over 123, a close code that may not be sent).
    #[error(transparent)]
    Invalid(#[from] EncodeError),
    /// [`WebSocket::write_json`]'s value could not be serialized.
    #[error("cannot serialize the message as JSON: {0}")]
    Serialize(String),
}

/// A WebSocket connection's sending half. Cheap to clone; every clone
/// writes to the same connection, on the loop's thread. For another
/// thread, see [`WebSocket::remote`].
///
/// Each `write_message` encodes its message and queues it at once (so
/// messages are never interleaved and go out in call order, awaited or
/// not); the returned future resolves when the bytes are in the kernel's
/// hands. Awaiting it is the flow control: a handler that awaits its
/// writes sends no faster than the peer reads. A peer that stops reading
/// is cut off at `max_write_buffer_size` rather than grown without bound.
///
/// Not `Send`: writing a frame from another thread does not compile (it
/// corrupts frames in Tornado, tornado#2871); [`WebSocket::remote`] is the
/// way across.
///
/// ```compile_fail
/// fn on_another_thread<T: Send>(_: T) {}
/// fn try_it(ws: cyclone::websocket::WebSocket) {
///     on_another_thread(ws); // error: `Rc<...>` cannot be sent between threads
/// }
/// ```
#[derive(Clone)]
pub struct WebSocket {
    pub(super) shared: Rc<Shared>,
}

pub(super) struct Shared {
    pub(super) stream: Rc<IOStream>,
    /// The close and write timeouts in milliseconds: two `u32`s rather
    /// than two `Duration`s, 24 bytes less on every connection.
    timeouts_ms: [u32; 2],
    pub(super) st: RefCell<SendState>,
}

impl Shared {
    /// See [`WebSocketOptions::close_timeout`](super::WebSocketOptions::close_timeout).
    pub(super) fn close_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeouts_ms[0]))
    }

    /// See [`WebSocketOptions::write_timeout`](super::WebSocketOptions::write_timeout).
    fn write_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeouts_ms[1]))
    }
}

/// A timeout in whole milliseconds, at most `u32::MAX` (49 days).
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

pub(super) struct SendState {
    encoder: Encoder,
    /// When our Close went out: nothing more may be sent after it, and
    /// the peer has `close_timeout` from then to answer.
    pub(super) close_sent: Option<Instant>,
    /// The subprotocol agreed in the handshake.
    protocol: Option<Box<str>>,
    /// The write that failed for lack of room, so later ones say why.
    slow_reader: bool,
    /// A write-progress timer is armed (see `watch_writes`).
    write_watch: bool,
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("fd", &self.shared.stream.fd())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl WebSocket {
    /// A handle sending with `encoder` (its role decides masking) on
    /// `stream`, whose write buffer is bounded at `max_write_buffer`.
    pub(crate) fn new(
        stream: Rc<IOStream>,
        encoder: Encoder,
        protocol: Option<String>,
        max_write_buffer: usize,
        close_timeout: Duration,
        write_timeout: Duration,
    ) -> WebSocket {
        stream.set_max_write_buffer_size(Some(max_write_buffer));
        WebSocket {
            shared: Rc::new(Shared {
                stream,
                timeouts_ms: [millis(close_timeout), millis(write_timeout)],
                st: RefCell::new(SendState {
                    encoder,
                    close_sent: None,
                    protocol: protocol.map(String::into_boxed_str),
                    slow_reader: false,
                    write_watch: false,
                }),
            }),
        }
    }

    /// Sends a text, binary (or, for special needs, control) message.
    /// Strings become text messages, byte vectors and [`Bytes`] binary
    /// ones; [`Message::json`] makes JSON text.
    ///
    /// The message is queued before this returns; the future tells when
    /// it has gone to the kernel (or why it could not).
    pub fn write_message(&self, message: impl Into<Message>) -> Flush {
        let message = message.into();
        if message.payload().len() >= ZERO_COPY_MIN && self.sends_as_is(message.payload().len()) {
            return Flush(self.queue_without_copy(message));
        }
        Flush(self.queue(&message))
    }

    /// Sends `value` as a JSON text message.
    pub fn write_json<T: serde::Serialize + ?Sized>(&self, value: &T) -> Flush {
        match Message::json(value) {
            Ok(m) => self.write_message(m),
            Err(e) => Flush(Err(SendError::Serialize(e.to_string()))),
        }
    }

    /// Sends a Ping with `payload` (at most 125 bytes); the peer answers
    /// with a Pong carrying it.
    pub fn ping(&self, payload: impl Into<Bytes>) -> Flush {
        let payload = payload.into();
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Flush(Err(SendError::Invalid(EncodeError::ControlPayloadTooLong(
                payload.len(),
            ))));
        }
        self.write_message(Message::Ping(payload))
    }

    /// Starts the close handshake: sends a Close with `code` and `reason`
    /// (at most 123 bytes; a longer one is cut at a character boundary).
    /// The future resolves once the Close is in the kernel's hands; the
    /// connection's reader then waits for the peer's Close, and the
    /// connection is dropped if it has not ended `close_timeout` (5 s by
    /// default) after the Close went out, reader or not. Closing twice is
    /// harmless. Awaiting this inside `on_message` does not wait for the
    /// peer: the reader cannot read while the handler runs.
    pub async fn close(&self, code: CloseCode, reason: &str) -> Result<(), SendError> {
        match self.send_close(code, reason) {
            Ok(flushed) => flushed.await.map_err(send_error),
            Err(SendError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Queues our Close (once). Err(Closed) if one was already sent.
    pub(super) fn send_close(&self, code: CloseCode, reason: &str) -> Result<Flushed, SendError> {
        let frame = CloseFrame::new(code, truncate(reason, MAX_CLOSE_REASON));
        self.queue(&Message::Close(Some(frame)))
    }

    /// Queues a Close without a status (an answer to one without any).
    pub(super) fn send_empty_close(&self) -> Result<Flushed, SendError> {
        self.queue(&Message::Close(None))
    }

    /// Whether the connection is closed (the stream is gone).
    pub fn is_closed(&self) -> bool {
        self.shared.stream.is_closed()
    }

    /// Whether our Close has been sent: no more messages may be.
    pub fn is_closing(&self) -> bool {
        self.shared.st.borrow().close_sent.is_some()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<String> {
        self.shared
            .st
            .borrow()
            .protocol
            .as_deref()
            .map(str::to_string)
    }

    /// Bytes written but not yet taken by the kernel.
    pub fn buffered_amount(&self) -> usize {
        self.shared.stream.write_buffered()
    }

    /// Whether two handles are the same connection.
    pub fn ptr_eq(&self, other: &WebSocket) -> bool {
        Rc::ptr_eq(&self.shared, &other.shared)
    }

    /// Drops the connection at once, without a close handshake.
    pub fn abort(&self) {
        self.shared.stream.close();
    }

    /// The connection's stream (for the reader on the same connection).
    pub(super) fn stream(&self) -> &Rc<IOStream> {
        &self.shared.stream
    }

    /// How the connection encodes a data message of `len` bytes, for
    /// sharing one encoding among many connections (broadcast).
    pub(super) fn sharing(&self, len: usize) -> Option<super::encoder::Sharing> {
        self.shared.st.borrow().encoder.sharing(len)
    }

    /// `message` encoded with this connection's encoder, to be queued on
    /// it and on others that encode alike (`None` if it cannot be).
    pub(super) fn encode(&self, message: &Message) -> Option<Bytes> {
        let mut st = self.shared.st.borrow_mut();
        let role = st.encoder.role();
        let mut dst = BytesMut::with_capacity(frame_len(message, role));
        st.encoder
            .encode_message(&mut dst, message, || key_for(role))
            .ok()?;
        Some(dst.freeze())
    }

    /// Queues bytes that hold whole frames (encoded for this connection,
    /// or shared with others that encode alike).
    pub(super) fn queue_encoded(&self, frames: Bytes) -> Result<Flushed, SendError> {
        self.writable(&self.shared.st.borrow())?;
        self.hand_to_stream(frames)
    }

    /// Whether anything more may be sent: not after our Close, nor once
    /// the connection is closed or its peer was cut off.
    fn writable(&self, st: &SendState) -> Result<(), SendError> {
        if st.slow_reader {
            return Err(SendError::SlowReader);
        }
        if st.close_sent.is_some() || self.shared.stream.is_closed() {
            return Err(SendError::Closed);
        }
        Ok(())
    }

    fn queue(&self, message: &Message) -> Result<Flushed, SendError> {
        let frames = {
            let mut st = self.shared.st.borrow_mut();
            self.writable(&st)?;
            let role = st.encoder.role();
            let mut dst = BytesMut::with_capacity(frame_len(message, role));
            if let Err(e) = st
                .encoder
                .encode_message(&mut dst, message, || key_for(role))
            {
                if e == EncodeError::Compression {
                    // The compression context may be ahead of the peer's:
                    // nothing more can be sent on this connection.
                    drop(st);
                    self.abort();
                    return Err(SendError::Closed);
                }
                return Err(SendError::Invalid(e));
            }
            if matches!(message, Message::Close(_)) {
                st.close_sent = Some(Instant::now());
                // The close handshake is bounded whoever reads (or not):
                // the connection goes at the timeout if still open. The
                // timer holds no reference to the stream.
                let closer = self.shared.stream.closer();
                let timeout = self.shared.close_timeout();
                self.shared
                    .stream
                    .io_loop()
                    .call_later(timeout, move || closer.close());
            }
            dst.freeze()
        };
        self.hand_to_stream(frames)
    }

    /// Whether a data message of `len` bytes goes out as it is: a
    /// server's, uncompressed, in one frame.
    fn sends_as_is(&self, len: usize) -> bool {
        let plain = Sharing {
            deflate: None,
            split: None,
        };
        self.shared.st.borrow().encoder.sharing(len) == Some(plain)
    }

    /// A data message that goes out as it is ([`sends_as_is`](Self::sends_as_is)),
    /// sent as its header and its own payload bytes in one gathered write:
    /// the payload is not copied (a text's `String` becomes the `Bytes`).
    fn queue_without_copy(&self, message: Message) -> Result<Flushed, SendError> {
        let (opcode, payload) = match message {
            Message::Binary(b) => (OpCode::Binary, b),
            Message::Text(t) => (OpCode::Text, Bytes::from(t.into_bytes())),
            // Control frames are never this large; encoded as any other.
            other => return self.queue(&other),
        };
        self.writable(&self.shared.st.borrow())?;
        let header = FrameHeader::new(opcode, payload.len() as u64);
        // Exactly its size: frozen without a further allocation.
        let mut head = BytesMut::with_capacity(header.encoded_len());
        encode_header(&header, &mut head);
        let write = self.shared.stream.write_chunks([head.freeze(), payload]);
        self.check_refusal(write.into_owned())
    }

    fn hand_to_stream(&self, frames: Bytes) -> Result<Flushed, SendError> {
        self.check_refusal(self.shared.stream.write(frames).into_owned())
    }

    /// A write the stream refused at once: for want of room, the peer is
    /// cut off.
    fn check_refusal(&self, flushed: Flushed) -> Result<Flushed, SendError> {
        match flushed.refused() {
            None => {
                self.watch_writes();
                Ok(flushed)
            }
            Some(StreamError::BufferFull) => {
                self.shared.st.borrow_mut().slow_reader = true;
                tracing::debug!(
                    "websocket peer not reading: write buffer limit reached, resetting the connection"
                );
                self.shared.stream.reset();
                Err(SendError::SlowReader)
            }
            Some(_) => Err(SendError::Closed),
        }
    }
}

impl WebSocket {
    /// With bytes left in the write queue, makes sure a timer watches
    /// them: a peer that takes nothing for `write_timeout` is cut off
    /// (nginx's `send_timeout`), so a handler awaiting a write to it does
    /// not wait forever. One timer per connection at most, and only while
    /// something is queued.
    fn watch_writes(&self) {
        if self.shared.stream.write_buffered() == 0 {
            return;
        }
        {
            let mut st = self.shared.st.borrow_mut();
            if st.write_watch {
                return;
            }
            st.write_watch = true;
        }
        arm_write_watch(
            Rc::downgrade(&self.shared),
            self.shared.stream.bytes_written(),
        );
    }
}

/// Checks, `write_timeout` from now, that the stream has written past
/// `mark` or has nothing left; else resets it. Holds no strong reference.
fn arm_write_watch(weak: std::rc::Weak<Shared>, mark: u64) {
    let Some(shared) = weak.upgrade() else {
        return;
    };
    let timeout = shared.write_timeout();
    shared.stream.io_loop().call_later(timeout, move || {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let stream = &shared.stream;
        if stream.is_closed() || stream.write_buffered() == 0 {
            shared.st.borrow_mut().write_watch = false;
            return;
        }
        let written = stream.bytes_written();
        if written > mark {
            drop(shared);
            return arm_write_watch(weak, written);
        }
        tracing::debug!("websocket peer took nothing for {timeout:?}: resetting the connection");
        shared.st.borrow_mut().write_watch = false;
        stream.reset();
    });
}

/// The bytes `message` takes as one uncompressed frame. Allocated exactly,
/// the encoded buffer becomes `Bytes` without another allocation (a
/// buffer with spare room needs a shared header to be frozen).
fn frame_len(message: &Message, role: Role) -> usize {
    let payload = match message {
        Message::Close(Some(frame)) => 2 + frame.reason.len().min(MAX_CLOSE_REASON),
        other => other.payload().len(),
    };
    let extended = match payload {
        0..=125 => 0,
        126..=0xffff => 2,
        _ => 8,
    };
    let mask = if role == Role::Client { 4 } else { 0 };
    2 + extended + mask + payload
}

/// A client masks every frame with a fresh key; a server never masks.
fn key_for(role: Role) -> Option<[u8; 4]> {
    match role {
        Role::Client => Some(mask_key()),
        Role::Server => None,
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The future of a write: resolves once the message is in the kernel's
/// hands. The message was queued when the write was called; dropping
/// this does not take it back.
#[must_use = "the message is sent either way; await it for flow control or to learn of failure"]
pub struct Flush(Result<Flushed, SendError>);

impl std::future::Future for Flush {
    type Output = Result<(), SendError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.0 {
            Err(e) => std::task::Poll::Ready(Err(e.clone())),
            Ok(f) => std::pin::Pin::new(f)
                .poll(cx)
                .map(|r| r.map_err(send_error)),
        }
    }
}

impl Flush {
    /// A write that failed at once (closed, invalid, or cut off), without
    /// awaiting it: `None` if it is queued.
    pub fn error(&self) -> Option<&SendError> {
        self.0.as_ref().err()
    }
}

fn send_error(e: StreamError) -> SendError {
    match e {
        StreamError::BufferFull => SendError::SlowReader,
        _ => SendError::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn a_long_close_reason_is_cut_at_a_character_boundary() {
        let reason = "é".repeat(100); // 200 bytes, 2 per character
        let cut = truncate(&reason, 123);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
