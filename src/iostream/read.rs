//! Reads: from the buffer first, then the fd, and only then wait.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use regex::bytes::Regex;

use super::{IOStream, Inner, Kind, State, StreamError};
use crate::sys::syscall;

thread_local! {
    /// Every stream on this thread reads through this buffer and keeps only
    /// the bytes that arrived, so idle streams hold no read buffer.
    pub(super) static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// A stream with an empty buffer reads into this shared block and keeps
    /// a view of the bytes it got (see `read_into_arena`).
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// The arena's size. Bytes handed out keep their whole arena alive (a
/// request a handler keeps, a body it stores), so it is small: what one
/// kept request pins is at most this, about what a head of its own would
/// cost with the allocator's rounding; a 40-byte request still uses 1/100
/// of it, so the allocation is amortised.
const ARENA_SIZE: usize = 4 << 10;

/// With less room left than this, a fresh arena is started: a typical
/// request head fits, so the arena is rarely a reason for a second read.
const ARENA_MIN_SPARE: usize = 1 << 10;

/// Below this much spare room the read goes through the scratch buffer
/// (and is copied); above it, straight into the stream's buffer (large
/// transfers then copy nothing extra).
const DIRECT_READ_MIN: usize = 16 << 10;

pub(super) enum Target {
    /// `keep_open`: a delimiter past `max` fails the read but leaves the
    /// stream open (so a protocol can answer "too large" before closing).
    Until {
        delim: Delimiter,
        max: Option<usize>,
        keep_open: bool,
    },
    Regex {
        re: Regex,
        max: Option<usize>,
    },
    Bytes {
        n: usize,
        partial: bool,
    },
    UntilClose,
    /// Some data is buffered (nothing is consumed).
    Data,
    /// The record layer's handshake is done (nothing is consumed).
    Handshake,
}

/// A read's delimiter, owned by the read. Protocol delimiters are short
/// (`\r\n\r\n`, `\n`) and are kept inline: a read costs no allocation.
pub(super) enum Delimiter {
    Inline {
        bytes: [u8; Delimiter::INLINE],
        len: u8,
    },
    Heap(Box<[u8]>),
}

impl Delimiter {
    /// Longer delimiters than this are rare (multipart boundaries) and
    /// go to the heap.
    const INLINE: usize = 16;

    fn new(d: &[u8]) -> Delimiter {
        if d.len() <= Self::INLINE {
            let mut bytes = [0; Self::INLINE];
            bytes[..d.len()].copy_from_slice(d);
            Delimiter::Inline {
                bytes,
                len: d.len() as u8,
            }
        } else {
            Delimiter::Heap(d.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Delimiter::Inline { bytes, len } => &bytes[..*len as usize],
            Delimiter::Heap(b) => b,
        }
    }
}

/// What the buffer can do for a target right now.
enum Found {
    /// Take this many bytes.
    Take(usize),
    NotYet,
    Fail(StreamError),
}

fn check_max(end: usize, max: Option<usize>) -> Found {
    match max {
        Some(m) if end > m => Found::Fail(StreamError::Unsatisfiable { max_bytes: m }),
        _ => Found::Take(end),
    }
}

fn find(st: &mut State, target: &Target) -> Found {
    let buf = &st.rbuf[..];
    match target {
        Target::Until { delim, max, .. } => {
            let from = st.scanned;
            let delim = delim.as_slice();
            if let Some(pos) = memchr_find(&buf[from..], delim) {
                st.scanned = 0;
                return check_max(from + pos + delim.len(), *max);
            }
            // Next time, resume where a delimiter could still start.
            st.scanned = buf.len().saturating_sub(delim.len().saturating_sub(1));
            match max {
                Some(m) if buf.len() >= *m => {
                    Found::Fail(StreamError::Unsatisfiable { max_bytes: *m })
                }
                _ => Found::NotYet,
            }
        }
        Target::Regex { re, max } => match re.find(buf) {
            Some(m) => check_max(m.end(), *max),
            None => match max {
                Some(m) if buf.len() >= *m => {
                    Found::Fail(StreamError::Unsatisfiable { max_bytes: *m })
                }
                _ => Found::NotYet,
            },
        },
        Target::Bytes { n, partial } => {
            if buf.len() >= *n {
                Found::Take(*n)
            } else if *partial && !buf.is_empty() {
                Found::Take(buf.len())
            } else {
                Found::NotYet
            }
        }
        Target::Data => {
            if buf.is_empty() {
                Found::NotYet
            } else {
                Found::Take(0)
            }
        }
        Target::Handshake => match &st.tls {
            Some(layer) if layer.transport.is_handshaking() => Found::NotYet,
            _ => Found::Take(0),
        },
        Target::UntilClose => {
            // A peer that resets (e.g. closes with our data unread) has
            // still closed: deliver what it sent, as for EOF. `error()`
            // keeps the reset. Not a close that skipped TLS's close_notify:
            // an attacker can cut a stream there, so "all of it" is
            // unknown.
            let normal = match &st.tls {
                // Over a record layer only a clean close ends the data:
                // an EOF without close_notify, or a reset, may be an
                // attacker's cut.
                Some(_) => st.error.is_none(),
                None => st.error.as_ref().is_none_or(StreamError::is_disconnect),
            };
            if st.closed && normal {
                Found::Take(buf.len())
            } else {
                Found::NotYet
            }
        }
    }
}

/// The first `n` bytes of `buf`, frozen. Taking all of it moves the
/// buffer out whole: `split_to` would first promote it to a shared
/// allocation (one more malloc/free and atomic reference counts per read),
/// and a read that takes everything is the common case.
fn take_front(buf: &mut bytes::BytesMut, n: usize) -> Bytes {
    if n == buf.len() {
        std::mem::take(buf).freeze()
    } else {
        buf.split_to(n).freeze()
    }
}

/// Where `needle` first occurs in `hay`: one byte with memchr, more with
/// a per-thread cached memmem searcher.
pub(crate) fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [] => Some(0),
        [b] => memchr::memchr(*b, hay),
        _ => FINDER.with(|cached| {
            let mut cached = cached.borrow_mut();
            if cached.needle() == needle {
                return cached.find(hay);
            }
            // Another delimiter: short ones are found first-byte-then-
            // compare (no searcher to build), long ones get the cache.
            if let [first, ..] = needle
                && needle.len() <= SHORT_NEEDLE
            {
                return memchr::memchr_iter(*first, hay).find(|&i| hay[i..].starts_with(needle));
            }
            *cached = memchr::memmem::Finder::new(needle).into_owned();
            cached.find(hay)
        }),
    }
}

