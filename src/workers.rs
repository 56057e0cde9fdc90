//! Thread-per-core servers: `n` threads, each with its own loop and its
//! own listening sockets (`SO_REUSEPORT`: the kernel spreads connections
//! over them), sharing nothing. See [`TcpServer::workers`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crate::ioloop::{IOLoop, Remote};
use crate::netutil::{self, DEFAULT_BACKLOG};
use crate::tcpserver::TcpServer;

thread_local! {
    /// The server of this worker thread, for a graceful shutdown sent
    /// from another thread (servers are not `Send`).
    static WORKER: RefCell<Option<TcpServer>> = const { RefCell::new(None) };
}

/// Thread-per-core: `n` threads, each with its own loop and its own
/// listening sockets, sharing nothing. [`Workers::shutdown`] drains them.
pub struct Workers {
    remotes: Vec<Remote>,
    threads: Vec<std::thread::JoinHandle<io::Result<()>>>,
    addrs: Vec<SocketAddr>,
    /// A copy of every thread's listening sockets, so that their numbers
    /// stay valid for a restart's handover however the threads fare.
    sockets: Vec<TcpListener>,
}

impl TcpServer {
    /// Starts `n` worker threads (0: one per CPU), each running its own
    /// [`IOLoop`] and a server built by `make_server` (servers are not
    /// `Send`, so each thread builds its own) listening on `address:port`
    /// through its own `SO_REUSEPORT` socket; the kernel spreads
    /// connections over them. With `port` 0 the first worker's port is
    /// used by all.
    pub fn workers<F>(n: usize, port: u16, address: &str, make_server: F) -> io::Result<Workers>
    where
        F: Fn() -> TcpServer + Send + Sync + 'static,
    {
        let n = threads(n);
        // Bind every worker's sockets first: a bind error then leaves no
        // thread behind.
        let first = netutil::bind_sockets(port, Some(address), DEFAULT_BACKLOG, true)?;
        let port = first[0].local_addr()?.port();
        let mut all = vec![first];
        for _ in 1..n {
            all.push(netutil::bind_sockets(
                port,
                Some(address),
                DEFAULT_BACKLOG,
                true,
            )?);
        }
        spawn_workers(all, make_server)
    }

    /// Like [`TcpServer::workers`], on listening sockets made elsewhere:
    /// passed by systemd ([`crate::socket_activation::listeners`]) or by
    /// the old process of a restart ([`crate::handover`]). Where an
    /// address has exactly `n` sockets (a `SO_REUSEPORT` group, as a
    /// restarted `workers` passes them), each thread takes one; otherwise
    /// every thread accepts on all of that address's sockets.
    pub fn workers_adopting<F>(
        n: usize,
        listeners: Vec<TcpListener>,
        make_server: F,
    ) -> io::Result<Workers>
    where
        F: Fn() -> TcpServer + Send + Sync + 'static,
    {
        let n = threads(n);
        let mut by_address: BTreeMap<SocketAddr, Vec<TcpListener>> = BTreeMap::new();
        for l in listeners {
            by_address.entry(l.local_addr()?).or_default().push(l);
        }
        let mut all: Vec<Vec<TcpListener>> = (0..n).map(|_| Vec::new()).collect();
        for (_, sockets) in by_address {
            if sockets.len() == n {
                for (mine, socket) in all.iter_mut().zip(sockets) {
                    mine.push(socket);
                }
            } else {
                for mine in &mut all {
                    for socket in &sockets {
                        mine.push(socket.try_clone()?);
                    }
                }
            }
        }
        spawn_workers(all, make_server)
    }
}

fn threads(n: usize) -> usize {
    if n == 0 {
        crate::process::cpu_count()
    } else {
        n
    }
}

/// One thread per entry of `all`, serving those sockets.
fn spawn_workers<F>(all: Vec<Vec<TcpListener>>, make_server: F) -> io::Result<Workers>
where
    F: Fn() -> TcpServer + Send + Sync + 'static,
{
    let n = all.len();
    let addrs: Vec<SocketAddr> = all
        .first()
        .map(|first| first.iter().map(|s| s.local_addr()).collect())
        .transpose()?
        .unwrap_or_default();
    let sockets: Vec<TcpListener> = all
        .iter()
        .flatten()
        .map(|s| s.try_clone())
        .collect::<io::Result<_>>()?;
    let make_server = Arc::new(make_server);
    let (tx, rx) = std::sync::mpsc::channel::<Result<Remote, String>>();
    let mut threads = Vec::with_capacity(n);
    for (i, sockets) in all.into_iter().enumerate() {
        let make_server = make_server.clone();
        let tx = tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("cyclone-worker-{i}"))
            .spawn(move || {
                crate::stats::set_worker(i);
                let lp = match IOLoop::new() {
                    Ok(lp) => lp,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return Err(io::Error::other(e));
                    }
                };
                let _ = tx.send(Ok(lp.remote()));
                drop(tx);
                let server = make_server();
                server.set_loop(&lp);
                server.add_sockets(sockets)?;
                WORKER.with(|w| *w.borrow_mut() = Some(server.clone()));
                lp.start().map_err(io::Error::other)?;
                server.stop();
                WORKER.with(|w| w.borrow_mut().take());
                lp.close().map_err(io::Error::other)
            })?;
        threads.push(t);
    }
    drop(tx);
    let mut remotes = Vec::with_capacity(n);
    let mut failure = None;
    for result in rx.iter().take(n) {
        match result {
            Ok(r) => remotes.push(r),
            Err(e) => failure = Some(e),
        }
    }
    let workers = Workers {
        remotes,
        threads,
        addrs,
        sockets,
    };
    if let Some(e) = failure {
        let _ = workers.stop();
        return Err(io::Error::other(format!("a worker could not start: {e}")));
    }
    Ok(workers)
}

impl Workers {
    /// The addresses the workers listen on.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Every thread's listening sockets' descriptors, grouped by thread,
    /// for a restart that hands them to a new process
    /// ([`crate::handover`]; the new one adopts them with
    /// [`TcpServer::workers_adopting`]).
    pub fn listening_fds(&self) -> Vec<RawFd> {
        self.sockets.iter().map(|s| s.as_raw_fd()).collect()
    }

    /// Stops every worker's loop at once (open connections are dropped)
    /// and waits for the threads.
    pub fn stop(mut self) -> io::Result<()> {
        self.sockets.clear();
        for r in &self.remotes {
            let _ = r.stop();
        }
        self.join()
    }

    /// Graceful: every worker stops accepting, lets its open connections
    /// finish for up to `grace` ([`TcpServer::shutdown`]), closes the
    /// rest and ends its loop; returns when every thread has.
    pub fn shutdown(mut self, grace: Duration) -> io::Result<()> {
        self.sockets.clear();
        for r in &self.remotes {
            let _ = r.add_callback(move || {
                let Some(server) = WORKER.with(|w| w.borrow().clone()) else {
                    return;
                };
                let lp = IOLoop::current();
                let stopper = lp.clone();
                drop(lp.spawn(async move {
                    server.shutdown(grace).await;
                    stopper.stop();
                }));
            });
        }
        self.join()
    }

    fn join(self) -> io::Result<()> {
        for t in self.threads {
            t.join()
                .map_err(|_| io::Error::other("a worker thread panicked"))??;
        }
        Ok(())
    }
}
