//! [`IOStream`]: a buffered, non-blocking stream over any fd (TCP and Unix
//! sockets, pipes), with async reads and writes on the loop.
//!
//! The stream's fd handler does the I/O, as in Tornado. A read into an
//! empty buffer lands in a small per-thread arena (4 KiB) and the stream
//! keeps a view of the bytes that arrived; later reads go through a
//! per-thread scratch buffer into the stream's own buffer. An idle stream
//! holds no read buffer at all. Bytes handed out (a request's head or
//! body) keep their arena alive while they live: copy what you keep for
//! long if that matters. A read that fills less than the
//! chunk is not repeated just to see `EAGAIN` (level-triggered polling says
//! when more arrives). Writes are attempted at once; what the kernel does not
//! take waits in a queue of [`Bytes`] chunks (kept without copying), flushed
//! with one gathered `sendmsg`/`writev` per writable event.
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use cyclone::{IOLoop, IOStream};
//!
//! let lp = IOLoop::new().unwrap();
//! let line = lp.run_sync(async {
//!     let (a, b) = UnixStream::pair().unwrap();
//!     let (a, b) = (IOStream::new(a).unwrap(), IOStream::new(b).unwrap());
//!     a.write(&b"hello\nworld"[..]).await.unwrap();
//!     b.read_until(b"\n", None).await.unwrap()
//! });
//! assert_eq!(&line[..], b"hello\n");
//! ```

mod error;
mod read;
mod read_with;
mod transport;
mod write;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};

use crate::ioloop::{IOLoop, Interest, Ready};

pub use error::StreamError;
pub use read::{Read, ReadInto};
pub use read_with::ReadWith;
pub use transport::{Handshake, Transport, TransportError};
pub use write::{Flushed, Write};

/// Default `max_buffer_size`: Tornado's 100 MiB.
pub const DEFAULT_MAX_BUFFER_SIZE: usize = 100 << 20;
/// Default `read_chunk_size`: 64 KiB, the most one read(2) asks for.
pub const DEFAULT_READ_CHUNK_SIZE: usize = 64 << 10;

/// How the stream talks to its fd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `recv`/`sendmsg(MSG_NOSIGNAL)`: a vanished peer is EPIPE, never SIGPIPE.
    Socket,
    /// `read`/`writev`, for pipes and other non-socket fds.
    Pipe,
}

struct State {
    rbuf: BytesMut,
    /// Bytes of `rbuf` already searched for the current `read_until`
    /// delimiter (minus its length), so each byte is scanned about once.
    scanned: usize,
    /// The fd may have data: unknown at first, set by a readiness event,
    /// cleared by a short read or `EAGAIN`.
    may_read: bool,
    /// A read future is outstanding (only one may be).
    reading: bool,
    /// The peer shut down its side (READ_CLOSED seen): keep reading past
    /// short reads until the EOF itself is read.
    peer_closed: bool,
    /// A read waits for the fd.
    read_waiting: bool,
    /// The reader's waker, kept after waking it: a reader that waits again
    /// (the usual loop) reuses it instead of cloning (atomics) each time.
    read_waker: Option<Waker>,
    wq: VecDeque<Bytes>,
    /// Unsent bytes: those in `wq` and those in flight.
    wq_bytes: usize,
    /// Bytes handed to the loop's poller in one send that has not
    /// completed yet (ring sends only; 0: none). They are out of `wq` but
    /// still counted in `wq_bytes` (unsent) until the kernel takes them.
    in_flight: usize,
    queued_total: u64,
    written_total: u64,
    write_wakers: write::WriteWakers,
    interest: Interest,
    closed: bool,
    /// Why it closed, if not normally.
    error: Option<StreamError>,
    /// Who wants to hear of the close; boxed on first use, because most
    /// streams never have anyone (and idle connections are many).
    close_listeners: Option<Box<CloseListeners>>,
    max_buffer_size: usize,
    max_write_buffer_size: Option<usize>,
    read_chunk_size: usize,
    /// The record layer (TLS), if one is installed: boxed, so a plain
    /// stream pays one pointer for it.
    tls: Option<Box<transport::Layer>>,
}

/// A stream's close callback and the tasks awaiting its close.
#[derive(Default)]
struct CloseListeners {
    callback: Option<Box<dyn FnOnce()>>,
    wakers: Vec<Waker>,
}

