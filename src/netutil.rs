//! Listening sockets and the accept handler.
//!
//! [`bind_sockets`] and [`bind_unix_socket`] make non-blocking,
//! close-on-exec listeners; [`add_accept_handler`] turns a listener's
//! readability into accepted connections, in bounded batches, and survives
//! running out of file descriptors without spinning the loop.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::ioloop::{IOLoop, Interest, TimeoutHandle};
use crate::sys::syscall;

/// Connections accepted per readiness event before going back to the loop:
/// enough to drain a burst in one turn (nginx-like batch sizes), few enough
/// that a connect storm cannot starve the connections already open.
pub const ACCEPTS_PER_WAKEUP: usize = 64;

/// Default listen backlog: Linux caps it at `net.core.somaxconn` (4096 on
/// current kernels), so asking for more than that is harmless.
pub const DEFAULT_BACKLOG: i32 = 1024;

/// First pause after running out of fds; doubled up to [`EMFILE_MAX_PAUSE`]
/// while the shortage lasts, so a stuck process polls for relief a few times
/// a second instead of spinning.
const EMFILE_FIRST_PAUSE: Duration = Duration::from_millis(50);
const EMFILE_MAX_PAUSE: Duration = Duration::from_secs(1);
/// At most one "out of file descriptors" log line per this period.
const EMFILE_LOG_EVERY: Duration = Duration::from_secs(5);

/// Binds TCP listeners on `port` for every address `address` resolves to
/// (`None`: all interfaces, IPv4 and IPv6). With `port` 0 every listener
/// gets the same, kernel-chosen port. Each is non-blocking, close-on-exec,
/// `SO_REUSEADDR`; with `reuse_port`, also `SO_REUSEPORT` (so several
/// processes or threads can each bind their own). IPv6 sockets are
/// IPv6-only, so the IPv4 and IPv6 listeners can share the port.
pub fn bind_sockets(
    port: u16,
    address: Option<&str>,
    backlog: i32,
    reuse_port: bool,
) -> io::Result<Vec<TcpListener>> {
    let addrs: Vec<SocketAddr> = match address {
        None | Some("") => vec![
            SocketAddr::from(([0, 0, 0, 0], port)),
            SocketAddr::from(([0u16; 8], port)),
        ],
        Some(host) => (host, port).to_socket_addrs()?.collect(),
    };
    let mut listeners: Vec<TcpListener> = Vec::new();
    let mut chosen_port = port;
    let mut last_err = None;
    let mut seen = Vec::new();
    for mut addr in addrs {
        if seen.contains(&addr) {
            continue;
        }
        seen.push(addr);
        addr.set_port(chosen_port);
        match bind_one(addr, backlog, reuse_port) {
            Ok(l) => {
                if chosen_port == 0 {
                    chosen_port = l.local_addr()?.port();
                }
                listeners.push(l);
            }
            // A host without IPv6 (or IPv4) support: keep the other family.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                ) =>
            {
                last_err = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Err(last_err.unwrap_or_else(|| io::Error::other("no address to bind")));
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    // socket2 creates sockets close-on-exec.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Binds a Unix-domain stream listener at `path` with permissions `mode`.
///
/// A stale socket file left by a previous run is removed; any other kind of
/// file at `path` is an error (it is never deleted). A path starting with a
/// NUL byte (`"\0name"`) is bound in Linux's abstract namespace (no file).
pub fn bind_unix_socket(
    path: impl AsRef<Path>,
    mode: u32,
    backlog: i32,
) -> io::Result<UnixListener> {
    let path = path.as_ref();
    let raw = path.as_os_str().as_encoded_bytes();
    let is_abstract = raw.first() == Some(&0);
    if is_abstract && !cfg!(target_os = "linux") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "abstract Unix sockets are Linux-only",
        ));
    }
    if !is_abstract {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a socket; refusing to remove it",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // socket2 reads a leading NUL as Linux's abstract namespace.
    let addr = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr)?;
    if !is_abstract {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Who connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// A TCP peer.
    Inet(SocketAddr),
    /// A Unix-domain peer (usually unnamed).
    Unix(Option<PathBuf>),
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Inet(a) => a.fmt(f),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            PeerAddr::Unix(None) => f.write_str("unix:<unnamed>"),
        }
    }
}

fn peer_addr(addr: &SockAddr) -> PeerAddr {
    match addr.as_socket() {
        Some(a) => PeerAddr::Inet(a),
        None => PeerAddr::Unix(addr.as_pathname().map(Path::to_path_buf)),
    }
}

