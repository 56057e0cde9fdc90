//! `IOLoop::current()`: which loop this thread is using.
//!
//! A running loop is current while it runs (loops can nest through
//! `run_sync` on different loops); when none runs, the thread's default loop
//! is current, created on first use.

use std::cell::RefCell;

use super::IOLoop;
use super::error::Error;
use super::task_key::TaskKey;

thread_local! {
    /// Loops running on this thread, innermost last.
    static RUNNING: RefCell<Vec<IOLoop>> = const { RefCell::new(Vec::new()) };
    /// The loop `current()` returns when none is running.
    static DEFAULT: RefCell<Option<IOLoop>> = const { RefCell::new(None) };
}

pub(crate) fn push_running(lp: &IOLoop) {
    RUNNING.with(|r| r.borrow_mut().push(lp.clone()));
}

pub(crate) fn pop_running() {
    // Dropped outside the borrow: the last handle may be in here.
    let popped = RUNNING.with(|r| r.borrow_mut().pop());
    drop(popped);
}

/// Makes `lp` the thread's default loop if it has none yet (Tornado's
/// rule: the first loop a thread creates is its current loop).
pub(crate) fn set_default_if_unset(lp: &IOLoop) {
    let _ = DEFAULT.try_with(|d| {
        if let Ok(mut d) = d.try_borrow_mut()
            && d.is_none()
        {
            *d = Some(lp.clone());
        }
    });
}

pub(crate) fn current() -> Result<IOLoop, Error> {
    if let Some(lp) = RUNNING.with(|r| r.borrow().last().cloned()) {
        return Ok(lp);
    }
    if let Some(lp) = DEFAULT.with(|d| d.borrow().clone()) {
        return Ok(lp);
    }
    let lp = IOLoop::new()?;
    DEFAULT.with(|d| *d.borrow_mut() = Some(lp.clone()));
    Ok(lp)
}

/// Schedules a task on its loop without a lock or a system call, if that
/// loop is the one running on this thread. Returns false otherwise (another
/// thread, or the loop is not running): the caller then uses the remote
/// queue.
pub(crate) fn wake_local(loop_id: u64, key: TaskKey) -> bool {
    RUNNING
        .try_with(|r| match r.try_borrow() {
            Ok(stack) => match stack.last() {
                Some(lp) if lp.inner.id == loop_id => {
                    lp.inner.ready.borrow_mut().push(key);
                    true
                }
                _ => false,
            },
            Err(_) => false,
        })
        .unwrap_or(false)
}
