//! Switching protocols: a handler's 101 hands the connection's stream to
//! another protocol, with the bytes the client sent after its request;
//! a 101 the client did not ask for is refused. On every poller backend.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::demo_server::LIMIT;
use common::http::with_server;
use cyclone::http1::{HttpServer, Request, Response};
use http::HeaderMap;

/// Answers every request with a 101 to an echo protocol: what the client
/// sends afterwards comes back unchanged.
async fn echo_upgrade(_req: Request) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("upgrade", "echo".parse().unwrap());
    Response::switching_protocols(headers, |stream| async move {
        while let Ok(data) = stream.read_bytes(4096, true).await {
            if stream.write(data).await.is_err() {
                break;
            }
        }
    })
}

const ASKS: &str = "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";

/// Reads up to and including the blank line that ends a response head.
fn read_head(c: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

fn connect(port: u16) -> TcpStream {
    let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c
}

per_backend! {
    fn a_101_hands_the_stream_over_with_the_bytes_sent_after_the_request(lp) {
        let (head, echoed) = with_server(&lp, HttpServer::new(echo_upgrade), |port| {
            let mut c = connect(port);
            // The new protocol's first bytes ride with the request.
            c.write_all(format!("{ASKS}hello").as_bytes()).unwrap();
            let head = read_head(&mut c);
            let mut echoed = [0u8; 5];
            c.read_exact(&mut echoed).unwrap();
            c.write_all(b"again").unwrap();
            let mut again = [0u8; 5];
            c.read_exact(&mut again).unwrap();
            assert_eq!(&again, b"again");
            (head, echoed)
        });
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        assert_eq!(&echoed, b"hello");
    }

    fn the_101_carries_the_handlers_headers_connection_upgrade_and_no_length(lp) {
        let head = with_server(&lp, HttpServer::new(echo_upgrade), |port| {
            let mut c = connect(port);
            c.write_all(ASKS.as_bytes()).unwrap();
            read_head(&mut c)
        });
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("\r\nupgrade: echo\r\n"), "{head}");
        assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
        assert!(!lower.contains("content-length"), "{head}");
        assert!(!lower.contains("connection: close"), "{head}");
    }

    fn requests_pipelined_before_the_upgrade_are_answered_first(lp) {
        let (first, second) = with_server(&lp, HttpServer::new(|req: Request| async move {
            if req.headers.contains_key("upgrade") {
                echo_upgrade(req).await
            } else {
                Response::text("plain")
            }
        }), |port| {
            let mut c = connect(port);
            let plain = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
            c.write_all(format!("{plain}{ASKS}ping").as_bytes()).unwrap();
            let first = read_head(&mut c);
            let mut body = [0u8; 5];
            c.read_exact(&mut body).unwrap();
            assert_eq!(&body, b"plain");
            let second = read_head(&mut c);
            let mut ping = [0u8; 4];
            c.read_exact(&mut ping).unwrap();
            assert_eq!(&ping, b"ping");
            (first, second)
        });
        assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
        assert!(second.starts_with("HTTP/1.1 101 "), "{second}");
    }

    fn a_101_to_a_request_that_did_not_ask_to_upgrade_is_a_500_and_a_close(lp) {
        let got = with_server(&lp, HttpServer::new(echo_upgrade), |port| {
            let mut c = connect(port);
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap(); // the server closes
            String::from_utf8(got).unwrap()
        });
        assert!(got.starts_with("HTTP/1.1 500 "), "{got}");
        assert!(!got.contains(" 101 "), "{got}");
    }

    fn an_upgrade_asked_over_http_1_0_is_refused(lp) {
        let got = with_server(&lp, HttpServer::new(echo_upgrade), |port| {
            let mut c = connect(port);
            c.write_all(b"GET / HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").unwrap();
            let mut got = Vec::new();
            c.read_to_end(&mut got).unwrap();
            String::from_utf8(got).unwrap()
        });
        assert!(got.starts_with("HTTP/1.0 500 "), "{got}");
    }
}