/// Delimiters up to this long that are not the cached one are searched
/// first-byte-then-compare.
const SHORT_NEEDLE: usize = 8;

thread_local! {
    /// The searcher for the HTTP head's delimiter (or the last long one): building one costs
    /// more than a search through a short buffer, and a protocol asks for
    /// the same delimiter (`\r\n\r\n`) over and over.
    static FINDER: RefCell<memchr::memmem::Finder<'static>> =
        RefCell::new(memchr::memmem::Finder::new(b"\r\n\r\n").into_owned());
}

/// One read into `buf`'s spare room (at most `want` bytes), which then
/// holds the bytes read. Returns (read, asked for). Sockets are read with
/// `recv`, which goes straight to the socket layer; `read` would first
/// pass through the generic file path, a measurable cost when a read
/// carries one small message.
fn read_spare(
    fd: std::os::fd::RawFd,
    kind: Kind,
    buf: &mut BytesMut,
    want: usize,
) -> std::io::Result<(usize, usize)> {
    let spare = buf.spare_capacity_mut();
    let len = want.min(spare.len());
    let n = match kind {
        // SAFETY: reads at most `len` bytes into the buffer's spare
        // capacity, which is valid for writes of that length.
        Kind::Socket => syscall!(recv(fd, spare.as_mut_ptr().cast(), len, 0))? as usize,
        // SAFETY: as above.
        Kind::Pipe => syscall!(read(fd, spare.as_mut_ptr().cast(), len))? as usize,
    };
    crate::stats::bytes_received(n as u64);
    let filled = buf.len() + n;
    // SAFETY: the kernel initialised the first `n` spare bytes.
    unsafe { buf.set_len(filled) };
    Ok((n, len))
}