thread_local! {
    /// Errors the next accepts on this thread fail with, in order, before
    /// any system call: see [`inject_accept_errors`].
    static INJECTED: RefCell<std::collections::VecDeque<i32>> = const { RefCell::new(std::collections::VecDeque::new()) };
    /// Accept attempts on this thread, injected failures included.
    static ACCEPT_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// Makes the next accepts of listeners on this thread fail with
/// `errnos`, in order, without calling accept(2): fault injection for
/// the failures a kernel rarely gives on demand (ECONNABORTED, EPROTO,
/// ENOBUFS, ENOMEM). Re-exported, documented, as
/// `cyclone::testing::inject_accept_errors`.
#[doc(hidden)]
pub fn inject_accept_errors(errnos: &[i32]) {
    INJECTED.with(|q| q.borrow_mut().extend(errnos));
}

/// Accept attempts made on this thread so far (injected failures
/// included): what shows that a failing accept does not spin.
#[doc(hidden)]
pub fn accept_calls() -> u64 {
    ACCEPT_CALLS.get()
}

/// One `accept4` (non-blocking, close-on-exec).
fn accept(fd: RawFd) -> io::Result<(OwnedFd, PeerAddr)> {
    ACCEPT_CALLS.set(ACCEPT_CALLS.get() + 1);
    if let Some(errno) = INJECTED.with(|q| q.borrow_mut().pop_front()) {
        return Err(io::Error::from_raw_os_error(errno));
    }
    // SAFETY: try_init hands accept4 a sockaddr buffer and its length,
    // which the kernel fills in; the flags make the new fd non-blocking and
    // close-on-exec atomically.
    let (conn, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            syscall!(accept4(
                fd,
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC
            ))
        })
    }?;
    // SAFETY: accept4 returned a new fd that nothing else owns.
    let conn = unsafe { OwnedFd::from_raw_fd(conn) };
    Ok((conn, peer_addr(&addr)))
}

/// An fd kept open only to be given up when the process runs out: closing
/// it frees exactly one slot to accept (and close) a pending connection.
fn open_reserve() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

struct AcceptState {
    lp: IOLoop,
    listener: RefCell<Option<OwnedFd>>,
    fd: RawFd,
    reserve: RefCell<Option<OwnedFd>>,
    /// Paused by the owner (e.g. `max_connections`).
    paused: Cell<bool>,
    /// Backing off after EMFILE: the pending resume.
    backoff: Cell<Option<TimeoutHandle>>,
    pause_len: Cell<Duration>,
    last_log: Cell<Option<Instant>>,
    shortages: Cell<u64>,
}

/// The handle returned by [`add_accept_handler`]: pause, resume, remove.
/// The handle owns the accept handler: dropping the last clone removes it
/// and closes the listener, like [`AcceptHandle::remove`].
#[derive(Clone)]
pub struct AcceptHandle {
    state: Rc<AcceptState>,
}

/// Accepts connections on `listener` whenever it is readable and calls
/// `callback(fd, peer)` for each: up to [`ACCEPTS_PER_WAKEUP`] per event,
/// then back to the loop. The accepted fds are non-blocking and
/// close-on-exec.
///
/// Running out of file descriptors (EMFILE/ENFILE) does not spin the loop:
/// a reserve fd is closed to accept and immediately close one pending
/// connection (the client sees a reset instead of hanging in the backlog),
/// accepting pauses with an exponential back-off, and the shortage is
/// logged at most once every few seconds.
pub fn add_accept_handler<L, F>(
    lp: &IOLoop,
    listener: L,
    mut callback: F,
) -> io::Result<AcceptHandle>
where
    L: Into<OwnedFd>,
    F: FnMut(OwnedFd, PeerAddr) + 'static,
{
    let listener: OwnedFd = listener.into();
    let fd = listener.as_raw_fd();
    crate::sys::set_nonblocking(fd)?;
    let state = Rc::new(AcceptState {
        lp: lp.clone(),
        listener: RefCell::new(Some(listener)),
        fd,
        reserve: RefCell::new(open_reserve()),
        paused: Cell::new(false),
        backoff: Cell::new(None),
        pause_len: Cell::new(EMFILE_FIRST_PAUSE),
        last_log: Cell::new(None),
        shortages: Cell::new(0),
    });
    let weak = Rc::downgrade(&state);
    lp.add_handler(fd, Interest::READ, move |_, _| {
        let Some(state) = weak.upgrade() else {
            return;
        };
        for _ in 0..ACCEPTS_PER_WAKEUP {
            // Removed (or paused) by the callback: stop touching the fd
            // (Tornado #2069: a queued accept on a closed listener).
            if state.listener.borrow().is_none() || state.paused.get() || state.backoff_active() {
                return;
            }
            match accept(state.fd) {
                Ok((conn, peer)) => {
                    state.pause_len.set(EMFILE_FIRST_PAUSE);
                    callback(conn, peer);
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return,
                    // The client gave up before we got to it; next one.
                    Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM) => {
                        crate::stats::accept_error(1);
                        continue;
                    }
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        crate::stats::accept_error(1);
                        state.out_of_fds(&e);
                        return;
                    }
                    _ => {
                        crate::stats::accept_error(1);
                        tracing::error!("accept on fd {}: {e}", state.fd);
                        state.start_backoff();
                        return;
                    }
                },
            }
        }
    })
    .map_err(io::Error::other)?;
    Ok(AcceptHandle { state })
}

