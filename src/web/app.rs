//! [`Application`]: routes, settings, and what happens around every
//! handler (errors, panics, ETags, compression, XSRF, the access log).

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY,
};
use http::{HeaderValue, Method, StatusCode};
use regex::Regex;

use super::handler::{self, RequestHandler};
use super::response::{IntoResponse, error_page};
use super::static_files::StaticFileHandler;
use super::{HttpError, Request};
use crate::http1::{self, HttpConfig, HttpServer, Response};

type Outcome = Result<Response, HttpError>;

/// The target of the access log lines (`RUST_LOG=cyclone::access=off`
/// silences them).
const ACCESS: &str = "cyclone::access";
/// A route's handler, type-erased. It takes the request and the end of
/// the request's processing (`Pending`, taken out of the slot once the
/// handler's future exists) and returns one boxed future that runs the
/// handler and then that end.
type Endpoint = Rc<dyn Fn(Request, &mut Option<Pending>) -> BoxedResponse>;
type BoxedResponse = Pin<Box<dyn Future<Output = Response>>>;

/// Name-value pairs (named captures, form fields).
type Fields = Vec<(String, String)>;

/// Application-wide settings, readable by handlers through
/// [`Request::settings`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// Show a panic's message and backtrace in the 500 page (never in
    /// production).
    pub debug: bool,
    /// The key for signed cookies; without it they are refused.
    pub cookie_secret: Option<Vec<u8>>,
    /// How long a signed cookie stays valid (Tornado: 31 days).
    pub signed_cookie_max_age: Duration,
    /// Check an `_xsrf` token on POST, PUT, PATCH and DELETE.
    pub xsrf_cookies: bool,
    /// Gzip text responses for clients that accept it.
    pub compress_response: bool,
    /// Add an ETag to GET/HEAD answers and turn a matching
    /// `If-None-Match` into `304 Not Modified`.
    pub etag: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            debug: false,
            cookie_secret: None,
            signed_cookie_max_age: Duration::from_secs(31 * 86_400),
            xsrf_cookies: false,
            compress_response: false,
            etag: true,
        }
    }
}

enum Pattern {
    /// No regex syntax: compared as a string (no regex run per request).
    Literal(String),
    Regex(Regex),
}

struct Route {
    /// Only for requests to a matching host (see `Application::host`).
    host: Option<Regex>,
    pattern: Pattern,
    source: String,
    name: Option<String>,
    endpoint: Endpoint,
}

/// A web application: an ordered list of routes (the first match wins)
/// and settings. Route patterns are regular expressions matched against
/// the whole path, as in Tornado; each group is a capture passed to the
/// handler ([`Request::path_args`], named ones through
/// [`Request::path_kwarg`]).
///
/// ```no_run
/// use cyclone::http1::Response;
/// use cyclone::web::{Application, HttpError, Request};
///
/// async fn user(req: Request) -> Result<Response, HttpError> {
///     Ok(Response::text(format!("user {}", req.path_arg(0).unwrap_or(""))))
/// }
///
/// let app = Application::new()
///     .route("/", |_req: Request| async { Response::html("<h1>Home</h1>") })
///     .named_route("user", r"/user/(\d+)", user);
/// assert_eq!(app.reverse_url("user", &["7"]).as_deref(), Some("/user/7"));
/// let server = app.into_server();
/// server.listen(8888, Some("127.0.0.1")).unwrap();
/// cyclone::IOLoop::current().start().unwrap();
/// ```
pub struct Application {
    routes: Vec<Route>,
    default: Option<Endpoint>,
    settings: Settings,
    config: HttpConfig,
}

impl Default for Application {
    fn default() -> Application {
        Application::new()
    }
}

fn endpoint<F, Fut, R>(f: F) -> Endpoint
where
    F: Fn(Request) -> Fut + 'static,
    Fut: Future<Output = R> + 'static,
    R: IntoResponse,
{
    Rc::new(move |req, pending| finishing(f(req), pending))
}

/// `fut` followed by the request's end, in one allocation, built in
/// place. `pending` is taken only after `fut` exists: if making it
/// panicked, the caller still has it.
fn finishing<Fut>(fut: Fut, pending: &mut Option<Pending>) -> BoxedResponse
where
    Fut: Future<Output: IntoResponse> + 'static,
{
    let b: Box<Finishing<Fut>> = Box::write(
        Box::new_uninit(),
        Finishing {
            inner: fut,
            pending: pending.take(),
        },
    );
    Box::into_pin(b as Box<dyn Future<Output = Response>>)
}