pub(crate) struct Inner {
    fd: RawFd,
    kind: Kind,
    /// Registered edge-triggered (epoll): READ stays on for the stream's
    /// life and readiness is remembered in `may_read`, so the kernel never
    /// re-checks a socket nobody is waiting on. Level-triggered backends
    /// drop READ lazily instead.
    edge: bool,
    /// The loop's poller sends for the stream (io_uring, sockets only):
    /// writes are handed to it, one batch in flight at a time, and go out
    /// with the loop's next wait instead of in a system call of their own.
    ring_sends: bool,
    /// `None` once closed (closing drops it).
    owned: RefCell<Option<OwnedFd>>,
    lp: IOLoop,
    st: RefCell<State>,
}

/// A buffered non-blocking stream on a loop. See the [module docs](self).
///
/// Dropping an `IOStream` closes it. Reads and writes are `&self` methods
/// returning futures; only one read may be outstanding at a time, any number
/// of writes may be, and each write resolves (in order) once its bytes are
/// handed to the kernel.
pub struct IOStream {
    inner: Rc<Inner>,
}

impl IOStream {
    /// Wraps a socket (`TcpStream`, `UnixStream`, or anything owning a
    /// socket fd) on [`IOLoop::current`].
    pub fn new<T: Into<OwnedFd>>(socket: T) -> io::Result<IOStream> {
        IOStream::with_loop(socket.into(), Kind::Socket, &IOLoop::current())
    }

    /// Wraps a socket on `lp`.
    pub fn new_on<T: Into<OwnedFd>>(socket: T, lp: &IOLoop) -> io::Result<IOStream> {
        IOStream::with_loop(socket.into(), Kind::Socket, lp)
    }

    /// Wraps one end of a pipe (or any non-socket fd) on
    /// [`IOLoop::current`]. Writing to a pipe whose reader is gone raises
    /// SIGPIPE unless the process ignores it (Rust programs do by default).
    pub fn from_pipe(fd: OwnedFd) -> io::Result<IOStream> {
        IOStream::with_loop(fd, Kind::Pipe, &IOLoop::current())
    }

    /// A connected pipe on [`IOLoop::current`]: `(reader, writer)`.
    pub fn pipe() -> io::Result<(IOStream, IOStream)> {
        let (r, w) = std::io::pipe()?;
        Ok((
            IOStream::from_pipe(OwnedFd::from(r))?,
            IOStream::from_pipe(OwnedFd::from(w))?,
        ))
    }

    fn with_loop(fd: OwnedFd, kind: Kind, lp: &IOLoop) -> io::Result<IOStream> {
        let raw = fd.as_raw_fd();
        crate::sys::set_nonblocking(raw)?;
        let caps = lp.capabilities();
        let edge = caps.edge_triggered;
        let initial = if edge {
            Interest::READ | Interest::EDGE
        } else {
            Interest::NONE
        };
        let inner = Rc::new(Inner {
            fd: raw,
            kind,
            edge,
            ring_sends: caps.sends && kind == Kind::Socket,
            owned: RefCell::new(Some(fd)),
            lp: lp.clone(),
            st: RefCell::new(State {
                rbuf: BytesMut::new(),
                scanned: 0,
                may_read: true,
                reading: false,
                peer_closed: false,
                read_waiting: false,
                read_waker: None,
                wq: VecDeque::new(),
                wq_bytes: 0,
                in_flight: 0,
                queued_total: 0,
                written_total: 0,
                write_wakers: write::WriteWakers::default(),
                interest: initial,
                closed: false,
                error: None,
                close_listeners: None,
                max_buffer_size: DEFAULT_MAX_BUFFER_SIZE,
                max_write_buffer_size: None,
                read_chunk_size: DEFAULT_READ_CHUNK_SIZE,
                tls: None,
            }),
        });
        let weak = Rc::downgrade(&inner);
        lp.add_handler(raw, initial, move |_, ready| on_ready(&weak, ready))
            .map_err(io::Error::other)?;
        Ok(IOStream { inner })
    }

    /// The fd.
    pub fn fd(&self) -> RawFd {
        self.inner.fd
    }

    /// The loop the stream lives on.
    pub fn io_loop(&self) -> &IOLoop {
        &self.inner.lp
    }

