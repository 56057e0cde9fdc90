//! Writes: attempted at once, queued as `Bytes` when the kernel is full,
//! flushed with one gathered system call per writable event. On a loop
//! whose poller sends for us (io_uring), a write is handed to the loop
//! instead and goes out with its next wait; one batch is in flight at a
//! time, and what is written meanwhile queues for the next.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};

use super::{IOStream, Inner, Kind, StreamError};
use crate::sys::syscall;

/// Chunks gathered into one `sendmsg`/`writev`: the kernel's `UIO_MAXIOV`
/// is 1024; 64 covers any realistic queue while keeping the iovec array
/// on the stack.
const MAX_IOVECS: usize = 64;

/// The most bytes of small queued chunks copied together into one ring
/// send: a copy is cheaper than a completion per chunk (a chunked body's
/// size line, data and CRLF), and the bound keeps the copy small. A chunk
/// larger than this goes alone, uncopied.
const SEND_BATCH: usize = 64 * 1024;

impl Inner {
    /// Writes as much of the queue as the kernel takes in one call, then
    /// wakes writers whose data is out. Closes the stream on errors.
    pub(super) fn handle_write(&self) {
        let result = {
            let st = self.st.borrow();
            // A batch in flight with the poller goes first: its completion
            // sends the rest.
            if st.closed || st.wq.is_empty() || st.in_flight > 0 {
                return;
            }
            let mut iov = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; MAX_IOVECS];
            let mut count = 0;
            for (slot, chunk) in iov.iter_mut().zip(st.wq.iter()) {
                slot.iov_base = chunk.as_ptr() as *mut libc::c_void;
                slot.iov_len = chunk.len();
                count += 1;
            }
            self.sys_writev(&iov[..count])
        };
        match result {
            Ok(n) => self.advance(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.close(Some(e.into()));
                return;
            }
        }
        self.update_interest();
    }

    fn sys_writev(&self, iov: &[libc::iovec]) -> std::io::Result<usize> {
        let n = match self.kind {
            Kind::Socket => {
                // SAFETY: msghdr is plain data; zeroed is a valid empty header.
                let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
                msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
                msg.msg_iovlen = iov.len() as _;
                // SAFETY: every iovec points into a `Bytes` chunk that the
                // queue keeps alive for the duration of the call.
                syscall!(sendmsg(self.fd, &msg, libc::MSG_NOSIGNAL))?
            }
            // SAFETY: as above.
            Kind::Pipe => syscall!(writev(self.fd, iov.as_ptr(), iov.len() as libc::c_int))?,
        };
        crate::stats::bytes_sent(n as u64);
        Ok(n as usize)
    }

    /// Sends what is queued: through the loop's poller if it sends for us,
    /// else with a gathered system call.
    fn push_writes(&self) {
        if !(self.ring_sends && self.submit_queued()) {
            self.handle_write();
        }
    }

    /// Hands the queue's next batch to the loop. `false` if the loop would
    /// not take it (not running, say): the caller writes it itself.
    fn submit_queued(&self) -> bool {
        let batch = {
            let st = self.st.borrow();
            if st.closed || st.in_flight > 0 || st.wq.is_empty() {
                return true;
            }
            next_batch(&st.wq)
        };
        let len = batch.len();
        if self.hand_over(batch).is_err() {
            return false;
        }
        pop_front_bytes(&mut self.st.borrow_mut().wq, len);
        true
    }

    /// Hands `data` to the loop's poller: a send of its own, or added to
    /// our send in flight if that is not submitted yet. (Only to ours: the
    /// poller may be done with our last send before we hear of it, and a
    /// new send then would be counted with it.) The bytes are in flight
    /// once it returns `Ok`.
    fn hand_over(&self, data: Bytes) -> Result<(), Bytes> {
        let join = self.st.borrow().in_flight > 0;
        let len = data.len();
        self.lp.submit_send(self.fd, data, join)?;
        self.st.borrow_mut().in_flight += len;
        Ok(())
    }

    /// The poller's send completed: its bytes are out of the queue, and
    /// the next batch goes. Or it failed, which closes the stream.
    pub(super) fn on_sent(&self) {
        let len = std::mem::take(&mut self.st.borrow_mut().in_flight);
        if let Some(e) = self.lp.take_send_error(self.fd) {
            self.close(Some(e.into()));
            return;
        }
        crate::stats::bytes_sent(len as u64); // sent by the poller (io_uring)
        self.account_written(len);
        self.push_writes();
        self.update_interest();
    }

    /// Drops `n` written bytes from the front of the queue.
    fn advance(&self, n: usize) {
        pop_front_bytes(&mut self.st.borrow_mut().wq, n);
        self.account_written(n);
    }

    /// Counts `n` more bytes taken by the kernel, and wakes the writers.
    fn account_written(&self, n: usize) {
        let wakers = {
            let mut st = self.st.borrow_mut();
            st.written_total += n as u64;
            st.wq_bytes -= n;
            std::mem::take(&mut st.write_wakers)
        };
        wakers.wake_all();
    }
}

