//! [`PeriodicCallback`]: a callback run every `period`, on a fixed schedule.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::guard::Work;
use super::{IOLoop, TimeoutHandle};

/// Calls a function every `period` on a loop.
///
/// The schedule is fixed to the start time: runs are due at `start +
/// k·period`. A run that overruns (or a loop that was blocked) skips the
/// missed periods instead of running them back to back, and the next run
/// lands on the original grid. With jitter `j`, each period is scaled by a
/// random factor in `[1 - j/2, 1 + j/2]`, which spreads out many timers
/// started together. A panicking callback is logged and the schedule goes
/// on.
///
/// ```
/// use std::{cell::Cell, rc::Rc, time::Duration};
/// use cyclone::{IOLoop, PeriodicCallback};
///
/// let lp = IOLoop::new().unwrap();
/// let ticks = Rc::new(Cell::new(0));
/// let (t, l) = (ticks.clone(), lp.clone());
/// let pc = PeriodicCallback::new(Duration::from_millis(1), move || {
///     t.set(t.get() + 1);
///     if t.get() == 3 {
///         l.stop();
///     }
/// });
/// pc.start_on(&lp);
/// lp.start().unwrap();
/// pc.stop();
/// assert_eq!(ticks.get(), 3);
/// ```
#[derive(Clone)]
pub struct PeriodicCallback {
    inner: Rc<PcInner>,
}

struct PcInner {
    period: Duration,
    jitter: Cell<f64>,
    callback: RefCell<Box<dyn FnMut()>>,
    running: Cell<bool>,
    lp: RefCell<Option<IOLoop>>,
    next: Cell<Instant>,
    timeout: Cell<Option<TimeoutHandle>>,
    /// Bumped by every start and stop; a timer from an older epoch (one
    /// scheduled before a stop/start inside the callback) does nothing.
    epoch: Cell<u64>,
    rng: Cell<u64>,
}

/// The next deadline after `next` that is not in the past at `now`.
///
/// This is the whole scheduling rule, kept free of clocks and loops so that
/// it can be tested with made-up times. `period` is already jittered. If
/// `next` is still ahead of `now` (the clock moved backwards, or a run came
/// early), one period is added so the schedule always advances.
pub(crate) fn next_deadline(next: Instant, now: Instant, period: Duration) -> Instant {
    let p = period.as_nanos().max(1);
    if next > now {
        return next + period;
    }
    let behind = (now - next).as_nanos();
    let periods = behind / p + 1;
    next + Duration::from_nanos((periods * p).min(u64::MAX as u128) as u64)
}

/// `period` scaled by `1 + jitter * (r - 0.5)`, for `r` in `[0, 1)`.
pub(crate) fn jittered(period: Duration, jitter: f64, r: f64) -> Duration {
    if jitter <= 0.0 {
        return period;
    }
    period.mul_f64((1.0 + jitter * (r - 0.5)).max(0.0))
}