    /// Closes the stream when the read buffer would grow past `bytes`
    /// (default 100 MiB); the pending read fails with
    /// [`StreamError::BufferFull`].
    pub fn set_max_buffer_size(&self, bytes: usize) {
        self.inner.st.borrow_mut().max_buffer_size = bytes.max(1);
    }

    /// Makes a write fail with [`StreamError::BufferFull`] when it would
    /// queue more than `bytes` unsent bytes (default: unlimited). On a loop
    /// whose poller sends for the stream (io_uring), bytes handed to it
    /// count as unsent until the kernel has taken them.
    pub fn set_max_write_buffer_size(&self, bytes: Option<usize>) {
        self.inner.st.borrow_mut().max_write_buffer_size = bytes;
    }

    /// The most one read system call asks for (default 64 KiB).
    pub fn set_read_chunk_size(&self, bytes: usize) {
        self.inner.st.borrow_mut().read_chunk_size = bytes.max(1);
    }

    /// Sets `TCP_NODELAY` (sockets only).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        // After close the fd number may belong to another socket already.
        if self.inner.owned.borrow().is_none() {
            return Err(StreamError::Closed(None).into());
        }
        let v: libc::c_int = nodelay.into();
        // SAFETY: passes a live c_int of the size given.
        crate::sys::syscall!(setsockopt(
            self.inner.fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t
        ))?;
        Ok(())
    }

    /// Whether a read is outstanding.
    pub fn reading(&self) -> bool {
        self.inner.st.borrow().reading
    }

    /// Whether written data is still waiting for the kernel to take it.
    pub fn writing(&self) -> bool {
        let st = self.inner.st.borrow();
        !st.wq.is_empty() || st.in_flight > 0
    }

    /// Whether the stream is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.st.borrow().closed
    }

    /// Why the stream closed, if it closed on an error.
    pub fn error(&self) -> Option<StreamError> {
        self.inner.st.borrow().error.clone()
    }

    /// Shuts down the sending side (`shutdown(SHUT_WR)`): the peer reads
    /// EOF after the data already handed to the kernel, while this side can
    /// still read. Writes still queued fail (as after any shutdown). For
    /// sockets; a no-op error on other fds.
    pub fn shutdown_write(&self) -> io::Result<()> {
        if self.inner.owned.borrow().is_none() {
            return Err(StreamError::Closed(None).into());
        }
        if self.inner.st.borrow().in_flight > 0 {
            // Bytes handed to the loop's poller count as the kernel's, as
            // a plain send's would: have it submit them (they go into the
            // socket now if it has room), so that the EOF follows them.
            self.inner.lp.flush_poller();
        }
        // A record layer says the end first (TLS close_notify), or the
        // peer would take the FIN for a cut.
        self.inner.send_close_notify();
        crate::sys::syscall!(shutdown(self.inner.fd, libc::SHUT_WR))?;
        Ok(())
    }

    /// Whether the bytes buffered and not yet read contain `needle`.
    pub fn buffer_contains(&self, needle: &[u8]) -> bool {
        read::memchr_find(&self.inner.st.borrow().rbuf, needle).is_some()
    }

    /// Whether a stream with no read in progress has something nobody
    /// asked for: bytes buffered or waiting in the kernel, or the peer's
    /// close (EOF or reset). A pooled keep-alive connection in that state
    /// must not carry a request (RFC 9112 §9.3.1: the server may close an
    /// idle connection at any time; a TLS server says so with a
    /// `close_notify` record first). One `recv(MSG_PEEK)`, which consumes
    /// nothing. For sockets: any other fd reads as stale.
    pub fn is_stale(&self) -> bool {
        {
            let st = self.inner.st.borrow();
            if st.closed
                || !st.rbuf.is_empty()
                || st.tls.as_ref().is_some_and(|l| !l.cipher_in.is_empty())
            {
                return true;
            }
        }
        let mut byte = 0u8;
        // SAFETY: `fd` is this stream's open socket; the buffer is one
        // byte on the stack, valid for the call.
        let peeked = crate::sys::syscall!(recv(
            self.inner.fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT
        ));
        match peeked {
            Ok(_) => true,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        }
    }

    /// Bytes buffered and not yet read.
    pub fn buffered(&self) -> usize {
        self.inner.st.borrow().rbuf.len()
    }

    /// Bytes the read buffer holds allocated (0 for an idle stream).
    pub fn read_buffer_capacity(&self) -> usize {
        self.inner.st.borrow().rbuf.capacity()
    }

    /// Runs `callback` (on the loop, once) when the stream closes. While a
    /// callback is set and no read is pending, the stream watches the fd so
    /// that a peer's close is noticed.
    pub fn set_close_callback<F: FnOnce() + 'static>(&self, callback: F) {
        let (replaced, closed) = {
            let mut st = self.inner.st.borrow_mut();
            if st.closed {
                (None, Some(callback))
            } else {
                let l = st.close_listeners.get_or_insert_default();
                (l.callback.replace(Box::new(callback)), None)
            }
        };
        drop(replaced); // outside the borrow: it may own user code
        match closed {
            Some(cb) => self.inner.lp.add_callback(cb),
            None => self.inner.update_interest(),
        }
    }

    /// Completes when the stream is closed.
    pub fn closed(&self) -> Closed {
        self.watcher().closed()
    }

    /// Closes the stream: the fd is closed, pending reads that the buffer
    /// cannot satisfy fail, unsent writes fail, and the close callback runs.
    /// Closing twice does nothing.
    pub fn close(&self) {
        self.inner.close(None);
    }

    /// Closes the stream abortively: a socket is reset (RST, `SO_LINGER`
    /// of zero) instead of shut down, so the kernel drops what it still
    /// holds for the peer at once. For a peer being cut off (it stopped
    /// reading): an orderly close would keep its unsent data, and its
    /// FIN behind that data, in kernel memory until the peer reads or TCP
    /// gives up. A pipe is simply closed.
    pub fn reset(&self) {
        if self.inner.kind == Kind::Socket
            && let Some(fd) = self.inner.owned.borrow().as_ref()
        {
            // Failure leaves an orderly close, which is still a close.
            let _ = socket2::SockRef::from(fd).set_linger(Some(std::time::Duration::ZERO));
        }
        self.inner.close_with(None, false);
    }

    /// Closes the stream without telling a record layer's peer that it
    /// ended cleanly: no TLS `close_notify`, so a TLS peer sees the stream
    /// as cut off (as it is: for a response that failed midway). On a
    /// plain stream the same as [`close`](Self::close).
    pub fn abort(&self) {
        self.inner.close_with(None, false);
    }

    /// Takes the fd back out of the stream, unclosed, dropping any
    /// buffered data. Fails if the stream is already closed.
    pub fn detach(self) -> Result<OwnedFd, StreamError> {
        if self.inner.st.borrow().tls.is_some() {
            // The fd is mid-session: its bytes mean nothing without the
            // record layer's keys.
            return Err(StreamError::Transport(std::sync::Arc::new(
                io::Error::other("a stream with a record layer (TLS) cannot be detached"),
            )));
        }
        let fd = self.inner.owned.borrow_mut().take();
        self.inner.close(None); // deregisters; the fd itself is no longer ours
        fd.ok_or(StreamError::Closed(None))
    }
}

