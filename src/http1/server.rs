//! [`HttpServer`]: a [`TcpServer`] whose connections speak HTTP/1.1.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use super::config::HttpConfig;
use super::conn::Connection;
use super::delegate::HttpDelegate;
use super::message::{Request, Response};
use super::service::{App, DelegateFactory, Handler, Phase, Shared};
use crate::tcpserver::TcpServer;

/// How long a draining server keeps an idle keep-alive connection open
/// for a request already on its way. A balancer reuses its pooled
/// connections within milliseconds under load; a second covers that
/// many times over and adds at most a second to a restart's drain.
pub const IDLE_LAME_DUCK: Duration = Duration::from_secs(1);

/// Read-buffer room beyond the head and body limits: one read chunk, so a
/// request exactly at both limits still fits with the next bytes behind it.
const READ_SLACK: usize = 64 * 1024;

/// An HTTP/1.1 server. The handler is an async function from [`Request`]
/// to [`Response`].
///
/// ```no_run
/// use cyclone::http1::{HttpServer, Response};
/// use cyclone::IOLoop;
///
/// let lp = IOLoop::new().unwrap();
/// let server = HttpServer::new(|req| async move { Response::text(format!("you asked for {}", req.path())) });
/// server.listen(8888, Some("127.0.0.1")).unwrap();
/// lp.start().unwrap();
/// ```
#[derive(Clone)]
pub struct HttpServer {
    tcp: TcpServer,
}

