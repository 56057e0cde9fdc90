//! The IOLoop: one thread, one loop.
//!
//! An [`IOLoop`] watches file descriptors through a poller [`Backend`] chosen at run
//! time, runs callbacks and timeouts, and dispatches each ready fd to its
//! handler. It is also a futures executor ([`IOLoop::spawn`],
//! [`IOLoop::run_sync`]), so callback code and `async` code mix on one loop.
//!
//! # One turn of the loop
//!
//! [`IOLoop::start`] repeats these phases until [`IOLoop::stop`]:
//!
//! 1. **Callbacks.** The callbacks (and woken tasks) queued so far are
//!    taken as one batch and run. Callbacks added while the batch runs wait
//!    for the next turn, so a callback that re-adds itself cannot starve I/O.
//! 2. **Timeouts.** Every timeout whose deadline has passed runs, in
//!    deadline order (equal deadlines in the order they were added). One
//!    removed by an earlier timeout of the same batch does not run.
//! 3. **Poll timeout.** Zero if callbacks are pending, else the time to the
//!    next deadline (rounded up, so nothing fires early and nothing spins),
//!    else forever.
//! 4. **Poll**, retried on `EINTR`.
//! 5. **Dispatch** each event to its handler. A handler removed, or whose fd
//!    was closed and reused, during the batch never gets a stale event:
//!    tokens carry a generation.
//!
//! # Threads
//!
//! An `IOLoop` is a cheap-to-clone handle (an `Rc`) and is neither `Send`
//! nor `Sync`: the hot path takes no locks. Other threads reach a loop
//! through [`IOLoop::remote`], whose [`Remote::add_callback`] is the only
//! thread-safe entry point (Tornado's rule, checked by the compiler here).
//!
//! # Failures
//!
//! A panic in a callback, timeout, fd handler, signal handler or task is
//! caught and logged (through `tracing`) with what it was, and the loop goes
//! on. [`IOLoop::run_sync`] re-raises its own future's panic to its caller.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use cyclone::IOLoop;
//!
//! let lp = IOLoop::new().unwrap();
//! let l2 = lp.clone();
//! lp.add_callback(move || println!("first turn"));
//! lp.call_later(Duration::from_millis(5), move || l2.stop());
//! lp.start().unwrap();
//! ```

mod async_fd;
mod backend;
mod current;
mod error;
mod executor;
mod guard;
mod handlers;
mod interest;
mod periodic;
mod poller;
mod remote;
mod signal;
mod sleep;
mod task_key;
mod timers;
mod token;
mod waker;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use async_fd::{Async, Readable, Writable};
pub use backend::{Backend, POLLER_ENV};
pub use error::{Error, Timeout};
pub use executor::{JoinError, JoinHandle};
pub(crate) use guard::panic_message as panic_message_of;
pub(crate) use guard::{CatchUnwind, running_at};
pub use interest::{Interest, Ready};
pub use periodic::PeriodicCallback;
pub use poller::Capabilities;
use poller::Poller;
pub use remote::Remote;
pub(crate) use sleep::far_future;
pub use sleep::{Sleep, TimeoutFuture, Within, sleep, sleep_until, timeout};
pub use timers::TimeoutHandle;
pub use token::Token;

use executor::Tasks;
use guard::Work;
use handlers::HandlerTable;
use poller::Events;
use remote::{RemoteItem, RemoteShared};
use signal::SignalState;
pub(crate) use task_key::TaskKey;
use timers::{TimerAction, Timers};

type Callback = Box<dyn FnOnce()>;

/// Events read per poll before dispatching; see the epoll backend for the
/// reason behind the number.
const EVENTS_CAPACITY: usize = 1024;

/// Gives each loop a process-unique id, so a task waker can tell whether the
/// loop running on its thread is its own.
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

/// Set when the first `IOLoop` of the process is created: forking after
/// that would copy a loop (and its epoll fd) into every child, so
/// [`fork_processes`](crate::process::fork_processes) refuses.
static LOOP_CREATED: AtomicBool = AtomicBool::new(false);