/// A non-owning handle that can close a stream (used by servers to close
/// the connections still open at a shutdown deadline).
#[derive(Clone)]
pub(crate) struct StreamCloser(Weak<Inner>);

impl StreamCloser {
    pub(crate) fn close(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.close(None);
        }
    }

    /// Closes without a TLS `close_notify` (see [`IOStream::abort`]).
    pub(crate) fn abort(&self) {
        if let Some(inner) = self.0.upgrade() {
            inner.close_with(None, false);
        }
    }
}

impl IOStream {
    pub(crate) fn closer(&self) -> StreamCloser {
        StreamCloser(Rc::downgrade(&self.inner))
    }

    /// A handle that tells whether (and when) this stream closes, without
    /// owning it: for code that must notice a peer leaving while another
    /// part of the program owns the stream (a long-polling HTTP handler).
    pub fn watcher(&self) -> StreamWatcher {
        StreamWatcher(Rc::downgrade(&self.inner))
    }
}

/// See [`IOStream::watcher`]. Cheap to clone; a dropped stream counts as
/// closed.
#[derive(Clone)]
pub struct StreamWatcher(Weak<Inner>);

impl StreamWatcher {
    /// Whether the stream is closed (or gone).
    pub fn is_closed(&self) -> bool {
        self.0.upgrade().is_none_or(|i| i.st.borrow().closed)
    }