impl HttpServer {
    /// A server with the default [`HttpConfig`].
    #[track_caller]
    pub fn new<F, Fut>(handler: F) -> HttpServer
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        HttpServer::with_config(HttpConfig::default(), handler)
    }

    /// A server with `config`.
    #[track_caller]
    pub fn with_config<F, Fut>(config: HttpConfig, handler: F) -> HttpServer
    where
        F: Fn(Request) -> Fut + 'static,
        Fut: Future<Output = Response> + 'static,
    {
        let handler: Rc<Handler> = Rc::new(move |r| {
            // Built straight into its allocation: `Box::pin(handler(r))`
            // builds the future (request included) on the stack and then
            // copies it over.
            let fut: Box<Fut> = Box::write(Box::new_uninit(), handler(r));
            Box::into_pin(fut as Box<dyn Future<Output = Response>>)
        });
        HttpServer::with_app(config, App::Simple(handler))
    }

    /// [`with_config`](Self::with_config) for a handler that boxes its
    /// future itself (a framework dispatching to handlers of many types):
    /// the future is used as is, not boxed again.
    #[track_caller]
    pub fn with_boxed_handler<F>(config: HttpConfig, handler: F) -> HttpServer
    where
        F: Fn(Request) -> Pin<Box<dyn Future<Output = Response>>> + 'static,
    {
        HttpServer::with_app(config, App::Simple(Rc::new(handler)))
    }

    /// A server that streams: each request gets a fresh delegate from
    /// `factory`, which receives the body in pieces and answers through a
    /// [`ResponseWriter`](super::ResponseWriter); see [`HttpDelegate`].
    #[track_caller]
    pub fn with_delegate<F, D>(config: HttpConfig, factory: F) -> HttpServer
    where
        F: Fn() -> D + 'static,
        D: HttpDelegate + 'static,
    {
        let factory: Rc<DelegateFactory> = Rc::new(move || Box::new(factory()));
        HttpServer::with_app(config, App::Delegate(factory))
    }

    #[track_caller]
    fn with_app(config: HttpConfig, app: App) -> HttpServer {
        // Never buffer more than one request's worth, even while a
        // long-polling handler only listens for the client's close.
        let max_buffer = config.max_header_size + config.max_body_size + READ_SLACK;
        // The caller's caller, through the public constructors' own
        // #[track_caller]: the user's line that made the server.
        let shared = Rc::new(Shared::new(config, app, std::panic::Location::caller()));
        let s = shared.clone();
        let tcp = TcpServer::new(move |stream, peer| {
            let _ = stream.set_nodelay(true);
            stream.set_max_buffer_size(max_buffer);
            Connection::new(stream, peer, s.clone()).run()
        });
        let drained = shared;
        tcp.set_on_drain(std::rc::Rc::new(move || {
            drained.phase.set(Phase::Draining);
            // Idle keep-alive connections get a short lame-duck time: one
            // whose client sends a request meanwhile (a balancer reusing
            // its pooled connection) is answered, with Connection: close,
            // instead of meeting a close its request crossed (which a
            // client may resend only if the request is idempotent).
            let later = drained.clone();
            crate::ioloop::IOLoop::current().call_later(IDLE_LAME_DUCK, move || {
                let idle: Vec<_> = later.idle.borrow_mut().drain().collect();
                for closer in idle {
                    closer.close();
                }
            });
            // Collected first: a callback may end its connection at once.
            let upgraded: Vec<_> = drained
                .upgraded
                .borrow()
                .iter()
                .map(|(_, f)| f.clone())
                .collect();
            for tell in upgraded {
                tell();
            }
        }));
        HttpServer { tcp }
    }

    /// Graceful shutdown: stop accepting, let requests in flight finish
    /// (their responses say `Connection: close`) for up to `deadline`, then
    /// close the rest. An idle keep-alive connection is closed after
    /// [`IDLE_LAME_DUCK`] (a second) unless a request comes first, which is
    /// answered with `Connection: close`; a connection that has not sent
    /// its first request yet gets until the deadline (its request may be
    /// on its way). Upgraded connections are told
    /// ([`Response::on_drain`]: a WebSocket sends Close 1001).
    pub async fn shutdown(&self, deadline: Duration) {
        // The drain itself is the hook set in `new`: the same whether the
        // shutdown comes from here or from workers holding the TcpServer.
        self.tcp.shutdown(deadline).await;
    }

    /// Binds and listens on [`IOLoop::current`](crate::IOLoop::current);
    /// returns the bound addresses.
    pub fn listen(&self, port: u16, address: Option<&str>) -> io::Result<Vec<SocketAddr>> {
        self.tcp.listen(port, address)
    }

    /// Serves on listeners made elsewhere (e.g. a Unix socket from
    /// [`crate::netutil::bind_unix_socket`]).
    pub fn add_sockets<L: Into<OwnedFd>>(
        &self,
        listeners: impl IntoIterator<Item = L>,
    ) -> io::Result<()> {
        self.tcp.add_sockets(listeners)
    }

    /// Serves on a Unix-domain socket at `path` (see
    /// [`crate::netutil::bind_unix_socket`]: stale socket files are
    /// replaced, other files refused, `"\0name"` is Linux's abstract
    /// namespace).
    pub fn bind_unix_socket(&self, path: impl AsRef<std::path::Path>, mode: u32) -> io::Result<()> {
        let listener =
            crate::netutil::bind_unix_socket(path, mode, crate::netutil::DEFAULT_BACKLOG)?;
        self.add_sockets([listener])
    }

    /// Binds without serving yet; [`HttpServer::start`] serves.
    pub fn bind(&self, port: u16, address: Option<&str>) -> io::Result<Vec<SocketAddr>> {
        self.tcp
            .bind(port, address, crate::netutil::DEFAULT_BACKLOG, false)
    }

    /// Like [`HttpServer::bind`], with listeners made elsewhere (say,
    /// passed by systemd: [`crate::socket_activation::listeners`]); see
    /// [`TcpServer::adopt`].
    pub fn adopt(&self, listeners: Vec<std::net::TcpListener>) -> io::Result<Vec<SocketAddr>> {
        self.tcp.adopt(listeners)
    }

    /// Serves the sockets from [`HttpServer::bind`], first forking
    /// `processes` workers (0: one per CPU; 1: no fork) that are restarted
    /// if they die, up to `max_restarts` times. See
    /// [`TcpServer::start`]. Returns the worker's task id.
    pub fn start(&self, processes: usize, max_restarts: usize) -> io::Result<usize> {
        self.tcp.start(processes, max_restarts)
    }

    /// Thread-per-core: `n` threads (0: one per CPU), each with its own
    /// loop and `SO_REUSEPORT` listener and a server from `make_server`.
    /// See [`TcpServer::workers`].
    pub fn workers<F>(
        n: usize,
        port: u16,
        address: &str,
        make_server: F,
    ) -> io::Result<crate::workers::Workers>
    where
        F: Fn() -> HttpServer + Send + Sync + 'static,
    {
        TcpServer::workers(n, port, address, move || make_server().tcp)
    }

    /// [`TcpServer::workers_adopting`]: thread-per-core workers on
    /// listening sockets passed by systemd or by a restart's old process.
    pub fn workers_adopting<F>(
        n: usize,
        listeners: Vec<std::net::TcpListener>,
        make_server: F,
    ) -> io::Result<crate::workers::Workers>
    where
        F: Fn() -> HttpServer + Send + Sync + 'static,
    {
        TcpServer::workers_adopting(n, listeners, move || make_server().tcp)
    }

    /// The underlying [`TcpServer`] (max_connections, stop, shutdown).
    pub fn tcp(&self) -> &TcpServer {
        &self.tcp
    }
}