/// Drops `n` bytes from the front of `wq`.
fn pop_front_bytes(wq: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = wq.front_mut() else {
            break;
        };
        if front.len() <= n {
            n -= front.len();
            wq.pop_front();
        } else {
            front.advance(n);
            n = 0;
        }
    }
}

/// The tasks waiting for their writes: the usual single writer inline (no
/// allocation per wait), any others in a vector.
#[derive(Default)]
pub(super) struct WriteWakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl WriteWakers {
    fn register(&mut self, waker: &Waker) {
        let known = self
            .first
            .iter()
            .chain(&self.more)
            .any(|w| w.will_wake(waker));
        if known {
            return;
        }
        match self.first {
            None => self.first = Some(waker.clone()),
            Some(_) => self.more.push(waker.clone()),
        }
    }

    fn wake_all(self) {
        for w in self.first.into_iter().chain(self.more) {
            w.wake();
        }
    }

    /// Moves every waker into `out`.
    pub(super) fn drain_into(self, out: &mut Vec<Waker>) {
        out.extend(self.first.into_iter().chain(self.more));
    }
}

/// The next ring send's bytes: the front chunk alone when it is alone or
/// large, else the chunks that fit in [`SEND_BATCH`] copied together.
fn next_batch(wq: &VecDeque<Bytes>) -> Bytes {
    let (mut count, mut total) = (0, 0);
    for chunk in wq {
        if count > 0 && total + chunk.len() > SEND_BATCH {
            break;
        }
        total += chunk.len();
        count += 1;
    }
    if count == 1 {
        return wq[0].clone();
    }
    let mut buf = BytesMut::with_capacity(total);
    for chunk in wq.iter().take(count) {
        buf.extend_from_slice(chunk);
    }
    buf.freeze()
}

/// Why a write of `len` more bytes is refused at once, if it is: the
/// stream is closed, or it would queue past `max_write_buffer_size`.
fn refusal(st: &super::State, len: usize) -> Option<StreamError> {
    if st.closed {
        return Some(StreamError::Closed(st.error.clone().map(Box::new)));
    }
    match st.max_write_buffer_size {
        Some(max) if st.wq_bytes + len > max => Some(StreamError::BufferFull),
        _ => None,
    }
}

/// The stream's cumulative count of bytes handed to the kernel, after a
/// write ending at `until` left `rest` unsent.
fn data_len_sent(until: u64, rest: &Bytes) -> u64 {
    until - rest.len() as u64
}

impl Inner {
    /// Queues `data` as it goes on the wire and tries to send it at once;
    /// the stream's cumulative byte count that marks it written. `limit`:
    /// refused past `max_write_buffer_size` (callers that checked already,
    /// or must not be refused, pass false; a closed stream refuses).
    pub(super) fn queue(&self, mut data: Bytes, limit: bool) -> Result<u64, StreamError> {
        let mut st = self.st.borrow_mut();
        if st.closed {
            return Err(StreamError::Closed(st.error.clone().map(Box::new)));
        }
        if limit && let Some(e) = refusal(&st, data.len()) {
            return Err(e);
        }
        st.queued_total += data.len() as u64;
        let until = st.queued_total;
        if data.is_empty() {
            return Ok(until);
        }
        if st.wq.is_empty() && self.ring_sends {
            // The loop's poller takes it; the queue is not touched.
            drop(st);
            let len = data.len();
            match self.hand_over(data) {
                Ok(()) => {
                    self.st.borrow_mut().wq_bytes += len;
                    return Ok(until);
                }
                Err(back) => data = back,
            }
            st = self.st.borrow_mut();
        }
        if st.wq.is_empty() && st.in_flight == 0 {
            drop(st);
            // Nothing queued: one plain send, and the queue is only
            // touched for what the kernel did not take.
            let rest = match self.send_now(&data) {
                Ok(n) => data.slice(n..),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => data,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => data,
                Err(e) => {
                    self.close(Some(e.into()));
                    return Err(self.closed_error());
                }
            };
            let mut st = self.st.borrow_mut();
            st.written_total = data_len_sent(until, &rest);
            if !rest.is_empty() {
                st.wq_bytes += rest.len();
                st.wq.push_back(rest);
                drop(st);
                self.update_interest(); // wait for writability
            }
            return Ok(until);
        }
        // Already queued (so waiting for writability or for the batch in
        // flight): this chunk goes out with the others.
        st.wq_bytes += data.len();
        st.wq.push_back(data);
        Ok(until)
    }

    /// One `send` (sockets, no SIGPIPE) or `write` (pipes) of `data`.
    pub(super) fn send_now(&self, data: &[u8]) -> std::io::Result<usize> {
        let n = match self.kind {
            // SAFETY: `data` is valid for reads of its length.
            Kind::Socket => syscall!(send(
                self.fd,
                data.as_ptr().cast(),
                data.len(),
                libc::MSG_NOSIGNAL
            ))?,
            // SAFETY: as above.
            Kind::Pipe => syscall!(write(self.fd, data.as_ptr().cast(), data.len()))?,
        };
        crate::stats::bytes_sent(n as u64);
        Ok(n as usize)
    }
}

