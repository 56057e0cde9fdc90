//! A record layer between a stream and its fd: TLS (see `crate::tls`),
//! or anything that turns the bytes a program writes into records on the
//! wire and back.
//!
//! With a [`Transport`] installed, what arrives from the fd is ciphertext:
//! it is read into the stream's buffer of records (`cipher_in`, empty
//! between records, so an idle stream still holds nothing) and opened into
//! the read buffer, from which `read_until`, `read_bytes` and the rest
//! read exactly as over plain TCP. What is written is sealed into records
//! first and then queued, sent and counted like any write (the counts are
//! of bytes on the wire), so flow control, `max_write_buffer_size` and the
//! io_uring sends submitted by the loop carry records unchanged. Records
//! the layer sends on its own (handshake messages, alerts, session
//! tickets) take the same path, in order.
//!
//! The stream layer does not know TLS: the trait is its side of the
//! boundary, and `crate::tls` implements it (an arrow down, never up).

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use super::read::{SCRATCH, Target};
use super::{IOStream, Inner, StreamError};

/// Why a record layer refused the peer's data or could not go on. For
/// TLS, a `cyclone::tls::TlsError`.
pub type TransportError = Arc<dyn std::error::Error + Send + Sync>;

/// A record layer on a stream (TLS): with one installed, what arrives is
/// opened into the read buffer and what is written is sealed first; see
/// [`IOStream::start_transport`].
pub trait Transport {
    /// Opens the records at the front of `incoming`, removing the bytes it
    /// used (a partial record stays for the next read): application data
    /// is appended to `plain`, and records to send in reply (handshake
    /// messages, alerts) to `send`, in order. On error the records in
    /// `send` (an alert) are still sent before the stream closes.
    fn receive(
        &mut self,
        incoming: &mut BytesMut,
        plain: &mut BytesMut,
        send: &mut Vec<Bytes>,
    ) -> Result<(), TransportError>;

    /// Appends `data`, sealed into records, to `out` (after any record the
    /// layer has waiting to go first). Fails while the handshake runs.
    /// `incoming` is what [`receive`](Self::receive) left (the front of a
    /// record), which a layer may need to see again.
    fn seal(
        &mut self,
        incoming: &mut BytesMut,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), TransportError>;

    /// What this side sends first, if it speaks first (a TLS client's
    /// hello), appended to `send`.
    fn start(&mut self, send: &mut Vec<Bytes>) -> Result<(), TransportError>;

    /// The record that closes the layer cleanly (TLS `close_notify`), once
    /// its handshake is done; `incoming` as for [`seal`](Self::seal).
    fn close_notify(&mut self, incoming: &mut BytesMut) -> Option<Bytes>;

    /// Whether the handshake is still running.
    fn is_handshaking(&self) -> bool;

    /// Whether the peer closed the layer cleanly (its `close_notify`
    /// arrived): an EOF after it is a normal close, one without it
    /// [`StreamError::Truncated`].
    fn peer_closed(&self) -> bool;

    /// The layer itself, for its owner to ask what it negotiated.
    fn as_any(&self) -> &dyn Any;
}

/// A stream's record layer and its records not yet complete.
pub(super) struct Layer {
    pub(super) transport: Box<dyn Transport>,
    /// The front of a record that has not fully arrived.
    pub(super) cipher_in: BytesMut,
    /// Our close_notify went out (it is said once).
    pub(super) notified: bool,
}

/// The most a peer may have sent that the layer has not opened yet,
/// whatever `max_buffer_size` allows: a handshake message may span
/// records up to 64 KiB (rustls' own bound), plus one whole record (16 KiB
/// and its overhead). More is a peer that sends what is never read.
const MAX_UNOPENED: usize = (64 + 17) * 1024;

