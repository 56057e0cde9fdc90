//! [`TcpServer`]: accept connections and hand each to an async delegate.
//!
//! ```no_run
//! use cyclone::{IOLoop, TcpServer};
//!
//! let lp = IOLoop::new().unwrap();
//! let server = TcpServer::new(|stream, _peer| async move {
//!     // An echo server: one line at a time.
//!     while let Ok(line) = stream.read_until(b"\n", Some(64 * 1024)).await {
//!         if stream.write(line).await.is_err() {
//!             break;
//!         }
//!     }
//! });
//! let addrs = server.listen(8888, Some("127.0.0.1")).unwrap();
//! println!("listening on {addrs:?}");
//! lp.start().unwrap();
//! ```

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use slab::Slab;

use crate::ioloop::{IOLoop, TaskKey};
use crate::iostream::{IOStream, StreamCloser};
use crate::netutil::{self, AcceptHandle, DEFAULT_BACKLOG, PeerAddr};

type Conn = (StreamCloser, Option<TaskKey>);

/// Starts a connection's task: the delegate's future, with the guard that
/// counts the connection (one allocation: the task holds the future). The
/// task is detached: nothing awaits a connection's end, and a join handle
/// would cost every idle connection its shared result cell.
type Delegate = dyn Fn(&IOLoop, IOStream, PeerAddr, ConnGuard) -> TaskKey;

struct ServerInner {
    delegate: Rc<Delegate>,
    lp: RefCell<Option<IOLoop>>,
    accepts: RefCell<Vec<AcceptHandle>>,
    /// Listeners bound by `bind`, waiting for `start`.
    bound: RefCell<Vec<TcpListener>>,
    /// Open connections: what closes the stream and what aborts the task.
    conns: RefCell<Slab<Conn>>,
    max_connections: Cell<Option<usize>>,
    /// Paused by `max_connections` (not by stop).
    full: Cell<bool>,
    /// Connections begin with a PROXY protocol header.
    proxy_protocol: Cell<bool>,
    stopped: Cell<bool>,
    /// What the protocol on top does when a shutdown begins (HTTP: answer
    /// with `Connection: close`, close idle keep-alive connections).
    on_drain: RefCell<Option<Rc<dyn Fn()>>>,
    /// Woken when the last connection finishes (for `shutdown`).
    idle_wakers: RefCell<Vec<Waker>>,
}

/// A TCP (or Unix-socket) server: every accepted connection becomes an
/// [`IOStream`] handed to the `handle_stream` delegate, which runs as a
/// task on the server's loop. When the delegate's future finishes the
/// stream is dropped (closed) unless the delegate kept it.
///
/// Cloning gives another handle to the same server.
#[derive(Clone)]
pub struct TcpServer {
    inner: Rc<ServerInner>,
}

/// Keeps the connection count right however a connection task ends
/// (finished, panicked, or dropped with its loop).
struct ConnGuard {
    server: Weak<ServerInner>,
    key: usize,
}

pin_project_lite::pin_project! {
    /// A connection's future and its guard, dropped together.
    struct Guarded<F> {
        #[pin]
        inner: F,
        _guard: ConnGuard,
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        self.project().inner.poll(cx)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.server.upgrade() {
            TcpServer { inner }.connection_done(self.key);
        }
    }
}