impl PeriodicCallback {
    /// A stopped periodic callback; [`start`](Self::start) runs it.
    ///
    /// # Panics
    /// If `period` is zero (it would run on every turn and starve I/O).
    pub fn new<F: FnMut() + 'static>(period: Duration, callback: F) -> PeriodicCallback {
        assert!(
            !period.is_zero(),
            "PeriodicCallback period must be positive"
        );
        // Seed the jitter generator differently for each callback.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let seed = clock ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        PeriodicCallback {
            inner: Rc::new(PcInner {
                period,
                jitter: Cell::new(0.0),
                callback: RefCell::new(Box::new(callback)),
                running: Cell::new(false),
                lp: RefCell::new(None),
                next: Cell::new(Instant::now()),
                timeout: Cell::new(None),
                epoch: Cell::new(0),
                rng: Cell::new(seed | 1),
            }),
        }
    }

    /// Sets the jitter fraction (0.1 = ±5 %); 0 turns it off.
    pub fn with_jitter(self, jitter: f64) -> PeriodicCallback {
        self.inner.jitter.set(jitter.clamp(0.0, 1.0));
        self
    }

    /// Starts on [`IOLoop::current`]; the first run is one period from now.
    pub fn start(&self) {
        self.start_on(&IOLoop::current());
    }

    /// Starts on `lp`; the first run is one period from now. Starting a
    /// running callback does nothing.
    pub fn start_on(&self, lp: &IOLoop) {
        if self.inner.running.replace(true) {
            return;
        }
        self.inner.epoch.set(self.inner.epoch.get() + 1);
        *self.inner.lp.borrow_mut() = Some(lp.clone());
        self.inner.next.set(Instant::now());
        self.schedule_next();
    }

    /// Stops it; a pending run is cancelled. Stopping twice is harmless.
    pub fn stop(&self) {
        self.inner.running.set(false);
        self.inner.epoch.set(self.inner.epoch.get() + 1);
        let lp = self.inner.lp.borrow_mut().take();
        if let (Some(lp), Some(t)) = (lp, self.inner.timeout.take()) {
            lp.remove_timeout(t);
        }
    }

    /// Whether it is started.
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    fn random(&self) -> f64 {
        // xorshift64: plenty for spreading timers; no dependency needed.
        let mut x = self.inner.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.inner.rng.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn schedule_next(&self) {
        let inner = &self.inner;
        if !inner.running.get() {
            return;
        }
        let Some(lp) = inner.lp.borrow().clone() else {
            return;
        };
        let period = jittered(inner.period, inner.jitter.get(), self.random());
        let next = next_deadline(inner.next.get(), Instant::now(), period);
        inner.next.set(next);
        let me = self.clone();
        let epoch = inner.epoch.get();
        inner
            .timeout
            .set(Some(lp.call_at(next, move || me.run(epoch))));
    }

    fn run(&self, epoch: u64) {
        let inner = &self.inner;
        if epoch != inner.epoch.get() || !inner.running.get() {
            return;
        }
        inner.timeout.set(None);
        let lp = inner.lp.borrow().clone();
        if let Some(lp) = lp {
            // Caught here, not by the timeout's guard, so that a panic does
            // not end the schedule.
            lp.guarded(Work::Periodic, || (inner.callback.borrow_mut())());
        }
        // Restarted from inside the callback: start() already scheduled
        // the new epoch's first run.
        if epoch == inner.epoch.get() {
            self.schedule_next();
        }
    }
}

impl std::fmt::Debug for PeriodicCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicCallback")
            .field("period", &self.inner.period)
            .field("running", &self.is_running())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Steps the schedule like the loop does: run at `now`, compute next.
    fn simulate(period: Duration, call_durations: &[u64]) -> Vec<u64> {
        let t0 = Instant::now();
        let mut next = t0;
        let mut now = t0;
        next = next_deadline(next, now, period);
        let mut runs = Vec::new();
        for &took in call_durations {
            now = now.max(next); // the timer fires at its deadline
            runs.push((now - t0).as_millis() as u64);
            now += Duration::from_millis(took);
            next = next_deadline(next, now, period);
        }
        runs
    }

    #[test]
    fn basic_schedule_runs_every_period() {
        assert_eq!(simulate(10 * MS, &[0, 0, 0, 0]), vec![10, 20, 30, 40]);
    }

    #[test]
    fn overrun_skips_missed_periods_and_keeps_the_grid() {
        // Tornado's test_overrun: a 10 ms callback that takes 25 ms once.
        assert_eq!(simulate(10 * MS, &[0, 25, 0, 0]), vec![10, 20, 50, 60]);
    }

    #[test]
    fn overrun_landing_exactly_on_a_deadline_skips_it() {
        assert_eq!(simulate(10 * MS, &[0, 10, 0]), vec![10, 20, 40]);
    }

    #[test]
    fn clock_going_backwards_still_advances() {
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(next_deadline(t0, t0 - 5 * MS, 10 * MS), t0 + 10 * MS);
    }

    #[test]
    fn jitter_scales_the_period_within_bounds() {
        let p = Duration::from_millis(1000);
        assert_eq!(jittered(p, 0.1, 0.0), Duration::from_millis(950));
        assert_eq!(jittered(p, 0.1, 0.5), p);
        assert!(jittered(p, 0.1, 0.999_999) < Duration::from_millis(1050));
        assert_eq!(jittered(p, 0.0, 0.9), p);
    }

    #[test]
    fn jittered_schedule_follows_the_jittered_periods() {
        let t0 = Instant::now();
        let r = [0.0, 1.0, 0.5];
        let mut next = t0;
        let mut got = Vec::new();
        for x in r {
            next = next_deadline(next, next, jittered(100 * MS, 0.2, x));
            got.push((next - t0).as_millis() as u64);
        }
        assert_eq!(got, vec![90, 200, 300]);
    }
}
