//! Faults around a connection: a client that vanishes in the middle of a
//! large response is let go (its response released, nothing more pulled)
//! while the loop goes on serving everyone else, on every poller backend.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::http::with_server;
use cyclone::http1::{BodyStream, HttpServer, Response};

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
}
