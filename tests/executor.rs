//! The loop as an executor: run_sync, spawn/JoinHandle, timer futures,
//! wakers from other threads, runtime-agnostic channels, Async<T>.

mod common;

use std::cell::Cell;
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::socketpair;
use cyclone::{Async, JoinError, Timeout};

per_backend! {
    fn run_sync_returns_the_future_output(lp) {
        assert_eq!(lp.run_sync(async { 6 * 7 }), 42);
    }

    fn run_sync_reraises_the_future_panic(lp) {
        let r = catch_unwind(AssertUnwindSafe(|| lp.run_sync(async { panic!("boom in run_sync") })));
        let payload = r.expect_err("the panic must reach the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in run_sync"));
        // The loop is still usable afterwards.
        assert_eq!(lp.run_sync(async { 1 }), 1);
    }

    fn run_sync_timeout_gives_up_on_a_future_that_never_completes(lp) {
        let t0 = Instant::now();
        let r = lp.run_sync_timeout(std::future::pending::<()>(), Duration::from_millis(20));
        assert_eq!(r, Err(Timeout));
        assert!(t0.elapsed() >= Duration::from_millis(20));
        assert_eq!(lp.stats().tasks, 0, "the timed-out future was dropped");
    }

    fn run_sync_timeout_returns_a_result_that_arrives_in_time(lp) {
        let r = lp.run_sync_timeout(async { 5 }, Duration::from_secs(5));
        assert_eq!(r, Ok(5));
    }

    fn spawned_task_output_is_delivered_through_its_join_handle(lp) {
        let h = lp.spawn(async {
            cyclone::sleep(Duration::from_millis(1)).await;
            "spawned"
        });
        assert_eq!(lp.run_sync(h).unwrap(), "spawned");
    }

    fn spawned_task_panic_is_reported_by_its_join_handle(lp) {
        let h = lp.spawn(async { panic!("task boom") });
        match lp.run_sync(h) {
            Err(JoinError::Panicked(p)) => assert_eq!(p.downcast_ref::<&str>(), Some(&"task boom")),
            other => panic!("expected a panic, got {other:?}"),
        }
    }

    fn aborted_task_is_dropped_and_reports_cancelled(lp) {
        let dropped = Rc::new(Cell::new(false));
        struct OnDrop(Rc<Cell<bool>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let guard = OnDrop(dropped.clone());
        let h = lp.spawn(async move {
            let _g = guard;
            std::future::pending::<()>().await;
        });
        h.abort();
        let r = lp.run_sync(h);
        assert!(matches!(r, Err(JoinError::Cancelled)));
        assert!(dropped.get());
    }

    fn detached_task_keeps_running(lp) {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        drop(lp.spawn(async move {
            cyclone::sleep(Duration::from_millis(1)).await;
            r.set(true);
        }));
        lp.run_sync(cyclone::sleep(Duration::from_millis(10)));
        assert!(ran.get());
    }

    fn sleep_completes_no_earlier_than_its_duration(lp) {
        let t0 = Instant::now();
        lp.run_sync(cyclone::sleep(Duration::from_millis(15)));
        assert!(t0.elapsed() >= Duration::from_millis(15));
    }

    fn dropped_sleep_removes_its_timer(lp) {
        lp.run_sync(async {
            let s = cyclone::sleep(Duration::from_secs(3600));
            let polled = cyclone::timeout(Duration::from_millis(1), s).await;
            assert_eq!(polled, Err(Timeout));
        });
        assert_eq!(lp.stats().timeouts, 0);
    }

    fn timeout_returns_the_value_of_a_fast_future(lp) {
        let r = lp.run_sync(cyclone::timeout(Duration::from_secs(5), async { 3 }));
        assert_eq!(r, Ok(3));
    }

    fn timeout_expires_on_a_slow_future(lp) {
        let r = lp.run_sync(cyclone::timeout(
            Duration::from_millis(5),
            cyclone::sleep(Duration::from_secs(3600)),
        ));
        assert_eq!(r, Err(Timeout));
    }

    fn task_woken_from_another_thread_runs(lp) {
        let (tx, rx) = futures::channel::oneshot::channel();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            tx.send(7).unwrap();
        });
        assert_eq!(lp.run_sync(rx), Ok(7));
    }

    fn futures_mpsc_channel_works_across_threads(lp) {
        use futures::StreamExt;
        let (mut tx, rx) = futures::channel::mpsc::channel::<u32>(4);
        let producer = std::thread::spawn(move || {
            for n in 0..100 {
                futures::executor::block_on(futures::SinkExt::send(&mut tx, n)).unwrap();
            }
        });
        let got: Vec<u32> = lp.run_sync(rx.collect());
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    fn async_channel_works_across_threads_both_ways(lp) {
        let (to_worker, from_loop) = async_channel::bounded::<u32>(1);
        let (to_loop, from_worker) = async_channel::bounded::<u32>(1);
        let worker = std::thread::spawn(move || {
            while let Ok(n) = from_loop.recv_blocking() {
                to_loop.send_blocking(n * 2).unwrap();
            }
        });
        let sum = lp.run_sync(async move {
            let mut sum = 0;
            for n in 0..50 {
                to_worker.send(n).await.unwrap();
                sum += from_worker.recv().await.unwrap();
            }
            sum
        });
        worker.join().unwrap();
        assert_eq!(sum, 2 * (0..50).sum::<u32>());
    }

    fn async_fd_ping_pong_delivers_every_message(lp) {
        let count = lp.run_sync(async {
            let (a, b) = socketpair();
            let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
            let server = cyclone::spawn(async move {
                let mut buf = [0u8; 1];
                loop {
                    match b.read_with(|mut s| s.read(&mut buf)).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            b.write_with(|mut s| s.write(&buf)).await.unwrap();
                        }
                    }
                }
            });
            let mut buf = [0u8; 1];
            let mut count = 0;
            for i in 0..1000u32 {
                a.write_with(|mut s| s.write(&[i as u8])).await.unwrap();
                a.read_with(|mut s| s.read_exact(&mut buf).map(|_| 1)).await.unwrap();
                assert_eq!(buf[0], i as u8);
                count += 1;
            }
            drop(a);
            server.await.unwrap();
            count
        });
        assert_eq!(count, 1000);
    }

    fn async_fd_read_sees_end_of_stream_when_the_peer_closes(lp) {
        let n = lp.run_sync(async {
            let (a, b) = socketpair();
            let a = Async::new(a).unwrap();
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                drop(b);
            });
            let mut buf = [0u8; 8];
            a.read_with(|mut s| s.read(&mut buf)).await.unwrap()
        });
        assert_eq!(n, 0);
    }

    fn async_fd_write_waits_for_a_full_socket_to_drain(lp) {
        let written = lp.run_sync(async {
            let (a, b) = socketpair();
            let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
            const TOTAL: usize = 4 << 20; // far more than the socket buffers hold
            let reader = cyclone::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = 0;
                while got < TOTAL {
                    got += b.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                }
                got
            });
            let chunk = vec![7u8; 65536];
            let mut sent = 0;
            while sent < TOTAL {
                sent += a.write_with(|mut s| s.write(&chunk[..(TOTAL - sent).min(chunk.len())])).await.unwrap();
            }
            reader.await.unwrap()
        });
        assert_eq!(written, 4 << 20);
    }

    fn free_functions_use_the_current_loop(lp) {
        assert!(cyclone::IOLoop::current().ptr_eq(&lp), "the first loop of a thread is its current one");
        assert_eq!(
            cyclone::run_sync(async { cyclone::spawn(async { 9 }).await.unwrap() }),
            9
        );
    }
}

