//! start/stop/close, current(), backend selection.

mod common;

use std::cell::Cell;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use common::{run_for, start_bounded};
use cyclone::{Backend, Error, IOLoop, Interest};

per_backend! {
    fn starting_a_running_loop_is_an_error(lp) {
        let result = Rc::new(Cell::new(None));
        let (r, l) = (result.clone(), lp.clone());
        lp.add_callback(move || {
            r.set(Some(matches!(l.start(), Err(Error::AlreadyRunning))));
            l.stop();
        });
        start_bounded(&lp);
        assert_eq!(result.get(), Some(true));
    }

    fn stop_before_start_makes_start_return_at_once(lp) {
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        lp.call_later(Duration::from_millis(50), move || r.set(true));
        lp.stop();
        let t0 = std::time::Instant::now();
        lp.start().unwrap();
        // Returned without running the loop: the 50 ms timeout did not
        // fire (the elapsed bound only guards against a blocking start,
        // with slack for a loaded CI machine).
        assert!(!ran.get());
        assert!(t0.elapsed() < Duration::from_secs(5));
        // The stop was consumed: the loop runs normally afterwards.
        run_for(&lp, Duration::from_millis(60));
        assert!(ran.get());
    }

    fn first_loop_of_a_thread_becomes_its_current_loop(lp) {
        // Each test runs on its own thread, and `lp` was its first loop.
        assert!(IOLoop::current().ptr_eq(&lp));
        let second = IOLoop::builder().backend(lp.backend()).build().unwrap();
        assert!(IOLoop::current().ptr_eq(&lp), "only the first becomes current");
        second.close().unwrap();
    }

    fn running_loop_is_current_and_the_previous_one_is_restored_after(lp) {
        let outer = IOLoop::current();
        let other = IOLoop::builder().backend(lp.backend()).build().unwrap();
        assert!(!outer.ptr_eq(&other));
        let inside = other.run_sync(async { IOLoop::current() });
        assert!(inside.ptr_eq(&other));
        assert!(IOLoop::current().ptr_eq(&outer));
        other.close().unwrap();
    }

    fn nested_loops_restore_current_in_order(lp) {
        let other = IOLoop::builder().backend(lp.backend()).build().unwrap();
        let (l, o) = (lp.clone(), other.clone());
        let seen = lp.run_sync(async move {
            let inner = o.run_sync(async { IOLoop::current() });
            (inner.ptr_eq(&o), IOLoop::current().ptr_eq(&l))
        });
        assert_eq!(seen, (true, true));
        other.close().unwrap();
    }

    fn backend_reports_what_was_chosen(lp) {
        assert!(Backend::available().contains(&lp.backend()));
    }

    fn close_drops_handlers_and_refuses_more_work(lp) {
        let (a, _b) = common::socketpair();
        let owned = Rc::new(());
        let held = owned.clone();
        use std::os::fd::AsRawFd;
        lp.add_handler(a.as_raw_fd(), Interest::READ, move |_, _| {
            let _ = &held;
        })
        .unwrap();
        lp.close().unwrap();
        assert_eq!(Rc::strong_count(&owned), 1, "the handler was dropped");
        assert!(matches!(lp.start(), Err(Error::Closed)));
        assert!(matches!(
            lp.add_handler(a.as_raw_fd(), Interest::READ, |_, _| {}),
            Err(Error::Closed)
        ));
    }

    fn closing_a_running_loop_is_an_error(lp) {
        let result = Rc::new(Cell::new(false));
        let (r, l) = (result.clone(), lp.clone());
        lp.add_callback(move || {
            r.set(matches!(l.close(), Err(Error::AlreadyRunning)));
            l.stop();
        });
        start_bounded(&lp);
        assert!(result.get());
    }
}

#[test]
fn new_loop_defaults_to_the_platform_backend() {
    // CYCLONE_POLLER is not set by the test harness.
    if std::env::var_os(cyclone::ioloop::POLLER_ENV).is_none() {
        assert_eq!(
            IOLoop::new().unwrap().backend(),
            Backend::platform_default()
        );
        assert_eq!(Backend::platform_default(), Backend::Epoll);
    }
}

#[test]
fn backend_names_parse_and_unknown_names_are_errors() {
    assert_eq!("epoll".parse::<Backend>().unwrap(), Backend::Epoll);
    assert_eq!("poll".parse::<Backend>().unwrap(), Backend::Poll);
    assert_eq!("SELECT".parse::<Backend>().unwrap(), Backend::Select);
    if common::backend_runs_here(Backend::Uring) {
        assert_eq!("uring".parse::<Backend>().unwrap(), Backend::Uring);
        assert_eq!("io_uring".parse::<Backend>().unwrap(), Backend::Uring);
    }
    let err = "kqueue-ish".parse::<Backend>().unwrap_err();
    assert!(matches!(&err, Error::UnknownBackend(n) if n == "kqueue-ish"));
    assert!(err.to_string().contains("epoll, uring, poll, select"));
}

#[test]
fn unknown_poller_in_the_environment_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["--port", "0"])
        .env("CYCLONE_POLLER", "bogus")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown poller backend \"bogus\""),
        "{stderr}"
    );
}

#[test]
fn poller_named_in_the_environment_is_used() {
    for backend in Backend::available() {
        let name = backend.name();
        let (mut child, line) = common::spawn_with_first_line(
            Command::new(env!("CARGO_BIN_EXE_cyclone"))
                .args(["--port", "0"])
                .env("CYCLONE_POLLER", name)
                .stderr(Stdio::null()),
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(line.contains(&format!("({name} poller)")), "{line}");
    }
}