impl Inner {
    /// One read system call of records, opened into the read buffer.
    /// Returns false if the stream closed (EOF, error, a full buffer).
    pub(super) fn read_once_records(&self) -> bool {
        let want = {
            let st = self.st.borrow();
            if st.closed {
                return false;
            }
            let pending = st.tls.as_ref().map_or(0, |l| l.cipher_in.len());
            let room = st
                .max_buffer_size
                .saturating_sub(st.rbuf.len() + pending)
                .min(MAX_UNOPENED.saturating_sub(pending));
            st.read_chunk_size.min(room)
        };
        if want == 0 {
            self.close(Some(StreamError::BufferFull));
            return false;
        }
        // Through the same per-thread buffer as plain reads: the stream
        // keeps only what a record still lacks.
        let result = SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < want {
                s.resize(want, 0);
            }
            let n = self.sys_read(&mut s[..want])?;
            if let Some(layer) = self.st.borrow_mut().tls.as_mut() {
                layer.cipher_in.extend_from_slice(&s[..n]);
            }
            Ok::<usize, std::io::Error>(n)
        });
        match result {
            Ok(0) => {
                // EOF: clean only after the peer's close_notify; before
                // the handshake ended, nothing was sent to lose.
                let (clean, handshaking) =
                    self.st.borrow().tls.as_ref().map_or((false, false), |l| {
                        (l.transport.peer_closed(), l.transport.is_handshaking())
                    });
                let error = match (clean, handshaking) {
                    (true, _) => None,
                    (false, true) => Some(StreamError::ClosedInHandshake),
                    (false, false) => Some(StreamError::Truncated),
                };
                self.close(error);
                false
            }
            Ok(n) => {
                {
                    let mut st = self.st.borrow_mut();
                    st.may_read = n == want || st.peer_closed;
                }
                self.open_records()
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.st.borrow_mut().may_read = false;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(e) => {
                self.close(Some(e.into()));
                false
            }
        }
    }

    /// Opens what `cipher_in` holds and sends the layer's replies. False
    /// if that failed (the stream is closed).
    fn open_records(&self) -> bool {
        let mut send = Vec::new();
        let result = {
            let mut st = self.st.borrow_mut();
            let st = &mut *st;
            let Some(layer) = st.tls.as_mut() else {
                return true;
            };
            let result = layer
                .transport
                .receive(&mut layer.cipher_in, &mut st.rbuf, &mut send);
            if layer.cipher_in.is_empty() {
                // Hold nothing between records (idle connections are many).
                layer.cipher_in = BytesMut::new();
            }
            result
        };
        for record in send {
            // The layer's own records are small and must go whatever the
            // write limit, or the session breaks.
            if self.queue(record, false).is_err() {
                break;
            }
        }
        match result {
            Ok(())
                if self
                    .st
                    .borrow()
                    .tls
                    .iter()
                    .any(|l| l.transport.peer_closed()) =>
            {
                // The peer's close_notify: nothing more will come (what
                // follows it is ignored, RFC 8446 §6.1), which is an EOF,
                // a clean one. Ours answers it as the stream closes.
                self.close(None);
                false
            }
            Ok(()) => true,
            Err(e) => {
                self.close(Some(StreamError::Transport(e)));
                false
            }
        }
    }

    /// `data` as it goes on the wire: sealed into records when the stream
    /// has a record layer, as it is otherwise.
    pub(super) fn seal(&self, data: Bytes) -> Result<Bytes, StreamError> {
        let mut st = self.st.borrow_mut();
        let Some(layer) = st.tls.as_mut() else {
            return Ok(data);
        };
        if data.is_empty() {
            return Ok(data);
        }
        let mut out = BytesMut::new();
        let Layer {
            transport,
            cipher_in,
            ..
        } = &mut **layer;
        match transport.seal(cipher_in, &data, &mut out) {
            Ok(()) => Ok(out.freeze()),
            Err(e) => Err(StreamError::Transport(e)),
        }
    }

    /// Sends the layer's close_notify if the stream can still say it in
    /// order: its handshake done, nothing queued or in flight (after data
    /// that never left, a clean close would hide the loss). One attempt,
    /// never waited for.
    pub(super) fn send_close_notify(&self) {
        let record = {
            let mut st = self.st.borrow_mut();
            let quiet = !st.closed && st.wq.is_empty() && st.in_flight == 0;
            match st.tls.as_deref_mut() {
                Some(Layer {
                    transport,
                    cipher_in,
                    notified,
                }) if quiet && !*notified && !transport.is_handshaking() => {
                    *notified = true;
                    transport.close_notify(cipher_in)
                }
                _ => None,
            }
        };
        if let Some(record) = record
            && self.owned.borrow().is_some()
        {
            // Best effort: the stream closes next whatever happens.
            let _ = self.send_now(&record);
        }
    }
}