pin_project_lite::pin_project! {
    /// A handler's future, then `end`: a panic while polling it becomes
    /// a 500 here, with the web layer's page and access line.
    struct Finishing<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F: Future<Output: IntoResponse>> Future for Finishing<F> {
    type Output = Response;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Response> {
        let this = self.project();
        let inner = this.inner;
        // `into_response` is user code too: inside the catch.
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inner.poll(cx).map(IntoResponse::into_response)
        }));
        let outcome = match polled {
            Ok(std::task::Poll::Pending) => return std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(r)) => Ok(r),
            Err(p) => Err(crate::ioloop::panic_message_of(&*p).to_string()),
        };
        match this.pending.take() {
            Some(p) => std::task::Poll::Ready(end(outcome, p)),
            // Polled again after completing: a caller bug, answered safely.
            None => std::task::Poll::Ready(error_page(
                &HttpError::new(StatusCode::INTERNAL_SERVER_ERROR),
                None,
            )),
        }
    }
}

impl Application {
    /// No routes (every request: 404), default settings.
    pub fn new() -> Application {
        Application {
            routes: Vec::new(),
            default: None,
            settings: Settings::default(),
            config: HttpConfig::default(),
        }
    }

    fn add(mut self, name: Option<&str>, pattern: &str, endpoint: Endpoint) -> Application {
        let is_literal = !pattern.contains(|c: char| r"\.+*?()|[]{}^$".contains(c));
        let compiled = if is_literal {
            Pattern::Literal(pattern.to_string())
        } else {
            match Regex::new(&format!("^(?:{pattern})$")) {
                Ok(re) => Pattern::Regex(re),
                // A bad pattern is a programming error, found at start-up.
                Err(e) => panic!("route pattern {pattern:?} is not a valid regex: {e}"),
            }
        };
        self.routes.push(Route {
            host: None,
            pattern: compiled,
            source: pattern.to_string(),
            name: name.map(str::to_string),
            endpoint,
        });
        self
    }

