//! HAProxy's PROXY protocol on a listener that opts in
//! (`TcpServer::set_proxy_protocol`), through the HTTP server: the client
//! named by a v1 or v2 header reaches the handler as `remote_ip`; LOCAL
//! keeps the connection's own address; a listener that expects a header
//! closes, unanswered, a connection without a valid one (missing,
//! truncated, forged); one that does not expect it never parses one. On
//! every backend; the clients are plain std sockets.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use common::http::{read_response, with_server};
use cyclone::http1::{HttpConfig, HttpServer, Response};

/// Answers with the request's remote address.
fn who_is_it(expect_header: bool) -> HttpServer {
    let server = HttpServer::new(|req| async move {
        Response::text(
            req.remote_ip
                .map_or("none".to_string(), |ip| ip.to_string()),
        )
    });
    server.tcp().set_proxy_protocol(expect_header);
    server
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// A version 2 PROXY header: `cmd` 1 PROXY or 0 LOCAL, over IPv4.
fn v2(cmd: u8, src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x20 | cmd, 0x11, 0, 12]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&sport.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

/// Sends `bytes` on a fresh connection; the body of the answer, or `None`
/// if the server closed without one.
fn exchange(port: u16, bytes: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(common::HANG)).unwrap();
    s.write_all(bytes).unwrap();
    let mut r = BufReader::new(s);
    match r.fill_buf() {
        Ok([]) => None,
        Ok(_) => {
            let resp = read_response(&mut r, false);
            Some(format!("{} {}", resp.status, resp.text()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("no answer and no close: {e}"),
    }
}

per_backend! {
    fn a_tls_handshake_after_the_header_is_served_with_the_clients_address(lp) {
        // The header comes in clear before the ClientHello, as HAProxy
        // sends it in front of a TLS connection it passes through.
        let cert = common::tls::dev_cert();
        let config = HttpConfig {
            tls: Some(common::tls::server_config(&cert)),
            ..HttpConfig::default()
        };
        let server = HttpServer::with_config(config, |req| async move {
            Response::text(req.remote_ip.map_or("none".to_string(), |ip| ip.to_string()))
        });
        server.tcp().set_proxy_protocol(true);
        let ca = cert.cert_pem.clone();
        let got = with_server(&lp, server, move |port| {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 443\r\n").unwrap();
            tcp.set_read_timeout(Some(common::HANG)).unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(common::tls::rustls_client(&ca, &[]), name).unwrap();
            let mut client = rustls::StreamOwned::new(conn, tcp);
            common::tls::get(&mut client, "/")
        });
        assert!(got.starts_with("HTTP/1.1 200 "), "{got}");
        assert!(got.ends_with("192.0.2.7"), "{got}");
    }

    fn a_v1_header_names_the_client_to_the_handler(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 443\r\n";
            exchange(port, &[&header[..], GET].concat())
        });
        assert_eq!(got.as_deref(), Some("200 192.0.2.7"));
    }

    fn a_v1_tcp6_header_names_the_client_to_the_handler(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            let header = b"PROXY TCP6 2001:db8::7 ::1 51234 443\r\n";
            exchange(port, &[&header[..], GET].concat())
        });
        assert_eq!(got.as_deref(), Some("200 2001:db8::7"));
    }

    fn a_v2_header_names_the_client_to_the_handler(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            exchange(port, &[&v2(1, [198, 51, 100, 9], 40000)[..], GET].concat())
        });
        assert_eq!(got.as_deref(), Some("200 198.51.100.9"));
    }

    fn a_header_arriving_in_pieces_is_read_whole(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_nodelay(true).unwrap();
            for piece in [&b"PROXY TCP4 192.0"[..], b".2.7 127.0.0.1 5", b"1234 443\r\nGET / HT", b"TP/1.1\r\nHost: x\r\n\r\n"] {
                s.write_all(piece).unwrap();
            }
            s.set_read_timeout(Some(common::HANG)).unwrap();
            read_response(&mut BufReader::new(s), false).text()
        });
        assert_eq!(got, "192.0.2.7");
    }

    fn v2_local_keeps_the_connections_own_address(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            exchange(port, &[&v2(0, [198, 51, 100, 9], 40000)[..], GET].concat())
        });
        assert_eq!(got.as_deref(), Some("200 127.0.0.1"));
    }

    fn a_connection_without_a_header_is_closed_unanswered(lp) {
        let got = with_server(&lp, who_is_it(true), |port| exchange(port, GET));
        assert_eq!(got, None);
    }

    fn a_truncated_header_is_closed_unanswered(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            exchange(port, b"PROXY TCP4 192.0.2.7\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        });
        assert_eq!(got, None);
    }

    fn a_forged_v2_header_of_another_version_is_closed_unanswered(lp) {
        let got = with_server(&lp, who_is_it(true), |port| {
            let mut h = v2(1, [198, 51, 100, 9], 40000);
            h[12] = 0x31; // version 3
            exchange(port, &[&h[..], GET].concat())
        });
        assert_eq!(got, None);
    }

    fn a_listener_not_expecting_a_header_never_parses_one(lp) {
        // The PROXY line is then the request line, and not HTTP: a 400,
        // and the client's forged address goes nowhere.
        let got = with_server(&lp, who_is_it(false), |port| {
            let header = b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 443\r\n";
            exchange(port, &[&header[..], GET].concat())
        });
        assert!(got.as_deref().is_some_and(|g| g.starts_with("400 ")), "{got:?}");
    }
}
