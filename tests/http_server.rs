//! The HTTP/1.1 server over a raw TCP socket, serving: requests and
//! responses, keep-alive and pipelining, with curl, behind a proxy, on a
//! Unix socket, and shutdown; bytes in, bytes out, on every poller
//! backend. What it refuses, and when it lets a connection go, is in
//! `http_server_refusals.rs`; the demo server is in `common::demo_server`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::demo_server::{LIMIT, demo, exchange, send};
use common::http::{Resp, parse_responses, with_server};
use cyclone::IOLoop;
use cyclone::http1::{HttpConfig, HttpServer, Request, Response};

per_backend! {
    fn get_root_answers_hello_world(lp) {
        let r = send(&lp, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].body, b"Hello, World!");
        assert_eq!(r[0].header("content-length"), Some("13"));
    }

    fn responses_carry_date_and_server_headers(lp) {
        let r = send(&lp, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r[0].header("server"), Some("Cyclone"));
        assert!(r[0].header("date").is_some_and(|d| d.ends_with(" GMT")));
    }

    fn unknown_path_is_404(lp) {
        let r = send(&lp, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r[0].status, 404);
    }

    fn post_echo_returns_a_content_length_body(lp) {
        let r = send(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world");
        assert_eq!(r[0].body, b"hello world");
    }

    fn chunked_body_with_extensions_and_trailers_is_decoded(lp) {
        let r = send(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n");
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].body, b"hello world");
    }

    fn http11_keeps_the_connection_alive_by_default(lp) {
        let r = send(&lp, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 404]);
        assert!(r.iter().all(|r| r.header("connection").is_none()));
    }

    fn connection_close_is_honoured_and_announced(lp) {
        let r = send(&lp, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.len(), 1, "nothing after Connection: close is answered");
        assert_eq!(r[0].header("connection"), Some("close"));
    }

    fn http10_closes_unless_keep_alive_is_asked_for(lp) {
        let r = send(&lp, "GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].header("connection"), Some("close"));
        let r = send(&lp, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].header("connection"), Some("keep-alive"));
    }

    fn pipelined_requests_are_all_answered_in_order(lp) {
        let raw = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let r = send(&lp, raw);
        assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [404, 200, 200, 200]);
        assert_eq!(r[1].body, b"abc");
    }

    fn head_gets_the_get_headers_and_no_body(lp) {
        let got = exchange(&lp, HttpConfig::default(), vec![(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), Duration::ZERO)], true);
        let r = parse_responses(&got, &[true]);
        assert_eq!(r[0].header("content-length"), Some("13"));
        assert!(r[0].body.is_empty());
    }

    fn handler_panic_is_a_500_and_the_connection_goes_on(lp) {
        let r = send(&lp, "GET /panic HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [500, 200]);
    }

    fn expect_100_continue_is_answered_before_the_body_is_sent(lp) {
        let got = with_server(&lp, HttpServer::new(demo), move |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
            let mut interim = [0u8; 25];
            c.read_exact(&mut interim).unwrap();
            c.write_all(b"body").unwrap();
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
            (interim.to_vec(), rest)
        });
        assert_eq!(got.0, b"HTTP/1.1 100 Continue\r\n\r\n");
        let r = parse_responses(&got.1, &[]);
        assert_eq!(r[0].body, b"body");
    }

    fn any_split_of_a_pipelined_stream_gives_the_same_responses(lp) {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET /n HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let strip_date = |rs: Vec<Resp>| -> Vec<Resp> {
            rs.into_iter().map(|mut r| { r.headers.retain(|(k, _)| k != "date"); r }).collect()
        };
        let whole = strip_date(parse_responses(&exchange(&lp, HttpConfig::default(), vec![(raw.to_vec(), Duration::ZERO)], true), &[]));
        assert_eq!(whole.len(), 4);
        let mut seed = 0x9E37_79B9_u64;
        for _ in 0..8 {
            let mut chunks = Vec::new();
            let mut at = 0;
            while at < raw.len() {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                let n = 1 + (seed % 40) as usize;
                let end = (at + n).min(raw.len());
                chunks.push((raw[at..end].to_vec(), Duration::from_micros(300)));
                at = end;
            }
            let split = strip_date(parse_responses(&exchange(&lp, HttpConfig::default(), chunks, true), &[]));
            assert_eq!(split, whole);
        }
    }
}

mod with_curl {
    use super::*;

    crate::per_backend! {
        fn curl_gets_the_demo_page_when_installed(lp) {
            if std::process::Command::new("curl")
                .arg("--version")
                .output()
                .is_err()
            {
                // curl is optional; the raw-socket tests cover the protocol.
                eprintln!("skipped: curl is not installed");
                return;
            }
            let out = lp
                .run_sync_timeout(
                    async {
                        let server = HttpServer::new(demo);
                        let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                        let child = std::thread::spawn(move || {
                            std::process::Command::new("curl")
                                .args([
                                    "-s",
                                    "--max-time",
                                    "10",
                                    "-X",
                                    "POST",
                                    "--data-binary",
                                    "from curl",
                                ])
                                .arg(format!("http://127.0.0.1:{port}/echo"))
                                .output()
                                .unwrap()
                        });
                        common::thread_finished(&child).await;
                        server.tcp().stop();
                        child.join().unwrap()
                    },
                    LIMIT,
                )
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "from curl");
        }
    }
}

