//! The loop as a futures executor: [`IOLoop::spawn`], [`JoinHandle`],
//! [`IOLoop::run_sync`].
//!
//! Tasks live in a slab on the loop; a task's waker is `Send`. Woken on the
//! loop's own thread while it runs, a task goes onto a local ready queue (no
//! lock, no system call); woken from anywhere else, through the remote
//! queue. Ready tasks run in the callbacks phase of a turn.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::error::Timeout;
use super::guard::{Work, panic_message};
use super::remote::RemoteShared;
use super::task_key::TaskKey;
use super::{IOLoop, current, remote_wake};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;

struct TaskWaker {
    key: TaskKey,
    loop_id: u64,
    /// Set from wake until the task is polled: a task is queued once however
    /// often it is woken in between.
    scheduled: AtomicBool,
    remote: Arc<RemoteShared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        if !current::wake_local(self.loop_id, self.key) {
            remote_wake(&self.remote, self.key);
        }
    }
}

struct Task {
    generation: u32,
    /// Cancelled by [`IOLoop::abort_task`]: dropped, not polled, when its
    /// turn comes.
    aborted: bool,
    /// Spawn order, for log messages.
    id: u64,
    /// `None` while the task is being polled; the waker is moved out with
    /// it (moving is free, cloning would cost two atomic operations).
    running: Option<(LocalFuture, Waker)>,
    shared: Arc<TaskWaker>,
}

pub(crate) struct Tasks {
    slab: Slab<Task>,
    next_generation: u32,
    next_id: u64,
}

impl Tasks {
    pub(crate) fn new() -> Tasks {
        Tasks {
            slab: Slab::new(),
            next_generation: 0,
            next_id: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    fn get_mut(&mut self, key: TaskKey) -> Option<&mut Task> {
        self.slab
            .get_mut(key.slot as usize)
            .filter(|t| t.generation == key.generation)
    }

    /// Removes every task, returning the futures to drop outside the borrow.
    pub(crate) fn drain(&mut self) -> Vec<LocalFuture> {
        self.slab
            .drain()
            .filter_map(|t| t.running.map(|r| r.0))
            .collect()
    }
}

/// Why a [`JoinHandle`] has no value.
pub enum JoinError {
    /// The task panicked; the payload is what `panic!` was given.
    Panicked(Box<dyn Any + Send>),
    /// The task was aborted, or dropped unfinished when its loop closed.
    Cancelled,
}

impl JoinError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, JoinError::Panicked(_))
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "Panicked({:?})", panic_message(&**p)),
            JoinError::Cancelled => f.write_str("Cancelled"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "task panicked: {}", panic_message(&**p)),
            JoinError::Cancelled => f.write_str("task was cancelled"),
        }
    }
}

impl std::error::Error for JoinError {}

struct JoinState<T> {
    result: Option<Result<T, JoinError>>,
    finished: bool,
    aborted: bool,
    join_waker: Option<Waker>,
    task_waker: Option<Waker>,
}

impl<T> JoinState<T> {
    fn complete(&mut self, result: Result<T, JoinError>) -> Option<Waker> {
        self.result = Some(result);
        self.finished = true;
        self.join_waker.take()
    }
}

pin_project_lite::pin_project! {
    /// The spawned future plus what links it to its [`JoinHandle`]. Panics
    /// of the user's future are caught here, so the handle learns of them;
    /// dropped unfinished (aborted, or its loop closed), it resolves the
    /// handle with [`JoinError::Cancelled`].
    struct TaskFuture<F: Future> {
        #[pin]
        future: F,
        state: Rc<RefCell<JoinState<F::Output>>>,
        id: u64,
        log_panics: bool,
    }

    impl<F: Future> PinnedDrop for TaskFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let waker = {
                let Ok(mut st) = this.state.try_borrow_mut() else {
                    return;
                };
                if st.finished {
                    return;
                }
                st.complete(Err(JoinError::Cancelled))
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

fn finish<T>(state: &RefCell<JoinState<T>>, result: Result<T, JoinError>) {
    let waker = state.borrow_mut().complete(result);
    if let Some(w) = waker {
        w.wake();
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.state.borrow().aborted {
            finish(this.state, Err(JoinError::Cancelled));
            return Poll::Ready(());
        }
        let future = this.future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => {
                finish(this.state, Ok(v));
                Poll::Ready(())
            }
            Err(payload) => {
                if *this.log_panics {
                    tracing::error!(
                        work = %Work::Task(*this.id),
                        "uncaught panic in task {}: {}",
                        this.id,
                        panic_message(&*payload)
                    );
                }
                finish(this.state, Err(JoinError::Panicked(payload)));
                Poll::Ready(())
            }
        }
    }
}

/// Awaits a spawned task's output: `Ok(value)`, or a [`JoinError`] if it
/// panicked or was cancelled. Dropping the handle detaches the task (it
/// keeps running).
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
    key: TaskKey,
}