    /// Routes `pattern` to an async function (or closure) of [`Request`]
    /// returning a [`Response`], a `Result<Response, HttpError>`, an
    /// [`HttpError`] or text.
    ///
    /// # Panics
    /// If `pattern` is not a valid regular expression.
    pub fn route<F, Fut, R>(self, pattern: &str, f: F) -> Application
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        self.add(None, pattern, endpoint(f))
    }

    /// [`route`](Self::route) with a name for [`reverse_url`](Self::reverse_url).
    pub fn named_route<F, Fut, R>(self, name: &str, pattern: &str, f: F) -> Application
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        self.add(Some(name), pattern, endpoint(f))
    }

    /// Routes `pattern` to a [`RequestHandler`]; `factory` makes a fresh
    /// handler for each request.
    pub fn handler<H, F>(self, pattern: &str, factory: F) -> Application
    where
        H: RequestHandler,
        F: Fn() -> H + 'static,
    {
        let ep: Endpoint =
            Rc::new(move |req, pending| finishing(handler::run(factory(), req), pending));
        self.add(None, pattern, ep)
    }

    /// Serves the files under `root` at `prefix` (`"/static/"`): see
    /// [`StaticFileHandler`].
    pub fn static_files(mut self, prefix: &str, handler: StaticFileHandler) -> Application {
        // "/static" itself: on to "/static/", as for any directory.
        if let Some(bare) = prefix.strip_suffix('/').filter(|b| !b.is_empty()) {
            let to = prefix.to_string();
            self = self.add(
                None,
                &regex::escape(bare),
                endpoint(move |_req: Request| {
                    let to = to.clone();
                    async move { Response::redirect_with(StatusCode::MOVED_PERMANENTLY, &to) }
                }),
            );
        }
        let handler = Rc::new(handler);
        let pattern = format!("{}(.*)", regex::escape(prefix));
        let ep: Endpoint = Rc::new(move |req, pending| {
            let h = handler.clone();
            finishing(async move { h.serve(&req) }, pending)
        });
        self.add(None, &pattern, ep)
    }

    /// Adds `routes`' routes for requests whose host (the `Host` header
    /// without its port) matches the regex `host_pattern`, as Tornado's
    /// `add_handlers`. Routes keep their order: put host-specific ones
    /// before catch-all ones.
    ///
    /// # Panics
    /// If `host_pattern` is not a valid regular expression.
    pub fn host(mut self, host_pattern: &str, routes: Application) -> Application {
        let re = match Regex::new(&format!("^(?i:{host_pattern})$")) {
            Ok(re) => re,
            Err(e) => panic!("host pattern {host_pattern:?} is not a valid regex: {e}"),
        };
        for mut r in routes.routes {
            r.host = Some(re.clone());
            self.routes.push(r);
        }
        self
    }

    /// Answers requests no route matches (default: a 404 page).
    pub fn default_handler<F, Fut, R>(mut self, f: F) -> Application
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        self.default = Some(endpoint(f));
        self
    }

    /// Replaces the settings.
    pub fn settings(mut self, settings: Settings) -> Application {
        self.settings = settings;
        self
    }

    /// Sets the key for signed cookies.
    pub fn cookie_secret(mut self, secret: impl Into<Vec<u8>>) -> Application {
        self.settings.cookie_secret = Some(secret.into());
        self
    }

    /// Debug mode: a panic's message and backtrace in the 500 page.
    pub fn debug(mut self, on: bool) -> Application {
        self.settings.debug = on;
        self
    }

    /// XSRF protection for POST, PUT, PATCH and DELETE (see
    /// [`xsrf_token`]).
    pub fn xsrf_cookies(mut self, on: bool) -> Application {
        self.settings.xsrf_cookies = on;
        self
    }

    /// Gzip text responses for clients that accept it.
    pub fn compress_response(mut self, on: bool) -> Application {
        self.settings.compress_response = on;
        self
    }

    /// The HTTP server's limits and timeouts.
    pub fn http_config(mut self, config: HttpConfig) -> Application {
        self.config = config;
        self
    }

    /// The URL of named route `name` with its groups filled with `args`
    /// (percent-encoded), in order; `None` if there is no such route, the
    /// count differs, or the pattern has regex syntax outside its groups.
    pub fn reverse_url(&self, name: &str, args: &[&str]) -> Option<String> {
        let route = self
            .routes
            .iter()
            .find(|r| r.name.as_deref() == Some(name))?;
        reverse(&route.source, args)
    }

    /// An [`HttpServer`] serving this application.
    pub fn into_server(self) -> HttpServer {
        if self.settings.debug {
            install_trace_hook();
        }
        let config = self.config.clone();
        let app = Rc::new(Shared {
            by_host: self.routes.iter().any(|r| r.host.is_some()),
            routes: self.routes,
            default: self.default,
            settings: Rc::new(self.settings),
        });
        HttpServer::with_boxed_handler(config, move |req| dispatch(&app, req))
    }
}

/// The host a request names, without the port.
fn request_host(req: &http1::Request) -> Option<&str> {
    let h = req.host()?;
    // "[::1]:80" -> "[::1]"; "example.com:80" -> "example.com".
    Some(match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => &h[..i],
        _ => h,
    })
}

struct Shared {
    /// Some route is for particular hosts.
    by_host: bool,
    routes: Vec<Route>,
    default: Option<Endpoint>,
    settings: Rc<Settings>,
}

impl Shared {
    /// The endpoint for `path` and its captures (percent-decoded).
    fn find(&self, host: Option<&str>, path: &str) -> Option<(Endpoint, Vec<String>, Fields)> {
        for r in &self.routes {
            if let Some(h) = &r.host
                && !host.is_some_and(|host| h.is_match(host))
            {
                continue;
            }
            match &r.pattern {
                Pattern::Literal(p) if p == path => {
                    return Some((r.endpoint.clone(), Vec::new(), Vec::new()));
                }
                Pattern::Literal(_) => {}
                Pattern::Regex(re) => {
                    let Some(caps) = re.captures(path) else {
                        continue;
                    };
                    let mut args = Vec::new();
                    let mut kwargs = Vec::new();
                    for (i, name) in re.capture_names().enumerate().skip(1) {
                        let v = caps.get(i).map_or("", |m| m.as_str());
                        let v = super::request::percent_decode(v);
                        match name {
                            Some(n) => kwargs.push((n.to_string(), v)),
                            None => args.push(v),
                        }
                    }
                    return Some((r.endpoint.clone(), args, kwargs));
                }
            }
        }
        None
    }
}

