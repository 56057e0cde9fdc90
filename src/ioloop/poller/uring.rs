//! The io_uring backend (Linux 6.1 and later, `CYCLONE_POLLER=uring`).
//!
//! Readiness comes from `POLL_ADD` requests: multishot for edge-triggered
//! interest (a completion per wake-up of the fd, as `EPOLLET` gives), one
//! shot and re-armed for level-triggered interest. On top of the contract,
//! the backend sends on the loop's behalf ([`Poller::send`]): the send is
//! submitted with the loop's next wait, so a keep-alive request costs one
//! read system call and its answer none, and a turn's sends to many
//! sockets share one `io_uring_enter`.
//!
//! How it keeps the contract:
//! - Nothing reaches the kernel before `poll` (or `flush`): operations wait
//!   in `queued`, and their submission entries are built only then. A poll replaced or dropped before it was submitted is
//!   simply skipped.
//! - Level-triggered: a one-shot poll that fired is re-armed at the start
//!   of the next `poll`. If the fd is still ready, the new poll completes at
//!   once, within the same system call.
//! - A poll's completion carries its fd and the poll's number, which the
//!   registration keeps for its current poll, so a completion of a poll
//!   replaced since (by a modify) or of an earlier registration of the fd
//!   is ignored. A send's completion carries its key in the send table,
//!   reused only after that send's last completion.
//! - `deregister` submits a send still queued for the fd before it
//!   returns: the caller closes the fd next, and a later submission would
//!   reach whatever file reuses the number. Whatever of it the socket could
//!   not take at once is then cancelled (a close drops a plain stream's
//!   unsent queue too), so that a peer that never reads cannot keep the
//!   socket open through it. A dropped registration's sends are never
//!   resubmitted.
//! - A send's bytes stay in its op until its completion, whatever becomes
//!   of the stream that wrote them.
//!
//! The ring is single-issuer with deferred task running: completions are
//! processed only when the loop waits, in its own thread, which halves the
//! kernel time per request against the default mode (measured with the
//! io_uring floor in `bench/peers`).

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use io_uring::{IoUring, cqueue, opcode, squeue, types};
use slab::Slab;

use super::{Capabilities, Events, Poller, not_registered, ready_of_poll_bits};
use crate::ioloop::interest::{Interest, Ready};
use crate::ioloop::token::Token;

/// Submission queue entries (the completion queue gets twice as many):
/// one turn of a busy loop queues a send and maybe a re-arm per
/// connection; past this, a turn submits in several calls.
const RING_ENTRIES: u32 = 1024;

/// Completion queue entries per submission entry: a turn of many ready
/// connections brings a poll completion each besides its sends'. Past
/// this the kernel keeps the overflow and hands it over later (the ring
/// has `IORING_FEAT_NODROP` since 5.5), so this sizes the common case.
const CQ_PER_SQ: u32 = 4;

/// The most one send asks for: the entry's length field is 32 bits, and
/// the kernel takes at most about 2 GiB per call anyway.
const MAX_SEND: usize = 1 << 30;

/// `IORING_RECVSEND_POLL_FIRST`: wait for writability before trying the
/// send. Set after a send found the socket full, so that a full socket is
/// not tried twice.
const RECVSEND_POLL_FIRST: u16 = 1;

/// `io_uring_enter` flags, from the kernel's `<linux/io_uring.h>` (the
/// bindings keep their copy private): wait for (and run) completions, and
/// the argument is an `io_uring_getevents_arg` (with the timeout).
const ENTER_GETEVENTS: u32 = 1 << 0;
const ENTER_EXT_ARG: u32 = 1 << 3;

/// The most bytes a joined send is copied up to: past it, a write waits
/// its turn in the stream's queue (uncopied) like any other.
const JOIN_LIMIT: usize = 64 * 1024;

/// How often a flush enters the kernel before it gives up on a
/// submission queue the kernel will not empty (it lacks memory for new
/// requests): a partial sends's rest may be queued again by its own
/// completion, so one try is not always enough.
const FLUSH_TRIES: usize = 8;

/// How long dropping the ring waits for sends still in flight to be
/// cancelled before it leaks their buffers instead of freeing memory the
/// kernel may still read.
const DROP_CANCEL_WAIT: Duration = Duration::from_secs(1);

/// Marks "no send" in a registration.
const NO_OP: u32 = u32::MAX;

/// Where a registration's poll stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PollState {
    /// None (a one-shot poll fired, or the fd is not watched).
    Idle,
    /// Waiting in `queued` for the next submission.
    Queued,
    /// In the kernel.
    Armed,
}

