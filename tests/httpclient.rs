//! The HTTP client (`cyclone::httpclient`) against Cyclone's own server,
//! on every poller backend: bodies each way, the pool (counted by the
//! server, which sees each connection's peer address), the queue,
//! redirects, decoding, streaming, timeouts and connect errors. Served
//! through `cyclone::testing::TestServer`.

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cyclone::http1::{
    BodyStream, HttpConfig, HttpServer, Request as ServerRequest, Response as ServerResponse,
};
use cyclone::httpclient::{Body, ClientConfig, FetchError, HttpClient, Request, TimeoutKind};
use cyclone::testing::TestServer;
use http::{HeaderValue, Method, StatusCode};

/// The test server: each path a behaviour.
fn app(req: ServerRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = ServerResponse>>> {
    Box::pin(async move {
        let path = req.uri.path().to_string();
        let query = req.uri.query().unwrap_or("").to_string();
        match path.as_str() {
            "/hello" => ServerResponse::text("Hello, World!"),
            // Which connection carried the request.
            "/peer" => ServerResponse::text(req.remote_addr.to_string()),
            "/slow-peer" => {
                cyclone::sleep(Duration::from_millis(30)).await;
                ServerResponse::text(req.remote_addr.to_string())
            }
            "/echo" => {
                let mut out = format!("{} ", req.method).into_bytes();
                out.extend_from_slice(&req.body);
                ServerResponse::text(out)
            }
            "/credentials" => {
                let get = |n: &str| {
                    req.headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string()
                };
                ServerResponse::text(format!(
                    "{} {} {}",
                    get("authorization"),
                    get("cookie"),
                    get("x-other")
                ))
            }
            "/never" => std::future::pending().await,
            "/chunked" => {
                let pieces = (0..3).map(|i| Ok(Bytes::from(format!("piece {i};"))));
                ServerResponse::new(StatusCode::OK).stream(BodyStream::new(None, pieces))
            }
            "/big" => ServerResponse::text(vec![b'x'; 1 << 20]),
            "/no-content" => ServerResponse::new(StatusCode::NO_CONTENT),
            // /redirect?code=302&to=/echo
            "/redirect" => {
                let arg = |k: &str| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                let code: u16 = arg("code").parse().unwrap_or(302);
                ServerResponse::new(StatusCode::from_u16(code).unwrap()).header(
                    http::header::LOCATION,
                    HeaderValue::from_str(&arg("to")).unwrap(),
                )
            }
            // /chain/N: N redirects to /hello.
            p if p.starts_with("/chain/") => {
                let n: u32 = p[7..].parse().unwrap_or(0);
                let to = if n == 0 {
                    "/hello".to_string()
                } else {
                    format!("/chain/{}", n - 1)
                };
                if n == 0 {
                    return ServerResponse::text("end of chain");
                }
                ServerResponse::new(StatusCode::FOUND)
                    .header(http::header::LOCATION, HeaderValue::from_str(&to).unwrap())
            }
            _ => ServerResponse::new(StatusCode::NOT_FOUND),
        }
    })
}

fn server(lp: &cyclone::IOLoop) -> TestServer {
    TestServer::http_on(lp, HttpServer::new(app))
}

fn with_limits(server: TestServer, clients: usize, per_host: usize) -> TestServer {
    server.with_client(HttpClient::with_config(ClientConfig {
        max_clients: clients,
        max_connections_per_host: per_host,
        ..ClientConfig::default()
    }))
}

per_backend! {
    fn a_get_returns_status_headers_body_and_the_url(lp) {
        let s = server(&lp);
        let r = s.fetch("/hello").unwrap();
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), Some("Hello, World!"));
        assert_eq!(r.headers["content-length"], "13");
        assert_eq!(r.url.to_string(), s.url("/hello"));
        assert!(r.timing.total >= r.timing.first_byte);
    }

    fn a_post_sends_its_body_with_its_length(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::post(&s.url("/echo"), "name=value")).unwrap();
        assert_eq!(r.text(), Some("POST name=value"));
    }

    fn an_http_crate_request_is_fetched_as_built(lp) {
        let s = server(&lp);
        let req = http::Request::builder().method(Method::PUT).uri(s.url("/echo")).body("put body").unwrap();
        assert_eq!(s.fetch_request(req.into()).unwrap().text(), Some("PUT put body"));
    }

    fn sequential_requests_reuse_one_keep_alive_connection(lp) {
        let s = server(&lp);
        let peers: HashSet<_> = (0..5).map(|_| s.fetch("/peer").unwrap().body).collect();
        assert_eq!(peers.len(), 1, "{peers:?}");
        let stats = s.client().stats();
        assert_eq!((stats.connections_opened, stats.connections_reused, stats.idle), (1, 4, 1));
    }

    fn concurrent_requests_open_at_most_max_connections_per_host(lp) {
        let s = with_limits(server(&lp), 20, 3);
        let (client, url) = (s.client(), s.url("/slow-peer"));
        let peers = s.run(async move {
            let tasks: Vec<_> = (0..12).map(|_| cyclone::spawn({
                let (c, u) = (client.clone(), url.clone());
                async move { c.get(&u).await.unwrap().body }
            })).collect();
            let mut peers = HashSet::new();
            for t in tasks {
                peers.insert(t.await.unwrap());
            }
            peers
        });
        assert_eq!(peers.len(), 3, "{peers:?}");
        assert_eq!(s.client().stats().connections_opened, 3);
    }

    fn requests_beyond_max_clients_wait_in_fifo_order(lp) {
        let s = with_limits(server(&lp), 1, 10);
        let (client, url) = (s.client(), s.url("/echo"));
        let order = s.run(async move {
            let order = Rc::new(RefCell::new(Vec::new()));
            let tasks: Vec<_> = (0..4).map(|i| cyclone::spawn({
                let (c, u, o) = (client.clone(), url.clone(), order.clone());
                async move {
                    let r = c.fetch(Request::post(&u, format!("{i}"))).await.unwrap();
                    o.borrow_mut().push(r.text().unwrap().to_string());
                }
            })).collect();
            for t in tasks {
                t.await.unwrap();
            }
            order.take()
        });
        assert_eq!(order, ["POST 0", "POST 1", "POST 2", "POST 3"]);
        assert_eq!(s.client().stats().connections_opened, 1);
    }

    fn a_request_queued_past_its_timeout_fails_with_a_queue_timeout(lp) {
        let s = with_limits(server(&lp), 1, 1);
        let (client, never, hello) = (s.client(), s.url("/never"), s.url("/hello"));
        let (first, second) = s.run(async move {
            let hung = cyclone::spawn({
                let c = client.clone();
                async move { c.fetch(Request::get(&never).timeout(Duration::from_millis(400))).await }
            });
            // Spawned second, it runs second: the first holds the slot.
            let queued = cyclone::spawn({
                let c = client.clone();
                async move { c.fetch(Request::get(&hello).timeout(Duration::from_millis(100))).await }
            });
            (hung.await.unwrap(), queued.await.unwrap())
        });
        assert!(matches!(second, Err(FetchError::Timeout(TimeoutKind::Queue))), "{second:?}");
        assert!(matches!(first, Err(FetchError::Timeout(TimeoutKind::Request))), "{first:?}");
    }

    fn a_request_abandoned_in_a_hosts_queue_gives_its_place_back(lp) {
        // One connection per host: the second request waits for the first's
        // connection, gives up, and the place it would have had is not lost.
        let s = with_limits(server(&lp), 10, 1);
        let (client, never, hello) = (s.client(), s.url("/never"), s.url("/hello"));
        let (first, second, third, open) = s.run(async move {
            let hung = cyclone::spawn({
                let (c, u) = (client.clone(), never.clone());
                async move { c.fetch(Request::get(&u).timeout(Duration::from_millis(300))).await }
            });
            let queued = cyclone::spawn({
                let (c, u) = (client.clone(), hello.clone());
                async move { c.fetch(Request::get(&u).timeout(Duration::from_millis(100))).await }
            });
            let (first, second) = (hung.await.unwrap(), queued.await.unwrap());
            let third = client.get(&hello).await.map(|r| r.status);
            (first, second, third, client.stats().open)
        });
        assert!(matches!(second, Err(FetchError::Timeout(TimeoutKind::Queue))), "{second:?}");
        assert!(matches!(first, Err(FetchError::Timeout(TimeoutKind::Request))), "{first:?}");
        assert_eq!(third.unwrap(), StatusCode::OK);
        assert_eq!(open, 1, "only the third request's connection, pooled");
    }

    fn a_server_that_never_answers_is_a_request_timeout(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::get(&s.url("/never")).timeout(Duration::from_millis(150)));
        assert!(matches!(r, Err(FetchError::Timeout(TimeoutKind::Request))), "{r:?}");
        // The timed-out connection is closed, not pooled.
        assert_eq!(s.client().stats().open, 0);
    }

    fn a_refused_connection_is_reported_as_refused(lp) {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let client = HttpClient::new();
        let r = lp.run_sync(async move { client.get(&format!("http://127.0.0.1:{port}/")).await });
        assert!(r.as_ref().is_err_and(FetchError::is_refused), "{r:?}");
    }

    fn a_name_that_does_not_resolve_is_a_resolve_error(lp) {
        let client = HttpClient::new();
        let r = lp.run_sync(async move { client.get("http://nothing.invalid/").await });
        assert!(matches!(r, Err(FetchError::Resolve { .. })), "{r:?}");
    }

    fn an_unsupported_url_is_refused_before_connecting(lp) {
        let client = HttpClient::new();
        let r = lp.run_sync(async move { client.get("ftp://127.0.0.1/").await });
        assert!(matches!(r, Err(FetchError::InvalidUrl { .. })), "{r:?}");
    }

    fn a_302_turns_a_post_into_a_get_without_its_body(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::post(&s.url("/redirect?code=302&to=/echo"), "data")).unwrap();
        assert_eq!(r.text(), Some("GET "));
        assert_eq!(r.url.to_string(), s.url("/echo"));
        assert_eq!(r.timing.redirects, 1);
    }

    fn a_307_keeps_the_method_and_the_body(lp) {
        let s = server(&lp);
        for code in [307, 308] {
            let r = s.fetch_request(Request::post(&s.url(&format!("/redirect?code={code}&to=echo")), "data")).unwrap();
            assert_eq!(r.text(), Some("POST data"), "{code}");
        }
    }

    fn more_redirects_than_the_limit_is_an_error(lp) {
        let s = server(&lp);
        assert_eq!(s.fetch("/chain/5").unwrap().text(), Some("end of chain"));
        let r = s.fetch("/chain/6");
        assert!(matches!(r, Err(FetchError::TooManyRedirects { max: 5, .. })), "{r:?}");
    }

    fn max_redirects_zero_returns_the_redirect_itself(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::get(&s.url("/chain/1")).max_redirects(0)).unwrap();
        assert_eq!((r.status.as_u16(), r.headers["location"].to_str().unwrap()), (302, "/chain/0"));
    }

    fn credentials_are_dropped_when_a_redirect_leaves_the_origin(lp) {
        let a = server(&lp);
        let b = TestServer::http_on(&lp, HttpServer::new(app));
        let go = |to: String| {
            Request::get(&a.url(&format!("/redirect?code=302&to={to}")))
                .header("authorization", "Bearer t")
                .header("cookie", "c=1")
                .header("x-other", "kept")
        };
        let same = a.fetch_request(go("/credentials".into())).unwrap();
        assert_eq!(same.text(), Some("Bearer t c=1 kept"));
        let other = a.fetch_request(go(b.url("/credentials"))).unwrap();
        assert_eq!(other.text(), Some("- - kept"));
    }

    fn a_chunked_response_is_assembled(lp) {
        let s = server(&lp);
        let r = s.fetch("/chunked").unwrap();
        assert_eq!(r.headers["transfer-encoding"], "chunked");
        assert_eq!(r.text(), Some("piece 0;piece 1;piece 2;"));
    }

    fn head_and_204_responses_have_no_body_and_keep_the_connection(lp) {
        let s = server(&lp);
        let head = s.fetch_request(Request::new(Method::HEAD, &s.url("/big"))).unwrap();
        assert_eq!((head.headers["content-length"].to_str().unwrap(), head.body.len()), ("1048576", 0));
        let none = s.fetch("/no-content").unwrap();
        assert_eq!((none.status.as_u16(), none.body.len()), (204, 0));
        assert_eq!(s.fetch("/hello").unwrap().text(), Some("Hello, World!"));
        assert_eq!(s.client().stats().connections_opened, 1);
    }

    fn a_streamed_download_goes_to_the_callback_in_pieces(lp) {
        let s = server(&lp);
        let got = Rc::new(RefCell::new((0usize, 0usize)));
        let g = got.clone();
        let req = Request::get(&s.url("/big")).on_chunk(move |piece| {
            let mut g = g.borrow_mut();
            g.0 += 1;
            g.1 += piece.len();
        });
        let r = s.fetch_request(req).unwrap();
        assert!(r.body.is_empty());
        let (pieces, bytes) = *got.borrow();
        assert_eq!(bytes, 1 << 20);
        assert!(pieces > 1, "a 1 MiB body arrived in {pieces} piece");
    }

    fn a_body_over_max_body_size_is_refused(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::get(&s.url("/big")).max_body_size(1000));
        assert!(matches!(r, Err(FetchError::TooLarge { what: "body", limit: 1000 })), "{r:?}");
    }

    fn a_produced_body_of_unknown_length_goes_chunked(lp) {
        let s = server(&lp);
        let body = Body::producer(None, |w| async move {
            for i in 0..3 {
                w.write(format!("part{i} ")).await?;
            }
            Ok(())
        });
        let r = s.fetch_request(Request::new(Method::POST, &s.url("/echo")).body(body)).unwrap();
        assert_eq!(r.text(), Some("POST part0 part1 part2 "));
    }

    fn a_produced_body_of_known_length_is_sent_with_it(lp) {
        let s = server(&lp);
        let body = Body::producer(Some(6), |w| async move {
            w.write("abc").await?;
            w.write("def").await
        });
        let r = s.fetch_request(Request::new(Method::PUT, &s.url("/echo")).body(body)).unwrap();
        assert_eq!(r.text(), Some("PUT abcdef"));
    }

    fn a_body_writer_kept_past_its_producer_can_no_longer_write(lp) {
        let s = server(&lp);
        let kept = Rc::new(RefCell::new(None));
        let k = kept.clone();
        let body = Body::producer(None, move |w| async move {
            w.write("body").await?;
            *k.borrow_mut() = Some(w);
            Ok(())
        });
        let r = s.fetch_request(Request::new(Method::POST, &s.url("/echo")).body(body)).unwrap();
        assert_eq!(r.text(), Some("POST body"));
        let w = kept.borrow_mut().take().unwrap();
        let late = s.run(async move { w.write("GET /admin HTTP/1.1\r\n\r\n").await });
        assert_eq!(late.unwrap_err().kind(), std::io::ErrorKind::BrokenPipe);
        // The pooled connection carries the next request undisturbed.
        assert_eq!(s.fetch("/hello").unwrap().text(), Some("Hello, World!"));
    }

    fn a_timeout_of_duration_max_means_no_limit(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::get(&s.url("/hello")).timeout(Duration::MAX).connect_timeout(Duration::MAX));
        assert_eq!(r.unwrap().status, 200);
    }

    fn a_producer_that_writes_less_than_it_declared_fails_the_request(lp) {
        let s = server(&lp);
        let body = Body::producer(Some(10), |w| async move { w.write("abc").await });
        let r = s.fetch_request(Request::new(Method::PUT, &s.url("/echo")).body(body));
        assert!(matches!(r, Err(FetchError::Upload(_))), "{r:?}");
    }

    fn expect_continue_sends_the_body_after_the_servers_go_ahead(lp) {
        let s = server(&lp);
        let r = s.fetch_request(Request::post(&s.url("/echo"), "after 100").expect_continue()).unwrap();
        assert_eq!(r.text(), Some("POST after 100"));
    }

    fn expect_continue_refused_by_the_server_never_sends_the_body(lp) {
        let config = HttpConfig { max_body_size: 10, ..HttpConfig::default() };
        let s = TestServer::http_on(&lp, HttpServer::with_config(config, app));
        let r = s.fetch_request(Request::post(&s.url("/echo"), vec![b'x'; 100]).expect_continue()).unwrap();
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        // The connection that refused it is not reused.
        assert_eq!(s.fetch("/hello").unwrap().status, 200);
        assert_eq!(s.client().stats().connections_opened, 2);
    }

    fn a_gzip_body_is_decoded_and_the_headers_say_so(lp) {
        let s = TestServer::on(&lp, gzip_app());
        let r = s.fetch("/text").unwrap();
        assert_eq!(r.body, long_text());
        assert_eq!(r.headers["x-consumed-content-encoding"], "gzip");
        assert!(r.headers.get("content-encoding").is_none());
        assert_eq!(r.headers["content-length"], long_text().len().to_string().as_str());
    }

    fn with_decompression_off_the_body_stays_gzip(lp) {
        let s = TestServer::on(&lp, gzip_app());
        let r = s.fetch_request(Request::get(&s.url("/text")).decompress(false)).unwrap();
        // Nothing asked for gzip, so nothing came compressed.
        assert!(r.headers.get("content-encoding").is_none());
        let asked = Request::get(&s.url("/text")).decompress(false).header("accept-encoding", "gzip");
        let r = s.fetch_request(asked).unwrap();
        assert_eq!(r.headers["content-encoding"], "gzip");
        assert_eq!(&r.body[..2], b"\x1f\x8b");
    }
}

fn long_text() -> String {
    "compressible text; ".repeat(200)
}

fn gzip_app() -> cyclone::web::Application {
    cyclone::web::Application::new()
        .compress_response(true)
        .route("/text", |_req: cyclone::web::Request| async { long_text() })
}
