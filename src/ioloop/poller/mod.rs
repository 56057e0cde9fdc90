//! Pollers: the part of the loop that waits for fds to become ready.
//!
//! # The backend contract
//!
//! A backend is one file (or folder) implementing [`Poller`]: the five
//! methods below are the whole list a new backend must write; the loop
//! needs nothing else and changes for no backend.
//!
//! 1. `register(fd, token, interest)` starts watching `fd`. `interest` is
//!    never empty (the loop parks a handler by deregistering it). Watching
//!    the same fd twice is the loop's bug, not the backend's concern.
//! 2. `modify(fd, token, interest)` replaces the interest (and token) of a
//!    watched fd; `deregister(fd)` stops watching it. Both may be called
//!    between two `poll`s any number of times, including from inside the
//!    dispatch of events the last `poll` returned.
//! 3. `poll(timeout, events)` clears `events`, waits until at least one
//!    watched fd is ready or `timeout` passes (`None`: forever,
//!    `Some(ZERO)`: do not wait), and appends one [`Event`] per ready fd
//!    carrying the token it was registered with.
//!    - Level-triggered: an fd that stays ready is reported by every call,
//!      unless the interest carries [`Interest::EDGE`] (only asked of
//!      backends whose capabilities say `edge_triggered`).
//!    - `ERROR` and `HUP` are reported whatever the interest was.
//!    - A wait must never end *before* `timeout` because of rounding: round
//!      up (a wait that ends early makes the loop spin until the deadline).
//!    - `EINTR` is returned as an error of kind `Interrupted`; the loop
//!      retries.
//! 4. `capabilities()` says what the backend can do, so the loop and the
//!    tests adapt at run time instead of guessing.
//!
//!
//! # An optional capability: sends made by the loop
//!
//! A backend that can submit socket writes together with its wait
//! (io_uring) also implements [`Sender`], returns itself from
//! [`Poller::sender`] and says `sends: true` in its capabilities. The loop
//! asks for it and falls back to plain writes where it gets `None`, the
//! default, so a backend without sends writes nothing for it.
//!
//! - `send(fd, data, join)` queues one send of `data` on the watched
//!   socket `fd` (one at a time per fd; with `join`, adds to one not
//!   submitted yet), submitted with the next `poll` (or `flush`), and
//!   reported by that or a later `poll` as a [`Ready::SENT`] event for the
//!   fd's token once every byte is taken or the send failed; the failure is
//!   then told once by `take_send_error(fd)`.
//! - `deregister` hands a queued send to the kernel before it returns (the
//!   caller closes the fd next), and a dropped registration's send is
//!   never resubmitted.
//! - `flush` submits whatever is queued (sends and registrations) without
//!   waiting; the loop calls it when it stops polling.
//!
//! The io_uring backend queues `POLL_ADD`s, cancellations and sends, and
//! `poll` submits them together with the wait in one `io_uring_enter`.

use std::io;
use std::os::fd::RawFd;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;

use super::backend::{Backend, POLLER_ENV};
use super::error::Error;
use super::interest::{Interest, Ready};
use super::token::Token;

#[cfg(target_os = "linux")]
mod epoll;
mod poll;
mod select;
#[cfg(target_os = "linux")]
mod uring;

/// The readiness in a `poll(2)`-style event mask (`revents`, or an
/// io_uring poll's result). `POLLRDHUP` shows only where it was asked for.
pub(crate) fn ready_of_poll_bits(bits: libc::c_short) -> Ready {
    let mut ready = Ready::EMPTY;
    if bits & (libc::POLLIN | libc::POLLPRI) != 0 {
        ready |= Ready::READABLE;
    }
    if bits & libc::POLLOUT != 0 {
        ready |= Ready::WRITABLE;
    }
    if bits & (libc::POLLERR | libc::POLLNVAL) != 0 {
        ready |= Ready::ERROR;
    }
    if bits & libc::POLLHUP != 0 {
        ready |= Ready::HUP;
    }
    if bits & libc::POLLRDHUP != 0 {
        ready |= Ready::READ_CLOSED;
    }
    ready
}

/// The error of a backend asked about an fd it does not watch.
pub(crate) fn not_registered(fd: RawFd) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("fd {fd} is not registered"),
    )
}

/// One ready fd, as reported by [`Poller::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// The token the fd was registered (or last modified) with.
    pub(crate) token: Token,
    /// What the fd is ready for.
    pub(crate) ready: Ready,
}

/// The events of one `poll`, reused from turn to turn so that polling
/// allocates nothing in the steady state.
#[derive(Debug, Default)]
pub(crate) struct Events {
    list: Vec<Event>,
}

impl Events {
    /// An empty list with room for `capacity` events.
    pub(crate) fn with_capacity(capacity: usize) -> Events {
        Events {
            list: Vec::with_capacity(capacity),
        }
    }
    /// Appends an event.
    pub(crate) fn push(&mut self, token: Token, ready: Ready) {
        self.list.push(Event { token, ready });
    }
    /// Removes every event, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.list.clear();
    }
    /// The number of events.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }
    /// Whether there are no events.
    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The event at `index`.
    pub(crate) fn get(&self, index: usize) -> Option<Event> {
        self.list.get(index).copied()
    }
}