/// One watched fd, and its poll: 24 bytes, all a watched fd costs while
/// no send is in flight (there is one per connection, idle or not).
#[derive(Clone, Copy)]
struct Reg {
    token: Token,
    /// Tells this registration's sends from an earlier one's.
    generation: u32,
    /// The current poll's number, carried in its user data: a completion
    /// of a poll since replaced (by a modify) or of an earlier
    /// registration carries another. Numbers wrap after 2^32 polls, long
    /// after any old completion is due.
    poll_seq: u32,
    /// The send in flight (one at a time keeps the bytes in order), or
    /// [`NO_OP`].
    send: u32,
    interest: Interest,
    poll: PollState,
    /// The fd is watched (the table is indexed by fd number).
    live: bool,
}

impl Reg {
    const VACANT: Reg = Reg {
        token: Token(0),
        generation: 0,
        poll_seq: 0,
        send: NO_OP,
        interest: Interest::NONE,
        poll: PollState::Idle,
        live: false,
    };
    fn send(&self) -> Option<usize> {
        (self.send != NO_OP).then_some(self.send as usize)
    }
}

/// A send request; its bytes stay here until its last completion.
struct SendOp {
    fd: RawFd,
    generation: u32,
    data: Bytes,
    sent: usize,
    poll_first: bool,
    queued: bool,
}

/// What waits for the next submission.
#[derive(Clone, Copy)]
enum Queued {
    /// The poll numbered `seq` of `fd` (skipped if no longer current).
    Poll {
        fd: RawFd,
        seq: u32,
    },
    Send(usize),
    /// Removes a submitted poll, named by its user data.
    RemovePoll(u64),
    /// Cancels a submitted send (its fd was deregistered, or the ring is
    /// being dropped).
    CancelSend(u64),
}

/// User data. A poll's: bit 63 clear, the fd in bits 32-62 and its number
/// below, so a poll needs no table of its own. A send's: the tag and its
/// key. Removals and cancellations keep no state: their completions are
/// ignored.
const SEND_TAG: u64 = 2 << 62;
const OTHER_TAG: u64 = 3 << 62;
const TAG_MASK: u64 = 3 << 62;

fn poll_data(fd: RawFd, seq: u32) -> u64 {
    ((fd as u64) << 32) | seq as u64
}

pub(crate) struct Uring {
    ring: IoUring,
    /// fd number -> registration (fds are small dense integers).
    regs: Vec<Reg>,
    sends: Slab<SendOp>,
    /// Failed sends' errnos, until [`Poller::take_send_error`] takes them
    /// (rare: kept out of every registration).
    send_errors: Vec<(RawFd, i32)>,
    queued: Vec<Queued>,
    /// Level-triggered fds whose one-shot poll fired: re-armed next poll.
    rearm: Vec<RawFd>,
    /// Completions copied out of the ring, reused from turn to turn.
    done: Vec<(u64, i32, u32)>,
    /// Events of completions a `flush` took, reported by the next poll.
    stash: Events,
    next_generation: u32,
    next_poll_seq: u32,
}

impl Uring {
    fn build_ring(entries: u32) -> io::Result<IoUring> {
        IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(entries * CQ_PER_SQ)
            .build(entries)
    }

    /// Whether this kernel (and sandbox) lets a process use io_uring with
    /// what this backend needs: single issuer, deferred task running (6.1)
    /// and multishot polls (5.13). Checked once per process.
    pub(crate) fn supported() -> bool {
        static SUPPORTED: OnceLock<bool> = OnceLock::new();
        *SUPPORTED.get_or_init(|| Uring::build_ring(2).is_ok())
    }

    pub(crate) fn new() -> io::Result<Uring> {
        Ok(Uring {
            ring: Uring::build_ring(RING_ENTRIES)?,
            regs: Vec::new(),
            sends: Slab::new(),
            send_errors: Vec::new(),
            queued: Vec::new(),
            rearm: Vec::new(),
            done: Vec::new(),
            stash: Events::default(),
            next_generation: 0,
            next_poll_seq: 0,
        })
    }

    fn reg_mut(&mut self, fd: RawFd) -> Option<&mut Reg> {
        let reg = self.regs.get_mut(usize::try_from(fd).ok()?)?;
        reg.live.then_some(reg)
    }

    /// The registration a send belongs to, if it is still current.
    fn current(&mut self, fd: RawFd, generation: u32) -> Option<&mut Reg> {
        self.reg_mut(fd).filter(|r| r.generation == generation)
    }

