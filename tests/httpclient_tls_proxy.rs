//! The HTTP client over TLS and through proxies, on every poller backend:
//! `https://` to Cyclone's own HTTPS server (trusting the test's CA),
//! certificate errors with their reason, and a scripted forward proxy /
//! `CONNECT` tunnel (`common::scripted::proxy`) that records what it was
//! sent.

mod common;

use std::io::{BufReader, Write};

use common::scripted::{header, proxy, read_request, scripted, silent};
use common::tls::{dev_cert, server_config};
use cyclone::http1::{
    HttpConfig, HttpServer, Request as ServerRequest, Response as ServerResponse,
};
use cyclone::httpclient::{ClientConfig, FetchError, HttpClient, Proxy, Request};
use cyclone::testing::TestServer;
use cyclone::tls::{SelfSigned, TlsClientConfig};

fn scheme_server(tls: Option<&SelfSigned>) -> HttpServer {
    let config = HttpConfig {
        tls: tls.map(server_config),
        ..HttpConfig::default()
    };
    HttpServer::with_config(config, |req: ServerRequest| async move {
        ServerResponse::text(format!("{} {}", req.protocol, req.uri))
    })
}

fn trusting(cert: &SelfSigned) -> ClientConfig {
    ClientConfig {
        tls: Some(TlsClientConfig::with_ca(cert.cert_pem.as_bytes()).unwrap()),
        ..ClientConfig::default()
    }
}

per_backend! {
    fn an_https_url_is_fetched_over_tls_and_the_connection_reused(lp) {
        let cert = dev_cert();
        let s = TestServer::http_on(&lp, scheme_server(Some(&cert)))
            .with_client(HttpClient::with_config(trusting(&cert)));
        let url = format!("https://localhost:{}/x", s.port());
        let client = s.client();
        let (first, second) = s.run(async move {
            (client.get(&url).await.unwrap(), client.get(&url).await.unwrap())
        });
        assert_eq!(first.text(), Some("https /x"));
        assert!(first.timing.tls > std::time::Duration::ZERO && !first.timing.reused);
        assert!(second.timing.reused && second.timing.tls.is_zero());
        assert_eq!(s.client().stats().connections_opened, 1);
    }

    fn a_certificate_from_an_untrusted_ca_is_a_tls_error_saying_why(lp) {
        let (cert, other) = (dev_cert(), dev_cert());
        let s = TestServer::http_on(&lp, scheme_server(Some(&cert)))
            .with_client(HttpClient::with_config(trusting(&other)));
        let r = s.fetch_request(Request::get(&format!("https://localhost:{}/", s.port())));
        match r {
            Err(FetchError::Tls { host, source }) => {
                assert_eq!(host, "localhost");
                let why = cyclone::tls::tls_error(&source).map(|e| e.to_string()).unwrap_or_default();
                assert!(why.to_lowercase().contains("certificate"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn a_tls_handshake_that_never_ends_is_a_connect_timeout(lp) {
        // Accepts, takes the ClientHello, and never answers.
        let (s, hold) = silent();
        let mut tls = TlsClientConfig::with_ca(dev_cert().cert_pem.as_bytes()).unwrap();
        tls.handshake_timeout = std::time::Duration::from_millis(100);
        let client = HttpClient::with_config(ClientConfig { tls: Some(tls), ..ClientConfig::default() });
        let url = format!("https://localhost:{}/", s.port);
        let r = lp.run_sync(async move { client.get(&url).await });
        assert!(matches!(r, Err(FetchError::Timeout(cyclone::httpclient::TimeoutKind::Connect))), "{r:?}");
        drop(hold);
    }

    fn http_through_a_forward_proxy_uses_the_absolute_form_and_basic_auth(lp) {
        let s = TestServer::http_on(&lp, scheme_server(None));
        let (p, heads) = proxy();
        let client = HttpClient::with_config(ClientConfig {
            proxy: Some(Proxy::new("127.0.0.1", p.port).basic_auth("user", "pass")),
            ..ClientConfig::default()
        });
        let url = s.url("/via?proxy=1");
        let r = s.run(async move { client.get(&url).await });
        assert_eq!(r.unwrap().text(), Some("http /via?proxy=1"));
        let heads = heads.lock().unwrap();
        assert_eq!(heads[0][0], format!("GET {} HTTP/1.1", s.url("/via?proxy=1")));
        assert_eq!(header(&heads[0], "proxy-authorization"), Some("Basic dXNlcjpwYXNz"));
    }

    fn https_through_a_proxy_goes_in_a_connect_tunnel(lp) {
        let cert = dev_cert();
        let s = TestServer::http_on(&lp, scheme_server(Some(&cert)));
        let (p, heads) = proxy();
        let client = HttpClient::with_config(ClientConfig {
            proxy: Some(Proxy::new("127.0.0.1", p.port).basic_auth("user", "pass")),
            ..trusting(&cert)
        });
        let url = format!("https://localhost:{}/secret", s.port());
        let r = s.run(async move { client.get(&url).await });
        assert_eq!(r.unwrap().text(), Some("https /secret"));
        let heads = heads.lock().unwrap();
        // The proxy saw only where to, never the path.
        assert_eq!(heads[0][0], format!("CONNECT localhost:{} HTTP/1.1", s.port()));
        assert_eq!(header(&heads[0], "proxy-authorization"), Some("Basic dXNlcjpwYXNz"));
    }

    fn a_proxy_refusing_the_tunnel_is_a_proxy_error_with_its_status(lp) {
        let p = scripted(|conn, _| {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            if read_request(&mut reader).is_some() {
                let mut conn = conn;
                let _ = conn.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let client = HttpClient::with_config(ClientConfig {
            proxy: Some(Proxy::new("127.0.0.1", p.port)),
            ..ClientConfig::default()
        });
        let r = lp.run_sync(async move { client.get("https://localhost:9/").await });
        assert!(matches!(r, Err(FetchError::Proxy { status }) if status == 407), "{r:?}");
    }
}
