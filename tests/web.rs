//! The web layer ([`cyclone::web::Application`]) through real HTTP over
//! 127.0.0.1: a raw `TcpStream` client on a helper thread, bytes in and
//! parsed bytes out, on every poller backend.

mod common;

use std::cell::RefCell;
use std::io::Read;

use common::http::{Conn, Resp, get, get_each, send, with_server};
use cyclone::IOLoop;
use cyclone::http1::Response;
use cyclone::web::{Application, Cookie, HttpError, Request, RequestHandler, SameSite};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, StatusCode};

/// One POST of `body` as `content_type` over a fresh connection.
fn post(lp: &IOLoop, app: Application, target: &str, content_type: &str, body: &[u8]) -> Resp {
    send(
        lp,
        app,
        "POST",
        target,
        &[("Content-Type", content_type)],
        body,
    )
}

fn hv(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

/// The `name=value` part of a `Set-Cookie` field.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

// ---------------------------------------------------------------------
// Applications.
// ---------------------------------------------------------------------

fn routing_app() -> Application {
    Application::new()
        .route("/hello", |_req: Request| async { "hello" })
        .route(r"/user/(\d+)", |req: Request| async move {
            format!("user {}", req.path_arg(0).unwrap())
        })
        .route(
            r"/post/(?P<year>\d{4})/(?P<slug>[a-z-]+)",
            |req: Request| async move {
                format!(
                    "{}|{}|{}",
                    req.path_kwarg("year").unwrap(),
                    req.path_kwarg("slug").unwrap(),
                    req.path_args().len()
                )
            },
        )
        .route(r"/file/(.+)", |req: Request| async move {
            req.path_arg(0).unwrap().to_string()
        })
        .route(r"/first/(.*)", |_req: Request| async { "first" })
        .route("/first/special", |_req: Request| async { "second" })
}

// What the handlers saw, per test thread.
thread_local! {
    /// The statuses `on_finish` saw.
    static FINISHED: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    /// How many verb methods ran.
    static VERB_CALLS: RefCell<u32> = const { RefCell::new(0) };
}

#[derive(Default)]
struct Widget;

impl RequestHandler for Widget {
    const METHODS: &'static [Method] = &[Method::GET, Method::POST];

    async fn prepare(&mut self, req: &mut Request) -> Result<(), HttpError> {
        if req.headers.contains_key("x-deny") {
            return Err(HttpError::new(StatusCode::FORBIDDEN).reason("Denied by prepare"));
        }
        Ok(())
    }

    async fn get(&mut self, req: Request) -> Result<Response, HttpError> {
        VERB_CALLS.with(|c| *c.borrow_mut() += 1);
        match req.path_arg(0).unwrap() {
            "missing" => Err(HttpError::new(StatusCode::NOT_FOUND)),
            "boom" => panic!("widget boom"),
            id => Ok(Response::text(format!("widget {id}"))),
        }
    }

    async fn post(&mut self, req: Request) -> Result<Response, HttpError> {
        VERB_CALLS.with(|c| *c.borrow_mut() += 1);
        Ok(
            Response::text(format!("created {}", req.path_arg(0).unwrap()))
                .status(StatusCode::CREATED),
        )
    }

    fn on_finish(&mut self, status: StatusCode) {
        FINISHED.with(|f| f.borrow_mut().push(status.as_u16()));
    }
}

/// Lists DELETE but does not implement it.
#[derive(Default)]
struct ReadOnly;

impl RequestHandler for ReadOnly {
    const METHODS: &'static [Method] = &[Method::GET, Method::DELETE];

    async fn get(&mut self, _req: Request) -> Result<Response, HttpError> {
        Ok(Response::text("read only"))
    }
}

fn handler_app() -> Application {
    Application::new()
        .handler(r"/widget/(\w+)", Widget::default)
        .handler("/ro", ReadOnly::default)
}

fn responses_app() -> Application {
    Application::new()
        .route("/html", |_req: Request| async {
            Response::html("<p>hi</p>")
        })
        .route("/json", |_req: Request| async {
            Response::json(&serde_json::json!({"ok": true, "n": [1, 2]}))
        })
        .route("/bytes", |_req: Request| async {
            Response::bytes(vec![0u8, 1, 2, 255])
        })
        .route("/str", |_req: Request| async { "static str" })
        .route("/string", |_req: Request| async { format!("owned {}", 42) })
        .route("/go", |_req: Request| async {
            Response::redirect("/target?x=1")
        })
        .route(r"/go/(\d+)", |req: Request| async move {
            let code: u16 = req.path_arg(0).unwrap().parse().unwrap();
            Response::redirect_with(StatusCode::from_u16(code).unwrap(), "/there")
        })
        .route("/headers", |_req: Request| async {
            Response::text("h")
                .header(HeaderName::from_static("x-multi"), hv("1"))
                .header(HeaderName::from_static("x-multi"), hv("2"))
                .header(HeaderName::from_static("x-once"), hv("old"))
                .set_header(HeaderName::from_static("x-once"), hv("new"))
                .header(HeaderName::from_static("x-gone"), hv("x"))
                .clear_header(HeaderName::from_static("x-gone"))
                .set_header(CONTENT_TYPE, hv("text/x-custom"))
        })
        .route("/conflict", |_req: Request| async {
            HttpError::new(StatusCode::CONFLICT)
        })
        .route("/reason", |_req: Request| async {
            Err::<Response, _>(
                HttpError::new(StatusCode::CONFLICT)
                    .reason("Widget <locked>")
                    .log("internal-detail-42")
                    .header(WWW_AUTHENTICATE, hv("Basic realm=\"w\"")),
            )
        })
        .route("/gone", |_req: Request| async {
            Err::<Response, _>(StatusCode::GONE)
        })
}

fn args_app() -> Application {
    Application::new()
        .route("/args", |req: Request| async move {
            format!(
                "{}|{}|{}",
                req.arguments("a").join(","),
                req.argument("a").unwrap_or("-"),
                req.argument("b").unwrap_or("-")
            )
        })
        .route("/need", |req: Request| async move {
            let name = req.required_argument("name")?;
            Ok::<_, HttpError>(Response::text(format!("hi {name}")))
        })
        .route("/upload", |req: Request| async move {
            let files: Vec<serde_json::Value> = ["upload", "blob"]
                .iter()
                .flat_map(|n| req.files(n))
                .map(|f| {
                    serde_json::json!({
                        "name": f.name,
                        "filename": f.filename,
                        "content_type": f.content_type,
                        "bytes": f.body.to_vec(),
                    })
                })
                .collect();
            Response::json(&serde_json::json!({
                "title": req.argument("title"),
                "q": req.argument("q"),
                "files": files,
            }))
        })
        .route("/lenient", |req: Request| async move {
            let body = match req.body_arguments() {
                Ok(a) => format!("ok {}", a.len()),
                Err(e) => e.status.as_u16().to_string(),
            };
            format!(
                "{}|{}|{}",
                req.arguments("a").len(),
                req.argument("q").unwrap_or("-"),
                body
            )
        })
        .route("/strict", |req: Request| async move {
            let n = req.body_arguments()?.len();
            Ok::<_, HttpError>(Response::text(format!("{n}")))
        })
        .route("/json", |req: Request| async move {
            let item: Item = req.json()?;
            Ok::<_, HttpError>(Response::text(format!("{} x{}", item.name, item.qty)))
        })
}

#[derive(serde::Deserialize)]
struct Item {
    name: String,
    qty: u32,
}

fn cookies_app() -> Application {
    Application::new()
        .route("/echo", |req: Request| async move {
            let all: Vec<String> = req
                .cookies()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "{}|{}|{}",
                all.join(","),
                req.cookie("b").unwrap_or_default(),
                req.cookie("c").unwrap_or_default()
            )
        })
        .route("/set", |_req: Request| async {
            Response::text("set")
                .set_cookie(
                    Cookie::new("session", "abc")
                        .path("/")
                        .domain("example.com")
                        .max_age(60)
                        .secure()
                        .http_only()
                        .same_site(SameSite::Lax),
                )
                .set_cookie(Cookie::new("theme", "dark"))
        })
        .route("/clear", |_req: Request| async {
            Response::text("cleared").clear_cookie("session", "/")
        })
        .route("/encoded/set", |_req: Request| async {
            Response::text("set").set_cookie(Cookie::encoded("msg", "hello world; 100%"))
        })
        .route("/encoded/get", |req: Request| async move {
            req.cookie("msg").unwrap_or_else(|| "none".to_string())
        })
        .route("/signed/set", |req: Request| async move {
            let c = req.sign_cookie(Cookie::new("user", "alice").path("/"))?;
            Ok::<_, HttpError>(Response::text("signed").set_cookie(c))
        })
        .route("/signed/get", |req: Request| async move {
            req.signed_cookie("user")
                .unwrap_or_else(|| "none".to_string())
        })
}

