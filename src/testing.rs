//! Testing an application the way Tornado's `AsyncHTTPTestCase` does:
//! [`TestServer`] serves an [`Application`] (or an [`HttpServer`]) on a
//! free port of 127.0.0.1, on a loop of its own, and hands the test an
//! [`HttpClient`] and URLs to it.
//!
//! ```
//! use cyclone::testing::TestServer;
//! use cyclone::web::{Application, Request};
//!
//! let app = Application::new().route(r"/hello/(\w+)", |req: Request| async move {
//!     format!("Hello, {}!", req.path_arg(0).unwrap_or("?"))
//! });
//! let server = TestServer::new(app);
//! let response = server.fetch("/hello/world").unwrap();
//! assert_eq!(response.status, 200);
//! assert_eq!(response.text(), Some("Hello, world!"));
//!
//! // Or drive the loop yourself, with the client:
//! let (client, url) = (server.client(), server.url("/hello/loop"));
//! let status = server.run(async move { client.get(&url).await.unwrap().status });
//! assert_eq!(status, 200);
//! ```

use std::future::Future;
use std::time::Duration;

use crate::http1::HttpServer;

use crate::httpclient::{FetchError, HttpClient, Request, Response};
use crate::ioloop::IOLoop;
/// Accept attempts made on this thread so far; see [`inject_accept_errors`].
pub use crate::netutil::accept_calls;
/// Fault injection for accept(2): the next accepts of listeners on this
/// thread fail with the given errors, in order, without a system call;
/// [`accept_calls`] counts the attempts, injected ones included. For
/// tests of how a server rides out failures a kernel rarely gives on
/// demand (ECONNABORTED, EPROTO, ENOBUFS, ENOMEM): a skipped connection,
/// a pause.
///
/// ```
/// cyclone::testing::inject_accept_errors(&[libc::ECONNABORTED]);
/// assert_eq!(cyclone::testing::accept_calls(), 0);
/// ```
pub use crate::netutil::inject_accept_errors;
use crate::web::Application;

/// The environment variable that sets [`TestServer::run`]'s time limit
/// in seconds (Tornado's `ASYNC_TEST_TIMEOUT`).
pub const TIMEOUT_ENV: &str = "CYCLONE_TEST_TIMEOUT";

/// Tornado's default limit for an asynchronous test: 5 s.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A server under test on 127.0.0.1, with a client for it. Dropping it
/// stops the server, closes the client's connections and, if it made its
/// own loop, closes that loop.
pub struct TestServer {
    lp: IOLoop,
    own_loop: bool,
    server: Option<HttpServer>,
    port: u16,
    client: HttpClient,
    timeout: Duration,
}

impl TestServer {
    /// Serves `app` on a new loop (the default backend, or
    /// `CYCLONE_POLLER`'s).
    ///
    /// # Panics
    /// If no loop can be made or no port bound: the test cannot run.
    pub fn new(app: Application) -> TestServer {
        TestServer::http(app.into_server())
    }

    /// Serves `app` on `lp` (to test on a given backend).
    pub fn on(lp: &IOLoop, app: Application) -> TestServer {
        TestServer::start(lp.clone(), false, app.into_server())
    }

    /// Serves an [`HttpServer`] on a new loop.
    pub fn http(server: HttpServer) -> TestServer {
        let lp = IOLoop::new().unwrap_or_else(|e| panic!("TestServer: no loop: {e}"));
        TestServer::start(lp, true, server)
    }

    /// Serves an [`HttpServer`] on `lp`.
    pub fn http_on(lp: &IOLoop, server: HttpServer) -> TestServer {
        TestServer::start(lp.clone(), false, server)
    }

    fn start(lp: IOLoop, own_loop: bool, server: HttpServer) -> TestServer {
        let listening = lp.run_sync(async move {
            let bound = server.listen(0, Some("127.0.0.1"));
            (server, bound)
        });
        let (server, bound) = listening;
        let port = match bound {
            Ok(addrs) if !addrs.is_empty() => addrs[0].port(),
            Ok(_) => panic!("TestServer: no address bound"),
            Err(e) => panic!("TestServer: cannot listen on 127.0.0.1: {e}"),
        };
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
        TestServer {
            lp,
            own_loop,
            server: Some(server),
            port,
            client: HttpClient::new(),
            timeout,
        }
    }

    /// Uses `client` instead of a default one (other limits, a proxy).
    pub fn with_client(mut self, client: HttpClient) -> TestServer {
        self.client = client;
        self
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A client for the server (clones share one pool).
    pub fn client(&self) -> HttpClient {
        self.client.clone()
    }

    /// The loop the server runs on.
    pub fn io_loop(&self) -> &IOLoop {
        &self.lp
    }

    /// The server.
    pub fn server(&self) -> &HttpServer {
        self.server.as_ref().expect("present until dropped")
    }

    /// Runs the loop until `future` completes, within the test time limit
    /// (5 s, or [`TIMEOUT_ENV`] seconds).
    ///
    /// # Panics
    /// When the limit passes first: the test fails saying so.
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        match self.lp.run_sync_timeout(future, self.timeout) {
            Ok(v) => v,
            Err(_) => panic!(
                "TestServer::run: not done within {:?} (set {TIMEOUT_ENV} to allow more)",
                self.timeout
            ),
        }
    }

    /// Fetches `path` (on this server) with a GET, running the loop until
    /// the response (Tornado's `self.fetch(path)`).
    pub fn fetch(&self, path: &str) -> Result<Response, FetchError> {
        self.fetch_request(Request::get(&self.url(path)))
    }

    /// Fetches `request`, running the loop until the response. A
    /// request's URL may be a path on this server (`/x`).
    pub fn fetch_request(&self, mut request: Request) -> Result<Response, FetchError> {
        if let Some(url) = request.url()
            && url.scheme().is_none()
            && let Ok(full) = self.url(&url.to_string()).parse()
        {
            request.url = Ok(full);
        }
        let client = self.client.clone();
        self.run(async move { client.fetch(request).await })
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.client.close_idle();
        drop(self.server.take());
        if self.own_loop {
            let _ = self.lp.close();
        }
    }
}
