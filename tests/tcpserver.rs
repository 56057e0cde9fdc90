//! TcpServer and TcpClient end to end, on every backend.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use cyclone::tcpclient::ConnectError;
use cyclone::{TcpClient, TcpServer};

const LIMIT: Duration = Duration::from_secs(10);

fn echo() -> TcpServer {
    TcpServer::new(|stream, _| async move {
        while let Ok(data) = stream.read_bytes(65536, true).await {
            if stream.write(data).await.is_err() {
                break;
            }
        }
    })
}

/// A blocking client round trip, from a plain thread.
fn round_trip(addr: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    c.read_exact(&mut buf).unwrap();
    buf
}

per_backend! {
    fn echo_server_answers_a_client(lp) {
        let server = echo();
        let addr = lp.run_sync(async move { server.listen(0, Some("127.0.0.1")).map(|a| (a[0], server)) }).unwrap();
        let (addr, server) = addr;
        let client = std::thread::spawn(move || round_trip(addr, b"hello cyclone"));
        lp.run_sync_timeout(async { common::thread_finished(&client).await; client.join().unwrap() }, LIMIT)
            .map(|got| assert_eq!(got, b"hello cyclone"))
            .unwrap();
        server.stop();
    }

    fn tcp_client_connects_to_a_server_on_the_same_loop(lp) {
        let got = lp.run_sync_timeout(async {
            let server = echo();
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let stream = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            stream.write(&b"ping\n"[..]).await.unwrap();
            let line = stream.read_until(b"\n", None).await.unwrap();
            server.stop();
            line
        }, LIMIT).unwrap();
        assert_eq!(&got[..], b"ping\n");
    }

    fn tcp_client_resolves_localhost(lp) {
        let ok = lp.run_sync_timeout(async {
            let server = echo();
            let port = server.listen(0, Some("localhost")).unwrap()[0].port();
            let r = TcpClient::connect("localhost", port, LIMIT).await;
            server.stop();
            r.is_ok()
        }, LIMIT).unwrap();
        assert!(ok);
    }

    fn tcp_client_reports_connection_refused(lp) {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port() // closed on drop: nothing listens
        };
        let r = lp.run_sync_timeout(TcpClient::connect("127.0.0.1", port, LIMIT), LIMIT).unwrap();
        match r {
            Err(ConnectError::Connect { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
            }
            other => panic!("expected a refused connect, got {:?}", other.map(|_| ())),
        }
    }

    fn tcp_client_reports_a_name_that_does_not_resolve(lp) {
        let r = lp.run_sync_timeout(TcpClient::connect("no-such-host.invalid", 80, LIMIT), LIMIT).unwrap();
        assert!(matches!(r, Err(ConnectError::Resolve { .. })), "{:?}", r.map(|_| ()));
    }

    fn tcp_client_falls_back_to_the_next_address_family(lp) {
        let got = lp.run_sync_timeout(async {
            let server = echo();
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            // Nothing listens on [::1]:port (or IPv6 is off): that attempt
            // fails and the IPv4 one must win.
            let addrs = vec![
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port)),
                SocketAddr::from(([127, 0, 0, 1], port)),
            ];
            let stream = TcpClient::connect_addrs(addrs, LIMIT).await.unwrap();
            stream.write(&b"v4\n"[..]).await.unwrap();
            let line = stream.read_until(b"\n", None).await.unwrap();
            server.stop();
            line
        }, LIMIT).unwrap();
        assert_eq!(&got[..], b"v4\n");
    }

    fn max_connections_holds_new_connections_in_the_backlog(lp) {
        let got = lp.run_sync_timeout(async {
            let server = echo();
            server.set_max_connections(Some(1));
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let a = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            a.write(&b"a"[..]).await.unwrap();
            assert_eq!(&a.read_bytes(1, false).await.unwrap()[..], b"a");
            // The second connects (kernel backlog) but is not served yet.
            let b = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            b.write(&b"b"[..]).await.unwrap();
            let early = cyclone::timeout(Duration::from_millis(50), b.read_bytes(1, false)).await;
            assert!(early.is_err(), "served past max_connections");
            assert_eq!(server.connection_count(), 1);
            drop(a); // frees the slot
            let late = b.read_bytes(1, false).await.unwrap();
            server.stop();
            late
        }, LIMIT).unwrap();
        assert_eq!(&got[..], b"b");
    }

    fn stop_is_idempotent_and_safe_inside_a_delegate(lp) {
        let refused = lp.run_sync_timeout(async {
            let holder: Rc<std::cell::RefCell<Option<TcpServer>>> = Rc::default();
            let h = holder.clone();
            let server = TcpServer::new(move |stream, _| {
                let h = h.clone();
                async move {
                    if let Some(s) = h.borrow().as_ref() {
                        s.stop();
                        s.stop();
                    }
                    let _ = stream.write(&b"bye"[..]).await;
                }
            });
            *holder.borrow_mut() = Some(server.clone());
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let c = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            let _ = c.read_until_close().await;
            let again = TcpClient::connect("127.0.0.1", port, Duration::from_secs(2)).await;
            holder.borrow_mut().take();
            again.is_err()
        }, LIMIT).unwrap();
        assert!(refused, "a stopped server must not accept");
    }

    fn shutdown_lets_in_flight_connections_finish(lp) {
        let finished = lp.run_sync_timeout(async {
            let done = Rc::new(std::cell::Cell::new(false));
            let d = done.clone();
            let server = TcpServer::new(move |stream, _| {
                let d = d.clone();
                async move {
                    cyclone::sleep(Duration::from_millis(30)).await;
                    let _ = stream.write(&b"done"[..]).await;
                    d.set(true);
                }
            });
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let _c = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            while server.connection_count() == 0 {
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            server.shutdown(Duration::from_secs(5)).await;
            done.get() && server.connection_count() == 0
        }, LIMIT).unwrap();
        assert!(finished);
    }

    fn shutdown_closes_connections_still_open_at_the_deadline(lp) {
        let (closed, took) = lp.run_sync_timeout(async {
            let server = TcpServer::new(|stream, _| async move {
                // Waits for data that never comes.
                let _ = stream.read_until_close().await;
            });
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let c = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            while server.connection_count() == 0 {
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            let t0 = Instant::now();
            server.shutdown(Duration::from_millis(30)).await;
            let took = t0.elapsed();
            let eof = c.read_until_close().await.is_ok();
            (eof && server.connection_count() == 0, took)
        }, LIMIT).unwrap();
        assert!(closed);
        assert!(took >= Duration::from_millis(30));
    }

    fn shutdown_completes_only_once_the_cancelled_delegates_are_gone(lp) {
        let gone_at_return = lp.run_sync_timeout(async {
            /// Sets its flag when the delegate's future is dropped.
            struct OnDrop(Rc<std::cell::Cell<bool>>);
            impl Drop for OnDrop {
                fn drop(&mut self) {
                    self.0.set(true);
                }
            }
            let dropped = Rc::new(std::cell::Cell::new(false));
            let d = dropped.clone();
            let server = TcpServer::new(move |_stream, _| {
                let guard = OnDrop(d.clone());
                async move {
                    // Waits on something other than its stream: only
                    // cancelling the task ends it.
                    std::future::pending::<()>().await;
                    drop(guard);
                }
            });
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let _c = TcpClient::connect("127.0.0.1", port, LIMIT).await.unwrap();
            while server.connection_count() == 0 {
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            server.shutdown(Duration::from_millis(20)).await;
            dropped.get() && server.connection_count() == 0
        }, LIMIT).unwrap();
        assert!(gone_at_return, "shutdown returned before the connection's task was dropped");
    }
}

#[test]
fn fork_is_refused_once_a_loop_or_a_thread_exists() {
    // The test harness has threads, and this creates a loop: both are
    // reasons fork_processes must refuse.
    let _lp = cyclone::IOLoop::new().unwrap();
    let err = cyclone::process::fork_processes(2, 0).unwrap_err();
    assert!(err.to_string().contains("fork"), "{err}");
}

#[test]
fn workers_serve_from_every_thread() {
    // Each worker answers with its thread's name; SO_REUSEPORT spreads the
    // connections (by a hash of the 4-tuple), so 64 connections reach both.
    let workers = TcpServer::workers(2, 0, "127.0.0.1", || {
        TcpServer::new(|stream, _| async move {
            let name = std::thread::current().name().unwrap_or("?").to_string();
            let _ = stream.write(name.into_bytes()).await;
        })
    })
    .unwrap();
    let addr = workers.addrs()[0];
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        let mut name = String::new();
        c.read_to_string(&mut name).unwrap();
        seen.insert(name);
    }
    workers.stop().unwrap();
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["cyclone-worker-0", "cyclone-worker-1"]
    );
}

/// Regression tests for TcpServer: each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
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
                common::until("the cancelled task to be dropped", || {
                    server.connection_count() == 0
                })
                .await;
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
    }
}