impl Inner {
    /// One read system call into the buffer. Returns false if the stream
    /// closed (EOF, error, or a full buffer).
    pub(super) fn read_once(&self) -> bool {
        let (want, direct) = {
            let st = self.st.borrow();
            if st.closed {
                return false;
            }
            if st.tls.is_some() {
                drop(st);
                return self.read_once_records();
            }
            let room = st.max_buffer_size.saturating_sub(st.rbuf.len());
            let spare = st.rbuf.capacity() - st.rbuf.len();
            (st.read_chunk_size.min(room), spare >= DIRECT_READ_MIN)
        };
        if want == 0 {
            self.close(Some(StreamError::BufferFull));
            return false;
        }
        let mut asked = want;
        let empty = self.st.borrow().rbuf.is_empty();
        let result = if direct {
            self.read_direct(want).map(|(n, len)| {
                asked = len;
                n
            })
        } else if empty {
            self.read_into_arena(want).map(|(n, len)| {
                asked = len;
                n
            })
        } else {
            SCRATCH.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < want {
                    s.resize(want, 0);
                }
                let n = self.sys_read(&mut s[..want])?;
                let mut st = self.st.borrow_mut();
                let len = st.rbuf.len();
                if len > 0 && len == st.rbuf.capacity() {
                    // A full buffer is regrown here, with room to double:
                    // grown in place, a view of the read arena would
                    // inherit the arena's whole size (`bytes` keeps the
                    // original capacity), for every connection whose head
                    // arrives in pieces.
                    let mut grown = BytesMut::with_capacity((len + n).max(2 * len));
                    grown.extend_from_slice(&st.rbuf);
                    st.rbuf = grown;
                }
                st.rbuf.extend_from_slice(&s[..n]);
                Ok(n)
            })
        };
        let mut st = self.st.borrow_mut();
        match result {
            Ok(0) => {
                drop(st);
                self.close(None); // EOF: the peer closed
                false
            }
            Ok(n) => {
                // A short read drained the fd: wait for the poller rather
                // than read again just to see EAGAIN.
                // (Unless the peer has shut down: the EOF after this data
                // makes no new edge, so it must be read now.)
                st.may_read = n == asked || st.peer_closed;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                st.may_read = false;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
            Err(e) => {
                drop(st);
                self.close(Some(e.into()));
                false
            }
        }
    }

    /// Reads into the thread's arena and makes the bytes read the stream's
    /// buffer, a view of the arena: no copy, and no allocation until the
    /// arena is used up (a 40-byte request costs 1/800 of one). Returns
    /// (read, asked for).
    fn read_into_arena(&self, want: usize) -> std::io::Result<(usize, usize)> {
        ARENA.with(|arena| {
            let mut arena = arena.borrow_mut();
            if arena.capacity() - arena.len() < ARENA_MIN_SPARE {
                // Views of the old arena (bytes still buffered or handed
                // out) keep it alive; the last one to go frees it.
                *arena = BytesMut::with_capacity(ARENA_SIZE);
            }
            let read = read_spare(self.fd, self.kind, &mut arena, want)?;
            if read.0 > 0 {
                // (At EOF nothing is kept: an empty view would still pin
                // the arena.)
                self.st.borrow_mut().rbuf = arena.split();
            }
            Ok(read)
        })
    }

    /// Reads into the buffer's spare room; returns (read, asked for).
    fn read_direct(&self, want: usize) -> std::io::Result<(usize, usize)> {
        read_spare(self.fd, self.kind, &mut self.st.borrow_mut().rbuf, want)
    }

    pub(super) fn sys_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.kind {
            // SAFETY: `buf` is valid for writes of its length.
            Kind::Socket => syscall!(recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), 0))?,
            // SAFETY: as above.
            Kind::Pipe => syscall!(read(self.fd, buf.as_mut_ptr().cast(), buf.len()))?,
        };
        crate::stats::bytes_received(n as u64);
        Ok(n as usize)
    }

    /// Drives a read: buffer, then fd, then wait. `Ok(n)`: take n bytes.
    pub(super) fn poll_target(
        &self,
        cx: &mut Context<'_>,
        target: &Target,
    ) -> Poll<Result<usize, StreamError>> {
        loop {
            let (found, closed, may_read) = {
                let mut st = self.st.borrow_mut();
                let found = find(&mut st, target);
                (found, st.closed, st.may_read)
            };
            match found {
                Found::Take(n) => return Poll::Ready(Ok(n)),
                Found::Fail(e) => {
                    if !matches!(
                        target,
                        Target::Until {
                            keep_open: true,
                            ..
                        }
                    ) {
                        self.close(Some(e.clone()));
                    }
                    return Poll::Ready(Err(e));
                }
                Found::NotYet => {}
            }
            if closed {
                return Poll::Ready(Err(self.closed_error()));
            }
            if may_read {
                // A full buffer fails this read with BufferFull itself (as
                // documented on `set_max_buffer_size`, and as Unsatisfiable
                // does), not with the `Closed` that later reads get.
                if !self.read_once()
                    && matches!(self.st.borrow().error, Some(StreamError::BufferFull))
                {
                    return Poll::Ready(Err(StreamError::BufferFull));
                }
                continue;
            }
            {
                let mut st = self.st.borrow_mut();
                match &st.read_waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => st.read_waker = Some(cx.waker().clone()),
                }
                st.read_waiting = true;
            }
            self.update_interest();
            return Poll::Pending;
        }
    }

    pub(super) fn finish_read(&self) {
        let mut st = self.st.borrow_mut();
        st.reading = false;
        st.read_waiting = false;
        st.scanned = 0;
        // `split_to` leaves the emptied buffer sharing (and so keeping
        // alive) the allocation of the bytes just handed out: let it go, so
        // an idle stream holds no read buffer.
        if st.rbuf.is_empty() {
            st.rbuf = BytesMut::new();
        }
    }
}

