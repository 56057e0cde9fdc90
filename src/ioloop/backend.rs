//! The poller backends by name: what `CYCLONE_POLLER` and `--poller` choose
//! from. Which of them this platform offers, and opening one, is the
//! poller module's business ([`Backend::available`]); this file only names
//! them, so that the loop's error type can name a backend too.

use std::fmt;

/// The poller backends Cyclone ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Linux `epoll(7)`: O(ready) waits; the default on Linux.
    Epoll,
    /// POSIX `poll(2)`: O(watched) per wait, any fd number.
    Poll,
    /// POSIX `select(2)`: O(highest fd) per wait, fds below `FD_SETSIZE`.
    Select,
    /// Linux io_uring (6.1 or later): readiness through multishot polls,
    /// and socket writes batched into the loop's wait, so that answering a
    /// request makes no system call of its own. Available where the
    /// kernel and sandbox allow io_uring.
    Uring,
}

/// The environment variable that picks a backend at run time.
pub const POLLER_ENV: &str = "CYCLONE_POLLER";

impl Backend {
    /// Every backend Cyclone ships, whether or not this machine has it
    /// ([`Backend::available`] says which it has), best first.
    pub const ALL: [Backend; 4] = [
        Backend::Epoll,
        Backend::Uring,
        Backend::Poll,
        Backend::Select,
    ];

    /// The name used by `CYCLONE_POLLER` and `--poller`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Poll => "poll",
            Backend::Select => "select",
            Backend::Uring => "uring",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