/// What a backend can do, asked at run time. More may be added: match
/// on the fields you need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The first fd number the backend cannot watch (`FD_SETSIZE` for
    /// select), or `None` if any fd works.
    pub max_fd: Option<RawFd>,
    /// Whether a hang-up is reported as `HUP` on its own. select(2) only
    /// knows "readable"/"writable"; a hung-up fd shows as readable there.
    pub reports_hup: bool,
    /// Whether waits are precise below a millisecond (no rounding up).
    pub sub_millisecond_timeout: bool,
    /// Whether [`Interest::EDGE`] is supported (epoll's `EPOLLET`).
    /// Backends without it must not be asked for it.
    pub edge_triggered: bool,
    /// Whether the backend sends on the loop's behalf (io_uring):
    /// writes to sockets then cost no system call of their own.
    pub sends: bool,
}

/// The system-call interface behind the loop. See the module docs for the
/// contract every backend meets.
pub(crate) trait Poller {
    /// Starts watching `fd` for `interest`, reporting events with `token`.
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Changes what a watched fd is watched for, and its token.
    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Stops watching `fd`.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Waits for readiness; see the module docs.
    fn poll(&mut self, timeout: Option<Duration>, events: &mut Events) -> io::Result<()>;
    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;
    /// The backend's sends, if it makes them (the optional capability in
    /// the module docs); `None` by default.
    fn sender(&mut self) -> Option<&mut dyn Sender> {
        None
    }
}

/// Sends made on the loop's behalf, submitted with its next wait: the
/// optional part of the backend contract (see the module docs).
pub(crate) trait Sender {
    /// Queues a send of `data` on the watched socket `fd`. With `join`,
    /// appends `data` to `fd`'s send instead, if that is not submitted yet
    /// (its [`Ready::SENT`] then covers both). Gives `data` back if `fd` is
    /// not watched, or (without `join`) a send of its is still in flight,
    /// or (with `join`) its send cannot take more.
    fn send(&mut self, fd: RawFd, data: Bytes, join: bool) -> Result<(), Bytes>;
    /// Why the last send on `fd` failed, once (cleared by reading it).
    fn take_send_error(&mut self, fd: RawFd) -> Option<io::Error>;
    /// Submits queued work (sends, registrations) without waiting.
    fn flush(&mut self) -> io::Result<()>;
}

impl Backend {
    /// Every backend available on this platform, best first.
    pub fn available() -> &'static [Backend] {
        #[cfg(target_os = "linux")]
        return if uring::Uring::supported() {
            &[
                Backend::Epoll,
                Backend::Uring,
                Backend::Poll,
                Backend::Select,
            ]
        } else {
            &[Backend::Epoll, Backend::Poll, Backend::Select]
        };
        #[cfg(not(target_os = "linux"))]
        return &[Backend::Poll, Backend::Select];
    }

    /// The best backend this platform offers.
    pub fn platform_default() -> Backend {
        Backend::available()[0]
    }

    /// The backend named by `CYCLONE_POLLER`, or the platform default when
    /// it is unset. An unknown or unavailable name is an error.
    pub fn from_env() -> Result<Backend, Error> {
        match std::env::var(POLLER_ENV) {
            Ok(name) => name.parse(),
            Err(std::env::VarError::NotPresent) => Ok(Backend::platform_default()),
            Err(std::env::VarError::NotUnicode(raw)) => {
                Err(Error::UnknownBackend(raw.to_string_lossy().into_owned()))
            }
        }
    }

    /// Creates a poller of this kind.
    pub(crate) fn open(self) -> Result<Box<dyn Poller>, Error> {
        match self {
            #[cfg(target_os = "linux")]
            Backend::Epoll => Ok(Box::new(epoll::Epoll::new()?)),
            #[cfg(not(target_os = "linux"))]
            Backend::Epoll => Err(Error::BackendUnavailable(self)),
            Backend::Poll => Ok(Box::new(poll::Poll::new())),
            Backend::Select => Ok(Box::new(select::Select::new())),
            #[cfg(target_os = "linux")]
            Backend::Uring if uring::Uring::supported() => Ok(Box::new(uring::Uring::new()?)),
            Backend::Uring => Err(Error::BackendUnavailable(self)),
        }
    }
}

impl FromStr for Backend {
    type Err = Error;

    fn from_str(name: &str) -> Result<Backend, Error> {
        let backend = match name.trim().to_ascii_lowercase().as_str() {
            "epoll" => Backend::Epoll,
            "poll" => Backend::Poll,
            "select" => Backend::Select,
            "uring" | "io_uring" => Backend::Uring,
            _ => return Err(Error::UnknownBackend(name.to_string())),
        };
        if !Backend::available().contains(&backend) {
            return Err(Error::BackendUnavailable(backend));
        }
        Ok(backend)
    }
}
