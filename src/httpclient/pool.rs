//! The client's limits and its keep-alive pool: `max_clients` requests at
//! once (the rest wait in a FIFO queue, as Tornado's), at most
//! `max_connections_per_host` connections per origin (a request beyond
//! it waits, FIFO, for one to come back), and idle connections kept for
//! `idle_timeout`, the most recently used taken first.
//!
//! A connection comes back through [`Pool::release`]; a request that
//! gives up while waiting (a timeout drops its future) passes on what it
//! was handed, so nothing granted to a cancelled waiter is lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::{Rc, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::iostream::IOStream;

/// Which connections are interchangeable: an origin (scheme, host, port),
/// or the forward proxy that plain `http://` requests go through. Asked
/// for with borrowed parts; the pool keeps one owned copy per host and
/// shares it (`Rc<Key>`), so a request costs no copy of its host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    pub(crate) secure: bool,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    /// Connections to the forward proxy itself (absolute-form requests).
    pub(crate) forward_proxy: bool,
}

/// A [`Key`] the pool keeps.
#[derive(Debug, PartialEq, Eq)]
struct OwnedKey {
    secure: bool,
    host: Box<str>,
    port: u16,
    forward_proxy: bool,
}

impl OwnedKey {
    fn is(&self, k: &Key<'_>) -> bool {
        self.secure == k.secure
            && self.port == k.port
            && self.forward_proxy == k.forward_proxy
            && *self.host == *k.host
    }
}

/// An open connection.
pub(crate) struct Conn {
    pub(crate) stream: Rc<IOStream>,
    /// It carried a request before (a failure before any response byte
    /// may then be the server's idle close, and worth one retry).
    pub(crate) reused: bool,
    idle_since: Instant,
}

impl Conn {
    pub(crate) fn new(stream: IOStream) -> Conn {
        Conn {
            stream: Rc::new(stream),
            reused: false,
            idle_since: Instant::now(),
        }
    }
}

/// What a request waiting for a connection is handed.
enum Grant {
    Conn(Conn),
    /// Room to open a new connection (already counted as open).
    Permit,
}

/// What [`Pool::checkout`] gives: a pooled connection, or the right to
/// open one (counted against the host's limit until it is released).
pub(crate) enum Lease {
    Idle(InUse),
    Open(Permit),
}

/// A connection carrying a request. Dropped without [`release`](Self::release)
/// (the request was cancelled, a timeout), it closes and its place in
/// the pool is freed.
pub(crate) struct InUse {
    pool: Rc<Pool>,
    key: Rc<OwnedKey>,
    conn: Option<Conn>,
}

impl InUse {
    /// The connection.
    pub(crate) fn conn(&self) -> &Conn {
        // Present until `release` consumes `self`.
        self.conn
            .as_ref()
            .expect("an InUse holds its connection until released")
    }

    /// Back to the pool if `reusable` (idle from `now`), else closed.
    pub(crate) fn release(mut self, reusable: bool, now: Instant) {
        if let Some(conn) = self.conn.take() {
            self.pool.release(&self.key, conn, reusable, now);
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn);
            self.pool.closed(&self.key);
        }
    }
}

/// The right to open one connection to a host. Dropped unused (the
/// connect failed or was cancelled), it goes back to the pool.
pub(crate) struct Permit {
    pool: Rc<Pool>,
    key: Rc<OwnedKey>,
    used: bool,
}