    /// Completes when the stream closes. While waiting, the stream watches
    /// its fd for the peer's EOF even if nobody reads; dropping the future
    /// stops that.
    pub fn closed(&self) -> Closed {
        Closed {
            inner: self.0.clone(),
            waker: None,
        }
    }
}

impl std::fmt::Debug for StreamWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWatcher")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for IOStream {
    fn drop(&mut self) {
        self.inner.close(None);
    }
}

impl AsRawFd for IOStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

impl std::fmt::Debug for IOStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.inner.st.borrow();
        f.debug_struct("IOStream")
            .field("fd", &self.inner.fd)
            .field("closed", &st.closed)
            .field("buffered", &st.rbuf.len())
            .field("unsent", &st.wq_bytes)
            .finish()
    }
}

impl Inner {
    /// The interest the stream needs now. WRITE while data is queued. READ
    /// while a read waits for the fd or a close callback/`closed()` waiter
    /// wants to notice EOF, and also while it is already on: it is dropped
    /// lazily, by the handler, when the fd turns readable with nobody
    /// reading. A stream read in a loop (the usual case) so never pays an
    /// `epoll_ctl` per read.
    fn wanted_interest(&self, st: &State) -> Interest {
        if st.closed {
            return Interest::NONE;
        }
        // With a send in flight the queue waits for its completion, not
        // for writability.
        let wants_write = !st.wq.is_empty() && st.in_flight == 0;
        if self.edge {
            let write = if !wants_write {
                Interest::NONE
            } else {
                Interest::WRITE
            };
            return Interest::READ | Interest::EDGE | write;
        }
        let mut i = Interest::NONE;
        if st.interest.is_readable() || st.read_waiting || Inner::listening(st) {
            i |= Interest::READ;
        }
        if wants_write {
            i |= Interest::WRITE;
        }
        i
    }

    /// Someone wants to hear about a close while no read is pending.
    fn listening(st: &State) -> bool {
        !st.reading
            && st
                .close_listeners
                .as_ref()
                .is_some_and(|l| l.callback.is_some() || !l.wakers.is_empty())
    }

    /// Drops READ interest (the fd is readable and nobody reads).
    fn drop_read_interest(&self) {
        let want = {
            let mut st = self.st.borrow_mut();
            if st.closed || !st.interest.is_readable() {
                return;
            }
            st.interest = st.interest.remove(Interest::READ);
            st.interest
        };
        if let Err(e) = self.lp.update_handler(self.fd, want) {
            self.close(Some(io::Error::other(e).into()));
        }
    }

    fn update_interest(&self) {
        let want = {
            let mut st = self.st.borrow_mut();
            if st.closed {
                // The handler went with the close, and the fd number may
                // be another stream's by now: an update would re-register
                // (or park) that stream in the loop instead.
                return;
            }
            let want = self.wanted_interest(&st);
            if want == st.interest {
                return;
            }
            st.interest = want;
            want
        };
        if let Err(e) = self.lp.update_handler(self.fd, want) {
            self.close(Some(io::Error::other(e).into()));
        }
    }

    /// Closes the stream once. `error` is why, for abnormal closes. A
    /// normal close of a stream with a record layer says so to the peer
    /// first (TLS `close_notify`).
    fn close(&self, error: Option<StreamError>) {
        let notify = error.is_none();
        self.close_with(error, notify);
    }

