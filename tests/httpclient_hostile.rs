//! The HTTP client against scripted servers that send exactly the bytes
//! a test says (`common::scripted`), on every poller backend: malformed
//! and hostile responses end in a precise error within the limits and
//! timeouts, never a panic or a hang; a server closing pooled
//! connections costs one safe retry, and nothing is ever sent twice
//! otherwise.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::scripted::{answering, read_request, scripted, silent};
use cyclone::IOLoop;
use cyclone::httpclient::{ClientConfig, FetchError, HttpClient, Request, TimeoutKind};

/// One fetch of `url` on `lp` with a fresh client.
fn fetch(lp: &IOLoop, request: Request) -> Result<cyclone::httpclient::Response, FetchError> {
    let client = HttpClient::new();
    lp.run_sync(async move { client.fetch(request).await })
}

/// A server answering the first request of each connection with `bytes`
/// and then closing.
fn once(bytes: &'static [u8]) -> common::scripted::Scripted {
    scripted(move |conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        if read_request(&mut reader).is_some() {
            let mut conn = conn;
            let _ = conn.write_all(bytes);
        }
    })
}

/// A keep-alive server answering "ok" that, on its first connection, once
/// `go` says so, sends a second response nobody asked for ("forged"),
/// calls `sent`, and holds the connection open.
fn forging(
    go: mpsc::Receiver<()>,
    sent: impl Fn() + Send + Sync + 'static,
) -> common::scripted::Scripted {
    let go = std::sync::Mutex::new(go);
    scripted(move |conn, i| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        if read_request(&mut reader).is_none() {
            return;
        }
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        if i == 0 {
            let _ = go.lock().unwrap().recv();
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged");
            sent();
            // Held open: the client must not take the bytes as an answer.
            let _ = read_request(&mut reader);
        }
    })
}

