//! Callbacks: ordering, the next-turn rule, and reaching the loop from other
//! threads.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::mpsc;

use common::start_bounded;
use cyclone::Error;

per_backend! {
    fn callbacks_run_in_the_order_they_were_added(lp) {
        let log = Rc::new(RefCell::new(Vec::new()));
        for n in 0..5 {
            let log = log.clone();
            lp.add_callback(move || log.borrow_mut().push(n));
        }
        let l = lp.clone();
        lp.add_callback(move || l.stop());
        start_bounded(&lp);
        assert_eq!(*log.borrow(), vec![0, 1, 2, 3, 4]);
    }

    fn callback_added_while_callbacks_run_waits_for_the_next_turn(lp) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let (l, lg) = (lp.clone(), log.clone());
        lp.add_callback(move || {
            lg.borrow_mut().push(("first", l.stats().turns));
            let (l2, lg2) = (l.clone(), lg.clone());
            l.add_callback(move || {
                lg2.borrow_mut().push(("added-later", l2.stats().turns));
                l2.stop();
            });
        });
        let (l, lg) = (lp.clone(), log.clone());
        lp.add_callback(move || lg.borrow_mut().push(("second", l.stats().turns)));
        start_bounded(&lp);
        let log = log.borrow();
        assert_eq!(log.iter().map(|e| e.0).collect::<Vec<_>>(), ["first", "second", "added-later"]);
        assert_eq!(log[0].1, log[1].1, "first batch runs in one turn");
        assert!(log[2].1 > log[0].1, "a callback added by a callback runs on a later turn");
    }

    fn remote_callback_wakes_a_loop_blocked_in_poll(lp) {
        // Nothing else is scheduled: the loop blocks in poll with no timeout
        // and only the remote callback can wake it (start_bounded fails the
        // test if it does not return).
        let remote = lp.remote();
        let loop_thread = common::thread_id();
        let sender = std::thread::spawn(move || {
            common::wait_until("the loop to block in poll", || common::thread_is_asleep(loop_thread));
            remote.add_callback(|| cyclone::IOLoop::current().stop()).unwrap();
        });
        start_bounded(&lp);
        sender.join().unwrap();
    }

    fn remote_callback_runs_on_the_loop_thread(lp) {
        let loop_thread = std::thread::current().id();
        let (tx, rx) = mpsc::channel();
        let remote = lp.remote();
        std::thread::spawn(move || {
            remote
                .add_callback(move || {
                    tx.send(std::thread::current().id()).unwrap();
                    cyclone::IOLoop::current().stop();
                })
                .unwrap();
        })
        .join()
        .unwrap();
        start_bounded(&lp);
        assert_eq!(rx.recv().unwrap(), loop_thread);
    }

    fn remote_callbacks_sent_between_two_polls_cost_one_wakeup(lp) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        const N: usize = 1000;
        let remote = lp.remote();
        let count = std::sync::Arc::new(AtomicUsize::new(0));
        let before = lp.stats().remote_wakeups;
        // The loop is busy in this callback (not polling) while another
        // thread sends all N callbacks.
        let c = count.clone();
        lp.add_callback(move || {
            std::thread::spawn(move || {
                for _ in 0..N {
                    let c = c.clone();
                    let sent = remote.add_callback(move || {
                        if c.fetch_add(1, Ordering::SeqCst) + 1 == N {
                            cyclone::IOLoop::current().stop();
                        }
                    });
                    sent.unwrap();
                }
            })
            .join()
            .unwrap();
        });
        start_bounded(&lp);
        assert_eq!(count.load(Ordering::SeqCst), N);
        assert_eq!(lp.stats().remote_wakeups - before, 1);
    }

    fn remote_add_callback_after_close_is_refused(lp) {
        let remote = lp.remote();
        lp.close().unwrap();
        assert!(matches!(remote.add_callback(|| {}), Err(Error::Closed)));
    }

    fn remote_stop_stops_the_loop_from_another_thread(lp) {
        let remote = lp.remote();
        let loop_thread = common::thread_id();
        let t = std::thread::spawn(move || {
            common::wait_until("the loop to block in poll", || common::thread_is_asleep(loop_thread));
            remote.stop().unwrap();
        });
        start_bounded(&lp);
        t.join().unwrap();
    }
}

// Regression test for Remote: it pins a fixed bug and is named after it
// (moved here from the former tests/regressions.rs).
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
