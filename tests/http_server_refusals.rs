//! What the HTTP/1.1 server refuses, and when it lets a connection go:
//! malformed framing and headers (400, 501, 505), sizes over the limits
//! (413, 431), slow, idle and never-reading clients (408, the idle and
//! write timeouts), and a lingering close after an error. Bytes in, bytes
//! out over a raw TCP socket, on every poller backend; the demo server is
//! in `common::demo_server`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::demo_server::{LIMIT, demo, exchange, send};
use common::http::{parse_responses, with_server};
use cyclone::IOLoop;
use cyclone::http1::{HttpConfig, HttpServer, Request, Response};

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
