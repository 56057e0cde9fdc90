//! [`Application`]: routes and settings, and what happens around every
//! handler: routing and the XSRF check before it, then the request's end
//! (errors and panics as pages, compression and ETags, the access log).

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use http::header::IF_NONE_MATCH;
use http::{HeaderValue, Method, StatusCode};

use super::conditional::{accepts_gzip, finish};
use super::error::HttpError;
use super::handler::{self, RequestHandler};
use super::request::Request;
use super::response::{IntoResponse, error_page};
use super::router::Router;
use super::settings::Settings;
use super::static_files::StaticFileHandler;
use super::websocket::{self, WebSocketHandler};
use super::xsrf::xsrf_ok;
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

/// A route's endpoint and where the application's code added it: the
/// loop's blocking warning names that line when the handler holds the
/// loop too long.
struct Target {
    ep: Endpoint,
    site: &'static Location<'static>,
}
type BoxedResponse = Pin<Box<dyn Future<Output = Response>>>;

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
    router: Router<Target>,
    default: Option<Target>,
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
        if let Some(site) = this.pending.as_ref().and_then(|p| p.site) {
            crate::ioloop::running_at(site);
        }
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
            router: Router::new(),
            default: None,
            settings: Settings::default(),
            config: HttpConfig::default(),
        }
    }

    #[track_caller]
    fn add(mut self, name: Option<&str>, pattern: &str, ep: Endpoint) -> Application {
        let site = Location::caller();
        self.router.add(name, pattern, Target { ep, site });
        self
    }

    /// Routes `pattern` to an async function (or closure) of [`Request`]
    /// returning a [`Response`], a `Result<Response, HttpError>`, an
    /// [`HttpError`] or text. The function gets every method the web
    /// layer serves (GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS; it
    /// looks at [`Request::method`](crate::http1::Request::method) to tell
    /// them apart); any other method is answered 501 before routing.
    ///
    /// # Panics
    /// If `pattern` is not a valid regular expression.
    #[track_caller]
    pub fn route<F, Fut, R>(self, pattern: &str, f: F) -> Application
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        self.add(None, pattern, endpoint(f))
    }

    /// [`route`](Self::route) with a name for [`reverse_url`](Self::reverse_url).
    #[track_caller]
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
    #[track_caller]
    pub fn handler<H, F>(self, pattern: &str, factory: F) -> Application
    where
        H: RequestHandler,
        F: Fn() -> H + 'static,
    {
        let ep: Endpoint =
            Rc::new(move |req, pending| finishing(handler::run(factory(), req), pending));
        self.add(None, pattern, ep)
    }

    /// Routes `pattern` to a WebSocket endpoint: each connection gets a
    /// fresh handler from `factory` (see [`WebSocketHandler`]). A request
    /// that is not a valid handshake is refused (400, or 426 for a wrong
    /// version), a cross-origin one by `check_origin` (403).
    #[track_caller]
    pub fn websocket<H, F>(self, pattern: &str, factory: F) -> Application
    where
        H: WebSocketHandler,
        F: Fn() -> H + 'static,
    {
        let ep: Endpoint =
            Rc::new(move |req, pending| finishing(websocket::handshake(factory(), req), pending));
        self.add(None, pattern, ep)
    }

    /// Serves the files of `handler` (a directory, or files compiled into
    /// the binary) at `prefix` (`"/static/"`): see [`StaticFileHandler`].
    #[track_caller]
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
        self.router.add_for_host(host_pattern, routes.router);
        self
    }

    /// Answers requests no route matches (default: a 404 page).
    #[track_caller]
    pub fn default_handler<F, Fut, R>(mut self, f: F) -> Application
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = R> + 'static,
        R: IntoResponse,
    {
        self.default = Some(Target {
            ep: endpoint(f),
            site: Location::caller(),
        });
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
    /// [`xsrf_token`](super::xsrf_token)).
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

    /// Serves HTTPS with `config` (see [`crate::tls`]); requests then say
    /// `https` in [`Request::protocol`](crate::http1::Request::protocol).
    pub fn tls(mut self, config: crate::tls::TlsConfig) -> Application {
        self.config.tls = Some(config);
        self
    }

    /// The URL of named route `name` with its groups filled with `args`
    /// (percent-encoded), in order; `None` if there is no such route, the
    /// count differs, or the pattern has regex syntax outside its groups.
    pub fn reverse_url(&self, name: &str, args: &[&str]) -> Option<String> {
        self.router.reverse_url(name, args)
    }

    /// An [`HttpServer`] serving this application.
    pub fn into_server(self) -> HttpServer {
        if self.settings.debug {
            install_trace_hook();
        }
        let config = self.config.clone();
        let app = Rc::new(Shared {
            router: self.router,
            default: self.default,
            settings: Rc::new(self.settings),
        });
        HttpServer::with_boxed_handler(config, move |req| dispatch(&app, req))
    }
}