mod sleep_reset {
    use std::time::{Duration, Instant};

    crate::per_backend! {
        fn a_sleep_moved_later_completes_at_the_new_deadline(lp) {
            let t0 = Instant::now();
            lp.run_sync(async move {
                let mut s = cyclone::sleep(Duration::from_millis(5));
                // Register the timer at +5 ms, then move the deadline to +20 ms.
                assert!(
                    cyclone::timeout(Duration::from_millis(1), &mut s)
                        .await
                        .is_err()
                );
                s.reset(t0 + Duration::from_millis(20));
                s.await;
            });
            assert!(t0.elapsed() >= Duration::from_millis(20));
        }

        fn a_sleep_moved_earlier_completes_at_the_new_deadline(lp) {
            let t0 = Instant::now();
            lp.run_sync(async move {
                let mut s = cyclone::sleep(Duration::from_secs(3600));
                assert!(
                    cyclone::timeout(Duration::from_millis(1), &mut s)
                        .await
                        .is_err()
                );
                s.reset(t0 + Duration::from_millis(10));
                s.await;
            });
            let took = t0.elapsed();
            assert!(
                took >= Duration::from_millis(10) && took < Duration::from_secs(60),
                "{took:?}"
            );
        }
    }
}

/// Regression tests for the executor (run_sync): each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
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
    }
}
