//! One test per fixed bug, named after it.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::{run_for, start_bounded};
use cyclone::PeriodicCallback;

per_backend! {
    // run_sync used to check for completion only between turns, so a
    // future that finished on the first turn left the loop blocked in poll
    // with nothing to wake it.
    fn run_sync_returns_when_the_future_finishes_with_no_other_work(lp) {
        assert_eq!(lp.run_sync(async { 1 }), 1);
    }

    // The same for run_sync_timeout: the deadline timer fired, then the loop
    // polled forever.
    fn run_sync_timeout_fires_with_no_other_work(lp) {
        let r = lp.run_sync_timeout(std::future::pending::<()>(), Duration::from_millis(5));
        assert!(r.is_err());
    }

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

    // A timer added after close() used to be stored forever.
    fn timer_added_after_close_is_dropped(lp) {
        lp.close().unwrap();
        lp.call_later(Duration::from_secs(1), || {});
        assert_eq!(lp.stats().timeouts, 0);
    }

    // A `closed()` future dropped before the close (say, by a timeout) left
    // its waker behind, so the idle stream kept reading incoming data into
    // its buffer as if someone were listening for the close.
    fn dropped_closed_future_stops_listening_for_the_close(lp) {
        use std::io::Write;
        let buffered = lp.run_sync_timeout(async {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = cyclone::IOStream::new(a).unwrap();
            let waited = cyclone::timeout(Duration::from_millis(5), a.closed()).await;
            assert!(waited.is_err());
            b.write_all(b"unread").unwrap();
            cyclone::sleep(Duration::from_millis(20)).await;
            a.buffered()
        }, common::HANG).unwrap();
        assert_eq!(buffered, 0, "nobody reads or listens: the data stays in the kernel");
    }
}

#[test]
fn remote_of_a_dropped_loop_refuses_callbacks() {
    // The thread's first loop stays alive as its current loop; this test
    // needs a loop that is really dropped.
    let _current = cyclone::IOLoop::current();
    let lp = cyclone::IOLoop::builder().build().unwrap();
    let remote = lp.remote();
    drop(lp);
    assert!(remote.add_callback(|| {}).is_err());
    let _ = start_bounded;
}
