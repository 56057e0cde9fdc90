//! The HTTP/1.1 server over a raw TCP socket: bytes in, bytes out, on
//! every poller backend.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::http::{Resp, parse_responses, with_server};
use cyclone::IOLoop;
use cyclone::http1::{HttpConfig, HttpServer, Request, Response};
use http::{Method, StatusCode};

const LIMIT: Duration = Duration::from_secs(10);

async fn demo(req: Request) -> Response {
    match (req.method.clone(), req.path()) {
        (Method::GET | Method::HEAD, "/") => Response::text("Hello, World!"),
        (Method::POST, "/echo") => Response::new(StatusCode::OK).body(req.body),
        (_, "/panic") => panic!("handler boom"),
        _ => Response::text("404 Not Found\n").status(StatusCode::NOT_FOUND),
    }
}

/// Runs the demo server on `lp`, sends `chunks` (with pauses) from a client
/// thread, half-closes, and returns everything the server sent back.
fn exchange(
    lp: &IOLoop,
    config: HttpConfig,
    chunks: Vec<(Vec<u8>, Duration)>,
    half_close: bool,
) -> Vec<u8> {
    with_server(lp, HttpServer::with_config(config, demo), move |port| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        for (chunk, pause) in chunks {
            if c.write_all(&chunk).is_err() {
                break;
            }
            std::thread::sleep(pause);
        }
        if half_close {
            let _ = c.shutdown(Shutdown::Write);
        }
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got
    })
}

fn send(lp: &IOLoop, raw: &str) -> Vec<Resp> {
    let heads: Vec<bool> = raw.match_indices("\r\n\r\n").map(|_| false).collect();
    let got = exchange(
        lp,
        HttpConfig::default(),
        vec![(raw.as_bytes().to_vec(), Duration::ZERO)],
        true,
    );
    parse_responses(&got, &heads)
}