/// The XSRF token for the `_xsrf` cookie: the request's cookie if it has
/// one, else a fresh random one. Set the cookie with the response that
/// carries the form (`Cookie::new("_xsrf", token)`), and put
/// [`mask_xsrf_token`]`(&token)` in the form's `_xsrf` field (or an
/// `X-XSRFToken` header). The raw token is accepted there too.
pub fn xsrf_token(req: &Request) -> String {
    if let Some(t) = req.cookie("_xsrf").filter(|t| !t.is_empty()) {
        return t;
    }
    hex(&random_bytes::<16>())
}

/// `token` masked for a page: `2|<mask>|<mask XOR token>` in hex with a
/// fresh random mask each time (Tornado's xsrf v2), so the secret never
/// appears twice the same in compressed pages (the BREACH attack reads a
/// secret repeated in compressed responses).
///
/// ```
/// let a = cyclone::web::mask_xsrf_token("abc");
/// let b = cyclone::web::mask_xsrf_token("abc");
/// assert!(a.starts_with("2|") && a != b);
/// ```
pub fn mask_xsrf_token(token: &str) -> String {
    let raw = token.as_bytes();
    let mut mask = Vec::with_capacity(raw.len());
    while mask.len() < raw.len() {
        mask.extend_from_slice(&random_bytes::<16>());
    }
    mask.truncate(raw.len());
    let masked: Vec<u8> = raw.iter().zip(&mask).map(|(t, m)| t ^ m).collect();
    format!("2|{}|{}", hex(&mask), hex(&masked))
}

/// The raw token inside a value from a form or header: masked (see
/// [`mask_xsrf_token`]) or sent as is.
fn unmask_xsrf_token(sent: &str) -> Option<Vec<u8>> {
    let Some(rest) = sent.strip_prefix("2|") else {
        return Some(sent.as_bytes().to_vec());
    };
    let (mask, masked) = rest.split_once('|')?;
    let (mask, masked) = (unhex(mask)?, unhex(masked)?);
    (mask.len() == masked.len()).then(|| mask.iter().zip(&masked).map(|(m, t)| m ^ t).collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `N` random bytes from getrandom(2); should it fail, SipHash under the
/// process's random keys (unpredictable to a client, if not a CSPRNG).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), N, 0) };
    if n != N as isize {
        use std::hash::BuildHasher;
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let v = std::hash::RandomState::new().hash_one(i).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    bytes
}

/// Whether an unsafe request carries an `_xsrf` token (masked or not)
/// equal to its `_xsrf` cookie.
fn xsrf_ok(req: &Request) -> bool {
    let Some(cookie) = req.cookie("_xsrf").filter(|c| !c.is_empty()) else {
        return false;
    };
    let sent = req.argument("_xsrf").map(str::to_string).or_else(|| {
        ["x-xsrftoken", "x-csrftoken"].iter().find_map(|h| {
            req.headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
    });
    let Some(sent) = sent.as_deref().and_then(unmask_xsrf_token) else {
        return false;
    };
    // Compared without an early exit: the time taken says nothing of
    // how much of the token was right.
    sent.len() == cookie.len()
        && sent
            .iter()
            .zip(cookie.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether `if_none_match` (a list of entity tags, or `*`) matches
/// `etag`, by weak comparison (RFC 9110 §13.1.2).
pub(crate) fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    fn strip(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    let ours = match etag.to_str() {
        Ok(e) => strip(e),
        Err(_) => return false,
    };
    list.split(',').any(|t| t.trim() == "*" || strip(t) == ours)
}

/// Text types worth compressing.
fn compressible(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct.split(';').next().unwrap_or("").trim();
    ct.starts_with("text/")
        || matches!(
            ct,
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "image/svg+xml"
                | "application/xhtml+xml"
        )
}

/// Below this size gzip saves little and costs a round of CPU (Tornado's
/// GZipContentEncoding.MIN_LENGTH).
const GZIP_MIN_LENGTH: usize = 1024;

pub(crate) fn accepts_gzip(req: &http1::Request) -> bool {
    req.headers.get_all(ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                name.eq_ignore_ascii_case("gzip") && !refused
            })
        })
    })
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body)?;
    enc.finish()
}

thread_local! {
    /// The last panic on this thread with its backtrace, kept by the hook
    /// debug mode installs, for the 500 page.
    static PANIC_TRACE: std::cell::RefCell<Option<(String, String)>> = const { std::cell::RefCell::new(None) };
}

