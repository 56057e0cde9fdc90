//! Faults around a connection, on every poller backend: a client that
//! vanishes in the middle of a large response is let go (its response
//! released, nothing more pulled) while the loop goes on serving everyone
//! else; a handler that holds the loop past the blocking threshold is
//! logged with the line of code that registered it.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::http::with_server;
use cyclone::http1::{BodyStream, HttpServer, Response};
use cyclone::web::{Application, Request};

/// Longer than the threshold below by far: the handlers here block the
/// loop on purpose (the behaviour under test), so the warning is certain.
const BLOCK: Duration = Duration::from_millis(60);
const THRESHOLD: Duration = Duration::from_millis(20);

/// GET / on a fresh connection; the answer's text.
fn get(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    answer
}

/// Sets its flag when dropped: tells the test the server let a response go.
struct Released(Arc<AtomicBool>);

impl Drop for Released {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// 64 MiB at `/big`, in 64 KiB pieces made as they are sent; "ok" elsewhere.
fn server(released: Arc<AtomicBool>) -> HttpServer {
    HttpServer::new(move |req| {
        let released = released.clone();
        async move {
            if req.path() != "/big" {
                return Response::text("ok");
            }
            let guard = Released(released);
            let pieces = std::iter::repeat_with(move || {
                let _held = &guard; // dropped with the iterator
                Ok(Bytes::from(vec![b'x'; 64 * 1024]))
            })
            .take(1024);
            Response::new(http::StatusCode::OK).stream(BodyStream::new(Some(64 << 20), pieces))
        }
    })
}

per_backend! {
    fn a_client_reset_mid_response_is_let_go_while_others_are_served(lp) {
        let released = Arc::new(AtomicBool::new(false));
        let seen = released.clone();
        with_server(&lp, server(released), move |port| {
            let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
            a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            a.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            // Well into the body: the server is writing with a full buffer.
            let mut got = vec![0u8; 1 << 20];
            a.read_exact(&mut got).unwrap();
            assert!(!seen.load(Ordering::SeqCst), "released before the client left");
            socket2::SockRef::from(&a).set_linger(Some(Duration::ZERO)).unwrap();
            drop(a); // a reset, not a close
            let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
            b.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            b.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut answer = String::new();
            b.read_to_string(&mut answer).unwrap();
            assert!(answer.ends_with("\r\n\r\nok"), "{answer:?}");
            common::wait_until("the server releases the reset client's response", || {
                seen.load(Ordering::SeqCst)
            });
        });
    }

    fn a_handler_that_blocks_the_loop_is_logged_with_the_line_that_made_its_server(lp) {
        lp.set_blocking_log_threshold(Some(THRESHOLD));
        let line = line!() + 1;
        let server = HttpServer::new(|_req| async {
            std::thread::sleep(BLOCK);
            Response::text("late")
        });
        let logs = common::capture_logs(|| {
            let answer = with_server(&lp, server, get);
            assert!(answer.ends_with("late"), "{answer:?}");
        });
        let site = format!("in code registered at tests/http_faults.rs:{line}:");
        assert!(logs.contains(&site), "no {site:?} in:\n{logs}");
    }

    fn a_route_that_blocks_the_loop_is_logged_with_the_line_that_added_it(lp) {
        lp.set_blocking_log_threshold(Some(THRESHOLD));
        let app = Application::new().route("/other", |_req: Request| async { "other" });
        let line = line!() + 1;
        let app = app.route("/", |_req: Request| async {
            std::thread::sleep(BLOCK);
            "late"
        });
        let logs = common::capture_logs(|| {
            let answer = with_server(&lp, app, get);
            assert!(answer.ends_with("late"), "{answer:?}");
        });
        let site = format!("in code registered at tests/http_faults.rs:{line}:");
        assert!(logs.contains(&site), "no {site:?} in:\n{logs}");
    }
}
