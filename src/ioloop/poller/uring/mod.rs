//! The io_uring backend (Linux 6.1 and later, `CYCLONE_POLLER=uring`).
//!
//! Readiness comes from `POLL_ADD` requests: multishot for edge-triggered
//! interest (a completion per wake-up of the fd, as `EPOLLET` gives), one
//! shot and re-armed for level-triggered interest. On top of the contract,
//! the backend sends on the loop's behalf ([`Sender`]): the send is
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
//! The backend in four files: this one holds the registrations and the
//! [`Poller`] methods; `readiness.rs` the polls (arming, completions,
//! re-arming), `send.rs` the sends made for the loop ([`Sender`]), and
//! `ring.rs` the ring itself (building entries, `io_uring_enter`, reaping
//! completions, flushing).
//!
//! The ring is single-issuer with deferred task running: completions are
//! processed only when the loop waits, in its own thread, which halves the
//! kernel time per request against the default mode (measured with the
//! io_uring floor in `bench/peers`).

use std::io;
use std::os::fd::RawFd;
use std::sync::OnceLock;
use std::time::Duration;

use io_uring::IoUring;
use slab::Slab;

use super::{Capabilities, Events, Poller, Sender, not_registered};
use crate::ioloop::interest::Interest;
use crate::ioloop::token::Token;

mod readiness;
mod ring;
mod send;

use send::SendOp;

/// Submission queue entries (the completion queue gets twice as many):
/// one turn of a busy loop queues a send and maybe a re-arm per
/// connection; past this, a turn submits in several calls.
const RING_ENTRIES: u32 = 1024;

/// Completion queue entries per submission entry: a turn of many ready
/// connections brings a poll completion each besides its sends'. Past
/// this the kernel keeps the overflow and hands it over later (the ring
/// has `IORING_FEAT_NODROP` since 5.5), so this sizes the common case.
const CQ_PER_SQ: u32 = 4;

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

/// What waits for the next submission.
#[derive(Clone, Copy)]
enum Queued {
    /// The poll numbered `seq` of `fd` (skipped if no longer current).
    Poll {
        fd: RawFd,
        seq: u32,
    },
    Send(usize),
    /// Cancels a submitted poll (replaced, or its fd deregistered) or send
    /// (its fd deregistered, or the ring dropped), named by its user data.
    /// `ASYNC_CANCEL` for polls too, not `POLL_REMOVE`: that fails with
    /// `EALREADY` while a wake-up of the poll waits in task work (a FIN
    /// right after the data, say), and the multishot poll then stays
    /// armed, holding the socket open after its fd is closed, so the peer
    /// never sees the close. A cancel marks the poll cancelled whatever
    /// owns it, and its wake-up completes it.
    Cancel(u64),
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
                .push(Queued::Cancel(poll_data(fd, reg.poll_seq)));
        }
        if self.has_queued_send(&reg) {
            Sender::flush(self)?;
        }
        // What the kernel could not take at once waits for a peer that may
        // never read, and holds the socket open meanwhile: cancel it, as
        // closing drops a plain stream's unsent queue. At once, not with
        // the next poll: the loop may not poll again soon (or ever).
        if let Some(key) = reg.send()
            && self.sends.contains(key)
        {
            self.queued.push(Queued::Cancel(SEND_TAG | key as u64));
            Sender::flush(self)?;
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

    fn sender(&mut self) -> Option<&mut dyn Sender> {
        Some(self)
    }
}

impl Drop for Uring {
    /// Hands over what is queued, then cancels the sends still in flight
    /// and waits (briefly) for the kernel to let go of their buffers.
    fn drop(&mut self) {
        self.rearm.clear();
        let _ = Sender::flush(self);
        // Dropped registrations are never resubmitted, so a cancelled or
        // finished send leaves the table for good.
        self.regs.clear();
        for (key, _) in &self.sends {
            self.queued.push(Queued::Cancel(SEND_TAG | key as u64));
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
