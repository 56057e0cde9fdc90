//! Readiness through `POLL_ADD`: arming a registration's poll, turning a
//! poll's completion into an event, and re-arming the one-shot polls of
//! level-triggered fds.

use std::os::fd::RawFd;

use io_uring::cqueue;

use super::{PollState, Queued, Uring, poll_data};
use crate::ioloop::interest::{Interest, Ready};
use crate::ioloop::poller::{Events, ready_of_poll_bits};

impl Uring {
    /// Replaces `fd`'s poll with a new one for its current interest: the
    /// old one is forgotten if still queued, else cancelled in the kernel
    /// by an `ASYNC_CANCEL` submitted with the next batch.
    pub(super) fn queue_poll(&mut self, fd: RawFd) {
        let seq = self.next_poll_seq;
        self.next_poll_seq = seq.wrapping_add(1);
        let Some(reg) = self.reg_mut(fd) else {
            return;
        };
        let old = (reg.poll == PollState::Armed).then(|| poll_data(fd, reg.poll_seq));
        reg.poll_seq = seq;
        reg.poll = PollState::Queued;
        if let Some(old) = old {
            self.queued.push(Queued::Cancel(old));
        }
        self.queued.push(Queued::Poll { fd, seq });
    }

    pub(super) fn poll_done(
        &mut self,
        fd: RawFd,
        seq: u32,
        res: i32,
        flags: u32,
        events: &mut Events,
    ) {
        let Some(reg) = self.reg_mut(fd) else {
            return;
        };
        if reg.poll_seq != seq || reg.poll != PollState::Armed {
            return; // replaced by a modify, or of an earlier registration
        }
        let token = reg.token;
        let finished = !cqueue::more(flags);
        if finished {
            reg.poll = PollState::Idle;
        }
        if res >= 0 || res == -libc::ECANCELED {
            // (A current poll is cancelled only by the kernel, say on an
            // overflow of its completions: it is simply armed again.)
            if finished {
                self.rearm.push(fd);
            }
            if res > 0 {
                events.push(token, ready_of_poll_bits(res as libc::c_short));
            }
        } else {
            // A bad fd (closed without deregistering, say): report it once
            // and stop watching, rather than re-arm a poll that fails again.
            events.push(token, Ready::ERROR);
        }
    }

    /// Re-arms the one-shot polls of level-triggered fds that fired, unless
    /// their handler changed or dropped the registration meanwhile.
    pub(super) fn rearm(&mut self) {
        let mut rearm = std::mem::take(&mut self.rearm);
        for &fd in &rearm {
            if self.reg_mut(fd).is_some_and(|r| r.poll == PollState::Idle) {
                self.queue_poll(fd);
            }
        }
        rearm.clear();
        self.rearm = rearm;
    }
}

/// The poll mask for `interest`, and whether the poll is multishot.
pub(super) fn poll_mask(interest: Interest) -> (u32, bool) {
    let mut mask = 0;
    if interest.is_readable() {
        mask |= (libc::POLLIN | libc::POLLPRI) as u32;
    }
    if interest.is_writable() {
        mask |= libc::POLLOUT as u32;
    }
    let multi = interest.is_edge();
    if multi {
        // As with epoll: a FIN that comes with the last data shares its
        // edge, and only RDHUP tells a short read it missed it.
        mask |= libc::POLLRDHUP as u32;
    }
    (mask, multi)
}
