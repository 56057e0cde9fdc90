//! TLS on the loop (`cyclone::tls`), on every poller backend: HTTPS served
//! to a client that is not ours (rustls' own buffered client on a std
//! socket), hostile peers, handshake bounds, ALPN, SNI, resumption,
//! close_notify and truncation, and Cyclone's own client with the errors
//! a certificate can cause. Certificates are made by each test.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::HANG;
use common::demo_server::LIMIT;
use common::http::with_server;
use common::tls::{connect, dev_cert, get, rustls_client, server_config};
use cyclone::http1::{HttpConfig, HttpServer, Request, Response};
use cyclone::tls::{self, SelfSigned, StartTls, TlsClientConfig, TlsConfig, TlsError, TlsSide};
use cyclone::{IOLoop, StreamError, TcpClient, TcpServer};

/// An HTTPS server answering each request with its `protocol`.
fn https_server(config: TlsConfig) -> HttpServer {
    let http = HttpConfig {
        tls: Some(config),
        ..HttpConfig::default()
    };
    HttpServer::with_config(http, |req: Request| async move {
        Response::text(req.protocol.to_string())
    })
}

/// A WebSocket handler that echoes every message.
struct WsEcho;

impl cyclone::web::WebSocketHandler for WsEcho {
    async fn on_message(
        &mut self,
        ws: &cyclone::websocket::WebSocket,
        message: cyclone::websocket::Message,
    ) {
        let _ = ws.write_message(message).await;
    }
}

/// A self-signed certificate for localhost that expired in 2001.
fn expired_cert() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A CA certificate named "another CA", in PEM.
fn other_ca() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another CA");
    params.self_signed(&key).unwrap().pem()
}

/// Reads until EOF or an error; what arrived.
fn read_all(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    out
}

/// Serves TLS on the loop (`TcpServer::new_tls`, a line echo after the
/// handshake), connects Cyclone's client to it as `name` with `client`,
/// and returns what `talk` makes of the client's side.
fn cyclone_pair<T: 'static>(
    lp: &IOLoop,
    server: TlsConfig,
    client: TlsClientConfig,
    name: &'static str,
    talk: impl AsyncFnOnce(Result<cyclone::IOStream, cyclone::tcpclient::ConnectError>) -> T + 'static,
) -> T {
    lp.run_sync_timeout(
        async move {
            // A TLS TcpServer: the handler sees only finished handshakes.
            let tcp = TcpServer::new_tls(server, |stream, _| async move {
                while let Ok(line) = stream.read_until(b"\n", Some(1024)).await {
                    if stream.write(line).await.is_err() {
                        break;
                    }
                }
            });
            let port = tcp.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let stream = TcpClient::connect_tls(name, port, &client, LIMIT).await;
            let out = talk(stream).await;
            tcp.stop();
            out
        },
        HANG,
    )
    .expect("the exchange did not finish in time")
}

/// What a TLS server's `read_until_close` gets when rustls' client, on a
/// thread, completes the handshake and then does `cut`.
fn server_read_until_close(
    lp: &IOLoop,
    cut: impl FnOnce(common::tls::Client) + Send + 'static,
) -> Result<bytes::Bytes, StreamError> {
    let cert = dev_cert();
    let ca = cert.cert_pem.clone();
    let config = server_config(&cert);
    let seen = Rc::new(std::cell::RefCell::new(None));
    let (s, waiting) = (seen.clone(), seen.clone());
    lp.run_sync_timeout(
        async move {
            let tcp = TcpServer::new_tls(config, move |stream, _| {
                let s = s.clone();
                async move {
                    *s.borrow_mut() = Some(stream.read_until_close().await);
                }
            });
            let port = tcp.listen(0, Some("127.0.0.1")).unwrap()[0].port();
            let client = std::thread::spawn(move || {
                cut(connect(port, rustls_client(&ca, &[]), "localhost"));
            });
            common::thread_finished(&client).await;
            common::until("the server to see the close", || waiting.borrow().is_some()).await;
            tcp.stop();
        },
        HANG,
    )
    .expect("in time");
    seen.borrow_mut().take().unwrap()
}

