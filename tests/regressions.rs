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

    // Dropping the last AcceptHandle closed the listener but left it in the
    // handler table: the fd number could not be registered again, and
    // poll/select reported the closed fd on every turn (a spin).
    fn dropping_the_accept_handle_removes_its_handler(lp) {
        let before = lp.stats().handlers;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let h = cyclone::netutil::add_accept_handler(&lp, l, |_, _| {}).unwrap();
        assert_eq!(lp.stats().handlers, before + 1);
        drop(h);
        assert_eq!(lp.stats().handlers, before);
    }

    // shutdown() waited forever for a delegate parked on something other
    // than its stream: it now cancels the task at the deadline.
    fn shutdown_cancels_a_delegate_waiting_on_something_else(lp) {
        let done = lp.run_sync_timeout(async {
            let server = cyclone::TcpServer::new(|stream, _| async move {
                let _keep = stream;
                std::future::pending::<()>().await;
            });
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let _c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            while server.connection_count() == 0 {
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            server.shutdown(Duration::from_millis(20)).await;
            cyclone::sleep(Duration::from_millis(5)).await;
            server.connection_count()
        }, common::HANG).unwrap();
        assert_eq!(done, 0);
    }

    // add_sockets after stop() used to leave a paused listener bound forever.
    fn add_sockets_after_stop_is_refused(lp) {
        let server = cyclone::TcpServer::new(|_, _| async {});
        server.stop();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        lp.run_sync(async move { assert!(server.add_sockets([l]).is_err()) });
    }

    // Edge-triggered streams: data and the peer's FIN arriving together
    // make one edge; the short read that got the data used to be taken as
    // "drained", the EOF was never read and read_until_close hung.
    fn data_and_fin_together_still_end_read_until_close(lp) {
        use std::io::Write;
        let got = lp.run_sync_timeout(async {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = cyclone::IOStream::new(a).unwrap();
            b.write_all(b"last words").unwrap();
            drop(b);
            a.read_until_close().await.unwrap()
        }, common::HANG).unwrap();
        assert_eq!(&got[..], b"last words");
    }

    fn data_then_fin_after_a_partial_read_still_closes(lp) {
        use std::io::Write;
        let closed = lp.run_sync_timeout(async {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = cyclone::IOStream::new(a).unwrap();
            b.write_all(b"abc").unwrap();
            drop(b);
            let first = a.read_bytes(16, true).await.unwrap();
            assert_eq!(&first[..], b"abc");
            a.read_bytes(1, false).await.is_err() && a.is_closed()
        }, common::HANG).unwrap();
        assert!(closed);
    }

    // StreamWatcher::closed (a long-poll handler's `req.connection`) had its
    // own copy of the waiter without the fix above: dropped after a
    // timeout, it kept the stream pulling in data.
    fn dropped_watcher_closed_future_stops_listening_for_the_close(lp) {
        use std::io::Write;
        let buffered = lp.run_sync_timeout(async {
            let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = cyclone::IOStream::new(a).unwrap();
            let watcher = a.watcher();
            assert!(cyclone::timeout(Duration::from_millis(5), watcher.closed()).await.is_err());
            b.write_all(b"unread").unwrap();
            cyclone::sleep(Duration::from_millis(20)).await;
            a.buffered()
        }, common::HANG).unwrap();
        assert_eq!(buffered, 0);
    }

    // io_uring: another stream's close submitted our queued send, and the
    // loop kept its completion for the next poll. A write made meanwhile
    // started a second send that the stream counted as part of the first:
    // the first completion resolved both writes, so the second claimed to
    // be out while the kernel still held most of it, and a third write
    // then went out ahead of it.
    fn a_write_behind_a_completed_but_unreported_send_is_not_counted_with_it(lp) {
        const BIG: usize = 8 << 20; // more than loopback's socket buffers hold
        let (peer, still_writing) = lp.run_sync(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let a = cyclone::IOStream::new(listener.accept().unwrap().0).unwrap();
            let (b, _b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
            let b = cyclone::IOStream::new(b).unwrap();
            drop(a.write(&b"x"[..]));
            drop(b.write(&b"b"[..]));
            b.close(); // hands the loop's queued sends over, ours with them
            drop(a.write(vec![b'y'; BIG]));
            cyclone::sleep(Duration::from_millis(20)).await;
            let still_writing = a.writing(); // nobody has read yet
            drop(a.write(&b"z"[..]));
            let reader = std::thread::spawn(move || {
                let mut peer = peer;
                peer.set_read_timeout(Some(common::HANG)).unwrap();
                let mut got = Vec::new();
                std::io::Read::read_to_end(&mut peer, &mut got).unwrap();
                got
            });
            a.write(bytes::Bytes::new()).await.unwrap(); // everything is out
            drop(a);
            common::thread_finished(&reader).await;
            (reader, still_writing)
        });
        assert!(still_writing, "8 MiB reported written with nobody reading");
        let got = peer.join().unwrap();
        assert_eq!(got.len(), BIG + 2);
        assert_eq!(got[0], b'x');
        assert!(got[1..=BIG].iter().all(|&c| c == b'y'), "a byte came out of order");
        assert_eq!(got[BIG + 1], b'z');
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
