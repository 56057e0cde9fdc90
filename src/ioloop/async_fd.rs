//! [`Async<T>`]: readiness futures for a non-blocking fd, built on the same
//! handler table as callbacks.
//!
//! Interest follows the waiters, lazily: a direction is added to the
//! poller's interest when a task first waits for it and is dropped only when
//! the fd turns ready with nobody waiting. A task that waits again right
//! after each wake-up (the usual read loop) costs no `epoll_ctl` at all.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use super::interest::{Interest, Ready};
use super::{IOLoop, WeakLoop};
use crate::sys;

#[derive(Default)]
struct Direction {
    /// Readiness seen and not yet consumed by a `readable()`/`writable()`.
    ready: bool,
    /// A task is waiting for this direction.
    waiting: bool,
    /// The last waiter's waker, kept after waking it: a task that waits
    /// again (the usual loop) reuses it instead of cloning a new one.
    waker: Option<Waker>,
}

struct State {
    read: Direction,
    write: Direction,
    interest: Interest,
    /// ERROR or HUP was reported: waits complete at once, and the I/O call
    /// that follows reports what happened. Cleared when that call still
    /// says `WouldBlock` (a one-off error, e.g. ICMP on a UDP socket), so a
    /// retry loop waits for the poller instead of spinning.
    hung_up: bool,
}

/// A non-blocking fd registered with a loop, with async readiness.
///
/// `Async::new` puts the fd in non-blocking mode and registers it with
/// [`IOLoop::current`]; dropping the `Async` deregisters it (and drops `T`,
/// closing the fd if `T` owns it).
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use cyclone::{Async, IOLoop};
///
/// let lp = IOLoop::new().unwrap();
/// let n = lp.run_sync(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
///     b.write_with(|mut s| s.write(b"ping")).await.unwrap();
///     let mut buf = [0u8; 8];
///     a.read_with(|mut s| s.read(&mut buf)).await.unwrap()
/// });
/// assert_eq!(n, 4);
/// ```
pub struct Async<T: AsRawFd> {
    io: Option<T>,
    fd: RawFd,
    lp: IOLoop,
    state: Rc<RefCell<State>>,
}

impl<T: AsRawFd> Async<T> {
    /// Registers `io` with [`IOLoop::current`].
    pub fn new(io: T) -> io::Result<Async<T>> {
        Async::with_loop(io, &IOLoop::current())
    }

    /// Registers `io` with `lp`.
    pub fn with_loop(io: T, lp: &IOLoop) -> io::Result<Async<T>> {
        let fd = io.as_raw_fd();
        sys::set_nonblocking(fd)?;
        let state = Rc::new(RefCell::new(State {
            // Unknown at first: assume ready so the first I/O call is tried.
            read: Direction {
                ready: true,
                ..Direction::default()
            },
            write: Direction {
                ready: true,
                ..Direction::default()
            },
            interest: Interest::NONE,
            hung_up: false,
        }));
        let handler_state = state.clone();
        let weak = lp.downgrade();
        lp.add_handler(fd, Interest::NONE, move |fd, ready| {
            on_ready(&handler_state, &weak, fd, ready);
        })
        .map_err(into_io)?;
        Ok(Async {
            io: Some(io),
            fd,
            lp: lp.clone(),
            state,
        })
    }

