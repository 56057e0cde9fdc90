//! The select(2) backend: portable, but limited to fds below `FD_SETSIZE`.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Capabilities, Events, Poller};
use crate::ioloop::interest::{Interest, Ready};
use crate::ioloop::token::Token;

/// `fd_set` is a fixed bitmap of this many bits; `FD_SET` on a larger fd
/// writes past its end. Every fd is checked against it before use.
const FD_SETSIZE: RawFd = libc::FD_SETSIZE as RawFd;

pub(crate) struct Select {
    read: libc::fd_set,
    write: libc::fd_set,
    /// `(token, interest)` per fd number; `None` for fds not watched.
    watched: Vec<Option<(Token, Interest)>>,
    /// The highest watched fd, or -1.
    max_fd: RawFd,
}

fn empty_set() -> libc::fd_set {
    // SAFETY: fd_set is plain data; FD_ZERO initialises every bit.
    unsafe {
        let mut set = std::mem::zeroed::<libc::fd_set>();
        libc::FD_ZERO(&mut set);
        set
    }
}

fn check_fd(fd: RawFd) -> io::Result<()> {
    if (0..FD_SETSIZE).contains(&fd) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "fd {fd} is outside select(2)'s range 0..{FD_SETSIZE}; use the epoll or poll backend"
        ),
    ))
}

impl Select {
    pub(crate) fn new() -> Select {
        Select {
            read: empty_set(),
            write: empty_set(),
            watched: Vec::new(),
            max_fd: -1,
        }
    }

    fn set(&mut self, fd: RawFd, token: Token, interest: Interest) {
        // SAFETY (both blocks below): `fd` was checked to be in 0..FD_SETSIZE.
        unsafe {
            if interest.is_readable() {
                libc::FD_SET(fd, &mut self.read);
            } else {
                libc::FD_CLR(fd, &mut self.read);
            }
        }
        unsafe {
            if interest.is_writable() {
                libc::FD_SET(fd, &mut self.write);
            } else {
                libc::FD_CLR(fd, &mut self.write);
            }
        }
        let n = fd as usize;
        if self.watched.len() <= n {
            self.watched.resize(n + 1, None);
        }
        self.watched[n] = Some((token, interest));
        self.max_fd = self.max_fd.max(fd);
    }

    fn report_closed_fds(&self, events: &mut Events) {
        for fd in 0..=self.max_fd {
            let Some((token, _)) = self.watched[fd as usize] else {
                continue;
            };
            // SAFETY: F_GETFD only queries the descriptor table.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                events.push(token, Ready::ERROR);
            }
        }
    }

    fn is_watched(&self, fd: RawFd) -> bool {
        matches!(self.watched.get(fd as usize), Some(Some(_)))
    }
}

impl Poller for Select {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        check_fd(fd)?;
        if self.is_watched(fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.set(fd, token, interest);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        check_fd(fd)?;
        if !self.is_watched(fd) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.set(fd, token, interest);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        check_fd(fd)?;
        if !self.is_watched(fd) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        // SAFETY: `fd` was checked to be in 0..FD_SETSIZE.
        unsafe {
            libc::FD_CLR(fd, &mut self.read);
            libc::FD_CLR(fd, &mut self.write);
        }
        self.watched[fd as usize] = None;
        while self.max_fd >= 0 && !self.is_watched(self.max_fd) {
            self.max_fd -= 1;
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, events: &mut Events) -> io::Result<()> {
        events.clear();
        let mut read = self.read;
        let mut write = self.write;
        // select(2) reports an fd with a pending error as readable and/or
        // writable, so the error set only matters for out-of-band data.
        let mut except = self.read;
        let mut tv = timeout.map(|d| {
            // Round up to the next microsecond (never wake before the
            // deadline), carrying into seconds: tv_usec must stay < 10^6.
            let d = Duration::from_micros(d.as_nanos().div_ceil(1000).min(u64::MAX as u128) as u64);
            libc::timeval {
                tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_usec: d.subsec_micros() as libc::suseconds_t,
            }
        });
        let tv_ptr = tv.as_mut().map_or(std::ptr::null_mut(), |t| t as *mut _);
        // SAFETY: the three sets are live copies and `tv_ptr` is null or live.
        let n = match crate::sys::syscall!(select(
            self.max_fd + 1,
            &mut read,
            &mut write,
            &mut except,
            tv_ptr
        )) {
            Ok(n) => n,
            // One watched fd was closed behind the loop's back: select fails
            // for the whole set, so report that fd as an error instead of
            // failing every wait from now on (poll(2) says POLLNVAL here).
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
                self.report_closed_fds(events);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        for fd in 0..=self.max_fd {
            let Some((token, _)) = self.watched[fd as usize] else {
                continue;
            };
            let mut ready = Ready::EMPTY;
            // SAFETY: 0 <= fd <= max_fd < FD_SETSIZE.
            unsafe {
                if libc::FD_ISSET(fd, &read) || libc::FD_ISSET(fd, &except) {
                    ready |= Ready::READABLE;
                }
                if libc::FD_ISSET(fd, &write) {
                    ready |= Ready::WRITABLE;
                }
            }
            if !ready.is_empty() {
                events.push(token, ready);
            }
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_fd: Some(FD_SETSIZE),
            reports_hup: false,
            sub_millisecond_timeout: true,
            edge_triggered: false,
            sends: false,
        }
    }
}