fn malformed(lp: &IOLoop, bytes: &'static [u8], why: &str) {
    let s = once(bytes);
    match fetch(lp, Request::get(&s.url("/"))) {
        Err(e @ FetchError::Malformed(_)) => assert!(e.to_string().contains(why), "{e}"),
        other => panic!(
            "{:?}: expected Malformed({why}), got {other:?}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

per_backend! {
    fn a_bad_status_line_is_malformed(lp) {
        malformed(&lp, b"HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n", "invalid response head");
        malformed(&lp, b"ICY 200 OK\r\n\r\n", "invalid response head");
    }

    fn an_invalid_chunk_size_is_malformed(lp) {
        malformed(&lp, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "invalid chunk size");
    }

    fn two_different_content_lengths_are_malformed(lp) {
        malformed(&lp, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "differing Content-Length");
    }

    fn a_response_framed_two_ways_is_malformed(lp) {
        malformed(&lp, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "Transfer-Encoding with Content-Length");
    }

    fn a_one_mebibyte_header_section_is_refused_at_the_limit(lp) {
        let s = scripted(|conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if read_request(&mut reader).is_none() {
                return;
            }
            let mut conn = conn;
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n");
            let line = format!("X-Filler: {}\r\n", "f".repeat(1000));
            for _ in 0..1024 {
                if conn.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let r = fetch(&lp, Request::get(&s.url("/")));
        assert!(matches!(r, Err(FetchError::TooLarge { what: "head", limit: 65536 })), "{r:?}");
    }

    fn a_server_that_accepts_and_never_answers_times_out(lp) {
        let (s, tx) = silent();
        let started = Instant::now();
        let r = fetch(&lp, Request::get(&s.url("/")).timeout(Duration::from_millis(200)));
        assert!(matches!(r, Err(FetchError::Timeout(TimeoutKind::Request))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(tx);
    }

    fn a_server_trickling_a_byte_at_a_time_is_cut_off_by_the_timeout(lp) {
        let s = scripted(|conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if read_request(&mut reader).is_none() {
                return;
            }
            let mut conn = conn;
            for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".iter().cycle() {
                if conn.write_all(&[*b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = fetch(&lp, Request::get(&s.url("/")).timeout(Duration::from_millis(700)));
        assert!(matches!(r, Err(FetchError::Timeout(TimeoutKind::Request))), "{r:?}");
    }

    fn a_body_shorter_than_its_content_length_is_an_error(lp) {
        let s = once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        let r = fetch(&lp, Request::get(&s.url("/")));
        assert!(matches!(r, Err(FetchError::ShortBody { expected: Some(10), received: 3 })), "{r:?}");
    }

    fn a_body_without_framing_ends_with_the_connection(lp) {
        let s = once(b"HTTP/1.1 200 OK\r\n\r\nto the end");
        let r = fetch(&lp, Request::get(&s.url("/"))).unwrap();
        assert_eq!(r.text(), Some("to the end"));
    }

    fn a_chunked_response_with_extensions_and_trailers_is_decoded(lp) {
        let s = once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name=v\r\nwiki\r\n5\r\npedia\r\n0\r\nChecksum: abc\r\n\r\n");
        let r = fetch(&lp, Request::get(&s.url("/"))).unwrap();
        assert_eq!((r.text(), r.trailers["checksum"].to_str().unwrap()), (Some("wikipedia"), "abc"));
    }

    fn interim_1xx_responses_are_skipped(lp) {
        let s = once(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(fetch(&lp, Request::get(&s.url("/"))).unwrap().text(), Some("ok"));
    }

    fn a_gzip_bomb_is_stopped_at_the_body_limit(lp) {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![0u8; 8 << 20]).unwrap();
        let bomb = e.finish().unwrap();
        let mut response = format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", bomb.len()).into_bytes();
        response.extend_from_slice(&bomb);
        let response: &'static [u8] = Box::leak(response.into_boxed_slice());
        let s = once(response);
        let r = fetch(&lp, Request::get(&s.url("/")).max_body_size(1 << 20));
        assert!(matches!(r, Err(FetchError::TooLarge { what: "body", .. })), "{r:?}");
    }

    fn a_pooled_connection_the_server_closed_costs_one_retry_of_a_get(lp) {
        // Answers one request per connection, keep-alive promised, then
        // closes without a word: the client's second GET finds it closed.
        let s = scripted(|conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if read_request(&mut reader).is_some() {
                let mut conn = conn;
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                let _ = conn.shutdown(Shutdown::Both);
            }
        });
        let client = HttpClient::new();
        let url = s.url("/");
        let (a, b) = lp.run_sync(async move {
            let a = client.get(&url).await.map(|r| r.status.as_u16());
            let b = client.get(&url).await.map(|r| r.status.as_u16());
            (a, b)
        });
        assert_eq!((a.unwrap(), b.unwrap()), (200, 200));
        assert_eq!(s.accepted(), 2);
    }

    fn a_post_is_never_sent_twice(lp) {
        // Reads each request and closes without answering.
        let posts = Arc::new(AtomicUsize::new(0));
        let p = posts.clone();
        let s = scripted(move |conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut conn = conn;
            while let Some((head, _)) = read_request(&mut reader) {
                if head[0].starts_with("POST") {
                    p.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.shutdown(Shutdown::Both);
                    return;
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let client = HttpClient::new();
        let url = s.url("/");
        let r = lp.run_sync(async move {
            client.get(&url).await.unwrap();
            client.fetch(Request::post(&url, "once")).await
        });
        assert!(matches!(r, Err(FetchError::NoResponse)), "{r:?}");
        assert_eq!(posts.load(Ordering::SeqCst), 1);
    }

    fn a_post_checks_a_pooled_connection_before_using_it(lp) {
        // The server answers one request, then closes the idle connection.
        let (closed_tx, closed_rx) = mpsc::channel();
        let closed_tx = std::sync::Mutex::new(closed_tx);
        let s = scripted(move |conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut conn = conn;
            if let Some((head, _)) = read_request(&mut reader) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                if head[0].starts_with("GET") {
                    let _ = conn.shutdown(Shutdown::Both);
                    let _ = closed_tx.lock().unwrap().send(());
                }
            }
        });
        let client = HttpClient::new();
        let url = s.url("/");
        let c = client.clone();
        lp.run_sync(async move { c.get(&url).await.unwrap() });
        closed_rx.recv_timeout(common::HANG).unwrap();
        let url = s.url("/");
        // The FIN may still be in flight; the check sees it once it lands.
        let r = lp.run_sync(async move { client.fetch(Request::post(&url, "x")).await });
        assert_eq!(r.unwrap().status, 200);
        assert_eq!(s.accepted(), 2);
    }

    fn many_requests_on_a_keep_alive_server_use_one_connection(lp) {
        let (s, seen) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let client = HttpClient::with_config(ClientConfig { max_clients: 1, ..ClientConfig::default() });
        let url = s.url("/n");
        lp.run_sync(async move {
            for _ in 0..20 {
                assert_eq!(client.get(&url).await.unwrap().text(), Some("ok"));
            }
        });
        assert_eq!((s.accepted(), seen.lock().unwrap().len()), (1, 20));
    }

    fn a_server_that_sends_more_than_the_response_is_not_reused(lp) {
        let (s, _) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged");
        let client = HttpClient::new();
        let url = s.url("/");
        let bodies = lp.run_sync(async move {
            let a = client.get(&url).await.unwrap().body;
            let b = client.get(&url).await.unwrap().body;
            (a, b)
        });
        assert_eq!((&bodies.0[..], &bodies.1[..]), (&b"ok"[..], &b"ok"[..]));
        assert_eq!(s.accepted(), 2);
    }

    fn a_head_answer_naming_gzip_is_not_decoded(lp) {
        // nginx with gzip answers HEAD this way: the coding and length of
        // a body it does not send.
        let s = once(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1234\r\n\r\n");
        let r = fetch(&lp, Request::new(http::Method::HEAD, &s.url("/"))).unwrap();
        assert_eq!((r.headers["content-length"].to_str().unwrap(), r.body.len()), ("1234", 0));
        assert_eq!(r.headers["content-encoding"], "gzip");
    }

    fn bytes_sent_after_a_response_are_never_read_as_the_next(lp) {
        // The forged answer comes in a later segment, once the first
        // response has been read: only the idle check can see it.
        let (sent_tx, sent_rx) = mpsc::channel();
        let sent_tx = std::sync::Mutex::new(sent_tx);
        let (read_tx, read_rx) = mpsc::channel::<()>();
        let s = forging(read_rx, move || {
            let _ = sent_tx.lock().unwrap().send(());
        });
        let client = HttpClient::new();
        let (c, url) = (client.clone(), s.url("/"));
        let first = lp.run_sync(async move { c.get(&url).await.unwrap().body });
        read_tx.send(()).unwrap();
        sent_rx.recv_timeout(common::HANG).unwrap();
        let url = s.url("/");
        let second = lp.run_sync(async move { client.get(&url).await.unwrap().body });
        assert_eq!((&first[..], &second[..]), (&b"ok"[..], &b"ok"[..]));
        assert_eq!(s.accepted(), 2);
    }

    fn bytes_that_came_while_the_loop_ran_are_never_read_as_the_next(lp) {
        // As above, but the loop polls while the forged bytes arrive: the
        // poller's readiness, not a peek, must reveal them.
        let (read_tx, read_rx) = mpsc::channel::<()>();
        let (sent_tx, sent_rx) = async_channel::bounded::<()>(1);
        let s = forging(read_rx, move || {
            let _ = sent_tx.send_blocking(());
        });
        let client = HttpClient::new();
        let url = s.url("/");
        let (first, second) = lp.run_sync(async move {
            let first = client.get(&url).await.unwrap().body;
            read_tx.send(()).unwrap();
            // Woken by the server's word, after a poll that saw the bytes.
            sent_rx.recv().await.unwrap();
            (first, client.get(&url).await.unwrap().body)
        });
        assert_eq!((&first[..], &second[..]), (&b"ok"[..], &b"ok"[..]));
        assert_eq!(s.accepted(), 2);
    }

    fn an_endless_stream_of_interim_responses_ends_at_the_head_limit(lp) {
        let s = scripted(|conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if read_request(&mut reader).is_none() {
                return;
            }
            let mut conn = conn;
            while conn.write_all(b"HTTP/1.1 102 Processing\r\n\r\n").is_ok() {}
        });
        let r = fetch(&lp, Request::get(&s.url("/")).timeout(common::HANG));
        assert!(matches!(r, Err(FetchError::TooLarge { what: "head", .. })), "{r:?}");
    }
}

#[test]
fn reading_what_the_scripted_server_gets_needs_no_backend() {
    // The helper itself: a request line and a Content-Length body.
    let s = scripted(|conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let (head, body) = read_request(&mut reader).unwrap();
        let mut conn = conn;
        let _ = write!(conn, "{}|{}", head[0], String::from_utf8_lossy(&body));
    });
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
        .unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "POST /x HTTP/1.1|hi");
}