/// Whether this process has created an `IOLoop` yet.
pub(crate) fn loop_was_created() -> bool {
    LOOP_CREATED.load(Ordering::SeqCst)
}

pub(crate) struct Inner {
    id: u64,
    backend: Backend,
    caps: Capabilities,
    poller: RefCell<Box<dyn Poller>>,
    events: RefCell<Events>,
    handlers: RefCell<HandlerTable>,
    callbacks: RefCell<Vec<Callback>>,
    /// The previous batch's vector, kept to swap in without allocating.
    spare_callbacks: RefCell<Vec<Callback>>,
    ready: RefCell<Vec<TaskKey>>,
    spare_ready: RefCell<Vec<TaskKey>>,
    tasks: RefCell<Tasks>,
    timers: RefCell<Timers>,
    due: RefCell<Vec<TimeoutHandle>>,
    remote: Arc<RemoteShared>,
    remote_batch: RefCell<Vec<RemoteItem>>,
    signals: RefCell<Option<SignalState>>,
    running: Cell<bool>,
    stop_requested: Cell<bool>,
    closed: Cell<bool>,
    turns: Cell<u64>,
    stale_events: Cell<u64>,
    blocking_threshold: Cell<Option<Duration>>,
}

/// The event loop. See the [module documentation](self) for the turn order,
/// the threading rules and failure handling.
#[derive(Clone)]
pub struct IOLoop {
    pub(crate) inner: Rc<Inner>,
}

/// A non-owning handle, for closures the loop itself stores (an owning one
/// would be a reference cycle).
#[derive(Clone)]
pub(crate) struct WeakLoop(Weak<Inner>);

impl WeakLoop {
    pub(crate) fn upgrade(&self) -> Option<IOLoop> {
        self.0.upgrade().map(|inner| IOLoop { inner })
    }
}

/// Configures an [`IOLoop`] before it is created.
///
/// ```
/// use cyclone::{Backend, IOLoop};
///
/// let lp = IOLoop::builder().backend(Backend::Poll).build().unwrap();
/// assert_eq!(lp.backend(), Backend::Poll);
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    backend: Option<Backend>,
    blocking_threshold: Option<Duration>,
}

impl Builder {
    /// Uses this backend, whatever `CYCLONE_POLLER` says.
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = Some(backend);
        self
    }

    /// See [`IOLoop::set_blocking_log_threshold`].
    pub fn blocking_log_threshold(mut self, threshold: Duration) -> Builder {
        self.blocking_threshold = Some(threshold);
        self
    }

    /// Creates the loop. Without an explicit backend, `CYCLONE_POLLER`
    /// chooses one; an unknown name there is an error, not a silent default.
    pub fn build(self) -> Result<IOLoop, Error> {
        LOOP_CREATED.store(true, Ordering::SeqCst);
        let backend = match self.backend {
            Some(b) => b,
            None => Backend::from_env()?,
        };
        let poller = backend.open()?;
        let remote = Arc::new(RemoteShared::new()?);
        let lp = IOLoop {
            inner: Rc::new(Inner {
                id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
                backend,
                caps: poller.capabilities(),
                poller: RefCell::new(poller),
                events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
                handlers: RefCell::new(HandlerTable::new()),
                callbacks: RefCell::new(Vec::new()),
                spare_callbacks: RefCell::new(Vec::new()),
                ready: RefCell::new(Vec::new()),
                spare_ready: RefCell::new(Vec::new()),
                tasks: RefCell::new(Tasks::new()),
                timers: RefCell::new(Timers::new()),
                due: RefCell::new(Vec::new()),
                remote: remote.clone(),
                remote_batch: RefCell::new(Vec::new()),
                signals: RefCell::new(None),
                running: Cell::new(false),
                stop_requested: Cell::new(false),
                closed: Cell::new(false),
                turns: Cell::new(0),
                stale_events: Cell::new(0),
                blocking_threshold: Cell::new(self.blocking_threshold),
            }),
        };
        lp.add_internal(remote.waker_fd(), handlers::Internal::Remote)?;
        current::set_default_if_unset(&lp);
        Ok(lp)
    }
}

