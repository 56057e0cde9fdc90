//! The test applications of the web tests (`tests/web_*.rs`): one per
//! feature, with the handlers they route to and small request helpers.

use std::cell::RefCell;

use super::http::{Resp, send};
use cyclone::IOLoop;
use cyclone::http1::Response;
use cyclone::web::{Application, Cookie, HttpError, Request, RequestHandler, SameSite};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, StatusCode};

/// One POST of `body` as `content_type` over a fresh connection.
pub fn post(lp: &IOLoop, app: Application, target: &str, content_type: &str, body: &[u8]) -> Resp {
    send(
        lp,
        app,
        "POST",
        target,
        &[("Content-Type", content_type)],
        body,
    )
}

pub fn hv(s: &'static str) -> HeaderValue {
    HeaderValue::from_static(s)
}

/// The `name=value` part of a `Set-Cookie` field.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

// ---------------------------------------------------------------------
// Applications.
// ---------------------------------------------------------------------

pub fn routing_app() -> Application {
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
    pub static FINISHED: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    /// How many verb methods ran.
    pub static VERB_CALLS: RefCell<u32> = const { RefCell::new(0) };
}

#[derive(Default)]
pub struct Widget;

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
pub struct ReadOnly;

impl RequestHandler for ReadOnly {
    const METHODS: &'static [Method] = &[Method::GET, Method::DELETE];

    async fn get(&mut self, _req: Request) -> Result<Response, HttpError> {
        Ok(Response::text("read only"))
    }
}

pub fn handler_app() -> Application {
    Application::new()
        .handler(r"/widget/(\w+)", Widget::default)
        .handler("/ro", ReadOnly::default)
}

pub fn responses_app() -> Application {
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

pub fn args_app() -> Application {
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
pub struct Item {
    pub name: String,
    pub qty: u32,
}

pub fn cookies_app() -> Application {
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

pub fn xsrf_app() -> Application {
    Application::new()
        .xsrf_cookies(true)
        .route("/form", |req: Request| async move {
            format!("{} ok", req.method)
        })
        .route("/token", |req: Request| async move {
            cyclone::web::xsrf_token(&req)
        })
}

pub fn etag_app() -> Application {
    Application::new().route("/etag", |_req: Request| async { "tagged body" })
}

/// More than 1 KiB of text that compresses well but is not trivial.
pub fn big_text() -> String {
    (0..200)
        .map(|i| format!("line {i} of the body\n"))
        .collect()
}

pub fn gzip_app() -> Application {
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

pub const PANIC_MESSAGE: &str = "kaboom-7731 <marker>";

pub fn panic_app() -> Application {
    Application::new()
        .route("/boom", |req: Request| async move {
            if req.path() == "/boom" {
                panic!("{}", PANIC_MESSAGE);
            }
            "unreachable"
        })
        .route("/ok", |_req: Request| async { "still here" })
}