/// The future of a read that yields [`Bytes`]: `read_until`,
/// `read_until_regex`, `read_bytes`, `read_until_close`.
#[must_use = "futures do nothing unless awaited"]
pub struct Read<'a> {
    stream: &'a IOStream,
    target: Target,
    /// Set if the read was refused when created (another one pending).
    refused: bool,
    done: bool,
}

impl Future for Read<'_> {
    type Output = Result<Bytes, StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.refused {
            return Poll::Ready(Err(StreamError::ReadPending));
        }
        let inner = &self.stream.inner;
        match inner.poll_target(cx, &self.target) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                let out = r.map(|n| take_front(&mut inner.st.borrow_mut().rbuf, n));
                inner.finish_read();
                self.done = true;
                inner.update_interest();
                Poll::Ready(out)
            }
        }
    }
}

impl Drop for Read<'_> {
    fn drop(&mut self) {
        if !self.refused && !self.done {
            self.stream.inner.finish_read();
            self.stream.inner.update_interest();
        }
    }
}

/// The future returned by [`IOStream::read_into`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReadInto<'a, 'b> {
    stream: &'a IOStream,
    buf: &'b mut [u8],
    partial: bool,
    refused: bool,
    done: bool,
}

impl Future for ReadInto<'_, '_> {
    type Output = Result<usize, StreamError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.refused {
            return Poll::Ready(Err(StreamError::ReadPending));
        }
        let this = &mut *self;
        let inner = &this.stream.inner;
        let target = Target::Bytes {
            n: this.buf.len(),
            partial: this.partial,
        };
        match inner.poll_target(cx, &target) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                let out = r.inspect(|&n| {
                    let chunk = inner.st.borrow_mut().rbuf.split_to(n);
                    this.buf[..n].copy_from_slice(&chunk);
                });
                inner.finish_read();
                this.done = true;
                inner.update_interest();
                Poll::Ready(out)
            }
        }
    }
}

impl Drop for ReadInto<'_, '_> {
    fn drop(&mut self) {
        if !self.refused && !self.done {
            self.stream.inner.finish_read();
            self.stream.inner.update_interest();
        }
    }
}