impl AcceptState {
    fn backoff_active(&self) -> bool {
        let t = self.backoff.take();
        self.backoff.set(t);
        t.is_some()
    }

    fn out_of_fds(self: &Rc<Self>, e: &io::Error) {
        self.shortages.set(self.shortages.get() + 1);
        // Shed one pending connection with the reserve slot, so its client
        // gets a reset instead of waiting in the backlog for nothing.
        // The RefMut must end before the block reopens the reserve.
        let taken = self.reserve.borrow_mut().take();
        if let Some(reserve) = taken {
            drop(reserve);
            if let Ok((conn, _)) = accept(self.fd) {
                drop(conn);
            }
            *self.reserve.borrow_mut() = open_reserve();
        }
        let now = Instant::now();
        let quiet = self
            .last_log
            .get()
            .is_some_and(|t| now - t < EMFILE_LOG_EVERY);
        if !quiet {
            self.last_log.set(Some(now));
            tracing::error!(
                "accept on fd {}: {e}; pausing accepts ({} shortages so far)",
                self.fd,
                self.shortages.get()
            );
        }
        self.start_backoff();
    }

    fn start_backoff(self: &Rc<Self>) {
        if self.backoff_active() {
            return;
        }
        let pause = self.pause_len.get();
        self.pause_len.set((pause * 2).min(EMFILE_MAX_PAUSE));
        let _ = self.lp.update_handler(self.fd, Interest::NONE);
        let weak = Rc::downgrade(self);
        let t = self.lp.call_later(pause, move || {
            if let Some(state) = weak.upgrade() {
                state.backoff.set(None);
                state.sync_interest();
            }
        });
        self.backoff.set(Some(t));
    }

    fn sync_interest(&self) {
        if self.listener.borrow().is_none() {
            return;
        }
        let on = !self.paused.get() && !self.backoff_active();
        let _ = self
            .lp
            .update_handler(self.fd, if on { Interest::READ } else { Interest::NONE });
    }
}

impl Drop for AcceptState {
    fn drop(&mut self) {
        // The last handle is gone: take the fd out of the poller before the
        // listener field (dropped after this) closes it.
        if let Some(t) = self.backoff.take() {
            self.lp.remove_timeout(t);
        }
        if self.listener.get_mut().is_some() {
            self.lp.remove_handler(self.fd);
        }
    }
}

impl AcceptHandle {
    /// Stops accepting (connections wait in the kernel's backlog).
    pub fn pause(&self) {
        self.state.paused.set(true);
        self.state.sync_interest();
    }

    /// Accepts again after [`AcceptHandle::pause`].
    pub fn resume(&self) {
        self.state.paused.set(false);
        self.state.sync_interest();
    }

    /// Whether accepting is paused by [`AcceptHandle::pause`].
    pub fn is_paused(&self) -> bool {
        self.state.paused.get()
    }

    /// How many times accept ran out of file descriptors.
    pub fn fd_shortages(&self) -> u64 {
        self.state.shortages.get()
    }

    /// The listener's fd (`-1`-free until removed).
    pub fn fd(&self) -> RawFd {
        self.state.fd
    }

    /// Removes the accept handler and closes the listener. Idempotent, and
    /// safe from inside the callback: no accept is made on the fd after it.
    pub fn remove(&self) {
        let s = &self.state;
        if let Some(t) = s.backoff.take() {
            s.lp.remove_timeout(t);
        }
        let listener = s.listener.borrow_mut().take();
        if listener.is_some() {
            s.lp.remove_handler(s.fd);
        }
        drop(listener); // closed after it left the poller
    }
}