/// The application as its server holds it.
struct Shared {
    router: Router<Target>,
    default: Option<Target>,
    settings: Rc<Settings>,
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
struct Pending {
    method: Method,
    settings: Rc<Settings>,
    wants_gzip: bool,
    if_none_match: Option<HeaderValue>,
    /// Where the route was added (none before routing), for the loop's
    /// blocking warning.
    site: Option<&'static Location<'static>>,
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
        site: None,
    });
    let refused = |e: HttpError, pending: &mut Option<Pending>| -> BoxedResponse {
        let resp = match pending.take() {
            Some(p) => end(Ok(Err(e)), p),
            None => error_page(&e, None),
        };
        Box::pin(std::future::ready(resp))
    };
    if !known_method(&req.method) {
        // An extension method (`get` included: methods are case-sensitive)
        // never reaches a route as if it were one the route expects.
        return refused(HttpError::new(StatusCode::NOT_IMPLEMENTED), &mut pending);
    }
    let (target, args, kwargs) = match app.router.find(&req) {
        Some(found) => found,
        None => match &app.default {
            Some(target) => (target, Vec::new(), Vec::new()),
            None => return refused(HttpError::new(StatusCode::NOT_FOUND), &mut pending),
        },
    };
    crate::ioloop::running_at(target.site);
    if let Some(p) = &mut pending {
        p.site = Some(target.site);
    }
    let ep = &target.ep;
    let wreq = Request::new(req, args, kwargs, settings);
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

/// The methods the web layer serves: RFC 9110's, less CONNECT and TRACE
/// (a proxy's and a loop-back's, which no route answers); any other is
/// 501 Not Implemented (RFC 9110 §15.6.2), before routing.
fn known_method(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET
            | Method::HEAD
            | Method::POST
            | Method::PUT
            | Method::DELETE
            | Method::PATCH
            | Method::OPTIONS
    )
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
            crate::stats::handler_panic(1);
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
        let ms = || Millis(started.elapsed());
        let status = resp.status.as_u16();
        let who = Who(remote);
        // Tornado's log_request: the level follows the status class.
        match status {
            0..400 => {
                tracing::info!(target: ACCESS, "{status} {method} {target} ({who}) {}ms", ms())
            }
            400..500 => {
                tracing::warn!(target: ACCESS, "{status} {method} {target} ({who}) {}ms", ms())
            }
            _ => {
                tracing::error!(target: ACCESS, "{status} {method} {target} ({who}) {}ms", ms())
            }
        }
    }
    resp
}

/// The client in an access line: its IP, or `unix` for a Unix socket.
struct Who(Option<std::net::IpAddr>);

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // Written digit by digit: `Ipv4Addr`'s own Display formats
            // into a buffer first (for padding), a measurable share of an
            // access line's cost.
            Some(std::net::IpAddr::V4(v4)) => {
                let mut out = [0u8; 15];
                let mut n = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out[n] = b'.';
                        n += 1;
                    }
                    let mut buf = itoa::Buffer::new();
                    let digits = buf.format(octet).as_bytes();
                    out[n..n + digits.len()].copy_from_slice(digits);
                    n += digits.len();
                }
                f.write_str(std::str::from_utf8(&out[..n]).map_err(|_| std::fmt::Error)?)
            }
            Some(ip) => ip.fmt(f),
            None => f.write_str("unix"),
        }
    }
}

/// A duration in milliseconds with two decimals (`0.01`), as `{:.2}` of
/// the float would print it, without float formatting.
struct Millis(std::time::Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hundredths of a millisecond, rounded half up. (`{:.2}` of the
        // float rounds an exact tie, 5 µs on the nanosecond, by the
        // float's binary error instead: the one difference.)
        let nanos = self.0.as_nanos();
        let hundredths = (nanos + 5_000) / 10_000;
        let mut buf = itoa::Buffer::new();
        f.write_str(buf.format(hundredths / 100))?;
        let frac = (hundredths % 100) as u8;
        f.write_str(
            std::str::from_utf8(&[b'.', b'0' + frac / 10, b'0' + frac % 10])
                .map_err(|_| std::fmt::Error)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{Millis, Who};
    use std::time::Duration;

    #[test]
    fn an_access_lines_client_address_prints_as_std_does() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.4",
            "::1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(Who(Some(ip)).to_string(), ip.to_string());
        }
        assert_eq!(Who(None).to_string(), "unix");
    }

    #[test]
    fn an_access_lines_duration_prints_as_a_float_with_two_decimals() {
        // Exact ties (a multiple of 5 µs and not of 10) are left out: the
        // float rounds those by its binary error.
        for nanos in [
            0u64,
            4_999,
            5_001,
            10_000,
            123_456_789,
            1_999_999,
            7_000_000_000,
            14_999,
            25_001,
        ] {
            let d = Duration::from_nanos(nanos);
            let float = format!("{:.2}", d.as_secs_f64() * 1000.0);
            assert_eq!(Millis(d).to_string(), float, "{nanos} ns");
        }
    }
}