impl IOStream {
    pub(super) fn begin_read(&self) -> bool {
        let mut st = self.inner.st.borrow_mut();
        if st.reading {
            return false;
        }
        st.reading = true;
        st.scanned = 0;
        true
    }

    fn read(&self, target: Target) -> Read<'_> {
        let refused = !self.begin_read();
        Read {
            stream: self,
            target,
            refused,
            done: false,
        }
    }

    /// Reads up to and including `delimiter`. With `max_bytes`, a delimiter
    /// that does not end within that many bytes closes the stream with
    /// [`StreamError::Unsatisfiable`] (even if it arrived in the same
    /// packet). Each byte is scanned about once, however it trickles in.
    pub fn read_until(&self, delimiter: &[u8], max_bytes: Option<usize>) -> Read<'_> {
        self.read(Target::Until {
            delim: Delimiter::new(delimiter),
            max: max_bytes,
            keep_open: false,
        })
    }

    /// [`IOStream::try_read_until`] served from the buffer alone, at once:
    /// `None` if the delimiter has not arrived yet (nothing is consumed and
    /// the fd is not touched). For a protocol's fast path: a pipelined
    /// request already buffered costs no future and no system call.
    pub fn try_read_until_buffered(
        &self,
        delimiter: &[u8],
        max_bytes: usize,
    ) -> Option<Result<Bytes, StreamError>> {
        let mut st = self.inner.st.borrow_mut();
        if st.reading {
            return Some(Err(StreamError::ReadPending));
        }
        let target = Target::Until {
            delim: Delimiter::new(delimiter),
            max: Some(max_bytes),
            keep_open: true,
        };
        let found = find(&mut st, &target);
        st.scanned = 0; // a later read starts its own scan
        match found {
            Found::Take(n) => {
                let bytes = take_front(&mut st.rbuf, n);
                if st.rbuf.is_empty() {
                    st.rbuf = BytesMut::new(); // as `finish_read`: hold nothing
                }
                Some(Ok(bytes))
            }
            Found::Fail(e) => Some(Err(e)),
            Found::NotYet => None,
        }
    }

    /// Like [`IOStream::read_until`], but a delimiter that does not end
    /// within `max_bytes` fails this read with
    /// [`StreamError::Unsatisfiable`] and leaves the stream open, so the
    /// caller can still answer (an HTTP server's 431) before closing it.
    pub fn try_read_until(&self, delimiter: &[u8], max_bytes: usize) -> Read<'_> {
        self.read(Target::Until {
            delim: Delimiter::new(delimiter),
            max: Some(max_bytes),
            keep_open: true,
        })
    }

    /// Reads up to and including the first match of `regex`; `max_bytes`
    /// as for [`IOStream::read_until`].
    pub fn read_until_regex(&self, regex: &Regex, max_bytes: Option<usize>) -> Read<'_> {
        self.read(Target::Regex {
            re: regex.clone(),
            max: max_bytes,
        })
    }

    /// Reads exactly `n` bytes, or with `partial`, at least one and at most
    /// `n` (whatever is available first).
    pub fn read_bytes(&self, n: usize, partial: bool) -> Read<'_> {
        self.read(Target::Bytes { n, partial })
    }

    /// Fills `buf` (or with `partial`, at least one byte of it) and returns
    /// how many bytes were read.
    pub fn read_into<'a, 'b>(&'a self, buf: &'b mut [u8], partial: bool) -> ReadInto<'a, 'b> {
        let refused = !self.begin_read();
        ReadInto {
            stream: self,
            buf,
            partial,
            refused,
            done: false,
        }
    }

    /// Completes (with empty `Bytes`, consuming nothing) once some data is
    /// buffered: for "wait for the next request" phases with their own
    /// timeout.
    pub fn wait_for_data(&self) -> Read<'_> {
        self.read(Target::Data)
    }

    /// Reads everything until the peer closes (bounded by
    /// `max_buffer_size`).
    pub fn read_until_close(&self) -> Read<'_> {
        self.read(Target::UntilClose)
    }
}