fn xsrf_app() -> Application {
    Application::new()
        .xsrf_cookies(true)
        .route("/form", |req: Request| async move {
            format!("{} ok", req.method)
        })
        .route("/token", |req: Request| async move {
            cyclone::web::xsrf_token(&req)
        })
}

fn etag_app() -> Application {
    Application::new().route("/etag", |_req: Request| async { "tagged body" })
}

/// More than 1 KiB of text that compresses well but is not trivial.
fn big_text() -> String {
    (0..200)
        .map(|i| format!("line {i} of the body\n"))
        .collect()
}

fn gzip_app() -> Application {
    Application::new()
        .compress_response(true)
        .route("/big", |_req: Request| async { big_text() })
        .route("/small", |_req: Request| async { "tiny body" })
        .route("/png", |_req: Request| async {
            Response::new(StatusCode::OK)
                .set_header(CONTENT_TYPE, hv("image/png"))
                .body(big_text())
        })
}

const PANIC_MESSAGE: &str = "kaboom-7731 <marker>";

fn panic_app() -> Application {
    Application::new()
        .route("/boom", |req: Request| async move {
            if req.path() == "/boom" {
                panic!("{}", PANIC_MESSAGE);
            }
            "unreachable"
        })
        .route("/ok", |_req: Request| async { "still here" })
}

// ---------------------------------------------------------------------
// Tests without a server.
// ---------------------------------------------------------------------

