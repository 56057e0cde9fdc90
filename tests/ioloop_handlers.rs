//! fd handlers: level-triggered delivery of what was asked for, removal and
//! fd reuse during dispatch, registration errors, backend limits.

mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use common::{run_for, socketpair, start_bounded};
use cyclone::{Error, Interest, Ready};

per_backend! {
    fn read_interest_reports_readable_and_not_writable(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap(); // `a` is now readable and writable
        let seen = Rc::new(Cell::new(Ready::EMPTY));
        let (s, l) = (seen.clone(), lp.clone());
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, ready| {
            s.set(ready);
            l.stop();
        })
        .unwrap();
        start_bounded(&lp);
        assert!(seen.get().is_readable());
        assert!(!seen.get().is_writable());
    }

    fn write_interest_reports_writable_and_not_readable(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap();
        let seen = Rc::new(Cell::new(Ready::EMPTY));
        let (s, l) = (seen.clone(), lp.clone());
        lp.add_handler(a.as_raw_fd(), Interest::WRITE, move |_, ready| {
            s.set(ready);
            l.stop();
        })
        .unwrap();
        start_bounded(&lp);
        assert!(seen.get().is_writable());
        assert!(!seen.get().is_readable());
    }

    fn handler_is_called_again_while_its_fd_stays_ready(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap();
        let calls = Rc::new(Cell::new(0));
        let (c, l) = (calls.clone(), lp.clone());
        // Never reads: level-triggered means it keeps being told.
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, _| {
            c.set(c.get() + 1);
            if c.get() == 3 {
                l.stop();
            }
        })
        .unwrap();
        start_bounded(&lp);
        assert_eq!(calls.get(), 3);
    }

    fn handler_is_not_called_while_its_fd_is_not_ready(lp) {
        let (a, _b) = socketpair();
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, _| c.set(c.get() + 1))
            .unwrap();
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(calls.get(), 0);
    }

    fn removing_a_handler_from_another_handler_prevents_its_pending_dispatch(lp) {
        // Both fds are readable, so one poll returns both events; whichever
        // handler runs first removes the other, which must not be called.
        let (a1, mut b1) = socketpair();
        let (a2, mut b2) = socketpair();
        b1.write_all(b"x").unwrap();
        b2.write_all(b"x").unwrap();
        let (fd1, fd2) = (a1.as_raw_fd(), a2.as_raw_fd());
        let calls = Rc::new(Cell::new(0));
        for (me, other) in [(fd1, fd2), (fd2, fd1)] {
            let (c, l) = (calls.clone(), lp.clone());
            lp.add_handler(me, Interest::READ, move |fd, _| {
                c.set(c.get() + 1);
                l.remove_handler(other);
                l.remove_handler(fd);
                l.add_callback({
                    let l = l.clone();
                    move || l.stop()
                });
            })
            .unwrap();
        }
        start_bounded(&lp);
        assert_eq!(calls.get(), 1);
        drop((a1, a2));
    }

    fn fd_closed_and_reused_during_dispatch_gets_no_stale_event(lp) {
        // Two readable fds. The first handler to run removes the other
        // handler, closes its fd and puts a fresh, idle socket on the same
        // fd number with a new handler. The old event for that number in
        // the same batch must not reach the new handler.
        let sockets: Rc<RefCell<HashMap<RawFd, UnixStream>>> = Rc::default();
        let (a1, mut b1) = socketpair();
        let (a2, mut b2) = socketpair();
        b1.write_all(b"x").unwrap();
        b2.write_all(b"x").unwrap();
        let fds = [a1.as_raw_fd(), a2.as_raw_fd()];
        sockets.borrow_mut().insert(fds[0], a1);
        sockets.borrow_mut().insert(fds[1], a2);
        let stale_calls = Rc::new(Cell::new(0));
        let swapped = Rc::new(Cell::new(false));
        let keep_alive: Rc<RefCell<Vec<UnixStream>>> = Rc::default();
        for (me, other) in [(fds[0], fds[1]), (fds[1], fds[0])] {
            let (l, socks, sc, sw, keep) = (lp.clone(), sockets.clone(), stale_calls.clone(), swapped.clone(), keep_alive.clone());
            lp.add_handler(me, Interest::READ, move |_, _| {
                if sw.replace(true) {
                    return;
                }
                assert!(l.remove_handler(other));
                // Give up ownership without closing: dup2 below closes the old
                // socket and reuses its number in one step, so no other
                // thread can grab the number in between.
                let old = socks.borrow_mut().remove(&other).unwrap().into_raw_fd();
                let (fresh, peer) = socketpair();
                // SAFETY: `old` is owned by nobody now; dup2 closes it and
                // installs a copy of `fresh` under the same number.
                let n = unsafe { libc::dup2(fresh.as_raw_fd(), old) };
                assert_eq!(n, other);
                // SAFETY: dup2 returned a new fd that nothing else owns.
                let reused = UnixStream::from(unsafe { OwnedFd::from_raw_fd(n) });
                keep.borrow_mut().extend([fresh, peer, reused]);
                let sc = sc.clone();
                l.add_handler(other, Interest::READ, move |_, _| sc.set(sc.get() + 1)).unwrap();
            })
            .unwrap();
        }
        run_for(&lp, Duration::from_millis(30));
        assert!(swapped.get());
        assert_eq!(stale_calls.get(), 0, "the reused fd got the old fd's event");
    }

    fn handler_can_remove_itself(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap();
        let calls = Rc::new(Cell::new(0));
        let (c, l) = (calls.clone(), lp.clone());
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |fd, _| {
            c.set(c.get() + 1);
            l.remove_handler(fd);
        })
        .unwrap();
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(calls.get(), 1);
        assert_eq!(lp.stats().handlers, 1, "only the loop's own wake-up fd is left");
    }

    fn adding_a_handler_twice_is_an_error(lp) {
        let (a, _b) = socketpair();
        lp.add_handler(a.as_raw_fd(), Interest::READ, |_, _| {}).unwrap();
        let again = lp.add_handler(a.as_raw_fd(), Interest::READ, |_, _| {});
        assert!(matches!(again, Err(Error::AlreadyRegistered(fd)) if fd == a.as_raw_fd()));
    }

    fn removing_an_unknown_fd_is_a_noop(lp) {
        let (a, _b) = socketpair();
        assert!(!lp.remove_handler(a.as_raw_fd()));
        assert!(!lp.remove_handler(-1));
    }

    fn updating_an_unknown_fd_is_an_error(lp) {
        let (a, _b) = socketpair();
        let r = lp.update_handler(a.as_raw_fd(), Interest::READ);
        assert!(matches!(r, Err(Error::NotRegistered(_))));
    }

    fn update_handler_changes_what_is_reported(lp) {
        let (a, _b) = socketpair(); // writable, not readable
        let seen = Rc::new(Cell::new(Ready::EMPTY));
        let (s, l) = (seen.clone(), lp.clone());
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, ready| {
            s.set(ready);
            l.stop();
        })
        .unwrap();
        lp.update_handler(a.as_raw_fd(), Interest::WRITE).unwrap();
        start_bounded(&lp);
        assert!(seen.get().is_writable());
    }

    fn hang_up_is_reported_without_being_asked_for(lp) {
        let (a, b) = socketpair();
        drop(b);
        let seen = Rc::new(Cell::new(Ready::EMPTY));
        let (s, l) = (seen.clone(), lp.clone());
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, ready| {
            s.set(ready);
            l.stop();
        })
        .unwrap();
        start_bounded(&lp);
        if lp.capabilities().reports_hup {
            assert!(seen.get().is_hup(), "{:?}", seen.get());
        } else {
            assert!(seen.get().is_readable(), "{:?}", seen.get());
        }
    }

    fn parked_handler_gets_nothing_until_its_interest_is_set(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap();
        drop(b); // readable and hung up: a handler that is watched would run
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        lp.add_handler(a.as_raw_fd(), Interest::NONE, move |_, _| c.set(c.get() + 1))
            .unwrap();
        run_for(&lp, Duration::from_millis(20));
        assert_eq!(calls.get(), 0);
        lp.update_handler(a.as_raw_fd(), Interest::READ).unwrap();
        run_for(&lp, Duration::from_millis(20));
        assert!(calls.get() > 0);
    }

    fn fd_at_or_above_fd_setsize_is_refused_only_by_select(lp) {
        let (a, _b) = socketpair();
        // SAFETY: F_DUPFD_CLOEXEC returns a new fd (>= 1500) we then own.
        let high = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 1500) };
        assert!(high >= 1500, "dup failed: {}", std::io::Error::last_os_error());
        // SAFETY: `high` is a fresh fd nothing else owns.
        let high = unsafe { OwnedFd::from_raw_fd(high) };
        let r = lp.add_handler(high.as_raw_fd(), Interest::READ, |_, _| {});
        if lp.backend() == cyclone::Backend::Select {
            match r {
                Err(Error::FdTooLarge { fd, limit, .. }) => {
                    assert_eq!(fd, high.as_raw_fd());
                    assert_eq!(limit, libc::FD_SETSIZE as RawFd);
                }
                other => panic!("expected FdTooLarge, got {other:?}"),
            }
        } else {
            r.unwrap();
            lp.remove_handler(high.as_raw_fd());
        }
    }

    fn edge_interest_reports_a_change_once_or_is_refused(lp) {
        let (a, mut b) = socketpair();
        b.write_all(b"x").unwrap(); // readable, and stays so (never read)
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let r = lp.add_handler(a.as_raw_fd(), Interest::READ | Interest::EDGE, move |_, _| c.set(c.get() + 1));
        if !lp.capabilities().edge_triggered {
            assert!(matches!(r, Err(Error::EdgeUnsupported(_))), "{r:?}");
            return;
        }
        r.unwrap();
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(calls.get(), 1, "edge-triggered: one report for one change");
        b.write_all(b"y").unwrap(); // a new change: one more report
        run_for(&lp, Duration::from_millis(30));
        assert_eq!(calls.get(), 2);
    }

    // Regression (io_uring): a POLL_REMOVE that met a wake-up of the poll
    // still waiting in task work failed with EALREADY and left the
    // multishot poll armed, holding the socket open after its fd was
    // closed: a client that sent its FIN right after its request never saw
    // the server close (about one `Connection: close` exchange in 500).
    fn a_closed_fd_reaches_the_peer_even_with_a_wake_up_pending(lp) {
        let interest = if lp.capabilities().edge_triggered {
            Interest::READ | Interest::EDGE
        } else {
            Interest::READ
        };
        let (ours, mut peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        lp.add_handler(ours.as_raw_fd(), interest, |_, _| {}).unwrap();
        // A turn that polls: the fd's poll is now in the kernel.
        lp.run_sync(cyclone::sleep(Duration::from_millis(1)));
        // The fd turns readable while the loop is not polling: its wake-up
        // waits for the loop's next entry into the kernel.
        peer.write_all(b"x").unwrap();
        lp.remove_handler(ours.as_raw_fd());
        drop(ours);
        peer.set_read_timeout(Some(common::HANG)).unwrap();
        let mut buf = [0u8; 8];
        let got = std::io::Read::read(&mut peer, &mut buf);
        // Closed with our byte unread: a reset, or (on some kernels) EOF.
        let closed = match &got {
            Ok(n) => *n == 0,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "the peer did not see the close: {got:?}");
    }
}