mod behind_a_proxy_and_shutdown {
    use super::*;

    fn who(lp: &IOLoop, config: HttpConfig, raw: &'static [u8]) -> String {
        lp.run_sync_timeout(
            async move {
                let server = HttpServer::with_config(config, |req: Request| async move {
                    Response::text(format!("{:?} {}", req.remote_ip, req.protocol))
                });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    c.write_all(raw).unwrap();
                    let mut got = Vec::new();
                    let _ = c.read_to_end(&mut got);
                    got
                });
                common::thread_finished(&client).await;
                server.tcp().stop();
                let r = parse_responses(&client.join().unwrap(), &[]);
                String::from_utf8(r[0].body.clone()).unwrap()
            },
            LIMIT,
        )
        .unwrap()
    }

    const PROXIED: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 9.9.9.9, 1.2.3.4, 10.0.0.1\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n";

    per_backend! {
        fn without_xheaders_the_peer_address_is_the_client(lp) {
            assert_eq!(who(&lp, HttpConfig::default(), PROXIED), "Some(127.0.0.1) http");
        }

        fn with_xheaders_the_proxy_reported_client_and_scheme_are_used(lp) {
            let config = HttpConfig {
                xheaders: true,
                trusted_downstream: vec!["10.0.0.1".parse().unwrap()],
                ..HttpConfig::default()
            };
            assert_eq!(who(&lp, config, PROXIED), "Some(1.2.3.4) https");
        }

        fn a_long_polling_handler_learns_that_the_client_left(lp) {
            let noticed = lp.run_sync_timeout(async {
                let (tx, rx) = futures::channel::oneshot::channel::<bool>();
                let tx = std::rc::Rc::new(std::cell::RefCell::new(Some(tx)));
                let waiting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                let w = waiting.clone();
                let server = HttpServer::new(move |req: Request| {
                    let (tx, w) = (tx.clone(), w.clone());
                    async move {
                        w.store(true, std::sync::atomic::Ordering::SeqCst);
                        // Waits for news that never comes, or the client's exit.
                        req.connection.closed().await;
                        if let Some(tx) = tx.borrow_mut().take() {
                            let _ = tx.send(req.connection.is_closed());
                        }
                        Response::text("too late")
                    }
                });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.write_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    common::wait_until("the handler to wait for news", || {
                        waiting.load(std::sync::atomic::Ordering::SeqCst)
                    });
                    drop(c); // the client gives up
                });
                let noticed = rx.await.unwrap();
                client.join().unwrap();
                server.tcp().stop();
                noticed
            }, LIMIT).unwrap();
            assert!(noticed);
        }

        fn http_is_served_on_a_unix_socket(lp) {
            let path = std::env::temp_dir().join(format!("cyclone-http-{}-{:?}.sock", std::process::id(), lp.backend()));
            let got = lp.run_sync_timeout({
                let path = path.clone();
                async move {
                    let server = HttpServer::new(demo);
                    server.bind_unix_socket(&path, 0o600).unwrap();
                    let client = std::thread::spawn(move || {
                        let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
                        c.set_read_timeout(Some(LIMIT)).unwrap();
                        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
                        let mut got = Vec::new();
                        let _ = c.read_to_end(&mut got);
                        got
                    });
                    common::thread_finished(&client).await;
                    server.tcp().stop();
                    client.join().unwrap()
                }
            }, LIMIT).unwrap();
            let _ = std::fs::remove_file(&path);
            let r = parse_responses(&got, &[]);
            assert_eq!(r[0].body, b"Hello, World!");
        }

        fn a_gzip_request_body_is_inflated_when_asked(lp) {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(b"inflated body").unwrap();
            let gz = e.finish().unwrap();
            let mut raw = format!(
                "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                gz.len()
            )
            .into_bytes();
            raw.extend_from_slice(&gz);
            let config = HttpConfig { decompress_request: true, ..HttpConfig::default() };
            let got = exchange(&lp, config, vec![(raw, Duration::ZERO)], true);
            let r = parse_responses(&got, &[]);
            assert_eq!(r[0].body, b"inflated body");
        }

        fn shutdown_closes_idle_connections_and_finishes_in_flight_ones(lp) {
            use std::sync::atomic::{AtomicBool, Ordering};
            let (idle_eof, in_flight) = lp.run_sync_timeout(async {
                let slow_started = std::rc::Rc::new(std::cell::Cell::new(false));
                // The slow handler finishes only once the shutdown has begun
                // (not after a fixed pause a busy machine may outlast).
                let release = std::rc::Rc::new(std::cell::Cell::new(false));
                let (started, released) = (slow_started.clone(), release.clone());
                let server = HttpServer::new(move |req: Request| {
                    let (started, released) = (started.clone(), released.clone());
                    async move {
                        if req.path() == "/slow" {
                            started.set(true);
                            common::until("the shutdown to begin", || released.get()).await;
                        }
                        Response::text("done")
                    }
                });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                // An idle keep-alive connection (one request answered) and
                // one whose request is in flight when shutdown begins.
                let idle_answered = std::sync::Arc::new(AtomicBool::new(false));
                let answered = idle_answered.clone();
                let idle = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut got = Vec::new();
                    let mut byte = [0u8; 1];
                    while !got.ends_with(b"\r\n\r\ndone") && c.read(&mut byte).unwrap_or(0) == 1 {
                        got.push(byte[0]);
                    }
                    answered.store(true, Ordering::SeqCst); // now it is idle
                    let _ = c.read_to_end(&mut got); // returns at EOF
                    got
                });
                let slow = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut got = Vec::new();
                    let _ = c.read_to_end(&mut got);
                    got
                });
                while server.tcp().connection_count() < 2 {
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                common::until("the idle connection's answer and the slow request", || {
                    idle_answered.load(Ordering::SeqCst) && slow_started.get()
                })
                .await;
                let t0 = std::time::Instant::now();
                // Polled in order: the shutdown begins (draining, idle
                // connections closed), then the slow handler is released.
                futures::future::join(server.shutdown(Duration::from_secs(5)), async {
                    release.set(true);
                })
                .await;
                assert!(t0.elapsed() < Duration::from_secs(5), "did not wait for the deadline");
                common::thread_finished(&idle).await;
                common::thread_finished(&slow).await;
                (idle.join().unwrap(), slow.join().unwrap())
            }, LIMIT).unwrap();
            let idle = parse_responses(&idle_eof, &[]);
            assert_eq!(idle.len(), 1, "the idle connection got its answer, then EOF");
            let slow = parse_responses(&in_flight, &[]);
            assert_eq!(slow.len(), 1);
            assert_eq!(slow[0].body, b"done");
            assert_eq!(slow[0].header("connection"), Some("close"));
        }

        fn an_idle_connection_whose_request_comes_during_the_drain_is_answered_with_close(lp) {
            // A balancer's pooled connection, reused just as the server
            // drains: its request is answered (with Connection: close),
            // not met by a close it crossed.
            let got = lp.run_sync_timeout(async {
                let server = HttpServer::new(|_req: Request| async { Response::text("still here") });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let (go, wait) = std::sync::mpsc::channel::<()>();
                let (idle_tx, idle_rx) = std::sync::mpsc::channel::<()>();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut first = Vec::new();
                    let mut byte = [0u8; 1];
                    while !first.ends_with(b"still here") && c.read(&mut byte).unwrap_or(0) == 1 {
                        first.push(byte[0]);
                    }
                    idle_tx.send(()).unwrap(); // answered: idle now
                    wait.recv().unwrap(); // the drain has begun
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut rest = Vec::new();
                    let _ = c.read_to_end(&mut rest);
                    rest
                });
                common::until("the first answer", || idle_rx.try_recv().is_ok()).await;
                futures::future::join(server.shutdown(Duration::from_secs(5)), async {
                    go.send(()).unwrap();
                })
                .await;
                common::thread_finished(&client).await;
                client.join().unwrap()
            }, LIMIT).unwrap();
            let r = parse_responses(&got, &[]);
            assert_eq!(r.len(), 1, "{:?}", String::from_utf8_lossy(&got));
            assert_eq!(r[0].body, b"still here");
            assert_eq!(r[0].header("connection"), Some("close"));
        }

        fn shutdown_answers_a_connection_whose_first_request_comes_after_it_began(lp) {
            // A client that connected but had not sent its request yet (it
            // may be on the wire during a restart's handover) is not idle:
            // its request is answered, with Connection: close.
            let (got, waited) = lp.run_sync_timeout(async {
                let server = HttpServer::new(|_req: Request| async { Response::text("late") });
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let (go, wait) = std::sync::mpsc::channel::<()>();
                let client = std::thread::spawn(move || {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.set_read_timeout(Some(LIMIT)).unwrap();
                    wait.recv().unwrap(); // the shutdown has begun
                    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                    let mut got = Vec::new();
                    let _ = c.read_to_end(&mut got);
                    got
                });
                while server.tcp().connection_count() < 1 {
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                let t0 = std::time::Instant::now();
                futures::future::join(server.shutdown(Duration::from_secs(5)), async {
                    go.send(()).unwrap();
                })
                .await;
                let waited = t0.elapsed();
                common::thread_finished(&client).await;
                (client.join().unwrap(), waited)
            }, LIMIT).unwrap();
            let r = parse_responses(&got, &[]);
            assert_eq!(r.len(), 1, "{:?}", String::from_utf8_lossy(&got));
            assert_eq!(r[0].body, b"late");
            assert_eq!(r[0].header("connection"), Some("close"));
            assert!(waited < Duration::from_secs(5), "the shutdown waited for its deadline");
        }
    }
}
