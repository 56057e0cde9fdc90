//! The HTTP/1.1 edges of RFC 9110 and RFC 9112 that sit between "valid"
//! and "refused": Host's grammar, later HTTP/1.x minor versions, the
//! request line's grammar, methods' case, bare LF line ends and bytes that
//! cannot begin a request. Each rule is tested on the HTTP layer alone and
//! through the web layer, bytes in and bytes out over a raw socket, on
//! every poller backend. The header timeout is an hour here: an answer
//! that comes at all came at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::demo_server::{LIMIT, demo};
use common::http::with_server;
use cyclone::IOLoop;
use cyclone::http1::{HttpConfig, HttpServer};
use cyclone::web::{Application, Request};

/// Long enough that no test's answer can be the timeout's.
fn config() -> HttpConfig {
    HttpConfig {
        header_timeout: Duration::from_secs(3600),
        ..HttpConfig::default()
    }
}

/// The web layer's server: `/` answers "Hello, World!" to any method it
/// is given (a function route), like the HTTP layer's demo.
fn web() -> Application {
    Application::new()
        .http_config(config())
        .route("/", |req: Request| async move {
            format!("{} Hello, World!", req.method)
        })
}

/// Sends `pieces` one write each (without closing) and reads until the
/// server closes or `LIMIT` passes; returns what it sent back.
fn answer(pieces: &[&[u8]]) -> impl FnOnce(u16) -> String + Send + 'static {
    let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
    move |port| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        c.set_nodelay(true).unwrap();
        for p in pieces {
            c.write_all(&p).unwrap();
        }
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    }
}

/// What each layer answers to `pieces`: (HTTP layer, web layer).
fn both(lp: &IOLoop, pieces: &[&[u8]]) -> [String; 2] {
    let http = with_server(lp, HttpServer::with_config(config(), demo), answer(pieces));
    let web = with_server(lp, web(), answer(pieces));
    [http, web]
}

/// Both layers answer `raw` with exactly one response of `status` and
/// close the connection (the trailing request is never answered).
fn refused_by_both(lp: &IOLoop, raw: &[u8], status: u16) {
    let full = [raw, b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    for got in both(lp, &[&full]) {
        assert!(
            got.starts_with(&format!("HTTP/1.1 {status} ")),
            "{:?} -> {got:?}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(got.matches("HTTP/1.1 ").count(), 1, "{got:?}");
        assert!(got.contains("Connection: close\r\n"), "{got:?}");
    }
}

/// Both layers answer `raw` (then closed by the client's `Connection:
/// close`) with a 200.
fn served_by_both(lp: &IOLoop, raw: &[u8]) -> [String; 2] {
    let got = both(lp, &[raw]);
    for g in &got {
        assert!(
            g.starts_with("HTTP/1.1 200 "),
            "{:?} -> {g:?}",
            String::from_utf8_lossy(raw)
        );
    }
    got
}

per_backend! {
    fn rfc9112_3_2_a_host_with_whitespace_is_400(lp) {
        refused_by_both(&lp, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    }

    fn rfc3986_3_2_1_a_host_with_userinfo_is_400(lp) {
        refused_by_both(&lp, b"GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", 400);
    }

    fn rfc3986_3_2_3_a_host_port_that_is_not_digits_is_400(lp) {
        refused_by_both(&lp, b"GET / HTTP/1.1\r\nHost: example.com:80x\r\n\r\n", 400);
    }

    fn rfc3986_3_2_2_a_host_with_a_path_is_400(lp) {
        refused_by_both(&lp, b"GET / HTTP/1.1\r\nHost: example.com/a\r\n\r\n", 400);
    }

    fn rfc3986_3_2_2_hosts_by_name_address_and_ip_literal_are_served(lp) {
        for host in ["example.com:8080", "127.0.0.1", "[::1]:80", "xn--caf-dma.example", ""] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            served_by_both(&lp, raw.as_bytes());
        }
    }

    fn rfc9110_2_5_http_1_2_is_served_as_http_1_1(lp) {
        let got = served_by_both(&lp, b"GET / HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
        // Answered in HTTP/1.1 (the highest version Cyclone implements),
        // and read as one: Host was required of it.
        refused_by_both(&lp, b"GET / HTTP/1.9\r\n\r\n", 400);
        assert!(got[1].ends_with("GET Hello, World!"), "{:?}", got[1]);
    }

    fn rfc9110_6_2_other_major_versions_are_505(lp) {
        refused_by_both(&lp, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
        refused_by_both(&lp, b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505);
    }

    fn rfc9112_3_a_space_in_the_target_is_400_not_505(lp) {
        refused_by_both(&lp, b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }

    fn rfc9112_3_a_version_that_is_not_http_slash_digit_dot_digit_is_400(lp) {
        refused_by_both(&lp, b"GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400);
        refused_by_both(&lp, b"GET / http/1.1\r\nHost: x\r\n\r\n", 400);
    }

    fn rfc3986_2_a_non_ascii_byte_in_the_target_is_400(lp) {
        refused_by_both(&lp, b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }

    fn rfc9110_9_1_a_lowercase_method_is_not_get(lp) {
        // The HTTP layer hands extension methods to its handler (the demo
        // answers 404 to anything but GET / and POST /echo); the web layer
        // answers 501 and never calls a route with one.
        let raw = b"get / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let [http, web] = both(&lp, &[raw]);
        assert!(http.starts_with("HTTP/1.1 404 "), "{http:?}");
        assert!(web.starts_with("HTTP/1.1 501 "), "{web:?}");
        assert!(!web.contains("Hello"), "{web:?}");
    }

    fn rfc9112_2_2_a_bare_lf_head_arriving_in_pieces_is_400_at_once(lp) {
        for got in both(&lp, &[b"GET / HTTP/1.1\nHost: x\n", b"\n"]) {
            assert!(got.starts_with("HTTP/1.1 400 "), "{got:?}");
        }
    }

    fn a_tls_client_hello_on_the_plain_port_is_400_at_once(lp) {
        // The first bytes of a ClientHello: a handshake record, TLS 1.0
        // record version, a length; no line end anywhere.
        for got in both(&lp, &[&[0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0]]) {
            assert!(got.starts_with("HTTP/1.1 400 "), "{got:?}");
        }
    }

    fn binary_noise_is_400_at_once(lp) {
        for got in both(&lp, &[&[0x00, 0xff, 0x13, 0x37]]) {
            assert!(got.starts_with("HTTP/1.1 400 "), "{got:?}");
        }
    }

    fn a_request_line_arriving_byte_by_byte_is_still_served(lp) {
        let raw = b"\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let pieces: Vec<&[u8]> = raw.chunks(1).collect();
        for got in both(&lp, &pieces) {
            assert!(got.starts_with("HTTP/1.1 200 "), "{got:?}");
        }
    }
}