    /// The inner I/O object.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("present until drop")
    }

    /// The inner I/O object, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        self.io.as_mut().expect("present until drop")
    }

    /// Deregisters the fd and returns the I/O object (still non-blocking).
    pub fn into_inner(mut self) -> T {
        self.lp.remove_handler(self.fd);
        self.io.take().expect("present until drop")
    }

    /// Waits until the fd is readable (or hung up / in error).
    pub fn readable(&self) -> Readable<'_, T> {
        Readable(self)
    }

    /// Waits until the fd is writable (or hung up / in error).
    pub fn writable(&self) -> Writable<'_, T> {
        Writable(self)
    }

    /// Polls for read readiness; see [`Async::readable`].
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx, Interest::READ)
    }

    /// Polls for write readiness; see [`Async::writable`].
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_ready(cx, Interest::WRITE)
    }

    /// Calls `op` until it does not fail with `WouldBlock`, waiting for
    /// readability in between. The first call is made at once; later ones
    /// wait for the loop to report the fd readable, so a read that came back
    /// short is not repeated just to see `EAGAIN`.
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            self.readable().await?;
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear_failure(),
                r => return r,
            }
        }
    }

    fn clear_failure(&self) {
        self.state.borrow_mut().hung_up = false;
    }

    /// Calls `op` until it does not fail with `WouldBlock`, waiting for
    /// writability in between.
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    {
                        let mut st = self.state.borrow_mut();
                        st.write.ready = false;
                        st.hung_up = false;
                    }
                    self.writable().await?;
                }
                r => return r,
            }
        }
    }

    fn poll_ready(&self, cx: &mut Context<'_>, want: Interest) -> Poll<io::Result<()>> {
        if self.lp.is_closed() {
            return Poll::Ready(Err(into_io(super::Error::Closed)));
        }
        let new_interest = {
            let mut st = self.state.borrow_mut();
            let hung_up = st.hung_up;
            let dir = if want.is_readable() {
                &mut st.read
            } else {
                &mut st.write
            };
            if dir.ready || hung_up {
                dir.ready = false;
                dir.waiting = false;
                return Poll::Ready(Ok(()));
            }
            match &mut dir.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            dir.waiting = true;
            let watched = (want.is_readable() && st.interest.is_readable())
                || (want.is_writable() && st.interest.is_writable());
            if watched {
                return Poll::Pending;
            }
            st.interest | want
        };
        match self.lp.update_handler(self.fd, new_interest) {
            Ok(()) => {
                // Recorded only once the poller has it, so a failed update
                // is retried by the next poll instead of waiting forever.
                self.state.borrow_mut().interest = new_interest;
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(into_io(e))),
        }
    }
}

/// Marks `dir` ready; returns its waker if a task waits (moved out so it
/// can be woken with no borrow held), or `None` and whether interest in
/// this direction should be dropped (nobody waits: level-triggered polling
/// would report it again on every turn).
fn fire(dir: &mut Direction) -> Option<Waker> {
    dir.ready = true;
    if !dir.waiting {
        return None;
    }
    dir.waiting = false;
    dir.waker.take()
}

/// The loop calls this with the fd's readiness.
fn on_ready(state: &Rc<RefCell<State>>, lp: &WeakLoop, fd: RawFd, ready: Ready) {
    let failed = ready.is_error() || ready.is_hup();
    let (wakers, interest, changed) = {
        let mut st = state.borrow_mut();
        st.hung_up |= failed;
        let mut interest = st.interest;
        let mut wakers: [Option<Waker>; 2] = [None, None];
        if ready.is_readable() || failed {
            wakers[0] = fire(&mut st.read);
            if wakers[0].is_none() || failed {
                interest = interest.remove(Interest::READ);
            }
        }
        if ready.is_writable() || failed {
            wakers[1] = fire(&mut st.write);
            if wakers[1].is_none() || failed {
                interest = interest.remove(Interest::WRITE);
            }
        }
        let changed = interest != st.interest;
        st.interest = interest;
        (wakers, interest, changed)
    };
    if changed && let Some(lp) = lp.upgrade() {
        let _ = lp.update_handler(fd, interest);
    }
    for w in wakers.iter().flatten() {
        w.wake_by_ref();
    }
    // Give the wakers back for the next wait (unless one was set meanwhile).
    let [r, w] = wakers;
    let mut st = state.borrow_mut();
    if st.read.waker.is_none() {
        st.read.waker = r;
    }
    if st.write.waker.is_none() {
        st.write.waker = w;
    }
}

fn into_io(e: super::Error) -> io::Error {
    match e {
        super::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

impl<T: AsRawFd> Drop for Async<T> {
    fn drop(&mut self) {
        if self.io.is_some() {
            self.lp.remove_handler(self.fd);
        }
    }
}

impl<T: AsRawFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}

impl<T: AsRawFd + std::fmt::Debug> std::fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async").field("io", &self.io).finish()
    }
}

/// The future returned by [`Async::readable`].
#[must_use = "futures do nothing unless awaited"]
pub struct Readable<'a, T: AsRawFd>(&'a Async<T>);

impl<T: AsRawFd> Future for Readable<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_readable(cx)
    }
}

/// The future returned by [`Async::writable`].
#[must_use = "futures do nothing unless awaited"]
pub struct Writable<'a, T: AsRawFd>(&'a Async<T>);

impl<T: AsRawFd> Future for Writable<'_, T> {
    type Output = io::Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }
}
