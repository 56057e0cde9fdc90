//! The loop's wake-up fd on Linux: an eventfd.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::syscall;

/// An eventfd: writes add to a counter, a read returns and clears it, so
/// any number of wake-ups cost the loop one read.
pub(crate) struct WakerFd {
    fd: OwnedFd,
}

impl WakerFd {
    pub(crate) fn new() -> io::Result<WakerFd> {
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: eventfd just returned this fd and nothing else owns it.
        Ok(WakerFd {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The fd the loop watches for readability.
    pub(crate) fn read_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Makes the read end readable. Never blocks: a full counter (2^64 - 2)
    /// is already readable, so EAGAIN is as good as success.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an fd we own.
        let _ = syscall!(write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8));
    }

    /// Clears the readiness (one read resets the counter).
    pub(crate) fn drain(&self) {
        let mut buf: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an fd we own.
        let _ = syscall!(read(self.fd.as_raw_fd(), (&mut buf as *mut u64).cast(), 8));
    }
}