impl TcpServer {
    /// A server whose connections are handled by
    /// `handle_stream(stream, peer)`.
    pub fn new<F, Fut>(handle_stream: F) -> TcpServer
    where
        F: Fn(IOStream, PeerAddr) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let delegate: Rc<Delegate> = Rc::new(move |lp, s, p, guard| {
            lp.spawn_detached(Guarded {
                inner: handle_stream(s, p),
                _guard: guard,
            })
        });
        TcpServer {
            inner: Rc::new(ServerInner {
                delegate,
                lp: RefCell::new(None),
                accepts: RefCell::new(Vec::new()),
                bound: RefCell::new(Vec::new()),
                conns: RefCell::new(Slab::new()),
                max_connections: Cell::new(None),
                full: Cell::new(false),
                proxy_protocol: Cell::new(false),
                stopped: Cell::new(false),
                on_drain: RefCell::new(None),
                idle_wakers: RefCell::new(Vec::new()),
            }),
        }
    }

    /// A TLS server: each accepted connection's handshake runs first
    /// (bounded by `config.handshake_timeout`; see [`crate::tls::accept`]),
    /// and `handle_stream` gets only connections that completed it, their
    /// reads and writes then working as over plain TCP. Plain servers pay
    /// nothing for this: it is a separate constructor.
    pub fn new_tls<F, Fut>(config: crate::tls::TlsConfig, handle_stream: F) -> TcpServer
    where
        F: Fn(IOStream, PeerAddr) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let handle_stream = Rc::new(handle_stream);
        TcpServer::new(move |stream, peer| {
            let (config, handle_stream) = (config.clone(), handle_stream.clone());
            async move {
                match crate::tls::accept(&stream, &config).await {
                    Ok(()) => handle_stream(stream, peer).await,
                    Err(e) => tracing::debug!("{peer}: TLS handshake failed: {e}"),
                }
            }
        })
    }

    /// Binds `port` on `address` (`None`: every interface) and starts
    /// accepting on [`IOLoop::current`]. Returns the bound addresses (with
    /// the chosen port when `port` is 0).
    pub fn listen(&self, port: u16, address: Option<&str>) -> io::Result<Vec<SocketAddr>> {
        let sockets = netutil::bind_sockets(port, address, DEFAULT_BACKLOG, false)?;
        let addrs = sockets
            .iter()
            .map(|s| s.local_addr())
            .collect::<io::Result<_>>()?;
        self.add_sockets(sockets)?;
        Ok(addrs)
    }

    /// Starts accepting on listeners made elsewhere (TCP or Unix, e.g. from
    /// [`netutil::bind_unix_socket`]), on [`IOLoop::current`].
    pub fn add_sockets<L: Into<OwnedFd>>(
        &self,
        listeners: impl IntoIterator<Item = L>,
    ) -> io::Result<()> {
        if self.inner.stopped.get() {
            return Err(io::Error::other("the server is stopped"));
        }
        let lp = self.io_loop();
        for l in listeners {
            let weak = Rc::downgrade(&self.inner);
            let handle = netutil::add_accept_handler(&lp, l, move |fd, peer| {
                if let Some(inner) = weak.upgrade() {
                    TcpServer { inner }.handle_connection(fd, peer);
                }
            })?;
            if self.inner.full.get() {
                handle.pause();
            }
            self.inner.accepts.borrow_mut().push(handle);
        }
        Ok(())
    }

    /// Binds without accepting yet; [`TcpServer::start`] accepts (after
    /// forking, if asked). `reuse_port` sets `SO_REUSEPORT`.
    pub fn bind(
        &self,
        port: u16,
        address: Option<&str>,
        backlog: i32,
        reuse_port: bool,
    ) -> io::Result<Vec<SocketAddr>> {
        self.adopt(netutil::bind_sockets(port, address, backlog, reuse_port)?)
    }

    /// Like [`TcpServer::bind`], with listeners made elsewhere (say,
    /// passed by systemd: [`crate::socket_activation::listeners`]):
    /// [`TcpServer::start`] accepts on them, after forking if asked.
    /// Returns their addresses.
    pub fn adopt(&self, listeners: Vec<TcpListener>) -> io::Result<Vec<SocketAddr>> {
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<_>>()?;
        self.inner.bound.borrow_mut().extend(listeners);
        Ok(addrs)
    }

    /// Starts accepting on the sockets from [`TcpServer::bind`]. With
    /// `processes` other than 1, first forks that many workers (0: one per
    /// CPU) sharing the sockets, restarting dead ones up to `max_restarts`
    /// times; see [`crate::process::fork_processes`] (no `IOLoop` or thread
    /// may exist yet). Returns the worker's task id (0 without forking).
    pub fn start(&self, processes: usize, max_restarts: usize) -> io::Result<usize> {
        let id = if processes == 1 {
            0
        } else {
            crate::process::fork_processes(processes, max_restarts)?
        };
        let sockets: Vec<TcpListener> = self.inner.bound.borrow_mut().drain(..).collect();
        self.add_sockets(sockets)?;
        Ok(id)
    }

    /// Above `max` open connections, stop accepting: new ones wait in the
    /// kernel's backlog (instead of failing) until a connection finishes.
    pub fn set_max_connections(&self, max: Option<usize>) {
        self.inner.max_connections.set(max);
        self.check_capacity();
    }

    /// Expects every connection to begin with HAProxy's PROXY protocol
    /// header (version 1 or 2), as a load balancer sends it: the delegate
    /// then gets the client's address from the header (or, for a health
    /// check's `LOCAL`/`UNKNOWN`, the connection's own), and the bytes
    /// after it. A connection without a valid header within
    /// [`PROXY_HEADER_TIMEOUT`] is closed unanswered, so a client that
    /// reaches the listener directly cannot name an address of its
    /// choosing. Off by default: a listener that does not expect a header
    /// never looks for one. See [`crate::proxy_protocol`].
    ///
    /// ```
    /// let server = cyclone::TcpServer::new(|_stream, peer| async move {
    ///     println!("a client at {peer}, relayed by the balancer");
    /// });
    /// server.set_proxy_protocol(true);
    /// ```
    pub fn set_proxy_protocol(&self, expect: bool) {
        self.inner.proxy_protocol.set(expect);
    }

    /// The listening sockets' descriptors (bound or accepting), for a
    /// restart that hands them to a new process ([`crate::handover`]).
    pub fn listening_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        let bound = self.inner.bound.borrow();
        let accepts = self.inner.accepts.borrow();
        bound
            .iter()
            .map(|l| l.as_raw_fd())
            .chain(accepts.iter().map(|a| a.fd()))
            .collect()
    }

    /// Sets what a protocol server built on this one does when a
    /// [`shutdown`](Self::shutdown) begins, however it is called (directly,
    /// or by thread-per-core workers that know only the `TcpServer`).
    pub(crate) fn set_on_drain(&self, drain: Rc<dyn Fn()>) {
        *self.inner.on_drain.borrow_mut() = Some(drain);
    }

    /// Runs the server on `lp` rather than [`IOLoop::current`] (a worker
    /// thread's loop, set before its sockets are added).
    pub(crate) fn set_loop(&self, lp: &IOLoop) {
        *self.inner.lp.borrow_mut() = Some(lp.clone());
    }

    /// Connections currently open (their delegates still running).
    pub fn connection_count(&self) -> usize {
        self.inner.conns.borrow().len()
    }

    /// Stops accepting and closes the listening sockets; open connections
    /// carry on. Idempotent, and safe inside a delegate or callback.
    pub fn stop(&self) {
        if self.inner.stopped.replace(true) {
            return;
        }
        let accepts: Vec<AcceptHandle> = self.inner.accepts.borrow_mut().drain(..).collect();
        for a in accepts {
            a.remove();
        }
        self.inner.bound.borrow_mut().clear();
    }

    /// Graceful shutdown: [`stop`](Self::stop), let open connections finish
    /// for up to `deadline`, then close the rest (their streams closed and
    /// their delegate tasks cancelled); completes when every connection is
    /// gone.
    pub async fn shutdown(&self, deadline: Duration) {
        self.stop();
        let on_drain = self.inner.on_drain.borrow().clone();
        if let Some(drain) = on_drain {
            drain();
        }
        let drained = crate::ioloop::timeout(deadline, Idle(self)).await;
        if drained.is_err() {
            // The entries stay: each leaves when its task is dropped (its
            // guard), so the wait below ends when every connection is gone,
            // not merely asked to go.
            let open: Vec<Conn> = self
                .inner
                .conns
                .borrow()
                .iter()
                .map(|(_, c)| c.clone())
                .collect();
            tracing::info!("shutdown deadline: closing {} connections", open.len());
            let lp = self.io_loop();
            for (closer, task) in open {
                // Cut, not ended: a TLS peer must not take a response
                // stopped here for a complete one (no close_notify).
                closer.abort();
                if let Some(t) = task {
                    lp.abort_task(t); // a delegate waiting on something else ends too
                }
            }
            Idle(self).await;
        }
    }

    fn io_loop(&self) -> IOLoop {
        self.inner
            .lp
            .borrow_mut()
            .get_or_insert_with(IOLoop::current)
            .clone()
    }

    fn handle_connection(&self, fd: OwnedFd, peer: PeerAddr) {
        let lp = self.io_loop();
        let stream = match IOStream::new_on(fd, &lp) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot set up a stream for {peer}: {e}");
                return;
            }
        };
        let key = self
            .inner
            .conns
            .borrow_mut()
            .insert((stream.closer(), None));
        self.check_capacity();
        let guard = ConnGuard {
            server: Rc::downgrade(&self.inner),
            key,
        };
        let task = if self.inner.proxy_protocol.get() {
            let relay = Relayed {
                lp: lp.clone(),
                server: Rc::downgrade(&self.inner),
                key,
                guard,
            };
            lp.spawn_detached(relay.serve(stream, peer))
        } else {
            (self.inner.delegate)(&lp, stream, peer, guard)
        };
        if let Some(entry) = self.inner.conns.borrow_mut().get_mut(key) {
            entry.1 = Some(task);
        }
    }

    fn connection_done(&self, key: usize) {
        let removed = self.inner.conns.borrow_mut().try_remove(key);
        drop(removed);
        self.check_capacity();
        if self.inner.conns.borrow().is_empty() {
            let wakers: Vec<Waker> = self.inner.idle_wakers.borrow_mut().drain(..).collect();
            wakers.into_iter().for_each(Waker::wake);
        }
    }

    fn check_capacity(&self) {
        let count = self.connection_count();
        let full = self.inner.max_connections.get().is_some_and(|m| count >= m);
        if full == self.inner.full.replace(full) || self.inner.stopped.get() {
            return;
        }
        for a in self.inner.accepts.borrow().iter() {
            if full {
                a.pause();
            } else {
                a.resume();
            }
        }
    }
}