/// The future returned by [`IOStream::write`]: resolves once this write's
/// bytes (and everything queued before them) are handed to the kernel.
/// Dropping it does not cancel the write.
#[must_use = "the data is sent either way; await to learn when (or whether) it went out"]
pub struct Write<'a> {
    stream: &'a IOStream,
    /// The stream's cumulative byte count that marks this write as done,
    /// or the error it failed with at once.
    until: Result<u64, StreamError>,
}

impl Future for Write<'_> {
    type Output = Result<(), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_written(&self.stream.inner, &self.until, cx)
    }
}

impl Write<'_> {
    /// The same write as a future that owns a handle to the stream
    /// instead of borrowing it, for code that queues a write now and
    /// returns its completion to a caller (a WebSocket's `write_message`):
    /// the bytes are already queued, in order, whether or not it is
    /// awaited.
    pub fn into_owned(self) -> Flushed {
        Flushed {
            inner: self.stream.inner.clone(),
            until: self.until,
        }
    }
}

/// A queued write's completion, owning its stream handle: see
/// [`Write::into_owned`]. Keeps the stream's state alive (not its fd: a
/// closed stream fails it) until dropped.
#[must_use = "the data is sent either way; await to learn when (or whether) it went out"]
pub struct Flushed {
    inner: std::rc::Rc<Inner>,
    until: Result<u64, StreamError>,
}

impl Flushed {
    /// The error the write was refused with at once (a full write buffer,
    /// a closed stream), if it was: `None` for a write that was queued.
    pub fn refused(&self) -> Option<&StreamError> {
        self.until.as_ref().err()
    }
}

impl Future for Flushed {
    type Output = Result<(), StreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_written(&self.inner, &self.until, cx)
    }
}

/// Whether the stream has handed its bytes up to `until` to the kernel.
fn poll_written(
    inner: &Inner,
    until: &Result<u64, StreamError>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), StreamError>> {
    let until = match until {
        Ok(u) => *u,
        Err(e) => return Poll::Ready(Err(e.clone())),
    };
    let mut st = inner.st.borrow_mut();
    if st.written_total >= until {
        return Poll::Ready(Ok(()));
    }
    if st.closed {
        drop(st);
        return Poll::Ready(Err(inner.closed_error()));
    }
    st.write_wakers.register(cx.waker());
    Poll::Pending
}

impl IOStream {
    /// Bytes written but not yet handed to the kernel.
    pub fn write_buffered(&self) -> usize {
        self.inner.st.borrow().wq_bytes
    }

    /// Bytes handed to the kernel since the stream opened: with
    /// [`write_buffered`](Self::write_buffered), how a watchdog tells a
    /// slow peer from one that takes nothing.
    pub fn bytes_written(&self) -> u64 {
        self.inner.st.borrow().written_total
    }

    /// Queues `data` and tries to send it at once. The returned future
    /// resolves when it has been handed to the kernel; many writes may be
    /// outstanding and they resolve in order. Awaiting it is the flow
    /// control that keeps a fast writer from outrunning a slow reader.
    ///
    /// Fails with [`StreamError::BufferFull`] if it would queue more than
    /// `max_write_buffer_size`, and with [`StreamError::Closed`] on a closed
    /// stream.
    pub fn write(&self, data: impl Into<Bytes>) -> Write<'_> {
        let data = data.into();
        // Refused before sealing: a record sealed and then dropped would
        // leave a gap in TLS's sequence numbers and break the session.
        // (With a record layer the limit counts the data, not its records.)
        if let Some(e) = refusal(&self.inner.st.borrow(), data.len()) {
            return Write {
                stream: self,
                until: Err(e),
            };
        }
        let until = self
            .inner
            .seal(data)
            .and_then(|wire| self.inner.queue(wire, false));
        Write {
            stream: self,
            until,
        }
    }

    /// Queues several chunks as one write: they go out in one gathered
    /// system call when the kernel takes them (e.g. a chunked-encoding size
    /// line, the data and its CRLF). The future resolves when all of them
    /// are handed to the kernel.
    pub fn write_chunks(&self, chunks: impl IntoIterator<Item = Bytes>) -> Write<'_> {
        let inner = &self.inner;
        if self.is_tls() {
            // Sealed together: one run of records rather than one (with
            // its overhead) per chunk.
            let mut all = BytesMut::new();
            for chunk in chunks {
                all.extend_from_slice(&chunk);
            }
            return self.write(all.freeze());
        }
        let until = {
            let mut st = inner.st.borrow_mut();
            let chunks: Vec<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
            let added: usize = chunks.iter().map(Bytes::len).sum();
            if let Some(e) = refusal(&st, added) {
                return Write {
                    stream: self,
                    until: Err(e),
                };
            }
            let was_empty = st.wq.is_empty();
            st.wq.extend(chunks);
            st.wq_bytes += added;
            st.queued_total += added as u64;
            let until = st.queued_total;
            drop(st);
            if was_empty {
                inner.push_writes();
            }
            until
        };
        Write {
            stream: self,
            until: Ok(until),
        }
    }
}
