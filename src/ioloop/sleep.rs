//! Timer futures: [`sleep`], [`sleep_until`] and [`timeout`].
//!
//! They use the loop's timer heap directly (a waker in the heap, no boxed
//! callback), on the loop that is current when they are first polled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::Timeout;
use super::timers::TimerAction;
use super::{IOLoop, TimeoutHandle};

/// Completes once `duration` has passed (never earlier).
///
/// ```
/// use std::time::{Duration, Instant};
/// let t0 = Instant::now();
/// cyclone::run_sync(cyclone::sleep(Duration::from_millis(2)));
/// assert!(t0.elapsed() >= Duration::from_millis(2));
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline` (never earlier).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// The future returned by [`sleep`]. Dropping it cancels its timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Option<(IOLoop, TimeoutHandle)>,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some((lp, t)) = self.timer.take() {
                lp.remove_timeout(t);
            }
            return Poll::Ready(());
        }
        if let Some((lp, t)) = &self.timer
            && lp.set_timer_waker(*t, cx.waker())
        {
            return Poll::Pending;
        }
        let lp = IOLoop::current();
        let t = lp.add_timer(self.deadline, TimerAction::Wake(cx.waker().clone()));
        self.timer = Some((lp, t));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((lp, t)) = self.timer.take() {
            lp.remove_timeout(t);
        }
    }
}

/// Runs `future`, giving up after `duration` with `Err(Timeout)`; the future
/// is then dropped.
///
/// ```
/// use std::time::Duration;
/// let r = cyclone::run_sync(cyclone::timeout(
///     Duration::from_millis(1),
///     std::future::pending::<()>(),
/// ));
/// assert_eq!(r, Err(cyclone::Timeout));
/// ```
pub fn timeout<F: Future>(duration: Duration, future: F) -> TimeoutFuture<F> {
    TimeoutFuture {
        future,
        sleep: sleep(duration),
    }
}

pin_project_lite::pin_project! {
    /// The future returned by [`timeout`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct TimeoutFuture<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for TimeoutFuture<F> {
    type Output = Result<F::Output, Timeout>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Timeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}
