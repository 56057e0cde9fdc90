//! Timeouts: order, removal, churn, precision.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{run_for, start_bounded};
use cyclone::TimeoutHandle;

per_backend! {
    fn timeouts_with_equal_deadlines_run_in_the_order_added(lp) {
        let at = Instant::now() + Duration::from_millis(5);
        let log = Rc::new(RefCell::new(Vec::new()));
        for n in 0..20 {
            let log = log.clone();
            lp.call_at(at, move || log.borrow_mut().push(n));
        }
        let l = lp.clone();
        lp.call_at(at, move || l.stop());
        start_bounded(&lp);
        assert_eq!(*log.borrow(), (0..20).collect::<Vec<_>>());
    }

    fn timeouts_run_in_deadline_order(lp) {
        let now = Instant::now();
        let log = Rc::new(RefCell::new(Vec::new()));
        for ms in [9u64, 3, 7, 1, 5] {
            let log = log.clone();
            lp.call_at(now + Duration::from_millis(ms), move || log.borrow_mut().push(ms));
        }
        let l = lp.clone();
        lp.call_at(now + Duration::from_millis(10), move || l.stop());
        start_bounded(&lp);
        assert_eq!(*log.borrow(), vec![1, 3, 5, 7, 9]);
    }

    fn timeout_removed_by_an_earlier_timeout_of_the_same_batch_does_not_run(lp) {
        let at = Instant::now(); // both due on the first turn, one batch
        let victim: Rc<Cell<Option<TimeoutHandle>>> = Rc::default();
        let ran = Rc::new(Cell::new(false));
        let (l, v) = (lp.clone(), victim.clone());
        lp.call_at(at, move || l.remove_timeout(v.get().unwrap()));
        let r = ran.clone();
        victim.set(Some(lp.call_at(at, move || r.set(true))));
        run_for(&lp, Duration::from_millis(10));
        assert!(!ran.get());
    }

    fn removing_a_timeout_after_it_fired_is_harmless(lp) {
        let fired = Rc::new(Cell::new(0));
        let f = fired.clone();
        let first = lp.call_later(Duration::ZERO, move || f.set(f.get() + 1));
        run_for(&lp, Duration::from_millis(5));
        assert_eq!(fired.get(), 1);
        lp.remove_timeout(first);
        // A later timeout may reuse the first one's slot; the stale handle
        // must not cancel it.
        let f = fired.clone();
        lp.call_later(Duration::ZERO, move || f.set(f.get() + 1));
        lp.remove_timeout(first);
        run_for(&lp, Duration::from_millis(5));
        assert_eq!(fired.get(), 2);
    }

    fn removed_timeout_does_not_run(lp) {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let t = lp.call_later(Duration::from_millis(1), move || r.set(true));
        lp.remove_timeout(t);
        run_for(&lp, Duration::from_millis(10));
        assert!(!ran.get());
    }

    fn add_remove_churn_keeps_timer_memory_bounded(lp) {
        let far = Duration::from_secs(3600);
        for _ in 0..100_000 {
            let t = lp.call_later(far, || {});
            lp.remove_timeout(t);
        }
        let stats = lp.stats();
        assert_eq!(stats.timeouts, 0);
        // Compaction: more than 512 tombstones and more than half the heap.
        assert!(stats.timer_entries <= 1026, "timer entries grew to {}", stats.timer_entries);
    }

    fn timeouts_never_fire_early(lp) {
        let early = Rc::new(Cell::new(0));
        let start = Instant::now();
        for us in (100..20_000).step_by(1_000) {
            let deadline = start + Duration::from_micros(us);
            let e = early.clone();
            lp.call_at(deadline, move || {
                if Instant::now() < deadline {
                    e.set(e.get() + 1);
                }
            });
        }
        run_for(&lp, Duration::from_millis(25));
        assert_eq!(early.get(), 0);
    }

    fn sub_millisecond_timeout_does_not_spin(lp) {
        let turns_at_fire = Rc::new(Cell::new(0));
        let before = lp.stats().turns;
        let (t, l) = (turns_at_fire.clone(), lp.clone());
        lp.call_later(Duration::from_micros(300), move || {
            t.set(l.stats().turns);
            l.stop();
        });
        start_bounded(&lp);
        // One turn to poll until the deadline (rounded up, never down), one
        // to run it; a spinning loop would take hundreds.
        assert!(turns_at_fire.get() - before <= 3, "took {} turns", turns_at_fire.get() - before);
    }

    fn timeout_in_the_past_runs_on_the_next_turn(lp) {
        let ran = Rc::new(Cell::new(false));
        let (r, l) = (ran.clone(), lp.clone());
        lp.call_at(Instant::now() - Duration::from_secs(1), move || {
            r.set(true);
            l.stop();
        });
        start_bounded(&lp);
        assert!(ran.get());
        assert!(lp.stats().turns <= 2);
    }

    fn timeout_added_by_a_timeout_runs_in_a_later_batch(lp) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (l, lg) = (lp.clone(), log.clone());
        lp.call_later(Duration::ZERO, move || {
            lg.borrow_mut().push(("outer", l.stats().turns));
            let (l2, lg2) = (l.clone(), lg.clone());
            l.call_later(Duration::ZERO, move || {
                lg2.borrow_mut().push(("inner", l2.stats().turns));
                l2.stop();
            });
        });
        start_bounded(&lp);
        let log = log.borrow();
        assert_eq!(log.len(), 2);
        assert!(log[1].1 > log[0].1);
    }
}

/// Regression tests for timeouts: each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
        // A timer added after close() used to be stored forever.
        fn timer_added_after_close_is_dropped(lp) {
            lp.close().unwrap();
            lp.call_later(Duration::from_secs(1), || {});
            assert_eq!(lp.stats().timeouts, 0);
        }
    }
}