/// In debug mode, panics also record their message and backtrace for the
/// 500 page (Tornado shows the traceback). The hook chains to the one
/// installed before, so panics are still reported as usual; it is
/// installed once per process.
fn install_trace_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = crate::ioloop::panic_message_of(info.payload()).to_string();
            let trace = format!("{info}\n\n{}", std::backtrace::Backtrace::force_capture());
            let _ = PANIC_TRACE.try_with(|t| *t.borrow_mut() = Some((message, trace)));
            previous(info);
        }));
    });
}

/// What the end of a request needs from its start.
pub(crate) struct Pending {
    method: Method,
    settings: Rc<Settings>,
    wants_gzip: bool,
    if_none_match: Option<HeaderValue>,
    /// For the access line: start time, target, client (only when some
    /// line would be written: errors always are).
    access: Option<(Instant, http::Uri, Option<std::net::IpAddr>)>,
}

/// The web side of one request. Routing and the handler call happen at
/// once, outside any future; the server gets one boxed future: the
/// handler's, followed by the end (`Finishing`).
fn dispatch(app: &Shared, req: http1::Request) -> BoxedResponse {
    let settings = app.settings.clone();
    let mut pending = Some(Pending {
        method: req.method.clone(),
        wants_gzip: settings.compress_response && accepts_gzip(&req),
        if_none_match: req.headers.get(IF_NONE_MATCH).cloned(),
        access: tracing::enabled!(target: ACCESS, tracing::Level::ERROR)
            .then(|| (Instant::now(), req.uri.clone(), req.remote_ip)),
        settings: settings.clone(),
    });
    let refused = |e: HttpError, pending: &mut Option<Pending>| -> BoxedResponse {
        let resp = match pending.take() {
            Some(p) => end(Ok(Err(e)), p),
            None => error_page(&e, None),
        };
        Box::pin(std::future::ready(resp))
    };
    let host = app.by_host.then(|| request_host(&req)).flatten();
    let (ep, wreq) = match app.find(host, req.uri.path()) {
        None => match &app.default {
            Some(ep) => (
                ep.clone(),
                Request::new(req, Vec::new(), Vec::new(), settings),
            ),
            None => return refused(HttpError::new(StatusCode::NOT_FOUND), &mut pending),
        },
        Some((ep, args, kwargs)) => (ep, Request::new(req, args, kwargs, settings)),
    };
    let unsafe_method = matches!(
        wreq.method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if wreq.settings().xsrf_cookies && unsafe_method && !xsrf_ok(&wreq) {
        let e = HttpError::new(StatusCode::FORBIDDEN)
            .reason("XSRF cookie does not match the request's token");
        return refused(e, &mut pending);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ep(wreq, &mut pending))) {
        Ok(fut) => fut,
        Err(p) => {
            let msg = crate::ioloop::panic_message_of(&*p).to_string();
            let resp = match pending.take() {
                Some(pending) => end(Err(msg), pending),
                None => error_page(&HttpError::new(StatusCode::INTERNAL_SERVER_ERROR), None),
            };
            Box::pin(std::future::ready(resp))
        }
    }
}

/// Turns errors and panics into pages, adds the ETag / 304 and
/// compression, writes the access line.
fn end(outcome: Result<Outcome, String>, p: Pending) -> Response {
    let method = &p.method;
    let mut resp = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if let Some(m) = &e.log_message {
                tracing::warn!("{} {method}: {m}", e.status.as_u16());
            }
            error_page(&e, None)
        }
        Err(panic) => {
            tracing::error!("handler for {method} panicked: {panic}");
            let e = HttpError::new(StatusCode::INTERNAL_SERVER_ERROR);
            if p.settings.debug {
                // The hook saw the panic on this thread just before it
                // was caught: its trace is this one's.
                // Only the trace of this very panic: a stale one (a panic
                // resumed without the hook, or an earlier request's) is not
                // shown.
                let trace = PANIC_TRACE
                    .with(|t| t.borrow_mut().take())
                    .filter(|(message, _)| *message == panic)
                    .map_or(panic, |(_, trace)| trace);
                error_page(&e, Some(&trace))
            } else {
                error_page(&e, None)
            }
        }
    };
    finish(
        &mut resp,
        method,
        &p.settings,
        p.wants_gzip,
        p.if_none_match.as_ref(),
    );
    if let Some((started, target, remote)) = p.access {
        // The clock is read, and the line formatted, only if the line is
        // written (at warn, a 200's is not).
        let ms = || started.elapsed().as_secs_f64() * 1000.0;
        let status = resp.status.as_u16();
        let who = Who(remote);
        // Tornado's log_request: the level follows the status class.
        match status {
            0..400 => {
                tracing::info!(target: ACCESS, "{status} {method} {target} ({who}) {:.2}ms", ms())
            }
            400..500 => {
                tracing::warn!(target: ACCESS, "{status} {method} {target} ({who}) {:.2}ms", ms())
            }
            _ => {
                tracing::error!(target: ACCESS, "{status} {method} {target} ({who}) {:.2}ms", ms())
            }
        }
    }
    resp
}