impl<T> JoinHandle<T> {
    /// Whether the task has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }

    /// Cancels the task: its future is dropped without being polled again,
    /// and the handle resolves to [`JoinError::Cancelled`]. Does nothing if
    /// the task already finished.
    pub fn abort(&self) {
        let mut st = self.state.borrow_mut();
        if st.finished || st.aborted {
            return;
        }
        st.aborted = true;
        let waker = st.task_waker.take();
        drop(st);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn take_result(&self) -> Option<Result<T, JoinError>> {
        self.state.borrow_mut().result.take()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = self.state.borrow_mut();
        if let Some(r) = st.result.take() {
            return Poll::Ready(r);
        }
        if st.finished {
            // Polled again after completion: the value was already taken.
            return Poll::Ready(Err(JoinError::Cancelled));
        }
        match &mut st.join_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl IOLoop {
    /// Runs `future` as a task on this loop and returns a handle to await
    /// its output. The future need not be `Send`: it stays on this thread.
    /// It is first polled on the next turn. On a closed loop the future is
    /// dropped and the handle resolves to [`JoinError::Cancelled`].
    ///
    /// ```
    /// use cyclone::IOLoop;
    ///
    /// let lp = IOLoop::new().unwrap();
    /// let task = lp.spawn(async { 6 * 7 });
    /// assert_eq!(lp.run_sync(task).unwrap(), 42);
    /// ```
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.spawn_inner(future, true)
    }

    fn spawn_inner<F>(&self, future: F, log_panics: bool) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(RefCell::new(JoinState {
            result: None,
            finished: false,
            aborted: false,
            join_waker: None,
            task_waker: None,
        }));
        let st = state.clone();
        let (key, waker) = self.add_task(move |id| {
            Box::pin(TaskFuture {
                future,
                state: st,
                id,
                log_panics,
            })
        });
        // Dropped unrun on a closed loop, the future has resolved the
        // handle already (Cancelled).
        state.borrow_mut().task_waker = waker;
        JoinHandle { state, key }
    }

    /// Runs `future` as a task nobody awaits: no [`JoinHandle`], so no
    /// shared result cell (about 100 bytes per task), which matters for a
    /// server's thousands of idle connections. A panic is caught and logged
    /// like any task's. [`abort_task`](Self::abort_task) cancels it.
    pub(crate) fn spawn_detached<F>(&self, future: F) -> TaskKey
    where
        F: Future<Output = ()> + 'static,
    {
        self.add_task(move |_| Box::pin(future)).0
    }

    /// Gives the next task its key and log id, builds its future with the
    /// id, and queues it to be polled on the next turn; returns the key
    /// and the task's waker. On a closed loop the future is dropped at
    /// once (no waker), its slot left vacant, so the key matches nothing.
    fn add_task(&self, make: impl FnOnce(u64) -> LocalFuture) -> (TaskKey, Option<Waker>) {
        let i = &self.inner;
        let mut tasks = i.tasks.borrow_mut();
        let generation = tasks.next_generation;
        tasks.next_generation = generation.wrapping_add(1);
        let id = tasks.next_id;
        tasks.next_id += 1;
        let key = TaskKey {
            slot: tasks.slab.vacant_key() as u32,
            generation,
        };
        let future = make(id);
        if i.closed.get() {
            drop(tasks);
            drop(future); // outside the borrow: dropping runs user code
            return (key, None);
        }
        let shared = Arc::new(TaskWaker {
            key,
            loop_id: i.id,
            scheduled: AtomicBool::new(true),
            remote: i.remote.clone(),
        });
        let waker = Waker::from(shared.clone());
        tasks.slab.insert(Task {
            generation,
            aborted: false,
            id,
            running: Some((future, waker.clone())),
            shared,
        });
        drop(tasks);
        i.ready.borrow_mut().push(key);
        (key, Some(waker))
    }

    /// Cancels a task from [`spawn_detached`](Self::spawn_detached): its
    /// future is dropped, without being polled again, when its turn to run
    /// comes (this turn or the next; not here, so a task may abort itself
    /// or one whose drop needs what the caller holds borrowed). Does
    /// nothing if it already ended.
    pub(crate) fn abort_task(&self, key: TaskKey) {
        let mut tasks = self.inner.tasks.borrow_mut();
        let Some(task) = tasks.get_mut(key) else {
            return;
        };
        task.aborted = true;
        let shared = task.shared.clone();
        drop(tasks);
        shared.wake_by_ref();
    }

    /// Polls every task woken so far (tasks woken meanwhile wait for the next
    /// turn, like callbacks).
    pub(crate) fn run_tasks(&self) {
        let i = &self.inner;
        let mut batch = std::mem::take(&mut *i.spare_ready.borrow_mut());
        std::mem::swap(&mut batch, &mut *i.ready.borrow_mut());
        for key in batch.drain(..) {
            self.poll_task(key);
        }
        *i.spare_ready.borrow_mut() = batch;
    }

    fn poll_task(&self, key: TaskKey) {
        let i = &self.inner;
        let (mut future, waker, id) = {
            let mut tasks = i.tasks.borrow_mut();
            let Some(task) = tasks.get_mut(key) else {
                return; // finished or cancelled since it was woken
            };
            if task.aborted {
                let removed = tasks.slab.remove(key.slot as usize);
                drop(tasks);
                drop(removed); // outside the borrow: dropping runs user code
                return;
            }
            let Some((future, waker)) = task.running.take() else {
                return;
            };
            task.shared.scheduled.store(false, Ordering::Release);
            (future, waker, task.id)
        };
        let mut cx = Context::from_waker(&waker);
        let polled = self.guarded(Work::Task(id), || future.as_mut().poll(&mut cx));
        if let Some(Poll::Pending) = polled {
            let mut tasks = i.tasks.borrow_mut();
            if let Some(task) = tasks.get_mut(key) {
                task.running = Some((future, waker));
                return;
            }
        } else {
            let removed = {
                let mut tasks = i.tasks.borrow_mut();
                let live = tasks.get_mut(key).is_some();
                live.then(|| tasks.slab.remove(key.slot as usize))
            };
            drop(removed);
        }
        drop((future, waker)); // outside the borrow: dropping runs user code
    }

    fn cancel_task(&self, key: TaskKey) {
        let removed = {
            let mut tasks = self.inner.tasks.borrow_mut();
            let live = tasks.get_mut(key).is_some();
            live.then(|| tasks.slab.remove(key.slot as usize))
        };
        drop(removed);
    }

    /// Runs the loop until `future` completes and returns its output.
    ///
    /// If the future panics, the panic is re-raised here, in the caller.
    ///
    /// # Panics
    /// If the loop is already running or closed, or if [`IOLoop::stop`] is
    /// called before the future completes.
    pub fn run_sync<F>(&self, future: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match self.run_until(future, None) {
            Ok(v) => v,
            Err(Timeout) => unreachable!("no deadline was set"),
        }
    }

    /// Like [`IOLoop::run_sync`], but gives up after `timeout`: the future is
    /// dropped and `Err(Timeout)` returned.
    pub fn run_sync_timeout<F>(&self, future: F, timeout: Duration) -> Result<F::Output, Timeout>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.run_until(future, Some(Instant::now() + timeout))
    }

