//! PeriodicCallback on a real loop (the schedule arithmetic itself is unit
//! tested with made-up clocks in src/ioloop/periodic.rs).

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{capture_logs, run_for, start_bounded};
use cyclone::PeriodicCallback;

per_backend! {
    fn periodic_callback_runs_every_period(lp) {
        let times = Rc::new(std::cell::RefCell::new(Vec::new()));
        let (t, l) = (times.clone(), lp.clone());
        let t0 = Instant::now();
        let pc = PeriodicCallback::new(Duration::from_millis(5), move || {
            t.borrow_mut().push(t0.elapsed());
            if t.borrow().len() == 4 {
                l.stop();
            }
        });
        pc.start_on(&lp);
        start_bounded(&lp);
        pc.stop();
        let times = times.borrow();
        for (k, at) in times.iter().enumerate() {
            // Never early: run k is due at (k + 1) periods after start.
            assert!(*at >= Duration::from_millis(5 * (k as u64 + 1)), "run {k} at {at:?}");
        }
    }

    fn stopped_periodic_callback_runs_no_more(lp) {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let pc = PeriodicCallback::new(Duration::from_millis(1), move || c.set(c.get() + 1));
        let stopper = pc.clone();
        let c = count.clone();
        lp.add_callback(move || stopper.start());
        let pc2 = pc.clone();
        lp.call_later(Duration::from_millis(20), move || pc2.stop());
        run_for(&lp, Duration::from_millis(25));
        assert!(!pc.is_running());
        let after_stop = c.get();
        assert!(after_stop > 0);
        run_for(&lp, Duration::from_millis(10));
        assert_eq!(count.get(), after_stop);
    }

    fn periodic_callback_survives_a_panicking_run(lp) {
        let count = Rc::new(Cell::new(0));
        let (c, l) = (count.clone(), lp.clone());
        let pc = PeriodicCallback::new(Duration::from_millis(1), move || {
            c.set(c.get() + 1);
            if c.get() == 3 {
                l.stop();
            }
            if c.get() == 1 {
                panic!("periodic boom");
            }
        });
        pc.start_on(&lp);
        let logs = capture_logs(|| start_bounded(&lp));
        pc.stop();
        assert_eq!(count.get(), 3);
        assert!(logs.contains("periodic callback") && logs.contains("periodic boom"), "{logs}");
    }

    fn starting_a_running_periodic_callback_does_not_double_it(lp) {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let pc = PeriodicCallback::new(Duration::from_millis(10), move || c.set(c.get() + 1));
        pc.start_on(&lp);
        pc.start_on(&lp);
        assert_eq!(lp.stats().timeouts, 1);
        pc.stop();
        assert_eq!(lp.stats().timeouts, 0);
    }
}

/// Regression tests for PeriodicCallback: each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
        // Restarting a PeriodicCallback from inside its own callback left an
        // orphan timer, so runs doubled up.
        fn periodic_restart_inside_its_callback_keeps_one_schedule(lp) {
            let count = Rc::new(Cell::new(0));
            let slot: Rc<std::cell::RefCell<Option<PeriodicCallback>>> = Rc::default();
            let (c, s) = (count.clone(), slot.clone());
            let pc = PeriodicCallback::new(Duration::from_millis(20), move || {
                c.set(c.get() + 1);
                if let Some(pc) = s.borrow().as_ref() {
                    pc.stop();
                    pc.start();
                }
            });
            *slot.borrow_mut() = Some(pc.clone());
            pc.start_on(&lp);
            run_for(&lp, Duration::from_millis(90));
            pc.stop();
            slot.borrow_mut().take();
            // One chain: about 90/20 runs. Doubling chains would give far more.
            assert!(count.get() <= 5, "{} runs", count.get());
            assert_eq!(lp.stats().timeouts, 0);
        }
    }
}