/// Compression, then the ETag and `304 Not Modified`.
fn finish(
    resp: &mut Response,
    method: &Method,
    settings: &Settings,
    wants_gzip: bool,
    if_none_match: Option<&HeaderValue>,
) {
    // A HEAD answered with its own Content-Length and no body (as the
    // HTTP layer allows) has no body here to hash or compress: its ETag
    // would be the empty body's, not GET's.
    if *method == Method::HEAD && resp.body.is_empty() && resp.headers.contains_key(CONTENT_LENGTH)
    {
        return;
    }
    let whole = resp.stream.is_none();
    // Only a whole 200 body: a 206's bytes are a slice of the identity
    // representation and must stay so.
    let compression = Compression::of(
        settings,
        wants_gzip,
        || resp.headers.get(CONTENT_TYPE),
        (whole && resp.status == StatusCode::OK).then_some(resp.body.len() as u64),
    );
    if compression.varies {
        // Caches must keep the two encodings apart.
        resp.headers
            .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        if compression.gzipped
            && !resp.headers.contains_key(CONTENT_ENCODING)
            && let Ok(z) = gzip(&resp.body)
        {
            resp.body = Bytes::from(z);
            resp.headers
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            // A strong validator names one representation; the handler's
            // was for the identity one (nginx weakens it the same way).
            if let Some(tag) = resp.headers.get(ETAG).and_then(|v| v.to_str().ok())
                && !tag.starts_with("W/")
                && let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}"))
            {
                resp.headers.insert(ETAG, weak);
            }
        }
    }
    let cacheable =
        (*method == Method::GET || *method == Method::HEAD) && resp.status == StatusCode::OK;
    if !cacheable {
        return;
    }
    if settings.etag
        && whole
        && let http::header::Entry::Vacant(slot) = resp.headers.entry(ETAG)
    {
        slot.insert(quoted_hex(body_hash(&resp.body)));
    }
    if let Some(inm) = if_none_match
        && let Some(etag) = resp.headers.get(ETAG)
        && etag_matches(inm, etag)
    {
        resp.status = StatusCode::NOT_MODIFIED;
        resp.body = Bytes::new();
        resp.stream = None;
        for h in [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING] {
            resp.headers.remove(h);
        }
    }
}

/// What compression does to a 200 response. One rule for [`finish`] and
/// for a static file's 304, which must describe the 200 it revalidates.
pub(crate) struct Compression {
    /// It says `Vary: Accept-Encoding`.
    pub(crate) varies: bool,
    /// Its body is gzipped (and a strong ETag weakened).
    pub(crate) gzipped: bool,
}

impl Compression {
    /// For a response whose whole body is `whole_len` bytes (`None`:
    /// streamed or not a 200, never compressed), of the content type
    /// `content_type` gives (asked only when compression is on), to a
    /// client that does or does not accept gzip.
    pub(crate) fn of<'a>(
        settings: &Settings,
        wants_gzip: bool,
        content_type: impl FnOnce() -> Option<&'a HeaderValue>,
        whole_len: Option<u64>,
    ) -> Compression {
        let varies =
            settings.compress_response && whole_len.is_some() && compressible(content_type());
        Compression {
            varies,
            gzipped: varies && wants_gzip && whole_len >= Some(GZIP_MIN_LENGTH as u64),
        }
    }
}

/// The client in an access line: its IP, or `unix` for a Unix socket.
struct Who(Option<std::net::IpAddr>);

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("unix"),
        }
    }
}