    /// Replaces `fd`'s poll with a new one for its current interest: the
    /// old one is forgotten if still queued, else removed in the kernel by
    /// a `POLL_REMOVE` submitted with the next batch.
    fn queue_poll(&mut self, fd: RawFd) {
        let seq = self.next_poll_seq;
        self.next_poll_seq = seq.wrapping_add(1);
        let Some(reg) = self.reg_mut(fd) else {
            return;
        };
        let old = (reg.poll == PollState::Armed).then(|| poll_data(fd, reg.poll_seq));
        reg.poll_seq = seq;
        reg.poll = PollState::Queued;
        if let Some(old) = old {
            self.queued.push(Queued::RemovePoll(old));
        }
        self.queued.push(Queued::Poll { fd, seq });
    }

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
            Queued::RemovePoll(target) => {
                opcode::PollRemove::new(target).build().user_data(OTHER_TAG)
            }
            Queued::CancelSend(target) => opcode::AsyncCancel::new(target)
                .build()
                .user_data(OTHER_TAG),
        };
        Some(entry)
    }

    /// Moves the queued ops into the submission queue, submitting (without
    /// waiting) whenever it fills up. On an error the ops not yet in the
    /// queue stay queued, untouched, for the next try.
    fn push_queued(&mut self) -> io::Result<()> {
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
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
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
    fn reap(&mut self, events: &mut Events) {
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

    fn poll_done(&mut self, fd: RawFd, seq: u32, res: i32, flags: u32, events: &mut Events) {
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

    fn send_done(&mut self, key: usize, res: i32, events: &mut Events) {
        let Some(op) = self.sends.get_mut(key) else {
            return;
        };
        let retry = match res {
            // The socket was full (a non-blocking socket's send is not
            // parked by the kernel): try again once it is writable.
            r if r == -libc::EAGAIN || r == 0 => {
                op.poll_first = true;
                true
            }
            r if r == -libc::EINTR => true,
            r if r > 0 => {
                op.sent += r as usize;
                op.poll_first = false;
                op.sent < op.data.len()
            }
            _ => false,
        };
        let (fd, generation) = (op.fd, op.generation);
        let current = self
            .current(fd, generation)
            .is_some_and(|r| r.send() == Some(key));
        if retry && current {
            self.sends[key].queued = true;
            self.queued.push(Queued::Send(key));
            return;
        }
        self.sends.remove(key); // the bytes are freed here, and only here
        if !current {
            return;
        }
        let Some(reg) = self.current(fd, generation) else {
            return;
        };
        reg.send = NO_OP;
        let token = reg.token;
        if res < 0 {
            self.send_errors.push((fd, -res));
        }
        events.push(token, Ready::SENT);
    }

    /// Re-arms the one-shot polls of level-triggered fds that fired, unless
    /// their handler changed or dropped the registration meanwhile.
    fn rearm(&mut self) {
        let mut rearm = std::mem::take(&mut self.rearm);
        for &fd in &rearm {
            if self.reg_mut(fd).is_some_and(|r| r.poll == PollState::Idle) {
                self.queue_poll(fd);
            }
        }
        rearm.clear();
        self.rearm = rearm;
    }

    /// Appends `data` to `fd`'s send, if it is not submitted yet.
    fn join_send(&mut self, fd: RawFd, data: Bytes) -> Result<(), Bytes> {
        // A send not submitted yet takes more bytes (a copy, and rare: two
        // writes to one socket in one turn, the first not awaited), so that
        // a turn's writes go out together as plain sends would have.
        let Some(key) = self.reg_mut(fd).and_then(|r| r.send()) else {
            return Err(data);
        };
        match self.sends.get_mut(key) {
            Some(op) if op.queued && op.sent == 0 && op.data.len() + data.len() <= JOIN_LIMIT => {
                let mut joined = bytes::BytesMut::with_capacity(op.data.len() + data.len());
                joined.extend_from_slice(&op.data);
                joined.extend_from_slice(&data);
                op.data = joined.freeze();
                Ok(())
            }
            _ => Err(data),
        }
    }

    fn has_queued_send(&self, reg: &Reg) -> bool {
        reg.send()
            .and_then(|k| self.sends.get(k))
            .is_some_and(|op| op.queued)
    }
}

/// The poll mask for `interest`, and whether the poll is multishot.
fn poll_mask(interest: Interest) -> (u32, bool) {
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

impl Poller for Uring {
    fn register(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let Ok(index) = usize::try_from(fd) else {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        };
        if self.regs.len() <= index {
            self.regs.resize(index + 1, Reg::VACANT);
        }
        if self.regs[index].live {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        self.regs[index] = Reg {
            token,
            generation,
            interest,
            live: true,
            ..Reg::VACANT
        };
        self.queue_poll(fd);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: Token, interest: Interest) -> io::Result<()> {
        let reg = self.reg_mut(fd).ok_or_else(|| not_registered(fd))?;
        reg.token = token; // completions look the token up when they come
        if reg.interest == interest {
            return Ok(());
        }
        reg.interest = interest;
        self.queue_poll(fd);
        Ok(())
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        let reg = self
            .reg_mut(fd)
            .copied()
            .ok_or_else(|| not_registered(fd))?;
        self.regs[fd as usize] = Reg::VACANT;
        self.send_errors.retain(|&(f, _)| f != fd);
        if reg.poll == PollState::Armed {
            self.queued
                .push(Queued::RemovePoll(poll_data(fd, reg.poll_seq)));
        }
        if self.has_queued_send(&reg) {
            self.flush()?;
        }
        // What the kernel could not take at once waits for a peer that may
        // never read, and holds the socket open meanwhile: cancel it, as
        // closing drops a plain stream's unsent queue. At once, not with
        // the next poll: the loop may not poll again soon (or ever).
        if let Some(key) = reg.send()
            && self.sends.contains(key)
        {
            self.queued.push(Queued::CancelSend(SEND_TAG | key as u64));
            self.flush()?;
        }
        Ok(())
    }

    fn poll(&mut self, timeout: Option<Duration>, events: &mut Events) -> io::Result<()> {
        events.clear();
        if !self.stash.is_empty() {
            // Completions a flush took: report them now, and do not wait
            // past them.
            std::mem::swap(events, &mut self.stash);
            self.rearm();
            let pushed = self.push_queued();
            let entered = self.enter(Some(Duration::ZERO));
            self.reap(events);
            return pushed.and(entered);
        }
        self.rearm();
        self.push_queued()?;
        let entered = self.enter(timeout);
        // Completions may be waiting even when the wait itself failed
        // (EINTR): take them now, or they would sit until the next wait.
        self.reap(events);
        entered
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_fd: None,
            reports_hup: true,
            sub_millisecond_timeout: true,
            edge_triggered: true,
            sends: true,
        }
    }

    fn send(&mut self, fd: RawFd, data: Bytes, join: bool) -> Result<(), Bytes> {
        if join {
            return self.join_send(fd, data);
        }
        let Some(reg) = self.reg_mut(fd) else {
            return Err(data);
        };
        if reg.send != NO_OP {
            return Err(data);
        }
        let generation = reg.generation;
        let key = self.sends.insert(SendOp {
            fd,
            generation,
            data,
            sent: 0,
            poll_first: false,
            queued: true,
        });
        self.queued.push(Queued::Send(key));
        if let Some(reg) = self.reg_mut(fd) {
            reg.send = key as u32;
        }
        Ok(())
    }

    fn take_send_error(&mut self, fd: RawFd) -> Option<io::Error> {
        let i = self.send_errors.iter().position(|&(f, _)| f == fd)?;
        let (_, errno) = self.send_errors.swap_remove(i);
        Some(io::Error::from_raw_os_error(errno))
    }

    fn flush(&mut self) -> io::Result<()> {
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

impl Drop for Uring {
    /// Hands over what is queued, then cancels the sends still in flight
    /// and waits (briefly) for the kernel to let go of their buffers.
    fn drop(&mut self) {
        self.rearm.clear();
        let _ = self.flush();
        // Dropped registrations are never resubmitted, so a cancelled or
        // finished send leaves the table for good.
        self.regs.clear();
        for (key, _) in &self.sends {
            self.queued.push(Queued::CancelSend(SEND_TAG | key as u64));
        }
        let deadline = std::time::Instant::now() + DROP_CANCEL_WAIT;
        let mut events = Events::default();
        while !self.sends.is_empty() {
            let now = std::time::Instant::now();
            if now >= deadline || self.push_queued().is_err() {
                break;
            }
            match self.enter(Some(deadline - now)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
            self.reap(&mut events);
        }
        let sends = std::mem::take(&mut self.sends);
        if !sends.is_empty() {
            // The kernel may still read these buffers: leaking them is the
            // safe way out of a ring that would not let go.
            std::mem::forget(sends);
        }
    }
}
