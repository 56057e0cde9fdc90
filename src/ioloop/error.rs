//! The loop layer's error type.

use std::io;
use std::os::fd::RawFd;

use super::backend::Backend;

/// Everything the loop can refuse or fail at. Match on the variant; the
/// message is for people.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `CYCLONE_POLLER` (or `--poller`) named a backend that does not exist.
    #[error("unknown poller backend {0:?}: expected one of epoll, uring, poll, select")]
    UnknownBackend(String),
    /// The backend exists but not on this platform.
    #[error("the {0} poller backend is not available on this platform")]
    BackendUnavailable(Backend),
    /// `add_handler` for an fd that already has a handler on this loop.
    #[error("fd {0} already has a handler on this loop")]
    AlreadyRegistered(RawFd),
    /// `update_handler` for an fd with no handler on this loop.
    #[error("fd {0} has no handler on this loop")]
    NotRegistered(RawFd),
    /// The backend cannot watch an fd this large (select and `FD_SETSIZE`).
    #[error("fd {fd} is too large for the {backend} backend (limit {limit}); use epoll or poll")]
    FdTooLarge {
        /// The fd that was refused.
        fd: RawFd,
        /// The first fd number the backend cannot watch.
        limit: RawFd,
        /// The backend that refused it.
        backend: Backend,
    },
    /// [`Interest::EDGE`](super::Interest::EDGE) asked of a backend that is
    /// level-triggered only.
    #[error("the {0} backend cannot do edge-triggered interest")]
    EdgeUnsupported(Backend),
    /// `start()` (or `run_sync`) on a loop that is already running.
    #[error("the IOLoop is already running")]
    AlreadyRunning,
    /// The loop was closed; it accepts no more work.
    #[error("the IOLoop is closed")]
    Closed,
    /// A system call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `run_sync_timeout` or [`timeout`](crate::ioloop::timeout) gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operation timed out")]
pub struct Timeout;