impl IOStream {
    /// Installs `transport` as the stream's record layer and runs its
    /// handshake: the returned future completes when the handshake is done
    /// (and fails if the stream closes first; bound it with
    /// [`crate::ioloop::timeout`]). Bytes already buffered and not read
    /// are the peer's first records. For protocols that start in plain text
    /// and switch (STARTTLS), call it with no read pending; `crate::tls`
    /// builds TLS transports.
    pub fn start_transport(&self, transport: Box<dyn Transport>) -> Handshake<'_> {
        if self.inner.st.borrow().tls.is_some() {
            return Handshake {
                stream: self,
                refused: Some(StreamError::Transport(std::sync::Arc::new(
                    std::io::Error::other("the stream already has a record layer"),
                ))),
                done: false,
            };
        }
        if !self.begin_read() {
            // Nothing is touched: the pending read keeps its bytes.
            return Handshake {
                stream: self,
                refused: Some(StreamError::ReadPending),
                done: false,
            };
        }
        let mut send = Vec::new();
        let started = {
            let mut st = self.inner.st.borrow_mut();
            let buffered = std::mem::take(&mut st.rbuf);
            let mut layer = Layer {
                transport,
                cipher_in: buffered,
                notified: false,
            };
            let started = layer.transport.start(&mut send);
            st.tls = Some(Box::new(layer));
            started
        };
        for record in send {
            let _ = self.inner.queue(record, false);
        }
        if let Err(e) = started {
            self.inner.close(Some(StreamError::Transport(e)));
        } else if !self
            .inner
            .st
            .borrow()
            .tls
            .iter()
            .all(|l| l.cipher_in.is_empty())
        {
            self.inner.open_records();
        }
        Handshake {
            stream: self,
            refused: None,
            done: false,
        }
    }

    /// Whether the stream has a record layer (TLS).
    pub fn is_tls(&self) -> bool {
        self.inner.st.borrow().tls.is_some()
    }

    /// Calls `f` with the stream's record layer, if it has one: for its
    /// owner to ask what was negotiated (see `crate::tls::TlsInfo`). `f`
    /// must not use the stream (it is borrowed meanwhile).
    pub fn with_transport<R>(&self, f: impl FnOnce(&dyn Transport) -> R) -> Option<R> {
        self.inner
            .st
            .borrow()
            .tls
            .as_ref()
            .map(|l| f(l.transport.as_ref()))
    }
}

/// The future returned by [`IOStream::start_transport`]: the handshake.
#[must_use = "futures do nothing unless awaited"]
pub struct Handshake<'a> {
    stream: &'a IOStream,
    /// Why it was refused when made (nothing was touched then).
    refused: Option<StreamError>,
    done: bool,
}

impl Future for Handshake<'_> {
    type Output = Result<(), StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(e) = &self.refused {
            return Poll::Ready(Err(e.clone()));
        }
        let inner = &self.stream.inner;
        match inner.poll_target(cx, &Target::Handshake) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                inner.finish_read();
                self.done = true;
                inner.update_interest();
                Poll::Ready(r.map(|_| ()))
            }
        }
    }
}

impl Drop for Handshake<'_> {
    fn drop(&mut self) {
        if self.refused.is_none() && !self.done {
            self.stream.inner.finish_read();
            self.stream.inner.update_interest();
        }
    }
}
