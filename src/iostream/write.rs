//! Writes: attempted at once, queued as `Bytes` when the kernel is full,
//! flushed with one gathered system call per writable event.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};

use super::{IOStream, Inner, Kind, StreamError};
use crate::ioloop::sys::syscall;

/// Chunks gathered into one `sendmsg`/`writev`: the kernel's `UIO_MAXIOV`
/// is 1024; 64 covers any realistic queue while keeping the iovec array
/// on the stack.
const MAX_IOVECS: usize = 64;

impl Inner {
    /// Writes as much of the queue as the kernel takes in one call, then
    /// wakes writers whose data is out. Closes the stream on errors.
    pub(super) fn handle_write(&self) {
        let result = {
            let st = self.st.borrow();
            if st.closed || st.wq.is_empty() {
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
        Ok(n as usize)
    }

    /// Drops `n` written bytes from the front of the queue.
    fn advance(&self, mut n: usize) {
        let wakers = {
            let mut st = self.st.borrow_mut();
            st.written_total += n as u64;
            st.wq_bytes -= n;
            while n > 0 {
                let Some(front) = st.wq.front_mut() else {
                    break;
                };
                if front.len() <= n {
                    n -= front.len();
                    st.wq.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
            std::mem::take(&mut st.write_wakers)
        };
        for w in wakers {
            w.wake();
        }
    }
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
    /// One `send` (sockets, no SIGPIPE) or `write` (pipes) of `data`.
    fn send_now(&self, data: &[u8]) -> std::io::Result<usize> {
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
        let until = match &self.until {
            Ok(u) => *u,
            Err(e) => return Poll::Ready(Err(e.clone())),
        };
        let inner = &self.stream.inner;
        let mut st = inner.st.borrow_mut();
        if st.written_total >= until {
            return Poll::Ready(Ok(()));
        }
        if st.closed {
            drop(st);
            return Poll::Ready(Err(inner.closed_error()));
        }
        if !st.write_wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.write_wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl IOStream {
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
        let inner = &self.inner;
        let until = {
            let mut st = inner.st.borrow_mut();
            if let Some(e) = refusal(&st, data.len()) {
                return Write {
                    stream: self,
                    until: Err(e),
                };
            }
            st.queued_total += data.len() as u64;
            let until = st.queued_total;
            if data.is_empty() {
                return Write {
                    stream: self,
                    until: Ok(until),
                };
            }
            if st.wq.is_empty() {
                // Nothing queued: one plain send, and the queue is only
                // touched for what the kernel did not take.
                drop(st);
                let rest = match inner.send_now(&data) {
                    Ok(n) => data.slice(n..),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => data,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => data,
                    Err(e) => {
                        inner.close(Some(e.into()));
                        return Write {
                            stream: self,
                            until: Err(inner.closed_error()),
                        };
                    }
                };
                let mut st = inner.st.borrow_mut();
                let sent = data_len_sent(until, &rest);
                st.written_total = sent;
                if !rest.is_empty() {
                    st.wq_bytes += rest.len();
                    st.wq.push_back(rest);
                    drop(st);
                    inner.update_interest(); // wait for writability
                }
                return Write {
                    stream: self,
                    until: Ok(until),
                };
            }
            // Already queued (so waiting for writability): the handler
            // gathers this chunk with the others.
            st.wq_bytes += data.len();
            st.wq.push_back(data);
            until
        };
        Write {
            stream: self,
            until: Ok(until),
        }
    }

    /// Queues several chunks as one write: they go out in one gathered
    /// system call when the kernel takes them (e.g. a chunked-encoding size
    /// line, the data and its CRLF). The future resolves when all of them
    /// are handed to the kernel.
    pub fn write_chunks(&self, chunks: impl IntoIterator<Item = Bytes>) -> Write<'_> {
        let inner = &self.inner;
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
                inner.handle_write();
            }
            until
        };
        Write {
            stream: self,
            until: Ok(until),
        }
    }
}