/// A 64-bit hash of `body` for its ETag. Any hash that changes with the
/// body makes a validator (nginx uses size and mtime), and this one is
/// cheap: a multiply-rotate step per 8 bytes (FxHash's), with the length
/// mixed in, then a final avalanche so every digit depends on every byte.
fn body_hash(body: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = body.len() as u64;
    let mut chunks = body.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // splitmix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `"<16 hex digits>"`, formatted without a temporary string.
fn quoted_hex(v: u64) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [b'"'; 18];
    for (i, d) in b[1..17].iter_mut().enumerate() {
        *d = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// `part` percent-encoded for a URL path (space as `%20`, not `+`: the
/// router decodes `%XX` only, as Tornado's `url_escape(plus=False)`).
pub(crate) fn encode_path_part(part: &str) -> String {
    // byte_serialize writes a space as `+` and a `+` as `%2B`, so every
    // `+` left stands for a space.
    form_urlencoded::byte_serialize(part.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether the group after `(` is a named capture, `(?P<name>` or
/// `(?<name>`.
fn is_named_group(after_paren: &std::str::Chars<'_>) -> bool {
    let rest = after_paren.as_str();
    rest.starts_with("?P<")
        || (rest.starts_with("?<") && !rest.starts_with("?<=") && !rest.starts_with("?<!"))
}

/// Fills the groups of `pattern` with `args` (see `reverse_url`).
fn reverse(pattern: &str, args: &[&str]) -> Option<String> {
    let p = pattern.strip_prefix('^').unwrap_or(pattern);
    let p = p.strip_suffix('$').unwrap_or(p);
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            // An escaped punctuation mark stands for itself; `\d`, `\w`...
            // are classes, not reversible.
            '\\' => match chars.next()? {
                c if c.is_ascii_alphanumeric() => return None,
                c => out.push(c),
            },
            // A non-capturing or named group's options: "(?:", "(?i)".
            '(' if chars.clone().next() == Some('?') && !is_named_group(&chars) => return None,
            '(' => {
                let mut depth = 1;
                for c in chars.by_ref() {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
                if depth != 0 {
                    return None;
                }
                let arg = args.next()?;
                out.push_str(&encode_path_part(arg));
            }
            c if r".+*?|[]{}^$".contains(c) => return None,
            c => out.push(c),
        }
    }
    args.next().is_none().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_fills_groups_in_order() {
        assert_eq!(
            reverse(r"/user/(\d+)/post/(?P<p>\w+)", &["7", "a b"]).as_deref(),
            Some("/user/7/post/a%20b")
        );
        assert_eq!(reverse(r"/a\.b/(\d+)$", &["1"]).as_deref(), Some("/a.b/1"));
    }

    #[test]
    fn reverse_refuses_a_wrong_count_or_syntax_outside_groups() {
        assert_eq!(reverse(r"/user/(\d+)", &[]), None);
        assert_eq!(reverse(r"/user/(\d+)", &["1", "2"]), None);
        assert_eq!(reverse(r"/files/.*", &[]), None);
        assert_eq!(reverse(r"/item\d", &[]), None);
        assert_eq!(reverse(r"/(?:a|b)/(\d+)", &["1"]), None);
    }

    #[test]
    fn a_masked_xsrf_token_unmasks_to_the_token() {
        let masked = mask_xsrf_token("tok123");
        assert_eq!(unmask_xsrf_token(&masked).as_deref(), Some(&b"tok123"[..]));
        assert_eq!(unmask_xsrf_token("tok123").as_deref(), Some(&b"tok123"[..]));
        assert_eq!(unmask_xsrf_token("2|zz|00"), None);
        assert_eq!(unmask_xsrf_token("2|00|0000"), None);
    }

    #[test]
    fn the_etag_hash_changes_with_any_byte_and_with_the_length() {
        let base = body_hash(b"Hello, World! and some more bytes");
        for i in 0..33 {
            let mut b = b"Hello, World! and some more bytes".to_vec();
            b[i] ^= 1;
            assert_ne!(body_hash(&b), base, "byte {i}");
        }
        assert_ne!(body_hash(b"abc"), body_hash(b"abc\0"));
        assert_ne!(body_hash(b""), body_hash(b"\0"));
    }

    #[test]
    fn if_none_match_matches_weakly_in_a_list_or_by_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        for inm in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(etag_matches(&HeaderValue::from_static(inm), &etag), "{inm}");
        }
        assert!(!etag_matches(&HeaderValue::from_static("\"abd\""), &etag));
    }
}
