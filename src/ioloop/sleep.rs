//! Timer futures: [`sleep`], [`sleep_until`], [`timeout`] and
//! [`Sleep::within`].
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
    sleep_until(deadline_in(duration))
}

/// `duration` from now; a duration past any clock (`Duration::MAX`: "no
/// limit") is capped at [`far_future`] rather than overflowing.
pub(crate) fn deadline_in(duration: Duration) -> Instant {
    Instant::now()
        .checked_add(duration)
        .map_or_else(far_future, |at| at.min(far_future()))
}

/// Completes at `deadline` (never earlier).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
    }
}

/// A registered timer and the deadline it was registered for.
#[derive(Debug)]
struct Registered {
    lp: IOLoop,
    handle: TimeoutHandle,
    at: Instant,
}

/// The future returned by [`sleep`]. Dropping it cancels its timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    timer: Option<Registered>,
}

impl Sleep {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline, lazily: nothing happens until the next poll.
    /// Moved later, the timer already registered fires at the old deadline,
    /// finds it moved and re-arms once; moved earlier, the next poll
    /// re-registers it. So a per-connection timeout pushed forward on every
    /// request, and polled only when a read really waits, touches the timer
    /// wheel about once per timeout period (nginx's lazy timer, for
    /// futures).
    pub fn reset(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Runs `fut` until it completes or `limit` passes, on this timer:
    /// `Err(Timeout)` then. `fut` is polled first and the deadline set only
    /// if it has to wait, so work that is ready at once costs no clock read
    /// and no timer work; with [`reset`](Self::reset)'s laziness, one
    /// `Sleep` per connection serves all its idle, read and write timeouts.
    ///
    /// ```
    /// use std::time::Duration;
    /// cyclone::run_sync(async {
    ///     let mut timer = cyclone::sleep(Duration::from_secs(3600));
    ///     let quick = timer.within(Duration::from_millis(50), async { 7 }).await;
    ///     assert_eq!(quick, Ok(7));
    ///     let slow = timer.within(Duration::from_millis(1), std::future::pending::<()>()).await;
    ///     assert_eq!(slow, Err(cyclone::Timeout));
    /// });
    /// ```
    pub fn within<F: Future>(&mut self, limit: Duration, fut: F) -> Within<'_, F> {
        Within {
            fut,
            timer: self,
            limit,
            armed: false,
        }
    }
}

/// A deadline nothing reaches (about 34 years away): a timer's resting
/// value, and what a huge "no limit" duration is capped to.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(1 << 30)
}

pin_project_lite::pin_project! {
    /// The future returned by [`Sleep::within`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Within<'t, F> {
        #[pin]
        fut: F,
        timer: &'t mut Sleep,
        limit: Duration,
        armed: bool,
    }
}

impl<F: Future> Future for Within<'_, F> {
    type Output = Result<F::Output, Timeout>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if !*this.armed {
            *this.armed = true;
            this.timer.reset(deadline_in(*this.limit));
        }
        match Pin::new(&mut **this.timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Timeout)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(t) = self.timer.take() {
                t.lp.remove_timeout(t.handle);
            }
            return Poll::Ready(());
        }
        if let Some(t) = &self.timer
            && t.at <= self.deadline
            && t.lp.set_timer_waker(t.handle, cx.waker())
        {
            return Poll::Pending; // registered no later than needed
        }
        if let Some(t) = &self.timer
            && t.at > self.deadline
        {
            t.lp.remove_timeout(t.handle); // moved earlier: would fire late
        }
        // Not registered yet, or it fired before a deadline moved later.
        let lp = match self.timer.take() {
            Some(t) => t.lp,
            None => IOLoop::current(),
        };
        let at = self.deadline;
        let handle = lp.add_timer(at, TimerAction::Wake(cx.waker().clone()));
        self.timer = Some(Registered { lp, handle, at });
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.lp.remove_timeout(t.handle);
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