/// Counters for diagnostics and tests; reading them costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Turns run so far (each turn polls once).
    pub turns: u64,
    /// Registered fd handlers, the loop's own wake-up fd included.
    pub handlers: usize,
    /// Callbacks waiting for the next turn.
    pub pending_callbacks: usize,
    /// Poller events dropped because their registration was gone. A few
    /// are normal (a handler removed during a batch); a steadily growing
    /// count means an fd was closed without `remove_handler` while a
    /// duplicate of it keeps the kernel registration alive.
    pub stale_events: u64,
    /// Timeouts scheduled and not yet run or removed.
    pub timeouts: usize,
    /// Entries in the timer wheel, cancelled tombstones included; bounded by
    /// compaction to about twice the live timeouts (or 1,024).
    pub timer_entries: usize,
    /// Spawned tasks not yet finished.
    pub tasks: usize,
    /// Times another thread had to write the wake-up fd; callbacks sent
    /// between two polls share one.
    pub remote_wakeups: u64,
}

impl IOLoop {
    /// A loop on the backend `CYCLONE_POLLER` names, or the platform's best
    /// (epoll on Linux). The first loop a thread creates becomes that
    /// thread's [`IOLoop::current`].
    pub fn new() -> Result<IOLoop, Error> {
        Builder::default().build()
    }

    /// Configures a loop before creating it.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The loop this thread is using: the running one (innermost, if loops
    /// nest), else the thread's default loop: the first loop created on
    /// this thread (as in Tornado), or one created now if there is none.
    /// So code that sets things up before `start()` (a server's `listen`,
    /// say) finds the loop the program created.
    ///
    /// # Panics
    /// If the default loop cannot be created (a bad `CYCLONE_POLLER` value,
    /// or no fds left); [`IOLoop::try_current`] returns that error instead.
    pub fn current() -> IOLoop {
        match current::current() {
            Ok(lp) => lp,
            Err(e) => panic!("IOLoop::current(): cannot create the thread's loop: {e}"),
        }
    }

    /// Like [`IOLoop::current`], returning creation errors.
    pub fn try_current() -> Result<IOLoop, Error> {
        current::current()
    }

    /// The backend this loop polls with.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// What the backend can do.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    /// A handle other threads can use to reach this loop.
    pub fn remote(&self) -> Remote {
        Remote {
            shared: self.inner.remote.clone(),
        }
    }

    pub(crate) fn downgrade(&self) -> WeakLoop {
        WeakLoop(Rc::downgrade(&self.inner))
    }

    /// Whether `self` and `other` are handles to the same loop.
    pub fn ptr_eq(&self, other: &IOLoop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }

