//! The poll(2) backend: any fd number, O(watched fds) per wait.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Capabilities, Events, Poller, not_registered, ready_of_poll_bits};
use crate::ioloop::interest::Interest;
use crate::ioloop::token::Token;
use crate::sys;

/// Marks an fd that has no entry in `fds`.
const ABSENT: u32 = u32::MAX;

pub(crate) struct Poll {
    /// The array handed to `ppoll`, dense: deregistering swaps the last
    /// entry into the hole.
    fds: Vec<libc::pollfd>,
    /// `tokens[i]` belongs to `fds[i]`.
    tokens: Vec<Token>,
    /// fd number -> index into `fds` (fds are small dense integers).
    index: Vec<u32>,
}

impl Poll {
    pub(crate) fn new() -> Poll {
        Poll {
            fds: Vec::new(),
            tokens: Vec::new(),
            index: Vec::new(),
        }
    }

    fn slot(&self, fd: RawFd) -> Option<usize> {
        let i = *self.index.get(usize::try_from(fd).ok()?)?;
        (i != ABSENT).then_some(i as usize)
    }
}

fn poll_events(interest: Interest) -> libc::c_short {
    let mut ev = 0;
    if interest.is_readable() {
        ev |= libc::POLLIN | libc::POLLPRI;
    }
    if interest.is_writable() {
        ev |= libc::POLLOUT;
    }
    ev
}

impl Poller for Poll {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let Ok(n) = usize::try_from(fd) else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        if self.slot(fd).is_some() {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        if self.index.len() <= n {
            self.index.resize(n + 1, ABSENT);
        }
        self.index[n] = self.fds.len() as u32;
        self.fds.push(libc::pollfd {
            fd,
            events: poll_events(interest),
            revents: 0,
        });
        self.tokens.push(token);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let i = self.slot(fd).ok_or_else(|| not_registered(fd))?;
        self.fds[i].events = poll_events(interest);
        self.tokens[i] = token;
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let i = self.slot(fd).ok_or_else(|| not_registered(fd))?;
        self.fds.swap_remove(i);
        self.tokens.swap_remove(i);
        self.index[fd as usize] = ABSENT;
        if let Some(moved) = self.fds.get(i) {
            self.index[moved.fd as usize] = i as u32;
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, events: &mut Events) -> io::Result<()> {
        events.clear();
        let ts = sys::timespec(timeout);
        let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: `fds` is a live array of `len` pollfds; `ts_ptr` is null or
        // points at a live timespec; a null sigmask leaves the mask alone.
        let n = sys::syscall!(ppoll(
            self.fds.as_mut_ptr(),
            self.fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null()
        ))?;
        if n == 0 {
            return Ok(());
        }
        for (pfd, token) in self.fds.iter().zip(&self.tokens) {
            let r = pfd.revents;
            if r == 0 {
                continue;
            }
            events.push(*token, ready_of_poll_bits(r));
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_fd: None,
            reports_hup: true,
            sub_millisecond_timeout: true,
            edge_triggered: false,
            sends: false,
        }
    }
}
