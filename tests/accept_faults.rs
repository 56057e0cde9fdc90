//! accept(2) failures other than running out of descriptors (those are
//! tests/emfile.rs), injected through `cyclone::testing` on every poller
//! backend: a failure that loses one connection (ECONNABORTED, EPROTO) is
//! skipped at once; memory pressure (ENOBUFS, ENOMEM) pauses accepting,
//! which then resumes; neither spins the loop nor stops the server.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use cyclone::testing::{accept_calls, inject_accept_errors};
use cyclone::{IOLoop, TcpServer};

/// A server that says "hi" to each connection and closes it.
fn hi() -> TcpServer {
    TcpServer::new(|stream, _| async move {
        let _ = stream.write(&b"hi"[..]).await;
    })
}

/// Serves [`hi`] on `lp` (this thread: the injected errors are this
/// thread's) while `client` runs on a thread of its own with the port.
fn serve<T: Send + 'static>(lp: &IOLoop, client: impl FnOnce(u16) -> T + Send + 'static) -> T {
    lp.run_sync_timeout(
        async move {
            let server = hi();
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let t = std::thread::spawn(move || client(port));
            common::thread_finished(&t).await;
            server.stop();
            t.join()
        },
        common::HANG,
    )
    .expect("the exchange did not finish in time")
    .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// What a new connection to `port` reads before the server closes it
/// (empty if it was reset or closed unanswered).
fn greeting(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = String::new();
    let _ = c.read_to_string(&mut got);
    got
}

per_backend! {
    fn accept_failures_that_lose_one_connection_are_skipped_at_once(lp) {
        let before = accept_calls();
        inject_accept_errors(&[libc::ECONNABORTED, libc::EPROTO]);
        let got = serve(&lp, greeting);
        assert_eq!(got, "hi");
        // Two skipped, one real: the first readiness got all three.
        assert!(accept_calls() - before >= 3);
    }

    fn memory_pressure_on_accept_pauses_it_without_spinning_then_it_resumes(lp) {
        let before = accept_calls();
        inject_accept_errors(&[libc::ENOBUFS, libc::ENOMEM]);
        let got = serve(&lp, |port| {
            // The first client meets the pressure (shed, or kept waiting
            // through the pauses); the one after it is served.
            let _ = greeting(port);
            greeting(port)
        });
        assert_eq!(got, "hi");
        // Two injected failures, a shed connection and two real accepts:
        // a spinning loop would have made thousands of attempts.
        let calls = accept_calls() - before;
        assert!(calls <= 16, "{calls} accept attempts");
    }
}
