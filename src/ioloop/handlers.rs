//! The handler table: fd handlers in a slab, found from poller events by
//! generation-tagged [`Token`]s and from fds by a dense fd index.

use std::os::fd::RawFd;

use slab::Slab;

use super::IOLoop;
use super::error::Error;
use super::guard::Work;
use super::interest::{Interest, Ready};
use super::token::Token;

pub(crate) type Handler = Box<dyn FnMut(RawFd, Ready)>;

/// Fds the loop watches for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    /// The remote queue's wake-up fd.
    Remote,
    /// The signal self-pipe.
    Signals,
}

enum Kind {
    /// A user handler; `None` while it runs (it is moved out so that it can
    /// call back into the loop with no borrow held).
    User(Option<Handler>),
    Internal(Internal),
}

struct Entry {
    fd: RawFd,
    generation: u32,
    interest: Interest,
    kind: Kind,
}

/// Marks an fd with no handler in `by_fd`.
const NO_SLOT: u32 = u32::MAX;

pub(crate) struct HandlerTable {
    slab: Slab<Entry>,
    /// fd -> slab slot; fds are small dense integers, so a vector beats a map.
    by_fd: Vec<u32>,
    next_generation: u32,
}

impl HandlerTable {
    pub(crate) fn new() -> HandlerTable {
        HandlerTable {
            slab: Slab::new(),
            by_fd: Vec::new(),
            next_generation: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    fn slot_of(&self, fd: RawFd) -> Option<usize> {
        let slot = *self.by_fd.get(usize::try_from(fd).ok()?)?;
        (slot != NO_SLOT).then_some(slot as usize)
    }

    fn token_of(&self, slot: usize) -> Token {
        Token::new(slot as u32, self.slab[slot].generation)
    }

    /// Removes every entry, returning the user handlers to drop outside the
    /// borrow and the fds the poller was watching.
    pub(crate) fn drain(&mut self) -> (Vec<Handler>, Vec<RawFd>) {
        self.by_fd.clear();
        let mut watched = Vec::new();
        let handlers = self
            .slab
            .drain()
            .filter_map(|e| {
                if !e.interest.is_empty() {
                    watched.push(e.fd);
                }
                match e.kind {
                    Kind::User(h) => h,
                    Kind::Internal(_) => None,
                }
            })
            .collect();
        (handlers, watched)
    }
}

impl IOLoop {
    /// Calls `handler(fd, ready)` whenever `fd` is ready for `interest`.
    ///
    /// Level-triggered, as in Tornado: the handler is called on every turn
    /// while the fd stays ready, so it need not drain the fd in one call.
    /// `ERROR` and `HUP` are always reported (unless the interest is
    /// [`Interest::NONE`], which parks the handler). The handler should own
    /// whatever the fd belongs to; call [`IOLoop::remove_handler`] before
    /// closing the fd.
    ///
    /// Fails with [`Error::AlreadyRegistered`] if `fd` has a handler, and
    /// with [`Error::FdTooLarge`] if the backend cannot watch it (select).
    ///
    /// ```
    /// use std::io::Write;
    /// use std::os::fd::AsRawFd;
    /// use std::os::unix::net::UnixStream;
    /// use cyclone::{IOLoop, Interest};
    ///
    /// let lp = IOLoop::new().unwrap();
    /// let (a, mut b) = UnixStream::pair().unwrap();
    /// b.write_all(b"x").unwrap();
    /// let l2 = lp.clone();
    /// lp.add_handler(a.as_raw_fd(), Interest::READ, move |fd, ready| {
    ///     assert!(ready.is_readable());
    ///     l2.remove_handler(fd);
    ///     l2.stop();
    /// })
    /// .unwrap();
    /// lp.start().unwrap();
    /// ```
    pub fn add_handler<F>(&self, fd: RawFd, interest: Interest, handler: F) -> Result<(), Error>
    where
        F: FnMut(RawFd, Ready) + 'static,
    {
        self.insert_handler(fd, interest, Kind::User(Some(Box::new(handler))))
    }

    pub(crate) fn add_internal(&self, fd: RawFd, which: Internal) -> Result<(), Error> {
        self.insert_handler(fd, Interest::READ, Kind::Internal(which))
    }

    fn insert_handler(&self, fd: RawFd, interest: Interest, kind: Kind) -> Result<(), Error> {
        let i = &self.inner;
        if i.closed.get() {
            return Err(Error::Closed);
        }
        let Ok(fd_index) = usize::try_from(fd) else {
            return Err(std::io::Error::from_raw_os_error(libc::EBADF).into());
        };
        if let Some(limit) = i.caps.max_fd
            && fd >= limit
        {
            return Err(Error::FdTooLarge {
                fd,
                limit,
                backend: i.backend,
            });
        }
        if interest.is_edge() && !i.caps.edge_triggered {
            return Err(Error::EdgeUnsupported(i.backend));
        }
        let mut table = i.handlers.borrow_mut();
        if table.slot_of(fd).is_some() {
            return Err(Error::AlreadyRegistered(fd));
        }
        let generation = table.next_generation;
        table.next_generation = generation.wrapping_add(1);
        let slot = table.slab.vacant_key();
        if !interest.is_empty() {
            let token = Token::new(slot as u32, generation);
            i.poller.borrow_mut().register(fd, token, interest)?;
        }
        table.slab.insert(Entry {
            fd,
            generation,
            interest,
            kind,
        });
        if table.by_fd.len() <= fd_index {
            table.by_fd.resize(fd_index + 1, NO_SLOT);
        }
        table.by_fd[fd_index] = slot as u32;
        Ok(())
    }

    /// Changes what `fd`'s handler is called for. Setting the interest it
    /// already has makes no system call; [`Interest::NONE`] parks the
    /// handler (the poller stops watching the fd until the interest is set
    /// again). Fails with [`Error::NotRegistered`] for an unknown fd.
    pub fn update_handler(&self, fd: RawFd, interest: Interest) -> Result<(), Error> {
        let i = &self.inner;
        if interest.is_edge() && !i.caps.edge_triggered {
            return Err(Error::EdgeUnsupported(i.backend));
        }
        let mut table = i.handlers.borrow_mut();
        let slot = table.slot_of(fd).ok_or(Error::NotRegistered(fd))?;
        let old = table.slab[slot].interest;
        if old == interest {
            return Ok(());
        }
        let token = table.token_of(slot);
        let mut poller = i.poller.borrow_mut();
        match (old.is_empty(), interest.is_empty()) {
            (true, false) => poller.register(fd, token, interest)?,
            (false, true) => poller.deregister(fd)?,
            _ => poller.modify(fd, token, interest)?,
        }
        table.slab[slot].interest = interest;
        drop((poller, table));
        if interest.is_empty() {
            self.flush_if_stopped();
        }
        Ok(())
    }

    /// Stops watching `fd` and drops its handler. Returns whether there was
    /// one; removing an unknown fd is a no-op. Safe to call from any
    /// handler, including `fd`'s own: an event for `fd` still pending in the
    /// current batch is never delivered.
    pub fn remove_handler(&self, fd: RawFd) -> bool {
        let i = &self.inner;
        let entry = {
            let mut table = i.handlers.borrow_mut();
            let Some(slot) = table.slot_of(fd) else {
                return false;
            };
            table.by_fd[fd as usize] = NO_SLOT;
            table.slab.remove(slot)
        };
        if !entry.interest.is_empty()
            && let Err(e) = i.poller.borrow_mut().deregister(fd)
        {
            // The fd was closed before its handler was removed. If that was
            // its last descriptor the kernel already forgot it; if a
            // duplicate lives on, its registration does too and will show up
            // as stale events. Either way it is the caller's ordering bug.
            tracing::debug!("deregistering fd {fd}: {e} (close fds after remove_handler)");
        }
        self.flush_if_stopped();
        drop(entry); // outside the borrows: it may own user code
        true
    }

    /// A backend that queues its work (io_uring: an armed poll holds its
    /// fd's file, and so the socket, open) hands a deregistration over at
    /// once when no poll is coming: the caller may close the fd next and
    /// expect the peer to see it.
    fn flush_if_stopped(&self) {
        if !self.inner.running.get() && self.inner.caps.sends {
            self.flush_poller();
        }
    }

    /// Delivers one poller event, unless it is stale.
    pub(crate) fn dispatch(&self, token: Token, ready: Ready) {
        let i = &self.inner;
        let slot = token.slot() as usize;
        let (fd, ready, handler) = {
            let mut table = i.handlers.borrow_mut();
            let entry = match table.slab.get_mut(slot) {
                Some(e) if e.generation == token.generation() => e,
                // Removed (maybe replaced) earlier in this batch.
                _ => {
                    i.stale_events.set(i.stale_events.get() + 1);
                    return;
                }
            };
            // Only what the handler asked for (now, not at poll time).
            let ready = ready & entry.interest.deliverable();
            if ready.is_empty() {
                return;
            }
            match &mut entry.kind {
                Kind::User(h) => (entry.fd, ready, h.take()),
                Kind::Internal(which) => {
                    let which = *which;
                    drop(table);
                    self.dispatch_internal(which);
                    return;
                }
            }
        };
        let Some(mut handler) = handler else {
            return;
        };
        self.guarded(Work::Handler(fd), || handler(fd, ready));
        let mut table = i.handlers.borrow_mut();
        if let Some(entry) = table.slab.get_mut(slot)
            && entry.generation == token.generation()
            && let Kind::User(h @ None) = &mut entry.kind
        {
            *h = Some(handler);
            return;
        }
        drop(table);
        drop(handler); // it removed itself while running
    }

    fn dispatch_internal(&self, which: Internal) {
        match which {
            Internal::Remote => self.drain_remote(),
            Internal::Signals => self.dispatch_signals(),
        }
    }
}