#[test]
fn reverse_url_fills_a_named_routes_groups() {
    let app = Application::new()
        .named_route("user", r"/user/(\d+)", |_req: Request| async { "u" })
        .named_route("post", r"/post/(?P<y>\d+)/(\w+)", |_req: Request| async {
            "p"
        })
        .named_route("any", r"/files/.*", |_req: Request| async { "f" });
    assert_eq!(app.reverse_url("user", &["7"]).as_deref(), Some("/user/7"));
    assert_eq!(
        app.reverse_url("post", &["2024", "intro"]).as_deref(),
        Some("/post/2024/intro")
    );
    assert_eq!(app.reverse_url("user", &[]), None, "too few arguments");
    assert_eq!(
        app.reverse_url("user", &["1", "2"]),
        None,
        "too many arguments"
    );
    assert_eq!(app.reverse_url("nope", &["1"]), None, "unknown name");
    assert_eq!(
        app.reverse_url("any", &[]),
        None,
        "regex syntax outside groups"
    );
}

#[test]
fn reverse_url_escapes_a_slash_in_an_argument() {
    let app = Application::new().named_route("f", r"/f/(.+)", |_req: Request| async { "f" });
    let url = app.reverse_url("f", &["a/b"]).unwrap();
    assert!(url.starts_with("/f/a") && !url[3..].contains('/'), "{url}");
}

// ---------------------------------------------------------------------
// Tests over HTTP, on every backend.
// ---------------------------------------------------------------------