    fn run_until<F>(&self, future: F, deadline: Option<Instant>) -> Result<F::Output, Timeout>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let running = match self.enter() {
            Ok(guard) => guard,
            Err(e) => panic!("run_sync: {e}"),
        };
        let handle = self.spawn_inner(future, false);
        let timed_out = Rc::new(std::cell::Cell::new(false));
        let timer = deadline.map(|at| {
            let flag = timed_out.clone();
            self.call_at(at, move || flag.set(true))
        });
        let mut failure = None;
        let done = || handle.is_finished() || timed_out.get() || self.inner.stop_requested.get();
        while !done() {
            if let Err(e) = self.run_once(&done) {
                failure = Some(e);
                break;
            }
        }
        if let Some(t) = timer {
            self.remove_timeout(t);
        }
        drop(running);
        match handle.take_result() {
            Some(Ok(v)) => Ok(v),
            Some(Err(JoinError::Panicked(payload))) => resume_unwind(payload),
            Some(Err(JoinError::Cancelled)) => panic!("run_sync: the future was cancelled"),
            None => {
                self.cancel_task(handle.key);
                if timed_out.get() {
                    return Err(Timeout);
                }
                if let Some(e) = failure {
                    panic!("run_sync: the loop failed: {e}");
                }
                self.inner.stop_requested.set(false);
                panic!("run_sync: the loop was stopped before the future completed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::ioloop::Backend;

    /// Runs `test` on a fresh loop of every backend.
    fn on_every_backend(test: impl Fn(IOLoop)) {
        for backend in [Backend::Epoll, Backend::Poll, Backend::Select] {
            test(IOLoop::builder().backend(backend).build().unwrap());
        }
    }

    /// Lets the loop take `n` turns.
    fn turns(lp: &IOLoop, n: usize) {
        struct Yield(usize);
        impl Future for Yield {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                if self.0 == 0 {
                    return Poll::Ready(());
                }
                self.0 -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
        lp.run_sync(Yield(n));
    }

    /// Never completes; counts its polls and notes its drop.
    struct Pending {
        polls: Rc<Cell<usize>>,
        dropped: Rc<Cell<bool>>,
    }

    impl Future for Pending {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            cx.waker().wake_by_ref(); // would be polled every turn
            Poll::Pending
        }
    }

    impl Drop for Pending {
        fn drop(&mut self) {
            self.dropped.set(true);
        }
    }

    fn pending() -> (Pending, Rc<Cell<usize>>, Rc<Cell<bool>>) {
        let polls = Rc::new(Cell::new(0));
        let dropped = Rc::new(Cell::new(false));
        let p = Pending {
            polls: polls.clone(),
            dropped: dropped.clone(),
        };
        (p, polls, dropped)
    }

    /// A detached task that sets the returned flag.
    fn spawn_flag_setter(lp: &IOLoop) -> Rc<Cell<bool>> {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        lp.spawn_detached(async move { r.set(true) });
        ran
    }

    #[test]
    fn a_detached_task_runs_to_completion_and_leaves_the_table() {
        on_every_backend(|lp| {
            let ran = spawn_flag_setter(&lp);
            turns(&lp, 2);
            assert!(ran.get());
            assert_eq!(lp.inner.tasks.borrow().len(), 0);
        });
    }

    #[test]
    fn an_aborted_detached_task_is_dropped_without_another_poll() {
        on_every_backend(|lp| {
            let (fut, polls, dropped) = pending();
            let key = lp.spawn_detached(fut);
            turns(&lp, 2);
            let before = polls.get();
            assert!(before >= 1 && !dropped.get());
            lp.abort_task(key);
            turns(&lp, 2);
            assert!(dropped.get());
            assert_eq!(polls.get(), before);
            assert_eq!(lp.inner.tasks.borrow().len(), 0);
        });
    }

    #[test]
    fn a_detached_task_may_abort_itself() {
        on_every_backend(|lp| {
            let own: Rc<Cell<Option<TaskKey>>> = Rc::new(Cell::new(None));
            let polls = Rc::new(Cell::new(0));
            let (o, p, l) = (own.clone(), polls.clone(), lp.clone());
            let key = lp.spawn_detached(std::future::poll_fn(move |cx| {
                p.set(p.get() + 1);
                if let Some(k) = o.get() {
                    l.abort_task(k);
                }
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            }));
            own.set(Some(key));
            turns(&lp, 4);
            assert_eq!(polls.get(), 1);
            assert_eq!(lp.inner.tasks.borrow().len(), 0);
        });
    }

    #[test]
    fn aborting_an_ended_task_spares_the_task_that_reuses_its_slot() {
        on_every_backend(|lp| {
            let old = lp.spawn_detached(async {});
            turns(&lp, 2);
            // Freed slots are reused last-freed first, and `turns`' own
            // task was freed after `old`: two spawns reach `old`'s slot.
            let (a, a_polls, a_dropped) = pending();
            let (b, b_polls, b_dropped) = pending();
            let a_key = lp.spawn_detached(a);
            let b_key = lp.spawn_detached(b);
            let (new, polls, dropped) = if a_key.slot == old.slot {
                (a_key, a_polls, a_dropped)
            } else {
                assert_eq!(b_key.slot, old.slot);
                (b_key, b_polls, b_dropped)
            };
            lp.abort_task(old);
            turns(&lp, 2);
            assert!(!dropped.get());
            assert!(polls.get() >= 1);
            lp.abort_task(new);
            turns(&lp, 2);
            assert!(dropped.get());
        });
    }

    #[test]
    fn a_panicking_detached_task_is_removed_and_the_loop_goes_on() {
        on_every_backend(|lp| {
            lp.spawn_detached(async { panic!("detached task failure") });
            let ran = spawn_flag_setter(&lp);
            turns(&lp, 2);
            assert!(ran.get());
            assert_eq!(lp.inner.tasks.borrow().len(), 0);
        });
    }
}
