//! The epoll(7) backend (Linux).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::{Capabilities, Events, Poller};
use crate::ioloop::interest::{Interest, Ready};
use crate::ioloop::token::Token;
use crate::sys::{self, syscall};

/// Events fetched per `epoll_wait`: enough that one wait drains a busy
/// server's ready list (more stay queued in the kernel for the next wait),
/// small enough (12 KiB) to stay in cache.
const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct Epoll {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
    /// Cleared when the kernel lacks `epoll_pwait2` (before 5.11): waits
    /// then fall back to `epoll_wait` with milliseconds rounded up.
    has_pwait2: bool,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut epoll = Epoll {
            epfd,
            buf: Vec::with_capacity(EVENTS_PER_WAIT),
            has_pwait2: cfg!(target_pointer_width = "64"),
        };
        // Probe once (a zero-timeout wait on an empty set), so that
        // capabilities() tells the truth before the first real wait.
        epoll.wait(Some(Duration::ZERO))?;
        Ok(epoll)
    }

    fn ctl(
        &mut self,
        op: libc::c_int,
        fd: RawFd,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        let mut flags = 0;
        if interest.is_readable() {
            flags |= libc::EPOLLIN | libc::EPOLLPRI;
        }
        if interest.is_writable() {
            flags |= libc::EPOLLOUT;
        }
        if interest.is_edge() {
            // RDHUP: a FIN that arrives with the last data shares its edge;
            // without it a short read could not tell it missed the EOF.
            flags |= libc::EPOLLET | libc::EPOLLRDHUP;
        }
        let mut ev = libc::epoll_event {
            events: flags as u32,
            u64: token.0,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        syscall!(epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev))?;
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let epfd = self.epfd.as_raw_fd();
        let buf = self.buf.as_mut_ptr();
        let max = EVENTS_PER_WAIT as libc::c_int;
        // epoll_pwait2 takes the kernel's 64-bit timespec, which is
        // libc::timespec only on 64-bit targets (has_pwait2 is false else).
        if self.has_pwait2 {
            let ts = sys::timespec(timeout);
            let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
            // SAFETY: `buf` has capacity for `max` events, `ts_ptr` is null or
            // points at a live timespec, and a null sigmask means "unchanged".
            let n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epfd,
                    buf,
                    max,
                    ts_ptr,
                    0usize,
                    0usize,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            // ENOSYS: kernel before 5.11. EPERM: a seccomp filter that
            // refuses system calls it does not know.
            if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
                return Err(err);
            }
            self.has_pwait2 = false;
        }
        let ms = sys::timeout_ms_round_up(timeout);
        // SAFETY: `buf` has capacity for `max` events.
        let n = syscall!(epoll_wait(epfd, buf, max, ms))?;
        Ok(n as usize)
    }
}

impl Poller for Epoll {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        // A non-null event pointer keeps kernels before 2.6.9 happy.
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is valid for the call; the kernel ignores it for DEL.
        syscall!(epoll_ctl(
            self.epfd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, events: &mut Events) -> io::Result<()> {
        events.clear();
        let n = self.wait(timeout)?;
        // SAFETY: the kernel initialised the first `n` entries (n <= capacity).
        unsafe { self.buf.set_len(n) };
        for ev in &self.buf {
            let bits = ev.events as libc::c_int;
            let mut ready = Ready::EMPTY;
            if bits & (libc::EPOLLIN | libc::EPOLLPRI) != 0 {
                ready |= Ready::READABLE;
            }
            if bits & libc::EPOLLOUT != 0 {
                ready |= Ready::WRITABLE;
            }
            if bits & libc::EPOLLERR != 0 {
                ready |= Ready::ERROR;
            }
            if bits & libc::EPOLLHUP != 0 {
                ready |= Ready::HUP;
            }
            if bits & libc::EPOLLRDHUP != 0 {
                ready |= Ready::READ_CLOSED;
            }
            events.push(Token(ev.u64), ready);
        }
        // SAFETY: shrinking to 0 drops nothing (epoll_event is plain data).
        unsafe { self.buf.set_len(0) };
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_fd: None,
            reports_hup: true,
            sub_millisecond_timeout: self.has_pwait2,
            edge_triggered: true,
            sends: false,
        }
    }
}
