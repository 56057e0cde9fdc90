//! System-call plumbing: the lowest layer, shared by the loop, its pollers
//! and wakers, streams, listeners and worker processes.
//!
//! Every raw call goes through [`syscall!`], which turns the C convention
//! (`-1` and `errno`) into an `io::Result`, so nobody checks errno by hand.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Calls a `libc` function and maps `-1` to `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller passes arguments valid for this system call;
        // each call site documents why its pointers and fds are valid.
        #[allow(unused_unsafe)]
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Puts `fd` into non-blocking mode.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// A poll timeout in whole milliseconds, rounded *up* so that a wait never
/// ends before the deadline it was computed from (a 0.3 ms deadline waits
/// 1 ms instead of spinning with 0 ms waits). `None` is "forever" (-1).
pub(crate) fn timeout_ms_round_up(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// A `timespec` for `ppoll`/`epoll_pwait2`; `None` means "forever" (null).
pub(crate) fn timespec(timeout: Option<Duration>) -> Option<libc::timespec> {
    timeout.map(|d| libc::timespec {
        // Saturate absurdly long waits instead of wrapping to a negative time.
        tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    })
}