/// The access lines (target `cyclone::access`) written while `app`
/// answers GETs of `targets` over one connection.
fn access_lines<const N: usize>(
    lp: &IOLoop,
    app: Application,
    targets: [&'static str; N],
) -> Vec<String> {
    let logs = common::capture_logs(|| {
        get_each(lp, app, targets);
    });
    logs.lines()
        .filter(|l| l.contains("cyclone::access"))
        .map(str::to_string)
        .collect()
}

/// "<status> GET <target> (127.0.0.1) <d.dd>ms" at the end of `line`.
fn is_access_line(line: &str, level: &str, status: u16, target: &str) -> bool {
    let prefix = format!("{status} GET {target} (127.0.0.1) ");
    let Some(rest) = line.split_once(&prefix).map(|(_, r)| r) else {
        return false;
    };
    let ms = rest.trim_end().trim_end_matches("ms");
    line.contains(level)
        && ms.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.len() == 2
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

per_backend! {
    // --- access log ------------------------------------------------------

    fn every_request_gets_an_access_line_with_status_target_peer_and_time(lp) {
        let lines = access_lines(&lp, routing_app(), ["/hello?x=1"]);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(is_access_line(&lines[0], "INFO", 200, "/hello?x=1"), "{lines:?}");
    }

    fn the_access_line_level_follows_the_status_class(lp) {
        let app = routing_app().route("/boom", |_req: Request| async {
            HttpError::new(StatusCode::SERVICE_UNAVAILABLE)
        });
        let lines = access_lines(&lp, app, ["/hello", "/missing", "/boom"]);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(is_access_line(&lines[0], "INFO", 200, "/hello"), "{lines:?}");
        assert!(is_access_line(&lines[1], "WARN", 404, "/missing"), "{lines:?}");
        assert!(is_access_line(&lines[2], "ERROR", 503, "/boom"), "{lines:?}");
    }

    // --- routing ---------------------------------------------------------

    fn literal_route_matches_the_whole_path_only(lp) {
        let r = get_each(&lp, routing_app(), ["/hello", "/hello?x=1", "/hello/", "/hellox", "/x/hello"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "hello");
        assert_eq!(r[1].text(), "hello", "the query is not part of the path");
        assert_eq!(r[2].status, 404);
        assert_eq!(r[3].status, 404);
        assert_eq!(r[4].status, 404);
    }

    fn regex_route_passes_positional_captures(lp) {
        let r = get_each(&lp, routing_app(), ["/user/42", "/user/abc", "/user/42/extra", "/x/user/42"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "user 42");
        assert_eq!(r[1].status, 404, "\\d+ does not match letters");
        assert_eq!(r[2].status, 404, "patterns are anchored at the end");
        assert_eq!(r[3].status, 404, "patterns are anchored at the start");
    }

    fn regex_route_passes_named_captures(lp) {
        let r = get(&lp, routing_app(), "/post/2024/hello-world");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "2024|hello-world|0", "named groups are not positional");
    }

    fn captures_are_percent_decoded(lp) {
        let r = get(&lp, routing_app(), "/file/a%20b%2Fc%C3%A9");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "a b/c\u{e9}");
    }

    fn the_first_matching_route_wins(lp) {
        let r = get(&lp, routing_app(), "/first/special");
        assert_eq!(r.text(), "first");
    }

    fn an_unrouted_path_gets_the_default_404_page(lp) {
        let r = get(&lp, routing_app(), "/nowhere");
        assert_eq!(r.status, 404);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r.text().contains("<h1>404: Not Found</h1>"), "{}", r.text());
    }

    fn a_custom_default_handler_answers_unrouted_paths(lp) {
        let app = routing_app().default_handler(|req: Request| async move {
            Response::text(format!("no route for {}", req.path())).status(StatusCode::NOT_FOUND)
        });
        let r = get_each(&lp, app, ["/nowhere", "/hello"]);
        assert_eq!(r[0].status, 404);
        assert_eq!(r[0].text(), "no route for /nowhere");
        assert_eq!(r[1].text(), "hello", "routed paths are unaffected");
    }

    fn reverse_url_round_trips_through_the_router(lp) {
        let app = Application::new().named_route("tag", r"/tag/([^/]+)", |req: Request| async move {
            req.path_arg(0).unwrap().to_string()
        });
        let arg = "a b+c/d";
        let url = app.reverse_url("tag", &[arg]).unwrap();
        let r = get(&lp, app, &url);
        assert_eq!(r.status, 200, "{url}");
        assert_eq!(r.text(), arg, "reverse_url gave {url:?}");
    }

    // --- RequestHandler --------------------------------------------------

    fn handler_implemented_verbs_answer(lp) {
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/widget/7"), c.send("POST", "/widget/8", &[], b"")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "widget 7");
        assert_eq!(r[1].status, 201);
        assert_eq!(r[1].text(), "created 8");
    }

    fn handler_verb_not_in_methods_is_405_with_allow(lp) {
        let r = send(&lp, handler_app(), "PUT", "/widget/7", &[], b"x");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, POST, HEAD"));
    }

    fn handler_verb_listed_but_not_implemented_is_405_with_allow(lp) {
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.send("DELETE", "/ro", &[], b""), c.send("PATCH", "/ro", &[], b"")]
        });
        for r in &r {
            assert_eq!(r.status, 405);
            assert_eq!(r.header("allow"), Some("GET, DELETE, HEAD"));
        }
    }

    fn handler_head_gives_get_headers_without_body(lp) {
        // HEAD then GET on one connection: a body after the HEAD answer
        // would be read as the GET's status line.
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/widget/12345", &[], b""), c.get("/widget/12345")]
        });
        assert_eq!(r[0].status, 200);
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].text(), "widget 12345");
        assert_eq!(r[0].header("content-length"), Some("12"));
        assert_eq!(r[0].header("content-type"), r[1].header("content-type"));
        assert_eq!(r[0].header("etag"), r[1].header("etag"));
    }

    fn handler_prepare_error_answers_instead_of_the_verb(lp) {
        VERB_CALLS.with(|c| *c.borrow_mut() = 0);
        let r = with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            [c.get_with("/widget/1", &[("X-Deny", "1")]), c.send("POST", "/widget/1", &[("X-Deny", "1")], b"")]
        });
        for r in &r {
            assert_eq!(r.status, 403);
            assert!(r.text().contains("403: Denied by prepare"), "{}", r.text());
        }
        assert_eq!(VERB_CALLS.with(|c| *c.borrow()), 0, "no verb method ran");
    }

    fn handler_on_finish_sees_the_status(lp) {
        FINISHED.with(|f| f.borrow_mut().clear());
        with_server(&lp, handler_app(), |port| {
            let mut c = Conn::open(port);
            c.get("/widget/1");
            c.get("/widget/missing");
            c.send("POST", "/widget/2", &[], b"");
            c.get_with("/widget/3", &[("X-Deny", "1")]);
        });
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [200, 404, 201, 403]);
    }

    fn handler_on_finish_runs_for_a_405_too(lp) {
        // "Runs after the answer is made, with its status": a verb the
        // handler does not list is answered (405) like any other error.
        FINISHED.with(|f| f.borrow_mut().clear());
        let r = send(&lp, handler_app(), "PUT", "/widget/1", &[], b"");
        assert_eq!(r.status, 405);
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [405]);
    }

    fn handler_on_finish_runs_after_a_panic_with_500(lp) {
        FINISHED.with(|f| f.borrow_mut().clear());
        let r = get(&lp, handler_app(), "/widget/boom");
        assert_eq!(r.status, 500);
        assert_eq!(FINISHED.with(|f| f.borrow().clone()), [500]);
    }

    fn a_capture_with_one_bad_escape_still_decodes_the_good_ones(lp) {
        let app = Application::new().route(r"/x/(.*)", |req: Request| async move {
            req.path_arg(0).unwrap_or("").to_string()
        });
        let r = get(&lp, app, "/x/a%20b%zz");
        assert_eq!(r.text(), "a b%zz");
    }

    fn a_head_answered_with_its_own_length_gets_no_empty_body_etag(lp) {
        let app = Application::new().route("/h", |req: Request| async move {
            if req.method == Method::HEAD {
                Response::text("").set_header(http::header::CONTENT_LENGTH, HeaderValue::from_static("5"))
            } else {
                Response::text("hello")
            }
        });
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            [c.send("HEAD", "/h", &[], b""), c.get("/h")]
        });
        assert_eq!(r[0].header("content-length"), Some("5"));
        assert_eq!(r[0].header("etag"), None, "no tag of the empty body");
        assert!(r[1].header("etag").is_some());
    }

    fn a_panic_in_a_streamed_body_closes_that_connection_only(lp) {
        let app = Application::new()
            .route("/stream", |_r: Request| async {
                let mut n = 0;
                let pieces = std::iter::from_fn(move || {
                    n += 1;
                    match n {
                        1 => Some(Ok(bytes::Bytes::from_static(b"hello"))),
                        _ => panic!("piece boom"),
                    }
                });
                Response::new(StatusCode::OK).stream(cyclone::http1::BodyStream::new(Some(10), pieces))
            })
            .route("/ok", |_r: Request| async { "still here" });
        let mut got = None;
        let logs = common::capture_logs(|| {
            got = Some(with_server(&lp, app, |port| {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(common::HANG)).unwrap();
                std::io::Write::write_all(&mut c, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut raw = Vec::new();
                let _ = c.read_to_end(&mut raw); // ends: the server closed it
                (raw, Conn::open(port).get("/ok"))
            }));
        });
        let (raw, after) = got.unwrap();
        // Ended as a failed body, not as a crashed connection task.
        assert!(logs.contains("response body failed") && logs.contains("piece boom"), "{logs}");
        assert!(!logs.contains("uncaught panic"), "{logs}");
        let raw = String::from_utf8_lossy(&raw).to_string();
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(raw.contains("Content-Length: 10\r\n") && raw.ends_with("\r\n\r\nhello"), "{raw}");
        assert_eq!(after.text(), "still here");
    }

    // --- responses -------------------------------------------------------

    fn html_json_and_bytes_responses_have_their_content_types(lp) {
        let r = get_each(&lp, responses_app(), ["/html", "/json", "/bytes"]);
        assert_eq!(r[0].header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(r[0].text(), "<p>hi</p>");
        assert_eq!(r[1].header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r[1].body).unwrap();
        assert_eq!(v, serde_json::json!({"ok": true, "n": [1, 2]}));
        assert_eq!(r[2].header("content-type"), Some("application/octet-stream"));
        assert_eq!(r[2].body, [0, 1, 2, 255]);
    }

    fn returning_str_or_string_is_a_text_response(lp) {
        let r = get_each(&lp, responses_app(), ["/str", "/string"]);
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[0].text(), "static str");
        assert_eq!(r[1].header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(r[1].text(), "owned 42");
    }

    fn redirect_is_a_302_with_location(lp) {
        let r = get(&lp, responses_app(), "/go");
        assert_eq!(r.status, 302);
        assert_eq!(r.header("location"), Some("/target?x=1"));
        assert_eq!(r.header("content-length"), Some("0"));
    }

    fn redirect_with_sends_each_redirect_status(lp) {
        let r = get_each(&lp, responses_app(), [301, 303, 307, 308].map(|s| format!("/go/{s}")));
        for (r, want) in r.iter().zip([301, 303, 307, 308]) {
            assert_eq!(r.status, want);
            assert_eq!(r.header("location"), Some("/there"));
        }
    }

    fn redirect_with_a_non_redirect_status_is_a_500(lp) {
        let r = get(&lp, responses_app(), "/go/200");
        assert_eq!(r.status, 500);
        assert!(r.header("location").is_none());
    }

    fn set_header_replaces_header_adds_clear_header_removes(lp) {
        let r = get(&lp, responses_app(), "/headers");
        assert_eq!(r.headers_all("x-multi"), ["1", "2"]);
        assert_eq!(r.headers_all("x-once"), ["new"]);
        assert!(r.header("x-gone").is_none());
        assert_eq!(r.headers_all("content-type"), ["text/x-custom"]);
    }

    fn http_error_becomes_an_error_page_with_its_status(lp) {
        let r = get_each(&lp, responses_app(), ["/conflict", "/gone"]);
        assert_eq!(r[0].status, 409);
        assert_eq!(r[0].header("content-type"), Some("text/html; charset=utf-8"));
        assert!(r[0].text().contains("<h1>409: Conflict</h1>"), "{}", r[0].text());
        assert_eq!(r[1].status, 410, "Err(StatusCode) is an HttpError");
        assert!(r[1].text().contains("410: Gone"));
    }

    fn http_error_reason_is_shown_escaped_and_log_message_is_not_sent(lp) {
        let r = get(&lp, responses_app(), "/reason");
        assert_eq!(r.status, 409);
        let body = r.text();
        assert!(body.contains("<h1>409: Widget &lt;locked&gt;</h1>"), "{body}");
        assert!(!body.contains("internal-detail-42"), "{body}");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"w\""));
    }

    // --- request helpers -------------------------------------------------

    fn arguments_come_from_query_then_form_body_and_the_last_wins(lp) {
        let r = post(&lp, args_app(), "/args?a=1&a=2", "application/x-www-form-urlencoded", b"a=3&b=x+y%21");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "1,2,3|3|x y!");
    }

    fn a_body_that_is_not_a_form_gives_no_arguments(lp) {
        let r = post(&lp, args_app(), "/args?a=1", "text/plain", b"a=3&b=4");
        assert_eq!(r.text(), "1|1|-");
    }

    fn required_argument_missing_is_400(lp) {
        let r = get_each(&lp, args_app(), ["/need", "/need?name=ann"]);
        assert_eq!(r[0].status, 400);
        assert!(r[0].text().contains("Missing argument name"), "{}", r[0].text());
        assert_eq!(r[1].status, 200);
        assert_eq!(r[1].text(), "hi ann");
    }

    fn multipart_fields_and_files_are_parsed(lp) {
        let mut body = Vec::new();
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello there\r\n");
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"notes.txt\"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n");
        body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"blob\"; filename=\"b.bin\"\r\n\r\n\x00\x01\xff--\r\n");
        body.extend_from_slice(b"--XyZ--\r\n");
        let r = post(&lp, args_app(), "/upload?q=search", "multipart/form-data; boundary=XyZ", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "title": "Hello there",
                "q": "search",
                "files": [
                    {"name": "upload", "filename": "notes.txt", "content_type": "text/plain",
                     "bytes": b"line1\r\nline2".to_vec()},
                    {"name": "blob", "filename": "b.bin", "content_type": "application/octet-stream",
                     "bytes": [0, 1, 255, b'-', b'-']},
                ],
            })
        );
    }

    fn malformed_multipart_gives_no_arguments_and_body_arguments_400(lp) {
        let ct = [("Content-Type", "multipart/form-data; boundary=XyZ")];
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1".to_vec();
        let r = with_server(&lp, args_app(), move |port| {
            let mut c = Conn::open(port);
            [c.send("POST", "/lenient?q=7", &ct, &body), c.send("POST", "/strict", &ct, &body)]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "0|7|400", "query arguments survive a bad body");
        assert_eq!(r[1].status, 400);
        assert!(r[1].text().contains("malformed multipart body"), "{}", r[1].text());
    }

    fn json_body_is_parsed(lp) {
        let r = post(&lp, args_app(), "/json", "application/json", br#"{"name":"widget","qty":3}"#);
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "widget x3");
    }

    fn invalid_json_body_is_400(lp) {
        let r = with_server(&lp, args_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/json", &[], br#"{"name":"widget""#),
                c.send("POST", "/json", &[], br#"{"name":"widget","qty":"three"}"#),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 400);
            assert!(r.text().contains("Invalid JSON body"), "{}", r.text());
        }
    }

    // --- cookies ---------------------------------------------------------

    fn request_cookies_are_parsed(lp) {
        let r = send(&lp, cookies_app(), "GET", "/echo", &[("Cookie", "a=1; b=\"two\""), ("Cookie", "c=x%20y")], b"");
        assert_eq!(r.text(), "a=1,b=two,c=x%20y|two|x y");
    }

    fn set_cookie_emits_set_cookie_with_attributes(lp) {
        let r = get(&lp, cookies_app(), "/set");
        assert_eq!(
            r.headers_all("set-cookie"),
            [
                "session=abc; Path=/; Domain=example.com; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
                "theme=dark",
            ]
        );
    }

    fn clear_cookie_sets_max_age_zero(lp) {
        let r = get(&lp, cookies_app(), "/clear");
        let sc = r.headers_all("set-cookie");
        assert_eq!(sc.len(), 1);
        assert!(sc[0].starts_with("session=;"), "{}", sc[0]);
        assert!(sc[0].contains("; Path=/"), "{}", sc[0]);
        assert!(sc[0].contains("; Max-Age=0"), "{}", sc[0]);
        assert!(sc[0].contains("; Expires=Thu, 01 Jan 1970 00:00:00 GMT"), "{}", sc[0]);
    }

    fn encoded_cookie_round_trips_through_the_client(lp) {
        let r = with_server(&lp, cookies_app(), |port| {
            let mut c = Conn::open(port);
            let set = c.get("/encoded/set");
            let pair = cookie_pair(set.header("set-cookie").unwrap());
            (pair.clone(), c.get_with("/encoded/get", &[("Cookie", &pair)]))
        });
        assert_eq!(r.1.text(), "hello world; 100%", "sent back {:?}", r.0);
    }

    fn signed_cookie_round_trips(lp) {
        let app = cookies_app().cookie_secret("s3cret key");
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let set = c.get("/signed/set");
            let sc = set.header("set-cookie").unwrap().to_string();
            let back = c.get_with("/signed/get", &[("Cookie", &cookie_pair(&sc))]);
            (set.status, sc, back)
        });
        assert_eq!(r.0, 200);
        assert!(r.1.starts_with("user=") && r.1.ends_with("; Path=/"), "{}", r.1);
        assert!(!r.1.contains("alice"), "the value is encoded: {}", r.1);
        assert_eq!(r.2.text(), "alice");
    }

    fn tampered_signed_cookie_is_refused(lp) {
        let app = cookies_app().cookie_secret("s3cret key");
        let r = with_server(&lp, app, |port| {
            let mut c = Conn::open(port);
            let set = c.get("/signed/set");
            let pair = cookie_pair(set.header("set-cookie").unwrap());
            // user=<base64 value>|<time>|<sig>: swap the value for "admin"
            // (base64 "YWRtaW4"), keep the signature.
            let (_, signed) = pair.split_once('=').unwrap();
            let (_, rest) = signed.split_once('|').unwrap();
            let forged = format!("user=YWRtaW4|{rest}");
            // And a valid signature presented under another name.
            let renamed = format!("other={signed}; user=");
            [
                c.get_with("/signed/get", &[("Cookie", &forged)]),
                c.get_with("/signed/get", &[("Cookie", &renamed)]),
                c.get_with("/signed/get", &[("Cookie", "user=alice")]),
                c.get_with("/signed/get", &[("Cookie", &pair)]),
            ]
        });
        assert_eq!(r[0].text(), "none", "forged value");
        assert_eq!(r[1].text(), "none", "empty value");
        assert_eq!(r[2].text(), "none", "unsigned value");
        assert_eq!(r[3].text(), "alice", "the genuine cookie still works");
    }

    fn signed_cookie_without_cookie_secret_is_none(lp) {
        let value = cyclone::web::cookies::sign_value(b"some key", "user", b"alice");
        let cookie = format!("user={value}");
        let r = send(&lp, cookies_app(), "GET", "/signed/get", &[("Cookie", &cookie)], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "none");
    }

    fn signed_cookie_from_another_secret_is_none(lp) {
        let value = cyclone::web::cookies::sign_value(b"some key", "user", b"alice");
        let cookie = format!("user={value}");
        let app = cookies_app().cookie_secret("another key");
        let r = send(&lp, app, "GET", "/signed/get", &[("Cookie", &cookie)], b"");
        assert_eq!(r.text(), "none");
    }

    fn sign_cookie_without_cookie_secret_is_500(lp) {
        let r = get(&lp, cookies_app(), "/signed/set");
        assert_eq!(r.status, 500);
        assert!(r.headers_all("set-cookie").is_empty());
    }

    // --- XSRF ------------------------------------------------------------

    fn xsrf_post_without_token_is_403(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/form", &[], b""),
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123")], b""),
                c.send("DELETE", "/form", &[("Cookie", "_xsrf=tok123")], b""),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 403);
        }
    }

    fn xsrf_post_with_form_field_matching_cookie_is_200(lp) {
        let r = send(
            &lp,
            xsrf_app(),
            "POST",
            "/form",
            &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
            b"x=1&_xsrf=tok123",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "POST ok");
    }

    fn a_masked_xsrf_token_in_the_form_is_accepted_and_a_forged_one_refused(lp) {
        let good = cyclone::web::mask_xsrf_token("tok123");
        let bad = cyclone::web::mask_xsrf_token("tok124");
        let r = with_server(&lp, xsrf_app(), move |port| {
            let mut c = Conn::open(port);
            [good, bad].map(|token| {
                let body = format!("_xsrf={}", token.replace('|', "%7C"));
                c.send(
                    "POST",
                    "/form",
                    &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body.as_bytes(),
                )
            })
        });
        assert_eq!(r[0].status, 200, "{}", r[0].text());
        assert_eq!(r[1].status, 403);
    }

    fn xsrf_header_token_is_accepted(lp) {
        let r = send(&lp, xsrf_app(), "PUT", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok123")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "PUT ok");
    }

    fn xsrf_mismatched_token_is_403(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok124")], b""),
                c.send("POST", "/form", &[("Cookie", "_xsrf=tok123"), ("X-XSRFToken", "tok12")], b""),
                c.send(
                    "POST",
                    "/form",
                    &[("Cookie", "_xsrf=tok123"), ("Content-Type", "application/x-www-form-urlencoded")],
                    b"_xsrf=nope",
                ),
            ]
        });
        for r in &r {
            assert_eq!(r.status, 403);
        }
    }

    fn xsrf_get_is_never_checked(lp) {
        let r = with_server(&lp, xsrf_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/form"), c.send("HEAD", "/form", &[], b""), c.get("/token")]
        });
        assert_eq!(r[0].status, 200);
        assert_eq!(r[0].text(), "GET ok");
        assert_eq!(r[1].status, 200);
        let token = r[2].text();
        assert_eq!(token.len(), 32, "{token}");
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    }

    fn xsrf_token_reuses_the_cookie(lp) {
        let r = send(&lp, xsrf_app(), "GET", "/token", &[("Cookie", "_xsrf=abcdef")], b"");
        assert_eq!(r.text(), "abcdef");
    }

    // --- ETag ------------------------------------------------------------

    fn get_200_gets_an_etag(lp) {
        let r = get(&lp, etag_app(), "/etag");
        assert_eq!(r.status, 200);
        let etag = r.header("etag").expect("an ETag");
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");
    }

    fn matching_if_none_match_is_304_with_empty_body(lp) {
        let r = with_server(&lp, etag_app(), |port| {
            let mut c = Conn::open(port);
            let first = c.get("/etag");
            let etag = first.header("etag").unwrap().to_string();
            let again = c.get_with("/etag", &[("If-None-Match", &etag)]);
            let weak = c.get_with("/etag", &[("If-None-Match", &format!("\"zzz\", W/{etag}"))]);
            // The connection is still in step after the 304s.
            let after = c.get("/etag");
            (etag, again, weak, after)
        });
        assert_eq!(r.1.status, 304);
        assert!(r.1.body.is_empty());
        assert_eq!(r.1.header("etag"), Some(r.0.as_str()));
        assert!(r.1.header("content-length").is_none(), "{:?}", r.1.headers);
        assert_eq!(r.2.status, 304, "weak comparison in a list");
        assert_eq!(r.3.status, 200);
        assert_eq!(r.3.text(), "tagged body");
    }

    fn non_matching_if_none_match_is_200(lp) {
        let r = send(&lp, etag_app(), "GET", "/etag", &[("If-None-Match", "\"not-it\"")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "tagged body");
    }

    fn post_responses_get_no_automatic_etag(lp) {
        let r = send(&lp, etag_app(), "POST", "/etag", &[], b"");
        assert_eq!(r.status, 200);
        assert!(r.header("etag").is_none());
    }

    // --- compression -----------------------------------------------------

    fn large_text_is_gzipped_for_clients_that_accept_it(lp) {
        let r = send(&lp, gzip_app(), "GET", "/big", &[("Accept-Encoding", "deflate, gzip")], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-encoding"), Some("gzip"));
        assert!(r.headers_all("vary").iter().any(|v| v.contains("Accept-Encoding")), "{:?}", r.headers);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&r.body[..]).read_to_string(&mut plain).unwrap();
        assert_eq!(plain, big_text());
        assert!(r.body.len() < plain.len());
    }

    fn without_accept_encoding_the_body_is_identity(lp) {
        let r = with_server(&lp, gzip_app(), |port| {
            let mut c = Conn::open(port);
            [c.get("/big"), c.get_with("/big", &[("Accept-Encoding", "gzip;q=0, identity")])]
        });
        for r in &r {
            assert_eq!(r.status, 200);
            assert!(r.header("content-encoding").is_none());
            assert_eq!(r.text(), big_text());
        }
    }

    fn a_small_body_is_not_compressed(lp) {
        let r = send(&lp, gzip_app(), "GET", "/small", &[("Accept-Encoding", "gzip")], b"");
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.text(), "tiny body");
    }

    fn head_matches_get_under_compression(lp) {
        let r = with_server(&lp, gzip_app(), |port| {
            let mut c = Conn::open(port);
            let ae = [("Accept-Encoding", "gzip")];
            [c.send("HEAD", "/big", &ae, b""), c.send("GET", "/big", &ae, b"")]
        });
        assert!(r[0].body.is_empty());
        assert_eq!(r[1].header("content-encoding"), Some("gzip"));
        for h in ["content-encoding", "content-length", "vary", "etag"] {
            assert_eq!(r[0].header(h), r[1].header(h), "{h}");
        }
    }

    fn a_binary_content_type_is_not_compressed(lp) {
        let r = send(&lp, gzip_app(), "GET", "/png", &[("Accept-Encoding", "gzip")], b"");
        assert!(r.header("content-encoding").is_none());
        assert_eq!(r.text(), big_text());
    }

    // --- host routing ----------------------------------------------------

    fn routes_for_a_host_answer_only_requests_to_that_host(lp) {
        let app = Application::new()
            .host(
                r"api\.example\.com",
                Application::new().route("/", |_r: Request| async { "api" }),
            )
            .route("/", |_r: Request| async { "www" });
        let got = with_server(&lp, app, |port| {
            ["api.example.com:8080", "API.Example.com", "www.example.com", "[::1]:80"].map(|host| {
                let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(common::HANG)).unwrap();
                let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
                std::io::Write::write_all(&mut c, raw.as_bytes()).unwrap();
                common::http::read_response(&mut std::io::BufReader::new(c), false).text()
            })
        });
        assert_eq!(got, ["api", "api", "www", "www"]);
    }

    fn a_cookie_value_that_would_inject_attributes_is_refused_with_500(lp) {
        let app = Application::new().route("/", |req: Request| async move {
            let lang = req.argument("lang").unwrap_or("en").to_string();
            Response::text("ok").set_cookie(Cookie::new("lang", lang))
        });
        let r = get_each(&lp, app, ["/?lang=en", "/?lang=en%3B%20Domain%3Devil.example"]);
        assert_eq!(r[0].header("set-cookie"), Some("lang=en"));
        assert_eq!(r[1].status, 500);
        assert_eq!(r[1].header("set-cookie"), None);
    }

    fn a_capture_with_a_signed_escape_is_not_decoded(lp) {
        let app = Application::new().route(r"/x/(.*)", |req: Request| async move {
            req.path_arg(0).unwrap_or("").to_string()
        });
        // "%+f" is not an escape: the capture stays as sent.
        let r = get(&lp, app, "/x/a%+fb");
        assert_eq!(r.text(), "a%+fb");
    }

    fn a_panic_in_into_response_is_a_500_page(lp) {
        struct Bad;
        impl cyclone::web::IntoResponse for Bad {
            fn into_response(self) -> Result<Response, HttpError> {
                panic!("into_response boom")
            }
        }
        let app = Application::new()
            .debug(true)
            .route("/", |_r: Request| async { Bad });
        let r = get(&lp, app, "/");
        assert_eq!(r.status, 500);
        assert!(r.text().contains("into_response boom"), "the web layer's page: {}", r.text());
    }

    // --- panics ----------------------------------------------------------

    fn a_panicking_handler_is_a_500_and_the_server_goes_on(lp) {
        let r = with_server(&lp, panic_app(), |port| {
            let mut c = Conn::open(port);
            let boom = c.get("/boom");
            let same = c.get("/ok");
            let fresh = Conn::open(port).get("/ok");
            [boom, same, fresh]
        });
        assert_eq!(r[0].status, 500);
        assert!(r[0].text().contains("500: Internal Server Error"), "{}", r[0].text());
        assert_eq!(r[1].status, 200, "same keep-alive connection");
        assert_eq!(r[1].text(), "still here");
        assert_eq!(r[2].status, 200, "new connection");
        assert_eq!(r[2].text(), "still here");
    }

    fn the_panic_message_is_shown_only_in_debug_mode(lp) {
        let quiet = get(&lp, panic_app(), "/boom");
        assert_eq!(quiet.status, 500);
        assert!(!quiet.text().contains("kaboom"), "{}", quiet.text());
        let debug = get(&lp, panic_app().debug(true), "/boom");
        assert_eq!(debug.status, 500);
        assert!(debug.text().contains("kaboom-7731 &lt;marker&gt;"), "{}", debug.text());
    }

    fn debug_mode_shows_the_panic_backtrace(lp) {
        let debug = get(&lp, panic_app().debug(true), "/boom");
        assert_eq!(debug.status, 500);
        // Every panic's stack passes through the standard library's
        // panicking machinery; a message alone would not name it.
        assert!(debug.text().contains("panicking"), "{}", debug.text());
    }
}