/// Sends a hostile request followed by a valid one; expects exactly one
/// response (`status`, Connection: close) and the connection closed.
fn refused(lp: &IOLoop, raw: &str, status: u16) {
    let full = format!("{raw}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
    let got = exchange(
        lp,
        HttpConfig::default(),
        vec![(full.into_bytes(), Duration::ZERO)],
        false,
    );
    let text = String::from_utf8_lossy(&got).to_string();
    let shown: String = raw.chars().take(120).collect();
    assert!(
        text.starts_with(&format!("HTTP/1.1 {status} ")),
        "{shown:?}... -> {text:?}"
    );
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "one response only: {text:?}"
    );
    assert!(text.contains("Connection: close\r\n"), "{text:?}");
}

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

    fn transfer_encoding_with_content_length_is_400_and_nothing_is_smuggled(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
    }

    fn differing_content_lengths_are_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
    }

    fn non_numeric_content_length_is_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3x\r\n\r\nabc", 400);
    }

    fn unknown_transfer_coding_is_501(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501);
    }

    fn bad_chunk_size_is_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400);
    }

    fn chunk_without_crlf_after_data_is_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", 400);
    }

    fn invalid_method_token_is_400(lp) {
        refused(&lp, "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }

    fn whitespace_before_a_header_colon_is_400(lp) {
        refused(&lp, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    }

    fn obs_fold_is_400(lp) {
        refused(&lp, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400);
    }

    fn nul_in_a_header_is_400(lp) {
        refused(&lp, "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400);
    }

    fn missing_host_on_http11_is_400(lp) {
        refused(&lp, "GET / HTTP/1.1\r\n\r\n", 400);
    }

    fn repeated_host_is_400(lp) {
        refused(&lp, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    }

    // Review findings (bugs fixed in the same change): each must stay fixed.
    fn a_bare_lf_blank_line_is_400_and_nothing_is_smuggled(lp) {
        refused(&lp, "GET /a HTTP/1.1\nHost: x\n\n", 400);
    }

    fn a_trailer_line_that_is_not_a_field_is_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nGET /x HTTP/1.1\r\n\r\n", 400);
    }

    fn a_chunk_size_with_a_stray_cr_is_400(lp) {
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\nhello\r\n0\r\n\r\n", 400);
    }

    fn http10_with_transfer_encoding_closes_after_its_response(lp) {
        let r = send(&lp, "POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
        assert_eq!(r.len(), 1, "nothing after faulty 1.0 framing is served");
        assert_eq!(r[0].header("connection"), Some("close"));
    }

    fn a_finished_response_is_not_held_back_by_a_partial_next_request(lp) {
        let got = with_server(&lp, HttpServer::new(demo), move |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            // The response must come while the client keeps the next
            // request half sent (header_timeout is 60 s).
            c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT").unwrap();
            let mut buf = [0u8; 16];
            let n = c.read(&mut buf).unwrap_or(0);
            buf[..n].to_vec()
        });
        assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got));
    }

    fn after_an_error_response_the_server_drains_instead_of_resetting(lp) {
        // Lingering close: the 413 is decided from the head while the
        // client may still be sending its body. The server must keep
        // reading (and discarding) for a while, so the client's further
        // writes do not bounce off a closed socket with a reset (which
        // can destroy the response before the client reads it).
        let (writes_ok, clean_eof) = with_server(&lp, HttpServer::new(demo), move |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            c.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n").unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                c.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 413 "));
            // Keep sending the body after the answer, twice, each time
            // once the server has taken the last piece off its socket
            // (read it, or closed): a server that closed would reset the
            // second write.
            let server_took_it = || common::unread_by_server(port) == 0;
            let mut ok = c.write_all(&[b'z'; 4096]).is_ok();
            common::wait_until("the server to take the body's first piece", server_took_it);
            ok &= c.write_all(&[b'z'; 4096]).is_ok();
            common::wait_until("the server to take the body's second piece", server_took_it);
            ok &= c.write_all(&[b'z'; 4096]).is_ok();
            // A reset connection cannot even be shut down.
            ok &= c.shutdown(Shutdown::Write).is_ok();
            let mut rest = Vec::new();
            let eof = c.read_to_end(&mut rest).is_ok();
            (ok, eof)
        });
        assert!(writes_ok, "the server reset the connection instead of draining it");
        assert!(clean_eof, "the connection did not end with a clean EOF");
    }

    fn a_client_that_never_reads_is_disconnected_after_write_timeout(lp) {
        // 64 pipelined requests, each answered with more than loopback
        // buffers hold.
        let gone = disconnected_when_never_reading(&lp, 256 * 1024, 64);
        assert!(gone, "the connection outlived write_timeout");
    }

    fn a_single_response_the_client_never_reads_is_dropped_after_write_timeout(lp) {
        // One request, no pipelining: the one response's write must time
        // out all the same.
        let gone = disconnected_when_never_reading(&lp, 8 << 20, 1);
        assert!(gone, "the connection outlived write_timeout");
    }

    fn unsupported_version_is_505(lp) {
        refused(&lp, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    }

    fn oversized_head_is_431(lp) {
        let big = "a".repeat(70 * 1024);
        refused(&lp, &format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"), 431);
    }

    fn too_many_headers_is_431(lp) {
        let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
        refused(&lp, &format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n"), 431);
    }

    fn content_length_over_the_limit_is_413_before_the_body_is_read(lp) {
        // The body is never sent: the answer must not wait for it.
        refused(&lp, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413);
    }

    fn chunked_body_over_the_limit_is_413(lp) {
        let config = HttpConfig { max_body_size: 4, ..HttpConfig::default() };
        let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n".to_vec();
        let got = exchange(&lp, config, vec![(raw, Duration::ZERO)], false);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    }

    fn a_slow_head_gets_408_after_header_timeout(lp) {
        let config = HttpConfig { header_timeout: Duration::from_millis(100), ..HttpConfig::default() };
        let chunks = vec![(b"GET / HTTP/1.1\r\nHost".to_vec(), Duration::from_millis(400)), (b": x\r\n\r\n".to_vec(), Duration::ZERO)];
        let got = exchange(&lp, config, chunks, false);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1);
    }

    fn an_idle_connection_is_closed_after_idle_timeout(lp) {
        let config = HttpConfig { idle_connection_timeout: Duration::from_millis(50), ..HttpConfig::default() };
        let chunks = vec![(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Duration::from_millis(300)), (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), Duration::ZERO)];
        let got = exchange(&lp, config, chunks, false);
        let r = parse_responses(&got, &[]);
        assert_eq!(r.len(), 1, "the second request came after the idle timeout");
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

        fn shutdown_closes_idle_connections_at_once_and_finishes_in_flight_ones(lp) {
            use std::sync::atomic::{AtomicBool, Ordering};
            let (idle_eof, in_flight) = lp.run_sync_timeout(async {
                let slow_started = std::rc::Rc::new(std::cell::Cell::new(false));
                let started = slow_started.clone();
                let server = HttpServer::new(move |req: Request| {
                    let started = started.clone();
                    async move {
                        if req.path() == "/slow" {
                            started.set(true);
                            cyclone::sleep(Duration::from_millis(50)).await;
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
                server.shutdown(Duration::from_secs(5)).await;
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
    }
}

/// Whether a server with a 100 ms `write_timeout` lets go, within a
/// second, of a client that sends `requests` requests for `body` bytes
/// each and never reads (the client gives up only after 1.5 s).
fn disconnected_when_never_reading(lp: &IOLoop, body: usize, requests: usize) -> bool {
    lp.run_sync_timeout(
        async move {
            let config = HttpConfig {
                write_timeout: Duration::from_millis(100),
                ..HttpConfig::default()
            };
            let server = HttpServer::with_config(config, move |_req: Request| async move {
                Response::text(vec![b'x'; body])
            });
            let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let client = std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                for _ in 0..requests {
                    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
                }
                std::thread::sleep(Duration::from_millis(1500)); // never reads
                drop(c);
            });
            while server.tcp().connection_count() == 0 {
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            // Well before the client gives up, the server has let go.
            let t0 = std::time::Instant::now();
            while server.tcp().connection_count() > 0 && t0.elapsed() < Duration::from_secs(1) {
                cyclone::sleep(Duration::from_millis(5)).await;
            }
            let gone = server.tcp().connection_count() == 0;
            common::thread_finished(&client).await;
            server.tcp().stop();
            gone
        },
        LIMIT,
    )
    .unwrap()
}