impl Permit {
    /// The new connection now holds the permit's place.
    pub(crate) fn fulfil(mut self, stream: IOStream) -> InUse {
        self.used = true;
        self.pool.stats.opened.set(self.pool.stats.opened.get() + 1);
        InUse {
            pool: self.pool.clone(),
            key: self.key.clone(),
            conn: Some(Conn::new(stream)),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.used {
            self.pool.closed(&self.key);
        }
    }
}

/// One place in a FIFO queue.
struct Waiter<T> {
    value: RefCell<Option<T>>,
    waker: RefCell<Option<Waker>>,
    gone: Cell<bool>,
}

impl<T> Waiter<T> {
    fn new() -> Rc<Waiter<T>> {
        Rc::new(Waiter {
            value: RefCell::new(None),
            waker: RefCell::new(None),
            gone: Cell::new(false),
        })
    }
}

/// Hands `value` to the first waiter still waiting; gives it back if
/// there is none.
fn hand<T>(queue: &mut VecDeque<Rc<Waiter<T>>>, value: T) -> Option<T> {
    while let Some(w) = queue.pop_front() {
        if w.gone.get() {
            continue;
        }
        *w.value.borrow_mut() = Some(value);
        if let Some(waker) = w.waker.borrow_mut().take() {
            waker.wake();
        }
        return None;
    }
    Some(value)
}

struct Host {
    key: Rc<OwnedKey>,
    idle: VecDeque<Conn>,
    /// Connections open (idle, in use, or being opened).
    open: usize,
    waiters: VecDeque<Rc<Waiter<Grant>>>,
}

/// Counters a client keeps (see [`ClientStats`](super::ClientStats)).
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) opened: Cell<u64>,
    pub(crate) reused: Cell<u64>,
    pub(crate) retried: Cell<u64>,
    pub(crate) requests: Cell<u64>,
}

pub(crate) struct Pool {
    max_per_host: usize,
    idle_timeout: Duration,
    free_slots: Cell<usize>,
    slot_waiters: RefCell<VecDeque<Rc<Waiter<()>>>>,
    hosts: RefCell<Vec<Host>>,
    sweep_armed: Cell<bool>,
    pub(crate) stats: Stats,
}

/// A place among the `max_clients` requests running; the next in the
/// queue gets it when this is dropped.
pub(crate) struct Slot(Rc<Pool>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.free_slot();
    }
}

impl Pool {
    pub(crate) fn new(max_clients: usize, max_per_host: usize, idle_timeout: Duration) -> Pool {
        Pool {
            max_per_host: max_per_host.max(1),
            idle_timeout,
            free_slots: Cell::new(max_clients.max(1)),
            slot_waiters: RefCell::new(VecDeque::new()),
            hosts: RefCell::new(Vec::new()),
            sweep_armed: Cell::new(false),
            stats: Stats::default(),
        }
    }

    /// One of the `max_clients` places, if one is free and nobody waits.
    pub(crate) fn try_slot(self: &Rc<Self>) -> Option<Slot> {
        let free = self.free_slots.get();
        if free > 0 && self.slot_waiters.borrow().is_empty() {
            self.free_slots.set(free - 1);
            return Some(Slot(self.clone()));
        }
        None
    }

