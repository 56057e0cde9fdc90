//! Closing an IOStream: by us (the closed future, the close callback,
//! what fails afterwards), by the peer with data in flight, and by a reset
//! or EPIPE, which is a normal close and never raises SIGPIPE. Every test
//! runs on every poller backend and is bounded in time; the helpers are in
//! `common::stream`.

mod common;

use std::cell::Cell;
use std::io::Write as _;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use common::stream::{bounded, is_closed_err, stream_and_peer, stream_pair, tcp_pair};
use cyclone::{IOStream, StreamError};

/// The child half of the SIGPIPE test runs when this is set.
const SIGPIPE_CHILD_ENV: &str = "CYCLONE_IOSTREAM_SIGPIPE_CHILD";
const SIGPIPE_CHILD_DONE: &str = "sigpipe-scenario-completed";

per_backend! {
    // ---- close ----

    fn close_marks_the_stream_closed(lp) {
        let (before, after) = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let before = s.is_closed();
            s.close();
            (before, s.is_closed())
        });
        assert!(!before);
        assert!(after);
    }

    fn the_closed_future_resolves_on_close(lp) {
        let res = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let s = Rc::new(s);
            let c = s.clone();
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                c.close();
            });
            cyclone::timeout(Duration::from_secs(5), s.closed()).await
        });
        assert!(res.is_ok(), "closed() did not resolve");
    }

    fn the_close_callback_runs_once(lp) {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        bounded(&lp, async move {
            let (s, _peer) = stream_and_peer();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                c.set(c.get() + 1);
                let _ = tx.send(());
            });
            s.close();
            s.close();
            drop(s);
            rx.await.unwrap();
            // Let any (wrong) second run happen.
            cyclone::sleep(Duration::from_millis(10)).await;
        });
        assert_eq!(count.get(), 1);
    }

    fn a_close_callback_on_an_idle_stream_fires_when_the_peer_closes(lp) {
        let (fired, closed, error) = bounded(&lp, async {
            let (s, peer) = stream_and_peer();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                let _ = tx.send(());
            });
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                drop(peer);
            });
            // No read is pending: only the stream's own listener can notice.
            let fired = cyclone::timeout(Duration::from_secs(5), rx).await;
            (fired, s.is_closed(), s.error())
        });
        assert!(matches!(fired, Ok(Ok(()))), "the close callback did not fire");
        assert!(closed);
        assert!(error.is_none(), "{error:?}");
    }

    fn the_closed_future_resolves_when_the_peer_closes(lp) {
        let res = bounded(&lp, async {
            let (s, peer) = stream_and_peer();
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                drop(peer);
            });
            let res = cyclone::timeout(Duration::from_secs(5), s.closed()).await;
            (res, s.is_closed())
        });
        assert!(res.0.is_ok(), "closed() did not resolve");
        assert!(res.1);
    }

    fn a_close_callback_set_on_a_closed_stream_still_runs(lp) {
        let fired = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            s.close();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                let _ = tx.send(());
            });
            cyclone::timeout(Duration::from_secs(5), rx).await
        });
        assert!(matches!(fired, Ok(Ok(()))));
    }

    fn reads_and_writes_on_a_closed_stream_fail_with_closed(lp) {
        let (read, write) = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            s.close();
            (s.read_bytes(1, false).await, s.write(&b"x"[..]).await)
        });
        assert!(matches!(read, Err(StreamError::Closed(None))), "{read:?}");
        assert!(matches!(write, Err(StreamError::Closed(None))), "{write:?}");
    }

    fn close_fails_pending_writes_with_closed(lp) {
        let res = bounded(&lp, async {
            let (a, _peer) = stream_and_peer();
            let a = Rc::new(a);
            // More than the kernel takes, so the write waits in the queue.
            let pending = a.clone();
            let w = cyclone::spawn(async move { pending.write(vec![0u8; 16 << 20]).await });
            common::until("the spawned write to start", || a.writing()).await;
            assert!(a.writing());
            a.close();
            w.await.unwrap()
        });
        assert!(matches!(res, Err(StreamError::Closed(None))), "{res:?}");
    }

    // ---- closing with data in flight ----

    fn data_the_peer_sent_before_closing_is_still_delivered(lp) {
        let (got, after) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"last words").unwrap();
            drop(peer);
            let got = s.read_bytes(10, false).await;
            let after = s.read_bytes(1, false).await;
            (got, after)
        });
        assert_eq!(&got.unwrap()[..], b"last words");
        assert!(matches!(after, Err(StreamError::Closed(None))), "{after:?}");
    }

    fn a_closed_stream_leaves_alone_the_stream_that_reuses_its_fd_number(lp) {
        // A read that ends after its stream closed (a timeout, a write that
        // failed) once re-registered the stream's fd number with the loop
        // by then: under load a connection accepted in between had that
        // number, and went deaf for good (found by bench/soak.sh).
        let got = bounded(&lp, async {
            // The kernel gives out the lowest free number, but another
            // test's thread may take it first: try until it is reused.
            for _ in 0..50 {
                let (a, _a_peer) = stream_and_peer();
                let old_fd = a.fd();
                let mut read = pin!(a.read_bytes(1, false));
                assert!(futures::poll!(read.as_mut()).is_pending());
                a.close();
                let (b, mut b_peer) = stream_and_peer();
                let reused = b.fd() == old_fd;
                // The stale read ends now, after its fd went to `b`.
                assert!(is_closed_err(&read.await));
                if !reused {
                    continue;
                }
                // `b` waits for the poller (nothing to read yet), then data comes.
                let mut b_read = pin!(b.read_bytes(1, false));
                assert!(futures::poll!(b_read.as_mut()).is_pending());
                b_peer.write_all(b"x").unwrap();
                return Some(cyclone::timeout(Duration::from_secs(5), b_read).await);
            }
            None
        });
        let got = got.expect("no fd number was reused in 50 tries");
        assert_eq!(&got.expect("the new stream never heard of its data").unwrap()[..], b"x");
    }

    fn a_pending_read_the_data_satisfies_completes_when_the_peer_closes(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let mut read = pin!(s.read_bytes(5, false));
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"hello").unwrap();
            drop(peer);
            read.await
        });
        assert_eq!(&got.unwrap()[..], b"hello");
    }

    fn a_pending_read_until_close_completes_when_the_peer_closes(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"first ").unwrap();
            let mut read = pin!(s.read_until_close());
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"second").unwrap();
            drop(peer);
            read.await
        });
        assert_eq!(&got.unwrap()[..], b"first second");
    }

    fn a_pending_read_the_buffer_cannot_satisfy_fails_with_closed(lp) {
        let (got, closed, buffered) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let mut read = pin!(s.read_bytes(10, false));
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"only5").unwrap();
            drop(peer);
            let got = read.await;
            (got, s.is_closed(), s.buffered())
        });
        assert!(matches!(got, Err(StreamError::Closed(None))), "{got:?}");
        assert!(closed);
        assert_eq!(buffered, 5, "the short data stays buffered");
    }

    fn a_pending_read_until_close_completes_on_a_local_close(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let s = Rc::new(s);
            peer.write_all(b"buffered").unwrap();
            let closer = s.clone();
            cyclone::spawn(async move {
                // Close once the reader has the data buffered.
                while closer.buffered() < 8 {
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                closer.close();
            });
            let got = s.read_until_close().await;
            drop(peer);
            got
        });
        assert_eq!(&got.unwrap()[..], b"buffered");
    }

    // ---- peer reset / EPIPE is a normal close ----

    fn writing_to_a_dropped_unix_peer_fails_with_a_disconnect_error(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (a, b) = stream_pair();
            drop(b);
            let res = a.write(&b"into the void"[..]).await;
            (res, a.is_closed(), a.error())
        });
        assert!(is_closed_err(&res), "{res:?}");
        assert!(res.unwrap_err().is_disconnect());
        assert!(closed);
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
    }

    fn writing_to_a_dropped_tcp_peer_eventually_fails_with_a_disconnect_error(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (c, s) = tcp_pair();
            let c = IOStream::new(c).unwrap();
            drop(s);
            let mut res = Ok(());
            for _ in 0..1000 {
                res = c.write(vec![b'x'; 1024]).await;
                if res.is_err() {
                    break;
                }
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            (res, c.is_closed(), c.error())
        });
        assert!(is_closed_err(&res), "{res:?}");
        assert!(closed);
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
    }

    fn a_tcp_reset_closes_a_reading_stream_without_a_warning(lp) {
        let mut outcome = None;
        let logs = common::capture_logs(|| {
            outcome = Some(bounded(&lp, async {
                let (c, s) = tcp_pair();
                let c = IOStream::new(c).unwrap();
                // Linger 0: dropping the socket sends RST, not FIN.
                socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
                let mut read = pin!(c.read_bytes(1, false));
                assert!(futures::poll!(read.as_mut()).is_pending());
                drop(s);
                let res = read.await;
                (res, c.error())
            }));
        });
        let (res, error) = outcome.unwrap();
        assert!(is_closed_err(&res), "{res:?}");
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
        assert!(!logs.contains("WARN"), "a reset is a normal close, not a warning:\n{logs}");
    }

    fn read_until_close_returns_the_data_sent_before_a_tcp_reset(lp) {
        let got = bounded(&lp, async {
            let (c, mut s) = tcp_pair();
            let c = IOStream::new(c).unwrap();
            s.write_all(b"the response").unwrap();
            socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
            drop(s);
            c.read_until_close().await
        });
        assert_eq!(&got.unwrap()[..], b"the response");
    }

    fn read_until_close_returns_the_data_when_the_unix_peer_leaves_ours_unread(lp) {
        let got = bounded(&lp, async {
            let (c, mut peer) = stream_and_peer();
            // The peer never reads our request: closing it resets us.
            c.write(&b"request"[..]).await.unwrap();
            peer.write_all(b"the response").unwrap();
            drop(peer);
            c.read_until_close().await
        });
        assert_eq!(&got.unwrap()[..], b"the response");
    }

    fn writing_to_a_vanished_peer_never_raises_sigpipe(lp) {
        if std::env::var_os(SIGPIPE_CHILD_ENV).is_some() {
            // The child: SIGPIPE back to its default action (kill), then
            // write to sockets whose peers are gone.
            // SAFETY: sets a signal disposition; no handler runs.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            bounded(&lp, async {
                let (a, b) = stream_pair();
                drop(b);
                for _ in 0..3 {
                    assert!(a.write(&b"x"[..]).await.is_err());
                }
                let (c, s) = tcp_pair();
                let c = IOStream::new(c).unwrap();
                drop(s);
                let mut failed = false;
                for _ in 0..1000 {
                    if c.write(vec![0u8; 1024]).await.is_err() {
                        failed = true;
                        break;
                    }
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                assert!(failed, "writes to a closed TCP peer kept succeeding");
            });
            println!("{SIGPIPE_CHILD_DONE}");
            return;
        }
        // "iostream_close::epoll" -> "epoll::writing_to_..."
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
        let name = format!("{module}::writing_to_a_vanished_peer_never_raises_sigpipe");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(SIGPIPE_CHILD_ENV, "1")
            .output()
            .expect("run the child");
        use std::os::unix::process::ExitStatusExt;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None, "the child was killed by a signal\n{stdout}\n{stderr}");
        assert!(out.status.success(), "the child failed\n{stdout}\n{stderr}");
        assert!(stdout.contains(SIGPIPE_CHILD_DONE), "the child did not run the scenario\n{stdout}\n{stderr}");
    }
}
