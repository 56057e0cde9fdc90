//! The loop's wake-up fd where there is no eventfd: a self-pipe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{self, syscall};

/// A self-pipe for platforms without eventfd.
pub(crate) struct WakerFd {
    read: OwnedFd,
    write: OwnedFd,
}

impl WakerFd {
    pub(crate) fn new() -> io::Result<WakerFd> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two fds pipe() writes.
        syscall!(pipe(fds.as_mut_ptr()))?;
        // SAFETY: pipe just returned these fds and nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            sys::set_nonblocking(fd.as_raw_fd())?;
            syscall!(fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        }
        Ok(WakerFd { read, write })
    }

    pub(crate) fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// A full pipe is already readable, so EAGAIN is as good as success.
    pub(crate) fn wake(&self) {
        // SAFETY: writes one byte from a live buffer to an fd we own.
        let _ = syscall!(write(self.write.as_raw_fd(), b"x".as_ptr().cast(), 1));
    }

    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 256];
        // SAFETY: reads into a live buffer of the given length.
        while let Ok(n) = syscall!(read(
            self.read.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len()
        )) {
            if n <= 0 {
                break;
            }
        }
    }
}
