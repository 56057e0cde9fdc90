//! Panic isolation (each kind is logged with what it was and the loop goes
//! on) and the blocking-callback log.

mod common;

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use common::{capture_logs, socketpair, start_bounded};
use cyclone::Interest;

per_backend! {
    fn panicking_callback_is_logged_and_the_next_one_runs(lp) {
        let after = Rc::new(Cell::new(false));
        lp.add_callback(|| panic!("callback boom"));
        let (a, l) = (after.clone(), lp.clone());
        lp.add_callback(move || {
            a.set(true);
            l.stop();
        });
        let logs = capture_logs(|| start_bounded(&lp));
        assert!(after.get());
        assert!(logs.contains("uncaught panic in callback: callback boom"), "{logs}");
    }

    fn panicking_timeout_is_logged_and_the_loop_goes_on(lp) {
        lp.call_later(Duration::ZERO, || panic!("timeout boom"));
        let l = lp.clone();
        lp.call_later(Duration::from_millis(2), move || l.stop());
        let logs = capture_logs(|| start_bounded(&lp));
        assert!(logs.contains("uncaught panic in timeout: timeout boom"), "{logs}");
    }

    fn panicking_handler_is_logged_with_its_fd_and_stays_registered(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap();
        let fd = a.as_raw_fd();
        let calls = Rc::new(Cell::new(0));
        let (c, l) = (calls.clone(), lp.clone());
        lp.add_handler(fd, Interest::READ, move |_, _| {
            c.set(c.get() + 1);
            if c.get() == 2 {
                l.stop();
                return;
            }
            panic!("handler boom");
        })
        .unwrap();
        let logs = capture_logs(|| start_bounded(&lp));
        assert_eq!(calls.get(), 2, "called again after panicking");
        assert!(logs.contains(&format!("uncaught panic in handler for fd {fd}: handler boom")), "{logs}");
    }

    fn panicking_task_is_logged_and_other_tasks_go_on(lp) {
        let logs = capture_logs(|| {
            let bad = lp.spawn(async { panic!("task boom") });
            let good = lp.spawn(async { 1 });
            let (bad, good) = lp.run_sync(async move { (bad.await, good.await) });
            assert!(bad.unwrap_err().is_panic());
            assert_eq!(good.unwrap(), 1);
        });
        assert!(logs.contains("uncaught panic in task") && logs.contains("task boom"), "{logs}");
    }

    fn slow_callback_is_logged_with_its_kind_and_duration(lp) {
        lp.set_blocking_log_threshold(Some(Duration::from_millis(5)));
        lp.add_callback(|| std::thread::sleep(Duration::from_millis(30)));
        let l = lp.clone();
        lp.add_callback(move || l.stop());
        let logs = capture_logs(|| start_bounded(&lp));
        assert!(logs.contains("IOLoop blocked for") && logs.contains("by a callback"), "{logs}");
    }

    fn fast_work_is_not_logged_as_blocking(lp) {
        lp.set_blocking_log_threshold(Some(Duration::from_secs(5)));
        let l = lp.clone();
        lp.add_callback(move || l.stop());
        let logs = capture_logs(|| start_bounded(&lp));
        assert!(!logs.contains("blocked"), "{logs}");
    }
}