    /// Waits (FIFO) for one of the `max_clients` places.
    pub(crate) async fn slot(self: &Rc<Self>) -> Slot {
        if let Some(slot) = self.try_slot() {
            return slot;
        }
        let w = Waiter::new();
        self.slot_waiters.borrow_mut().push_back(w.clone());
        let mut guard = Abandon {
            waiter: w.clone(),
            on_grant: Some(|_: ()| self.free_slot()),
        };
        poll_fn(|cx| match w.value.borrow_mut().take() {
            Some(()) => Poll::Ready(()),
            None => {
                *w.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        guard.on_grant = None;
        Slot(self.clone())
    }

    fn free_slot(&self) {
        let rest = hand(&mut self.slot_waiters.borrow_mut(), ());
        if rest.is_some() {
            self.free_slots.set(self.free_slots.get() + 1);
        }
    }

    /// A connection to `key`: an idle one (unless `fresh`), else the right
    /// to open one, else a place in the host's queue. Time spent in the
    /// queue is added to `waited`.
    pub(crate) async fn checkout(
        self: &Rc<Self>,
        key: &Key<'_>,
        fresh: bool,
        waited: &mut Duration,
    ) -> Lease {
        let waiter = {
            let mut hosts = self.hosts.borrow_mut();
            let i = match hosts.iter().position(|h| h.key.is(key)) {
                Some(i) => i,
                None => {
                    hosts.push(Host {
                        key: Rc::new(OwnedKey {
                            secure: key.secure,
                            host: key.host.into(),
                            port: key.port,
                            forward_proxy: key.forward_proxy,
                        }),
                        idle: VecDeque::new(),
                        open: 0,
                        waiters: VecDeque::new(),
                    });
                    hosts.len() - 1
                }
            };
            let host = &mut hosts[i];
            let key = host.key.clone();
            // Read once, and only with a connection to judge: the clock
            // is a measurable share of a request's cost.
            let now = if host.idle.is_empty() {
                None
            } else {
                Some(Instant::now())
            };
            if !fresh {
                while let Some(conn) = host.idle.pop_back() {
                    let now = now.unwrap_or_else(Instant::now);
                    if !self.usable(&conn, now) {
                        host.open -= 1;
                        continue;
                    }
                    return Lease::Idle(self.reuse(&key, conn));
                }
            } else if host.open >= self.max_per_host && !host.idle.is_empty() {
                // A fresh connection wanted at the limit: the oldest idle
                // one makes room (the others stay pooled).
                host.idle.pop_front();
                host.open -= 1;
            }
            if host.open < self.max_per_host {
                host.open += 1;
                return Lease::Open(self.permit(&key));
            }
            let w = Waiter::new();
            host.waiters.push_back(w.clone());
            (w, key)
        };
        let (waiter, key) = waiter;
        let key = &key;
        let since = Instant::now();
        let mut guard = Abandon {
            waiter: waiter.clone(),
            on_grant: Some(|g: Grant| match g {
                Grant::Conn(c) => self.release(key, c, true, Instant::now()),
                Grant::Permit => self.closed(key),
            }),
        };
        let grant = poll_fn(|cx| match waiter.value.borrow_mut().take() {
            Some(g) => Poll::Ready(g),
            None => {
                *waiter.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        guard.on_grant = None;
        let now = Instant::now();
        *waited += now.saturating_duration_since(since);
        match grant {
            Grant::Conn(c) if !fresh && self.usable(&c, now) => Lease::Idle(self.reuse(key, c)),
            // Not usable: it closes here and its place is this request's.
            Grant::Conn(_) | Grant::Permit => Lease::Open(self.permit(key)),
        }
    }

    fn permit(self: &Rc<Self>, key: &Rc<OwnedKey>) -> Permit {
        Permit {
            pool: self.clone(),
            key: key.clone(),
            used: false,
        }
    }

    fn reuse(self: &Rc<Self>, key: &Rc<OwnedKey>, mut conn: Conn) -> InUse {
        conn.reused = true;
        self.stats.reused.set(self.stats.reused.get() + 1);
        InUse {
            pool: self.clone(),
            key: key.clone(),
            conn: Some(conn),
        }
    }

    /// Whether an idle connection may carry a request: not expired, made
    /// on the loop running now (a client's clone used on another loop
    /// cannot use its streams), and nothing arrived while it was idle
    /// (the server's close, or bytes nobody asked for: a late or extra
    /// response would be read as the next one). That is one
    /// `recv(MSG_PEEK)` (about 3% of a keep-alive request's cost here);
    /// trusting the poller's readiness instead was tried and missed bytes
    /// that had arrived but not yet been reported.
    fn usable(&self, conn: &Conn, now: Instant) -> bool {
        let idle = now.saturating_duration_since(conn.idle_since);
        let s = &conn.stream;
        idle <= self.idle_timeout
            && crate::ioloop::IOLoop::try_current().is_ok_and(|lp| lp.ptr_eq(s.io_loop()))
            && !s.is_stale()
    }

    /// A connection is done with its request: back to the pool (handed
    /// to the first request waiting for this host) if `reusable`, else
    /// closed.
    fn release(self: &Rc<Self>, key: &Rc<OwnedKey>, mut conn: Conn, reusable: bool, now: Instant) {
        let reusable = reusable && !conn.stream.is_closed() && conn.stream.buffered() == 0;
        if !reusable {
            drop(conn);
            self.closed(key);
            return;
        }
        conn.idle_since = now;
        let mut hosts = self.hosts.borrow_mut();
        let Some(host) = hosts.iter_mut().find(|h| Rc::ptr_eq(&h.key, key)) else {
            return;
        };
        if let Some(Grant::Conn(conn)) = hand(&mut host.waiters, Grant::Conn(conn)) {
            host.idle.push_back(conn);
            drop(hosts);
            self.arm_sweep();
        }
    }

    /// A connection to `key` closed (or was never opened): the first
    /// waiter may open one in its place.
    fn closed(&self, key: &Rc<OwnedKey>) {
        let mut hosts = self.hosts.borrow_mut();
        let Some(i) = hosts.iter().position(|h| Rc::ptr_eq(&h.key, key)) else {
            return;
        };
        let host = &mut hosts[i];
        if hand(&mut host.waiters, Grant::Permit).is_some() {
            host.open -= 1;
            // Nothing left of the host: forgotten, so a client that meets
            // many hosts (a crawler) keeps only those it has connections to.
            if host.open == 0 && host.waiters.is_empty() {
                hosts.swap_remove(i);
            }
        }
    }

    /// Closes idle connections past `idle_timeout` once it has passed,
    /// and forgets hosts with nothing open; re-armed while any remain.
    fn arm_sweep(self: &Rc<Self>) {
        if self.sweep_armed.replace(true) {
            return;
        }
        let weak: Weak<Pool> = Rc::downgrade(self);
        crate::ioloop::IOLoop::current().call_later(self.idle_timeout, move || {
            if let Some(pool) = weak.upgrade() {
                pool.sweep_armed.set(false);
                if pool.sweep() > 0 {
                    pool.arm_sweep();
                }
            }
        });
    }

    /// Closes expired idle connections; returns how many stay idle.
    fn sweep(&self) -> usize {
        let now = Instant::now();
        let mut hosts = self.hosts.borrow_mut();
        let mut left = 0;
        for host in hosts.iter_mut() {
            let before = host.idle.len();
            host.idle
                .retain(|c| now.saturating_duration_since(c.idle_since) < self.idle_timeout);
            host.open -= before - host.idle.len();
            left += host.idle.len();
        }
        hosts.retain(|h| h.open > 0 || !h.waiters.is_empty());
        left
    }

    /// Idle and open connections, over all hosts.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let hosts = self.hosts.borrow();
        (
            hosts.iter().map(|h| h.idle.len()).sum(),
            hosts.iter().map(|h| h.open).sum(),
        )
    }

    /// Closes every idle connection.
    pub(crate) fn close_idle(&self) {
        let mut hosts = self.hosts.borrow_mut();
        for host in hosts.iter_mut() {
            host.open -= host.idle.len();
            host.idle.clear();
        }
    }
}

/// Marks a waiter gone if its future is dropped before it is served; what
/// it was handed meanwhile goes to `on_grant` (passed on). Disarmed
/// (`on_grant: None`) once the waiter has taken what it was handed.
struct Abandon<T, F: FnMut(T)> {
    waiter: Rc<Waiter<T>>,
    on_grant: Option<F>,
}

impl<T, F: FnMut(T)> Drop for Abandon<T, F> {
    fn drop(&mut self) {
        let Some(on_grant) = &mut self.on_grant else {
            return;
        };
        self.waiter.gone.set(true);
        if let Some(v) = self.waiter.value.borrow_mut().take() {
            on_grant(v);
        }
    }
}
