//! [`TcpClient`]: non-blocking connects with names resolved off the loop
//! and Happy Eyeballs (RFC 8305) across IPv6 and IPv4.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::ioloop::{Async, sleep};
use crate::iostream::IOStream;

/// Resolver threads per process: `getaddrinfo` blocks for up to the system
/// resolver's timeout, so lookups run off the loop; a few threads cover
/// bursts of connects without growing without bound.
const RESOLVER_THREADS: usize = 4;

/// RFC 8305 §5's recommended "Connection Attempt Delay": start the next
/// address if the current attempt has not connected within this time.
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Why [`TcpClient::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The host name did not resolve (or resolved to nothing).
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// What the resolver said.
        source: io::Error,
    },
    /// Every address refused or failed; the last error is kept.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The last address tried.
        addr: SocketAddr,
        /// Why it failed (e.g. `ConnectionRefused`).
        source: io::Error,
    },
    /// The whole attempt took longer than the timeout.
    #[error("connecting to {host}:{port} timed out")]
    Timeout {
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
    },
    /// Connected, but the TLS handshake failed (see
    /// [`tls::tls_error`](crate::tls::tls_error) for why).
    #[error("TLS with {host}: {source}")]
    Tls {
        /// The host asked for.
        host: String,
        /// The handshake's error.
        source: crate::iostream::StreamError,
    },
}

type Job = Box<dyn FnOnce() + Send>;

/// The process-wide resolver pool, started on first use.
fn resolver() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..RESOLVER_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cyclone-resolver-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(guard) => guard.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start resolver thread: {e}");
            }
        }
        Mutex::new(tx)
    })
}

type Slot = Arc<Mutex<(Option<io::Result<Vec<SocketAddr>>>, Option<Waker>)>>;

/// Resolves `host:port` on the resolver pool without blocking the loop.
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let slot: Slot = Arc::new(Mutex::new((None, None)));
    let (s, name) = (slot.clone(), host.to_string());
    let job: Job = Box::new(move || {
        let result = (name.as_str(), port).to_socket_addrs().map(|a| a.collect());
        let waker = {
            let mut g = s.lock().unwrap_or_else(|p| p.into_inner());
            g.0 = Some(result);
            g.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    let sent = resolver()
        .lock()
        .map_err(|_| io::Error::other("resolver pool poisoned"))?
        .send(job);
    sent.map_err(|_| io::Error::other("resolver pool stopped"))?;
    poll_fn(|cx| {
        let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
        match g.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// RFC 8305 §4: alternate address families, starting with the resolver's
/// first choice.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(SocketAddr::is_ipv6);
    let (mut a, mut b): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(a.len() + b.len());
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

/// One non-blocking connect, completed when the socket is writable.
async fn connect_one(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => return Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let socket = Async::new(socket)?;
    loop {
        // The first wait may return at once (readiness is unknown at
        // first); the connect is done only when the kernel says so.
        socket.writable().await?;
        if let Some(e) = socket.get_ref().take_error()? {
            return Err(e);
        }
        match socket.get_ref().peer_addr() {
            Ok(_) => return Ok(socket.into_inner()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
            Err(e) => return Err(e),
        }
    }
}

type Attempt = Pin<Box<dyn Future<Output = io::Result<Socket>>>>;

/// Races the addresses: the next starts when the current one fails or
/// after [`ATTEMPT_DELAY`]; the first to connect wins.
async fn happy_eyeballs(addrs: Vec<SocketAddr>) -> Result<Socket, (SocketAddr, io::Error)> {
    let mut pending = addrs.into_iter();
    let mut running: Vec<(SocketAddr, Attempt)> = Vec::new();
    let mut last_err = None;
    let mut delay: Option<Pin<Box<crate::ioloop::Sleep>>> = None;
    let start_next = |running: &mut Vec<(SocketAddr, Attempt)>,
                      pending: &mut std::vec::IntoIter<SocketAddr>| {
        pending
            .next()
            .map(|addr| running.push((addr, Box::pin(connect_one(addr)))))
    };
    start_next(&mut running, &mut pending);
    poll_fn(|cx| {
        loop {
            let mut i = 0;
            let mut failed = false;
            while i < running.len() {
                match running[i].1.as_mut().poll(cx) {
                    Poll::Ready(Ok(s)) => return Poll::Ready(Ok(s)),
                    Poll::Ready(Err(e)) => {
                        last_err = Some((running[i].0, e));
                        drop(running.swap_remove(i));
                        failed = true;
                    }
                    Poll::Pending => i += 1,
                }
            }
            let timer_fired = delay
                .as_mut()
                .is_some_and(|d| d.as_mut().poll(cx).is_ready());
            if (failed || timer_fired || running.is_empty())
                && start_next(&mut running, &mut pending).is_some()
            {
                delay = Some(Box::pin(sleep(ATTEMPT_DELAY)));
                continue;
            }
            if running.is_empty() {
                let err = last_err.take().unwrap_or_else(|| {
                    let none = io::Error::new(io::ErrorKind::NotFound, "no addresses");
                    (SocketAddr::from(([0, 0, 0, 0], 0)), none)
                });
                return Poll::Ready(Err(err));
            }
            if delay.is_none() {
                delay = Some(Box::pin(sleep(ATTEMPT_DELAY)));
                continue;
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Connects TCP streams.
pub struct TcpClient;

impl TcpClient {
    /// Resolves `host` (off the loop thread), connects to its addresses
    /// Happy-Eyeballs style (IPv6 and IPv4 interleaved, a new attempt every
    /// 250 ms or as soon as one fails, first success wins) and returns the
    /// connected stream on [`IOLoop::current`](crate::IOLoop::current).
    /// `timeout` bounds the whole operation.
    pub async fn connect(
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<IOStream, ConnectError> {
        let attempt = async {
            let addrs = resolve(host, port)
                .await
                .map_err(|source| ConnectError::Resolve {
                    host: host.to_string(),
                    source,
                })?;
            if addrs.is_empty() {
                return Err(ConnectError::Resolve {
                    host: host.to_string(),
                    source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                });
            }
            connect_addrs_inner(interleave(addrs)).await
        };
        match crate::ioloop::timeout(timeout, attempt).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout {
                host: host.to_string(),
                port,
            }),
        }
    }
}

impl TcpClient {
    /// [`connect`](Self::connect), then a TLS handshake checking that the
    /// server's certificate is valid for `host` (see [`crate::tls`]).
    /// `timeout` bounds the connection; the handshake has its own
    /// (`config.handshake_timeout`). A certificate error says why in a
    /// [`tls::TlsError`](crate::tls::TlsError) (see
    /// [`tls::tls_error`](crate::tls::tls_error)).
    pub async fn connect_tls(
        host: &str,
        port: u16,
        config: &crate::tls::TlsClientConfig,
        timeout: Duration,
    ) -> Result<IOStream, ConnectError> {
        let stream = TcpClient::connect(host, port, timeout).await?;
        crate::tls::connect(&stream, config, host)
            .await
            .map_err(|source| ConnectError::Tls {
                host: host.to_string(),
                source,
            })?;
        Ok(stream)
    }
}

async fn connect_addrs_inner(addrs: Vec<SocketAddr>) -> Result<IOStream, ConnectError> {
    let socket = happy_eyeballs(addrs)
        .await
        .map_err(|(addr, source)| ConnectError::Connect { addr, source })?;
    let addr = socket.peer_addr().ok().and_then(|a| a.as_socket());
    IOStream::new(socket).map_err(|source| ConnectError::Connect {
        addr: addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        source,
    })
}

impl TcpClient {
    /// Connects to the first of `addrs` that answers, racing them Happy
    /// Eyeballs style in the order given (for callers that resolved the
    /// name themselves). `timeout` bounds the whole operation.
    pub async fn connect_addrs(
        addrs: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<IOStream, ConnectError> {
        let port = addrs.first().map_or(0, SocketAddr::port);
        match crate::ioloop::timeout(timeout, connect_addrs_inner(addrs)).await {
            Ok(r) => r,
            Err(_) => Err(ConnectError::Timeout {
                host: "<addresses>".into(),
                port,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    #[test]
    fn interleave_alternates_families_starting_with_the_first() {
        let a: Vec<SocketAddr> = ["[::1]:1", "[::2]:1", "127.0.0.1:1", "127.0.0.2:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let got: Vec<String> = interleave(a).iter().map(|s| s.to_string()).collect();
        assert_eq!(got, ["[::1]:1", "127.0.0.1:1", "[::2]:1", "127.0.0.2:1"]);
    }
}