/// How long a connection on a listener that expects a PROXY header may
/// take to send it. A balancer sends it with the connection's first
/// packet; nginx's `proxy_protocol_timeout` is 30 s, but this only has to
/// cover a slow network, not a slow client.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection whose PROXY header is still to be read.
struct Relayed {
    lp: IOLoop,
    server: Weak<ServerInner>,
    key: usize,
    guard: ConnGuard,
}

/// Why a PROXY header was not read.
enum HeaderRead {
    Refused(crate::proxy_protocol::ProxyError),
    Stream(crate::iostream::StreamError),
}

impl From<crate::iostream::StreamError> for HeaderRead {
    fn from(e: crate::iostream::StreamError) -> HeaderRead {
        HeaderRead::Stream(e)
    }
}

impl Relayed {
    /// Reads the header off the front of `stream`, then hands the stream
    /// (with whatever followed the header) to the delegate, as from the
    /// client the header names.
    async fn serve(self, stream: IOStream, peer: PeerAddr) {
        use crate::proxy_protocol::{ProxyHeader, parse};
        let read = stream.read_with(|buf: &mut bytes::BytesMut| match parse(buf) {
            Ok(Some((header, used))) => {
                bytes::Buf::advance(buf, used);
                Ok(Some(header))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(HeaderRead::Refused(e)),
        });
        let peer = match crate::ioloop::timeout(PROXY_HEADER_TIMEOUT, read).await {
            Ok(Ok(ProxyHeader::Relayed { source, .. })) => PeerAddr::Inet(source),
            Ok(Ok(ProxyHeader::Local)) => peer,
            Ok(Err(HeaderRead::Refused(e))) => {
                tracing::debug!("{peer}: {e}; closing");
                return;
            }
            Ok(Err(HeaderRead::Stream(e))) => {
                tracing::debug!("{peer}: closed before its PROXY header: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!("{peer}: no PROXY header within {PROXY_HEADER_TIMEOUT:?}; closing");
                return;
            }
        };
        let Some(inner) = self.server.upgrade() else {
            return;
        };
        let task = (inner.delegate)(&self.lp, stream, peer, self.guard);
        if let Some(entry) = inner.conns.borrow_mut().get_mut(self.key) {
            entry.1 = Some(task); // shutdown aborts the delegate from now on
        }
    }
}

/// Completes when the server has no open connection.
struct Idle<'a>(&'a TcpServer);

impl Future for Idle<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.inner.conns.borrow().is_empty() {
            return Poll::Ready(());
        }
        self.0
            .inner
            .idle_wakers
            .borrow_mut()
            .push(cx.waker().clone());
        Poll::Pending
    }
}