/// The TLS error a failed Cyclone connection says.
fn tls_failure(r: Result<cyclone::IOStream, cyclone::tcpclient::ConnectError>) -> TlsError {
    match r {
        Err(cyclone::tcpclient::ConnectError::Tls { source, .. }) => {
            tls::tls_error(&source).cloned().expect("a TLS error")
        }
        Err(other) => panic!("not a TLS failure: {other}"),
        Ok(_) => panic!("the handshake succeeded"),
    }
}

per_backend! {
    fn https_requests_are_served_say_https_and_end_with_close_notify(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let response = with_server(&lp, https_server(server_config(&cert)), move |port| {
            let mut client = connect(port, rustls_client(&ca, &["http/1.1"]), "localhost");
            assert_eq!(client.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
            // `get` reads to the end: rustls fails that with UnexpectedEof
            // unless the server's close_notify came before its FIN.
            get(&mut client, "/")
        });
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nhttps"), "{response}");
    }

    fn plain_http_to_the_tls_port_gets_a_plain_text_400_and_a_close(lp) {
        let server = https_server(server_config(&dev_cert()));
        let reply = with_server(&lp, server, |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            String::from_utf8(read_all(&mut c)).unwrap()
        });
        assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
        assert!(reply.ends_with("use an https:// URL.\n"), "{reply}");
    }

    fn a_malformed_hello_gets_a_decode_error_alert_and_a_close(lp) {
        let server = https_server(server_config(&dev_cert()));
        let reply = with_server(&lp, server, |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            // A handshake record holding a ClientHello of one byte.
            c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00]).unwrap();
            read_all(&mut c)
        });
        // An alert record: fatal (2), decode_error (50); then EOF.
        assert_eq!(reply, [21, 3, 3, 0, 2, 2, 50]);
    }

    fn a_byte_that_starts_no_record_gets_exactly_one_alert(lp) {
        // Found by the tls_records fuzz target: a second turn over the
        // same bad input made rustls send a second fatal alert (a debug
        // assertion inside rustls, so a panic in debug builds).
        let server = https_server(server_config(&dev_cert()));
        let reply = with_server(&lp, server, |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            c.write_all(b"\n").unwrap();
            read_all(&mut c)
        });
        assert_eq!(reply, [21, 3, 3, 0, 2, 2, 50]);
    }

    fn random_bytes_are_closed_at_once(lp) {
        let server = https_server(server_config(&dev_cert()));
        let (reply, waited) = with_server(&lp, server, |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            let mut x = 0x2545_f491_u32;
            let junk: Vec<u8> = (0..300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x >> 24) as u8 | 0x80 // never a record type or a letter
                })
                .collect();
            let start = Instant::now();
            c.write_all(&junk).unwrap();
            (read_all(&mut c), start.elapsed())
        });
        // At most an alert, and long before any timeout.
        assert!(reply.len() <= 7, "{reply:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    fn a_stalled_handshake_is_reset_at_the_handshake_timeout(lp) {
        let mut config = server_config(&dev_cert());
        config.handshake_timeout = Duration::from_millis(300);
        let waited = with_server(&lp, https_server(config), |port| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(LIMIT)).unwrap();
            c.write_all(&[0x16, 0x03, 0x01]).unwrap(); // and then nothing
            let start = Instant::now();
            let got = read_all(&mut c);
            assert!(got.is_empty(), "{got:?}");
            start.elapsed()
        });
        assert!(waited >= Duration::from_millis(250), "closed after {waited:?}");
        assert!(waited < LIMIT, "closed after {waited:?}");
    }

    fn handshakes_are_counted_by_how_they_ended(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let mut config = server_config(&cert);
        config.handshake_timeout = Duration::from_millis(200);
        let before = tls::handshake_stats();
        with_server(&lp, https_server(config), move |port| {
            let mut good = connect(port, rustls_client(&ca, &[]), "localhost");
            get(&mut good, "/");
            let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
            plain.set_read_timeout(Some(LIMIT)).unwrap();
            plain.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
            read_all(&mut plain);
            let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
            stalled.set_read_timeout(Some(LIMIT)).unwrap();
            read_all(&mut stalled); // until the server resets it
            // A health check: connect, close.
            let probe = TcpStream::connect(("127.0.0.1", port)).unwrap();
            drop(probe);
            // Served after it, so its close has been seen.
            let mut last = connect(port, rustls_client(&ca, &[]), "localhost");
            get(&mut last, "/");
        });
        // The server's loop ran on this thread: its counts are here.
        let after = tls::handshake_stats();
        assert_eq!(after.completed - before.completed, 2, "{after:?}");
        assert_eq!(after.failed - before.failed, 1, "{after:?}");
        assert_eq!(after.timed_out - before.timed_out, 1, "{after:?}");
        assert_eq!(after.abandoned - before.abandoned, 1, "{after:?}");
    }

    fn a_client_hello_trickled_one_byte_at_a_time_completes(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let response = with_server(&lp, https_server(server_config(&cert)), move |port| {
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(LIMIT)).unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut conn = rustls::ClientConnection::new(rustls_client(&ca, &[]), name).unwrap();
            let mut hello = Vec::new();
            conn.write_tls(&mut hello).unwrap();
            let mut tcp = tcp;
            for byte in &hello {
                tcp.write_all(std::slice::from_ref(byte)).unwrap();
                // A slow client, on purpose: each byte its own segment.
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut client = rustls::StreamOwned::new(conn, tcp);
            get(&mut client, "/")
        });
        assert!(response.ends_with("https"), "{response}");
    }

    fn two_hundred_stalled_handshakes_do_not_keep_a_new_client_waiting(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let served_in = with_server(&lp, https_server(server_config(&cert)), move |port| {
            let stalled: Vec<TcpStream> = (0..200)
                .map(|_| {
                    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    c.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();
                    c
                })
                .collect();
            let start = Instant::now();
            let mut client = connect(port, rustls_client(&ca, &[]), "localhost");
            let response = get(&mut client, "/");
            assert!(response.ends_with("https"), "{response}");
            drop(stalled);
            start.elapsed()
        });
        // Served while 200 handshakes wait: in far less than their timeout.
        assert!(served_in < Duration::from_secs(5), "{served_in:?}");
    }

    fn a_client_offering_only_protocols_we_do_not_speak_is_refused(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let error = with_server(&lp, https_server(server_config(&cert)), move |port| {
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(LIMIT)).unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(rustls_client(&ca, &["h2"]), name).unwrap();
            let mut client = rustls::StreamOwned::new(conn, tcp);
            client.conn.complete_io(&mut client.sock).and_then(|_| {
                client.conn.complete_io(&mut client.sock)
            }).expect_err("refused").to_string()
        });
        assert!(error.contains("NoApplicationProtocol"), "{error}");
    }

    fn a_second_connection_resumes_with_a_ticket(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let kinds = with_server(&lp, https_server(server_config(&cert)), move |port| {
            let config = rustls_client(&ca, &[]);
            let mut kinds = Vec::new();
            for _ in 0..2 {
                let mut client = connect(port, config.clone(), "localhost");
                // The tickets come after the handshake, with the response.
                get(&mut client, "/");
                kinds.push(client.conn.handshake_kind());
            }
            kinds
        });
        assert_eq!(
            kinds,
            [Some(rustls::HandshakeKind::Full), Some(rustls::HandshakeKind::Resumed)]
        );
    }

    fn the_servers_cipher_suites_and_their_order_are_kept(lp) {
        let cert = dev_cert();
        let config = TlsConfig::builder()
            .certificate(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap()
            .cipher_suites(&["TLS_AES_128_GCM_SHA256", "TLS13_AES_256_GCM_SHA384"])
            .build()
            .unwrap();
        let ca = cert.cert_pem.clone();
        let suite = with_server(&lp, https_server(config), move |port| {
            // rustls' client prefers AES-256 (as OpenSSL's does).
            let client = connect(port, rustls_client(&ca, &[]), "localhost");
            client.conn.negotiated_cipher_suite().unwrap().suite()
        });
        assert_eq!(suite, rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    }

    fn sni_chooses_the_certificate_by_name_and_the_default_without_one(lp) {
        let (default, other) = (dev_cert(), SelfSigned::generate(&["b.test"]).unwrap());
        let config = TlsConfig::builder()
            .certificate(default.cert_pem.as_bytes(), default.key_pem.as_bytes())
            .unwrap()
            .certificate_for("b.test", other.cert_pem.as_bytes(), other.key_pem.as_bytes())
            .unwrap()
            .build()
            .unwrap();
        let (ca_default, ca_other) = (default.cert_pem.clone(), other.cert_pem.clone());
        with_server(&lp, https_server(config), move |port| {
            // Each client trusts only the certificate it must be given.
            let mut b = connect(port, rustls_client(&ca_other, &[]), "b.test");
            assert!(get(&mut b, "/").ends_with("https"));
            // An IP address sends no SNI: the default answers.
            let mut ip = connect(port, rustls_client(&ca_default, &[]), "127.0.0.1");
            assert!(get(&mut ip, "/").ends_with("https"));
        });
    }

    fn an_eof_without_close_notify_is_truncated_for_read_until_close(lp) {
        let result = server_read_until_close(&lp, |mut client| {
            client.write_all(b"part of a body").unwrap();
            client.flush().unwrap();
            // Cut: FIN without close_notify.
            client.sock.shutdown(std::net::Shutdown::Both).unwrap();
        });
        assert!(
            matches!(result, Err(StreamError::Closed(Some(ref e))) if matches!(**e, StreamError::Truncated)),
            "{result:?}"
        );
    }

    fn cyclone_client_and_server_exchange_lines(lp) {
        let cert = dev_cert();
        let client = TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap();
        let echoed = cyclone_pair(&lp, server_config(&cert), client, "localhost", async |s| {
            let s = s.expect("connected");
            assert!(s.is_tls());
            let info = tls::info(&s).expect("TLS info");
            assert_eq!(info.protocol_version, Some(rustls::ProtocolVersion::TLSv1_3));
            s.write(&b"over TLS\n"[..]).await.unwrap();
            s.read_until(b"\n", None).await.unwrap()
        });
        assert_eq!(&echoed[..], b"over TLS\n");
    }

    fn a_hostname_mismatch_is_named(lp) {
        let cert = SelfSigned::generate(&["other.test"]).unwrap();
        let client = TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap();
        let e = cyclone_pair(&lp, server_config(&cert), client, "localhost", async |s| tls_failure(s));
        assert!(matches!(e, TlsError::HostnameMismatch(_)), "{e}");
        assert!(e.to_string().contains("other.test"), "{e}");
    }

    fn an_untrusted_certificate_is_an_unknown_issuer(lp) {
        // Trusting another CA, whose name differs from the server
        // certificate's issuer (with the same name it would be a bad
        // signature instead).
        let client = TlsClientConfig::with_ca(other_ca().as_bytes()).unwrap();
        let e = cyclone_pair(&lp, server_config(&dev_cert()), client, "localhost", async |s| tls_failure(s));
        assert!(matches!(e, TlsError::UnknownIssuer), "{e}");
    }

    fn an_expired_certificate_is_named(lp) {
        let (cert, key) = expired_cert();
        let server = TlsConfig::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        let client = TlsClientConfig::with_ca(cert.as_bytes()).unwrap();
        let e = cyclone_pair(&lp, server, client, "localhost", async |s| tls_failure(s));
        assert!(matches!(e, TlsError::Expired(_)), "{e}");
    }

    fn a_wss_url_connects_through_tls_and_echoes(lp) {
        let cert = dev_cert();
        let app = cyclone::web::Application::new()
            .websocket("/ws", || WsEcho)
            .tls(server_config(&cert));
        let options = cyclone::websocket::ConnectOptions {
            tls: Some(TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap()),
            ..Default::default()
        };
        let reply = lp
            .run_sync_timeout(
                async move {
                    let server = app.into_server();
                    let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                    let url = format!("wss://localhost:{port}/ws");
                    let mut conn = cyclone::websocket::websocket_connect(&url, options)
                        .await
                        .expect("connected over TLS");
                    conn.write_message("over wss").await.unwrap();
                    let reply = conn.read_message().await;
                    server.tcp().stop();
                    reply
                },
                HANG,
            )
            .expect("in time");
        assert!(
            matches!(reply, Some(cyclone::websocket::Message::Text(ref t)) if t == "over wss"),
            "{reply:?}"
        );
    }

    fn a_required_client_certificate_is_checked_and_seen_by_the_server(lp) {
        let (server_cert, client_cert, stranger) = (dev_cert(), dev_cert(), dev_cert());
        // The server trusts exactly the client's (self-signed) certificate.
        let server = TlsConfig::builder()
            .certificate(server_cert.cert_pem.as_bytes(), server_cert.key_pem.as_bytes())
            .unwrap()
            .client_auth(client_cert.cert_pem.as_bytes(), true)
            .unwrap()
            .build()
            .unwrap();
        let trusting = TlsClientConfig::with_ca(server_cert.cert_pem.as_bytes()).unwrap();
        let known = trusting
            .clone()
            .client_certificate(client_cert.cert_pem.as_bytes(), client_cert.key_pem.as_bytes())
            .unwrap();
        let unknown = trusting
            .clone()
            .client_certificate(stranger.cert_pem.as_bytes(), stranger.key_pem.as_bytes())
            .unwrap();
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let s = seen.clone();
        lp.run_sync_timeout(
            async move {
                let tcp = TcpServer::new_tls(server, move |stream, _| {
                    let s = s.clone();
                    async move {
                        let info = tls::info(&stream).unwrap();
                        s.borrow_mut().push(info.peer_certificates.len());
                        let _ = stream.write(&b"welcome\n"[..]).await;
                    }
                });
                let port = tcp.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                // With the certificate the server trusts: served, and the
                // server's handler sees it.
                let s = TcpClient::connect_tls("localhost", port, &known, LIMIT).await.unwrap();
                assert_eq!(&s.read_until(b"\n", None).await.unwrap()[..], b"welcome\n");
                // Without one, or with another: refused. In TLS 1.3 the
                // client's handshake ends before the server judges its
                // certificate, so the refusal shows on the first read.
                for config in [&trusting, &unknown] {
                    let refused = match TcpClient::connect_tls("localhost", port, config, LIMIT).await {
                        Err(_) => true,
                        Ok(s) => s.read_until(b"\n", None).await.is_err(),
                    };
                    assert!(refused);
                }
                tcp.stop();
            },
            HANG,
        )
        .expect("in time");
        assert_eq!(*seen.borrow(), [1]);
    }

    fn a_truncated_record_then_fin_is_truncated_for_read_until_close(lp) {
        let result = server_read_until_close(&lp, |mut client| {
            // The header of an application-data record of 100 bytes, and
            // only 10 of them: then FIN.
            client.sock.write_all(&[23, 3, 3, 0, 100]).unwrap();
            client.sock.write_all(&[0; 10]).unwrap();
            client.sock.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            let _ = client.sock.read_to_end(&mut rest);
        });
        assert!(
            matches!(result, Err(StreamError::Closed(Some(ref e))) if matches!(**e, StreamError::Truncated)),
            "{result:?}"
        );
    }

    fn a_peers_close_notify_is_a_clean_eof_answered_with_ours(lp) {
        let result = server_read_until_close(&lp, |mut client| {
            client.write_all(b"all of it").unwrap();
            client.conn.send_close_notify();
            client.flush().unwrap();
            // rustls' read_to_end fails unless our close_notify comes.
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).expect("the server's close_notify");
        });
        assert_eq!(&result.expect("a clean end")[..], b"all of it");
    }

    fn a_reset_tls_stream_is_not_a_complete_read_until_close(lp) {
        let result = server_read_until_close(&lp, |mut client| {
            client.write_all(b"part").unwrap();
            client.flush().unwrap();
            socket2::SockRef::from(&client.sock)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(client); // RST, no close_notify
        });
        assert!(result.is_err(), "{result:?}");
    }

    fn a_write_refused_at_the_limit_leaves_the_session_whole(lp) {
        let cert = dev_cert();
        let client = TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap();
        let line = lp
            .run_sync_timeout(
                async move {
                    let tcp = TcpServer::new_tls(server_config(&cert), |stream, _| async move {
                        stream.set_max_write_buffer_size(Some(1000));
                        let big = stream.write(vec![b'x'; 10_000]).await;
                        assert!(matches!(big, Err(StreamError::BufferFull)), "{big:?}");
                        // Had the refused write been sealed, this record's
                        // sequence number would be off and the peer would
                        // refuse it (bad_record_mac).
                        stream.write(&b"still fine\n"[..]).await.unwrap();
                        let _ = stream.read_until_close().await;
                    });
                    let port = tcp.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                    let s = TcpClient::connect_tls("localhost", port, &client, LIMIT).await.unwrap();
                    let line = s.read_until(b"\n", None).await;
                    tcp.stop();
                    line
                },
                HANG,
            )
            .expect("in time");
        assert_eq!(&line.unwrap()[..], b"still fine\n");
    }

    fn shutdown_write_says_close_notify_before_the_fin(lp) {
        let cert = dev_cert();
        let ca = cert.cert_pem.clone();
        let got = lp
            .run_sync_timeout(
                async move {
                    let tcp = TcpServer::new_tls(server_config(&cert), |stream, _| async move {
                        stream.write(&b"bye\n"[..]).await.unwrap();
                        stream.shutdown_write().unwrap();
                        let _ = stream.read_until_close().await;
                    });
                    let port = tcp.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                    let client = std::thread::spawn(move || {
                        let mut client = connect(port, rustls_client(&ca, &[]), "localhost");
                        let mut got = Vec::new();
                        // Fails with UnexpectedEof unless close_notify came.
                        let r = client.read_to_end(&mut got).map(|_| got);
                        client.sock.shutdown(std::net::Shutdown::Both).unwrap();
                        r.map_err(|e| e.to_string())
                    });
                    common::thread_finished(&client).await;
                    tcp.stop();
                    client.join().unwrap()
                },
                HANG,
            )
            .expect("in time");
        assert_eq!(got.unwrap(), b"bye\n");
    }

    fn start_transport_refused_with_a_read_pending_touches_nothing(lp) {
        let cert = dev_cert();
        let outcome = lp
            .run_sync_timeout(
                async move {
                    let (a, b) = common::socketpair();
                    let (a, b) = (cyclone::IOStream::new(a).unwrap(), cyclone::IOStream::new(b).unwrap());
                    let a = Rc::new(a);
                    let reader = a.clone();
                    let pending = cyclone::spawn(async move { reader.read_until(b"\n", None).await });
                    cyclone::sleep(Duration::from_millis(1)).await; // the read is now waiting
                    let refused = a.start_tls(TlsSide::Server(&server_config(&cert))).await;
                    let tls_after = a.is_tls();
                    b.write(&b"plain line\n"[..]).await.unwrap();
                    let line = pending.await.unwrap();
                    (refused, tls_after, line)
                },
                HANG,
            )
            .expect("in time");
        let (refused, tls_after, line) = outcome;
        assert!(matches!(refused, Err(StreamError::ReadPending)), "{refused:?}");
        assert!(!tls_after);
        assert_eq!(&line.unwrap()[..], b"plain line\n");
    }

    fn start_tls_upgrades_a_plain_stream_after_a_command(lp) {
        let cert = dev_cert();
        let (server, client) = (
            server_config(&cert),
            TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap(),
        );
        let reply = lp
            .run_sync_timeout(
                async move {
                    let (a, b) = common::socketpair();
                    let (a, b) = (cyclone::IOStream::new(a).unwrap(), cyclone::IOStream::new(b).unwrap());
                    let serve = cyclone::spawn(async move {
                        let command = a.read_until(b"\n", None).await.unwrap();
                        assert_eq!(&command[..], b"STARTTLS\n");
                        a.write(&b"OK\n"[..]).await.unwrap();
                        a.start_tls(TlsSide::Server(&server)).await.unwrap();
                        let line = a.read_until(b"\n", None).await.unwrap();
                        a.write(line).await.unwrap();
                    });
                    b.write(&b"STARTTLS\n"[..]).await.unwrap();
                    assert_eq!(&b.read_until(b"\n", None).await.unwrap()[..], b"OK\n");
                    let side = TlsSide::Client {
                        config: &client,
                        server_name: "localhost",
                    };
                    b.start_tls(side).await.unwrap();
                    b.write(&b"secret\n"[..]).await.unwrap();
                    let reply = b.read_until(b"\n", None).await.unwrap();
                    serve.await.unwrap();
                    reply
                },
                HANG,
            )
            .expect("in time");
        assert_eq!(&reply[..], b"secret\n");
    }
}
