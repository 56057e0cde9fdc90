//! The ring itself: building submission entries for queued ops, the one
//! `io_uring_enter` of a wait, reaping completions into events, and
//! flushing queued work without waiting.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use io_uring::{opcode, squeue, types};

use super::readiness::poll_mask;
use super::send::{MAX_SEND, RECVSEND_POLL_FIRST};
use super::{OTHER_TAG, PollState, Queued, SEND_TAG, TAG_MASK, Uring, poll_data};
use crate::ioloop::poller::Events;

/// `io_uring_enter` flags, from the kernel's `<linux/io_uring.h>` (the
/// bindings keep their copy private): wait for (and run) completions, and
/// the argument is an `io_uring_getevents_arg` (with the timeout).
const ENTER_GETEVENTS: u32 = 1 << 0;
const ENTER_EXT_ARG: u32 = 1 << 3;

/// How often a flush enters the kernel before it gives up on a
/// submission queue the kernel will not empty (it lacks memory for new
/// requests): a partial sends's rest may be queued again by its own
/// completion, so one try is not always enough.
const FLUSH_TRIES: usize = 8;

impl Uring {
    /// The submission entry for a queued op, or `None` to skip it.
    fn entry(&mut self, queued: Queued) -> Option<squeue::Entry> {
        let entry = match queued {
            Queued::Poll { fd, seq } => {
                let reg = self.reg_mut(fd)?;
                if reg.poll_seq != seq || reg.poll != PollState::Queued {
                    return None; // replaced, or the fd was dropped
                }
                reg.poll = PollState::Armed;
                let (mask, multi) = poll_mask(reg.interest);
                opcode::PollAdd::new(types::Fd(fd), mask)
                    .multi(multi)
                    .build()
                    .user_data(poll_data(fd, seq))
            }
            Queued::Send(key) => {
                let op = self.sends.get_mut(key)?;
                op.queued = false;
                let rest = &op.data[op.sent..];
                let len = rest.len().min(MAX_SEND) as u32;
                let ioprio = if op.poll_first {
                    RECVSEND_POLL_FIRST
                } else {
                    0
                };
                opcode::Send::new(types::Fd(op.fd), rest.as_ptr(), len)
                    .flags(libc::MSG_NOSIGNAL)
                    .ioprio(ioprio)
                    .build()
                    .user_data(SEND_TAG | key as u64)
            }
            Queued::Cancel(target) => opcode::AsyncCancel::new(target)
                .build()
                .user_data(OTHER_TAG),
        };
        Some(entry)
    }

    /// Moves the queued ops into the submission queue, submitting (without
    /// waiting) whenever it fills up. On an error the ops not yet in the
    /// queue stay queued, untouched, for the next try.
    pub(super) fn push_queued(&mut self) -> io::Result<()> {
        let mut queued = std::mem::take(&mut self.queued);
        let mut result = Ok(());
        let mut taken = 0;
        for &q in &queued {
            if self.ring.submission().is_full()
                && let Err(e) = self.ring.submit()
            {
                // EBUSY/EAGAIN: the kernel is short of room; the rest
                // stays queued for the next call.
                if !matches!(e.raw_os_error(), Some(libc::EBUSY | libc::EAGAIN)) {
                    result = Err(e);
                }
                break;
            }
            taken += 1;
            let Some(entry) = self.entry(q) else {
                continue;
            };
            // SAFETY: the entry's fd is registered (its registration is
            // current: ops of dropped ones are never queued) and its buffer,
            // if any, is a `Bytes` held by the op until the op's last
            // completion. The queue has room (checked above).
            let pushed = unsafe { self.ring.submission().push(&entry) };
            debug_assert!(pushed.is_ok(), "room was checked above");
        }
        queued.drain(..taken);
        // Ops queued while this ran (none today) go after the leftovers.
        queued.append(&mut self.queued);
        self.queued = queued;
        result
    }

    /// One `io_uring_enter`: submits what is in the submission queue, runs
    /// deferred completions, and waits for one if `timeout` allows.
    pub(super) fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let to_submit = self.ring.submission().len() as u32;
        let getevents = ENTER_GETEVENTS;
        let submitter = self.ring.submitter();
        let result = match timeout {
            // Deferred task work runs only in an enter with GETEVENTS, even
            // when it waits for nothing.
            Some(Duration::ZERO) => {
                // SAFETY: no argument is passed; the counts are ours.
                unsafe { submitter.enter::<libc::sigset_t>(to_submit, 0, getevents, None) }
            }
            None => {
                // SAFETY: as above.
                unsafe { submitter.enter::<libc::sigset_t>(to_submit, 1, getevents, None) }
            }
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                let flags = getevents | ENTER_EXT_ARG;
                // SAFETY: `args` is an io_uring_getevents_arg (the type is
                // repr(transparent) over it) pointing at `ts`, both alive
                // for the call, as EXT_ARG requires.
                unsafe { submitter.enter(to_submit, 1, flags, Some(&args)) }
            }
        };
        match result {
            Ok(_) => Ok(()),
            // ETIME: the wait timed out (io_uring's timeouts are precise: no
            // rounding, nothing ends early). EBUSY: completions overflowed
            // and must be reaped first. EAGAIN: the kernel was short of
            // memory for new requests; what it did not take stays in the
            // submission queue for the next call.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Turns the completions waiting in the ring into events.
    pub(super) fn reap(&mut self, events: &mut Events) {
        let mut done = std::mem::take(&mut self.done);
        done.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(data, res, flags) in &done {
            match data & TAG_MASK {
                SEND_TAG => self.send_done((data & !TAG_MASK) as usize, res, events),
                OTHER_TAG => {} // a removal or cancellation
                _ => self.poll_done((data >> 32) as RawFd, data as u32, res, flags, events),
            }
        }
        done.clear();
        self.done = done;
    }

    /// Submits everything queued and runs what completes at once, keeping
    /// its events for the next poll (the backend's `Sender::flush`).
    pub(super) fn flush_queued(&mut self) -> io::Result<()> {
        if self.queued.is_empty() && self.ring.submission().is_empty() {
            return Ok(());
        }
        // Until the submission queue is empty: an entry left in it after
        // `deregister` returns could reach a reused fd number. Not a bare
        // submit: a send that completes at once, or a cancellation, does so
        // through deferred task work, which only an enter that asks for
        // completions runs (and only then does the kernel let go of a
        // cancelled send's socket). What completes is kept for the next
        // poll.
        for _ in 0..FLUSH_TRIES {
            self.push_queued()?;
            self.enter(Some(Duration::ZERO))?;
            let mut stash = std::mem::take(&mut self.stash);
            self.reap(&mut stash);
            self.stash = stash;
            // Queued ops left are other fds' partial sends, queued again by
            // their completions: they wait for the next poll.
            if self.ring.submission().is_empty() {
                return Ok(());
            }
        }
        Err(io::Error::from_raw_os_error(libc::EAGAIN))
    }
}
