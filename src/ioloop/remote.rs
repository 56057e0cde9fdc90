//! [`Remote`]: the one way into a loop from another thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::Error;
use super::task_key::TaskKey;
use super::waker::WakerFd;

/// Work queued from another thread.
pub(crate) enum RemoteItem {
    Callback(Box<dyn FnOnce() + Send>),
    Wake(TaskKey),
    Stop,
}

struct Queue {
    items: Vec<RemoteItem>,
    /// Set (under the lock) when the loop closes: later pushes are refused
    /// instead of piling up where nothing will ever run them.
    closed: bool,
}

/// State shared between a loop and its [`Remote`] handles and task wakers.
pub(crate) struct RemoteShared {
    queue: Mutex<Queue>,
    /// True from the first push after the loop last drained the queue until
    /// it drains it again: only that first push writes the wake-up fd.
    notified: AtomicBool,
    waker: WakerFd,
    /// Wake-up writes made so far (diagnostics: shows the coalescing).
    wakeups: AtomicU64,
}

impl RemoteShared {
    pub(crate) fn new() -> std::io::Result<RemoteShared> {
        Ok(RemoteShared {
            queue: Mutex::new(Queue {
                items: Vec::new(),
                closed: false,
            }),
            notified: AtomicBool::new(false),
            waker: WakerFd::new()?,
            wakeups: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds plain data; a panic elsewhere cannot leave it torn.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, item: RemoteItem) -> Result<(), Error> {
        {
            let mut q = self.lock();
            if q.closed {
                return Err(Error::Closed);
            }
            q.items.push(item);
        }
        if !self.notified.swap(true, Ordering::SeqCst) {
            self.wakeups.fetch_add(1, Ordering::Relaxed);
            self.waker.wake();
        }
        Ok(())
    }

    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    pub(crate) fn waker_fd(&self) -> std::os::fd::RawFd {
        self.waker.read_fd()
    }

    /// Called by the loop when the wake-up fd is readable. The order matters:
    /// drain the fd, then clear the flag, then take the queue, so a push
    /// that races with us either lands in this batch or writes the fd again.
    pub(crate) fn take(&self, into: &mut Vec<RemoteItem>) {
        self.waker.drain();
        self.notified.store(false, Ordering::SeqCst);
        std::mem::swap(&mut self.lock().items, into);
    }

    /// Refuses further pushes and returns what was queued, to be dropped by
    /// the caller outside any borrow of the loop.
    pub(crate) fn close(&self) -> Vec<RemoteItem> {
        let mut q = self.lock();
        q.closed = true;
        std::mem::take(&mut q.items)
    }
}

/// A handle to a loop that other threads can use: `Send + Sync + Clone`.
///
/// Everything else about an [`IOLoop`](crate::IOLoop) must be touched only
/// on its own thread; a `Remote` is how another thread hands it work.
/// Wake-ups are coalesced: however many callbacks arrive between two polls,
/// the loop is woken by a single eventfd write.
///
/// ```
/// use cyclone::IOLoop;
///
/// let lp = IOLoop::new().unwrap();
/// let remote = lp.remote();
/// let answer = lp.run_sync(async move {
///     let (tx, rx) = futures::channel::oneshot::channel();
///     std::thread::spawn(move || {
///         remote.add_callback(move || tx.send(42).unwrap()).unwrap();
///     });
///     rx.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// ```
#[derive(Clone)]
pub struct Remote {
    pub(crate) shared: Arc<RemoteShared>,
}

impl Remote {
    /// Runs `callback` on the loop's thread on its next turn, waking the
    /// loop if it is waiting. Fails with [`Error::Closed`] once the loop is
    /// closed.
    pub fn add_callback<F: FnOnce() + Send + 'static>(&self, callback: F) -> Result<(), Error> {
        self.shared.push(RemoteItem::Callback(Box::new(callback)))
    }

    /// Asks the loop to stop after its current turn, from any thread.
    pub fn stop(&self) -> Result<(), Error> {
        self.shared.push(RemoteItem::Stop)
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}