    /// [`close`](Self::close), saying the end to a record layer's peer
    /// (TLS `close_notify`) only with `notify`: an abortive close must not
    /// make a cut-off stream look complete.
    fn close_with(&self, error: Option<StreamError>, notify: bool) {
        if notify {
            self.send_close_notify();
        }
        let (callback, wakers) = {
            let mut st = self.st.borrow_mut();
            if st.closed {
                return;
            }
            st.closed = true;
            st.interest = Interest::NONE; // as the loop's table will have it
            if let Some(e) = &error {
                if e.is_disconnect() {
                    tracing::debug!("fd {}: closed by peer: {e}", self.fd);
                } else {
                    tracing::warn!("fd {}: closing on error: {e}", self.fd);
                }
            }
            st.error = error;
            st.wq.clear();
            st.wq_bytes = 0;
            // A batch in flight belongs to the poller now; it frees it.
            st.in_flight = 0;
            let mut wakers: Vec<Waker> = Vec::new();
            std::mem::take(&mut st.write_wakers).drain_into(&mut wakers);
            let listeners = st.close_listeners.take().map(|b| *b).unwrap_or_default();
            wakers.extend(listeners.wakers);
            if std::mem::take(&mut st.read_waiting) {
                wakers.extend(st.read_waker.take());
            }
            (listeners.callback, wakers)
        };
        self.lp.remove_handler(self.fd);
        let fd = self.owned.borrow_mut().take();
        drop(fd); // after remove_handler: never close an fd the poller watches
        for w in wakers {
            w.wake();
        }
        if let Some(cb) = callback {
            self.lp.add_callback(cb);
        }
    }

    fn closed_error(&self) -> StreamError {
        StreamError::Closed(self.st.borrow().error.clone().map(Box::new))
    }
}

/// The stream's fd handler.
fn on_ready(weak: &Weak<Inner>, ready: Ready) {
    let Some(inner) = weak.upgrade() else {
        return;
    };
    if ready.is_sent() {
        inner.on_sent();
    }
    if ready.is_writable() || ready.is_error() || ready.is_hup() {
        inner.handle_write();
    }
    if ready.is_readable() || ready.is_error() || ready.is_hup() || ready.is_read_closed() {
        let (waker, listening) = {
            let mut st = inner.st.borrow_mut();
            st.may_read = true;
            // Pipes and errors say it with HUP/ERROR rather than RDHUP.
            st.peer_closed |= ready.is_read_closed() || ready.is_hup() || ready.is_error();
            let waiting = std::mem::take(&mut st.read_waiting);
            (
                waiting.then(|| st.read_waker.take()).flatten(),
                Inner::listening(&st),
            )
        };
        match waker {
            // The reader reads; a read here as well would only cost a
            // system call that finds nothing.
            Some(w) => {
                w.wake_by_ref();
                let mut st = inner.st.borrow_mut();
                if st.read_waker.is_none() {
                    st.read_waker = Some(w);
                }
            }
            // Nobody reads but someone waits for a close: read now, so a
            // peer's EOF (or reset) closes the stream.
            None if listening => {
                inner.read_once();
            }
            // Nobody at all: the next read finds the data. Level-triggered,
            // stop hearing about it (it would be reported on every turn);
            // edge-triggered, it is not reported again anyway.
            None if inner.edge => {}
            None => inner.drop_read_interest(),
        }
    }
}

/// The future returned by [`IOStream::closed`] and
/// [`StreamWatcher::closed`]. While it waits, the stream watches for the
/// peer's close; dropping it stops that. A stream that is gone counts as
/// closed.
#[must_use = "futures do nothing unless awaited"]
pub struct Closed {
    inner: Weak<Inner>,
    /// The waker this future registered, to take back out when dropped.
    waker: Option<Waker>,
}

impl Closed {
    /// Removes this future's own registration (a sibling future in the
    /// same task registers an equal waker of its own).
    fn unregister(&mut self, st: &mut State) {
        if let Some(old) = self.waker.take()
            && let Some(l) = st.close_listeners.as_mut()
            && let Some(i) = l.wakers.iter().position(|w| w.will_wake(&old))
        {
            l.wakers.swap_remove(i);
        }
    }
}

impl Future for Closed {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(inner) = self.inner.upgrade() else {
            return Poll::Ready(());
        };
        {
            let mut st = inner.st.borrow_mut();
            if st.closed {
                return Poll::Ready(());
            }
            self.unregister(&mut st);
            st.close_listeners
                .get_or_insert_default()
                .wakers
                .push(cx.waker().clone());
        }
        self.waker = Some(cx.waker().clone());
        inner.update_interest();
        Poll::Pending
    }
}

impl Drop for Closed {
    fn drop(&mut self) {
        if self.waker.is_none() {
            return;
        }
        if let Some(inner) = self.inner.upgrade() {
            let mut st = inner.st.borrow_mut();
            self.unregister(&mut st);
        }
    }
}