    /// Whether [`IOLoop::start`] (or `run_sync`) is running this loop.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether [`IOLoop::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.get()
    }

    /// Diagnostic counters.
    pub fn stats(&self) -> LoopStats {
        let i = &self.inner;
        let timers = i.timers.borrow();
        LoopStats {
            turns: i.turns.get(),
            handlers: i.handlers.borrow().len(),
            stale_events: i.stale_events.get(),
            pending_callbacks: i.callbacks.borrow().len(),
            timeouts: timers.len(),
            timer_entries: timers.entries(),
            tasks: i.tasks.borrow().len(),
            remote_wakeups: i.remote.wakeups(),
        }
    }

    // ----- callbacks -------------------------------------------------------

    /// Runs `callback` on the loop's next turn. Callbacks run in the order
    /// they were added; one added while callbacks run waits for the next
    /// turn. On the loop's own thread this takes no lock and makes no
    /// system call. After [`IOLoop::close`] the callback is dropped unrun.
    pub fn add_callback<F: FnOnce() + 'static>(&self, callback: F) {
        if self.inner.closed.get() {
            return;
        }
        self.inner.callbacks.borrow_mut().push(Box::new(callback));
    }

    // ----- timeouts --------------------------------------------------------

    /// Runs `callback` once `delay` has passed (monotonic clock), never
    /// earlier.
    pub fn call_later<F: FnOnce() + 'static>(&self, delay: Duration, callback: F) -> TimeoutHandle {
        self.call_at(sleep::deadline_in(delay), callback)
    }

    /// Runs `callback` at `deadline` (monotonic clock), never earlier.
    /// Timeouts with equal deadlines run in the order they were added.
    pub fn call_at<F: FnOnce() + 'static>(&self, deadline: Instant, callback: F) -> TimeoutHandle {
        self.add_timer(deadline, TimerAction::Callback(Box::new(callback)))
    }

    pub(crate) fn add_timer(&self, deadline: Instant, action: TimerAction) -> TimeoutHandle {
        let handle = self.inner.timers.borrow_mut().insert(deadline, action);
        if self.inner.closed.get() {
            // Nothing will ever run it: drop it now (the handle stays valid
            // to remove, harmlessly).
            self.remove_timeout(handle);
        }
        handle
    }

    pub(crate) fn set_timer_waker(&self, handle: TimeoutHandle, waker: &std::task::Waker) -> bool {
        let replaced = self.inner.timers.borrow_mut().set_waker(handle, waker);
        replaced.is_some() // the old waker drops here, outside the borrow
    }

    /// Cancels a pending timeout. Removing one that already ran, or was
    /// already removed, does nothing.
    pub fn remove_timeout(&self, handle: TimeoutHandle) {
        let action = self.inner.timers.borrow_mut().cancel(handle);
        drop(action); // outside the borrow: dropping it may run user code
    }

    // ----- running ---------------------------------------------------------

    /// Runs the loop until [`IOLoop::stop`] is called.
    ///
    /// Fails with [`Error::AlreadyRunning`] if the loop is running, and with
    /// [`Error::Closed`] after [`IOLoop::close`]. If `stop()` was called
    /// before `start()`, `start()` returns at once (and consumes the stop).
    /// While it runs, this loop is [`IOLoop::current`].
    pub fn start(&self) -> Result<(), Error> {
        let _running = self.enter()?;
        if self.inner.stop_requested.replace(false) {
            return Ok(());
        }
        let stopped = || self.inner.stop_requested.get();
        while !stopped() {
            self.run_once(&stopped)?;
        }
        self.inner.stop_requested.set(false);
        Ok(())
    }

    /// Makes [`IOLoop::start`] return after the current turn. Called before
    /// `start()`, it makes the next `start()` return at once. From another
    /// thread, use [`Remote::stop`].
    pub fn stop(&self) {
        self.inner.stop_requested.set(true);
    }

    /// Closes the loop: drops every handler, callback, timeout, task and
    /// signal handler (and so whatever they own: a handler that owns its
    /// socket closes it), and refuses further work. Handlers capture loop
    /// handles, so this is also what breaks those reference cycles.
    /// Closing a closed loop does nothing.
    ///
    /// Fails with [`Error::AlreadyRunning`] while the loop runs.
    pub fn close(&self) -> Result<(), Error> {
        let i = &self.inner;
        if i.running.get() {
            return Err(Error::AlreadyRunning);
        }
        if i.closed.replace(true) {
            return Ok(());
        }
        self.close_signals();
        // Take everything out first, then drop it with no borrow held:
        // dropping user closures may call back into the loop.
        let (handlers, watched) = i.handlers.borrow_mut().drain();
        {
            // Stop watching before the handlers (which may own the fds)
            // drop: a backend that holds the fds (io_uring's armed polls)
            // would otherwise keep the sockets open.
            let mut poller = i.poller.borrow_mut();
            for fd in watched {
                let _ = poller.deregister(fd);
            }
        }
        let callbacks = std::mem::take(&mut *i.callbacks.borrow_mut());
        let timers = i.timers.borrow_mut().drain();
        let tasks = i.tasks.borrow_mut().drain();
        let remote = i.remote.close();
        i.ready.borrow_mut().clear();
        drop((handlers, callbacks, timers, tasks, remote));
        self.flush_poller();
        Ok(())
    }

    /// Marks the loop running and current; undone when the guard drops, even
    /// if a turn fails.
    fn enter(&self) -> Result<RunningGuard<'_>, Error> {
        if self.inner.closed.get() {
            return Err(Error::Closed);
        }
        if self.inner.running.replace(true) {
            return Err(Error::AlreadyRunning);
        }
        current::push_running(self);
        Ok(RunningGuard(self))
    }

    /// One turn: callbacks, timeouts, poll timeout, poll, dispatch.
    ///
    /// `done` is the caller's exit condition (`stop()` called, `run_sync`'s
    /// future finished or timed out). It is checked again before polling:
    /// the callbacks and timeouts just run may have met it, and polling then
    /// could block with nothing left to wake the loop.
    fn run_once(&self, done: &dyn Fn() -> bool) -> Result<(), Error> {
        let i = &self.inner;
        i.turns.set(i.turns.get() + 1);
        self.run_callbacks();
        self.run_tasks();
        self.run_timeouts();
        if done() {
            return Ok(());
        }
        let timeout = self.poll_timeout();
        let mut events = std::mem::take(&mut *i.events.borrow_mut());
        // A turn's work, for the metrics: from the end of one wait (the
        // handlers dispatched after it) to the start of the next.
        crate::stats::turn_ends();
        let polled = i.poller.borrow_mut().poll(timeout, &mut events);
        crate::stats::turn_begins();
        match polled {
            Ok(()) => {}
            // A signal interrupted the wait; its handler (if any) has made
            // the signal pipe readable, which the next poll reports.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                *i.events.borrow_mut() = events;
                return Err(e.into());
            }
        }
        for index in 0..events.len() {
            if let Some(ev) = events.get(index) {
                self.dispatch(ev.token, ev.ready);
            }
        }
        events.clear();
        *i.events.borrow_mut() = events;
        Ok(())
    }

    fn run_callbacks(&self) {
        let i = &self.inner;
        let mut batch = std::mem::take(&mut *i.spare_callbacks.borrow_mut());
        std::mem::swap(&mut batch, &mut *i.callbacks.borrow_mut());
        crate::stats::callbacks_run(batch.len() as u64);
        for callback in batch.drain(..) {
            self.guarded(Work::Callback, callback);
        }
        *i.spare_callbacks.borrow_mut() = batch;
    }

    fn run_timeouts(&self) {
        let i = &self.inner;
        if i.timers.borrow().is_empty() {
            return; // spare the clock read
        }
        let mut due = std::mem::take(&mut *i.due.borrow_mut());
        i.timers.borrow_mut().collect_due(Instant::now(), &mut due);
        crate::stats::timers_run(due.len() as u64);
        for handle in due.drain(..) {
            let action = i.timers.borrow_mut().take(handle);
            match action {
                Some(TimerAction::Callback(cb)) => {
                    self.guarded(Work::Timeout, cb);
                }
                Some(TimerAction::Wake(waker)) => waker.wake(),
                None => {} // removed by an earlier timeout of this batch
            }
        }
        *i.due.borrow_mut() = due;
    }

    fn has_pending_work(&self) -> bool {
        let i = &self.inner;
        !i.callbacks.borrow().is_empty() || !i.ready.borrow().is_empty() || i.stop_requested.get()
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.has_pending_work() {
            return Some(Duration::ZERO);
        }
        let mut timers = self.inner.timers.borrow_mut();
        if timers.is_empty() {
            return None;
        }
        timers.next_timeout(Instant::now())
    }

    /// Moves work queued by other threads onto this thread's queues.
    fn drain_remote(&self) {
        let i = &self.inner;
        let mut batch = std::mem::take(&mut *i.remote_batch.borrow_mut());
        i.remote.take(&mut batch);
        for item in batch.drain(..) {
            match item {
                RemoteItem::Callback(cb) => i.callbacks.borrow_mut().push(cb),
                RemoteItem::Wake(key) => i.ready.borrow_mut().push(key),
                RemoteItem::Stop => i.stop_requested.set(true),
            }
        }
        *i.remote_batch.borrow_mut() = batch;
    }

    // ----- sends made by the poller ------------------------------------------

    /// Hands `data` to the backend to send on the watched socket `fd` with
    /// the loop's next wait (io_uring), reported to `fd`'s handler as
    /// [`Ready::SENT`]; with `join`, adds it to `fd`'s send if the backend
    /// has not submitted that yet (one `SENT` then reports both). Gives
    /// `data` back when the backend makes no sends, the loop is not running
    /// (nothing would submit it), `fd` is not watched, or the send in
    /// flight rules it out: the caller then writes itself.
    pub(crate) fn submit_send(
        &self,
        fd: std::os::fd::RawFd,
        data: bytes::Bytes,
        join: bool,
    ) -> Result<(), bytes::Bytes> {
        let i = &self.inner;
        if !i.caps.sends || !i.running.get() {
            return Err(data);
        }
        match i.poller.borrow_mut().sender() {
            Some(sender) => sender.send(fd, data, join),
            None => Err(data),
        }
    }

    /// Why the last send [`IOLoop::submit_send`] made on `fd` failed, if
    /// it did (told once).
    pub(crate) fn take_send_error(&self, fd: std::os::fd::RawFd) -> Option<std::io::Error> {
        self.inner.poller.borrow_mut().sender()?.take_send_error(fd)
    }

    /// Has the backend submit what it queued (io_uring) and take what
    /// completes at once, for the next poll to report.
    pub(crate) fn flush_poller(&self) {
        // try_: this also runs while unwinding, perhaps from inside a
        // poller borrow.
        let Ok(mut poller) = self.inner.poller.try_borrow_mut() else {
            return;
        };
        let Some(sender) = poller.sender() else {
            return;
        };
        if let Err(e) = sender.flush() {
            tracing::warn!("submitting the poller's queued work: {e}");
        }
    }

    // ----- errors and slow work ---------------------------------------------

    /// Logs any single callback, timeout, handler or task poll that holds the
    /// loop longer than `threshold` (with what it was and how long it took);
    /// `None` turns the check off. Costs two clock reads per piece of work
    /// while on.
    pub fn set_blocking_log_threshold(&self, threshold: Option<Duration>) {
        self.inner.blocking_threshold.set(threshold);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A loop dropped without close(): refuse further remote work (and
        // drop what was queued) instead of letting it pile up forever.
        drop(self.remote.close());
    }
}

struct RunningGuard<'a>(&'a IOLoop);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        // Work queued in the last turn (io_uring sends) must not wait for a
        // next turn that may never come.
        self.0.flush_poller();
        self.0.inner.running.set(false);
        current::pop_running();
    }
}

impl std::fmt::Debug for IOLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IOLoop")
            .field("id", &self.inner.id)
            .field("backend", &self.inner.backend)
            .field("running", &self.inner.running.get())
            .field("closed", &self.inner.closed.get())
            .finish()
    }
}

/// Runs `future` to completion on [`IOLoop::current`]; see
/// [`IOLoop::run_sync`].
pub fn run_sync<F: Future + 'static>(future: F) -> F::Output {
    IOLoop::current().run_sync(future)
}

/// Spawns `future` on [`IOLoop::current`]; see [`IOLoop::spawn`].
pub fn spawn<F: Future + 'static>(future: F) -> JoinHandle<F::Output> {
    IOLoop::current().spawn(future)
}

/// Wakes `key`'s task from a remote thread (used by task wakers).
pub(crate) fn remote_wake(shared: &RemoteShared, key: TaskKey) {
    // A closed loop has dropped the task; nothing left to wake.
    let _ = shared.push(RemoteItem::Wake(key));
}
