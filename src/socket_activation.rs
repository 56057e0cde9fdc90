//! Socket activation: listening sockets handed to the process by systemd
//! (a `.socket` unit owns the port) or by anything that speaks its
//! protocol: the sockets are descriptors 3, 4, … inherited across
//! `exec`, `LISTEN_FDS` says how many, and `LISTEN_PID` names the process
//! they are for, so that a child that inherits the environment (a forked
//! worker, a command the server runs) does not take them for its own.
//!
//! ```no_run
//! use cyclone::http1::{HttpServer, Response};
//!
//! let server = HttpServer::new(|_req| async { Response::text("hello") });
//! let passed = cyclone::socket_activation::listeners()?;
//! if passed.is_empty() {
//!     server.listen(8888, Some("127.0.0.1"))?;
//! } else {
//!     server.add_sockets(passed)?;
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! `docs/deploy/` has a `cyclone.socket` and `cyclone.service` for
//! `cyclone serve`, which adopts passed sockets by itself.

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::syscall;

/// The first passed descriptor (after stdin, stdout, stderr), fixed by
/// the protocol (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// More than any unit passes: a `LISTEN_FDS` beyond it is a corrupt
/// environment, not sockets to adopt.
const MAX_FDS: usize = 1024;

/// Set once the passed descriptors have an owner: adopting them twice
/// would close each one twice.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The TCP listening sockets passed to this process, in order, ready to
/// serve (non-blocking, close-on-exec); empty when none were passed
/// (`LISTEN_PID` missing or another process's, `LISTEN_FDS` missing or
/// 0), and on every call after the first that found some.
///
/// Fails, naming the descriptor, when one that `LISTEN_FDS` counts is not
/// an open TCP socket that listens: a unit that passes a Unix or UDP
/// socket, or a variable set by mistake, is an error to fix, not sockets
/// to ignore.
pub fn listeners() -> io::Result<Vec<TcpListener>> {
    Ok(named_listeners()?.into_iter().map(|(_, l)| l).collect())
}

/// [`listeners`] with their names: systemd's `FileDescriptorName=` (or a
/// restart's old process) names them in `LISTEN_FDNAMES`, colon-separated,
/// so that a server can tell, say, its public sockets from its metrics
/// one. Unnamed sockets are `"unknown"`, as systemd calls them.
pub fn named_listeners() -> io::Result<Vec<(String, TcpListener)>> {
    let Some(count) = passed_count()? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    let names: Vec<String> = match std::env::var("LISTEN_FDNAMES") {
        Ok(v) if v.split(':').count() == count => v.split(':').map(str::to_string).collect(),
        _ => vec!["unknown".to_string(); count],
    };
    let last = FIRST_FD + count as RawFd;
    names
        .into_iter()
        .zip(FIRST_FD..last)
        .map(|(name, fd)| Ok((name, adopt(fd)?)))
        .collect()
}

/// How many descriptors were passed to this process, if any.
fn passed_count() -> io::Result<Option<usize>> {
    let (Ok(pid), Ok(fds)) = (std::env::var("LISTEN_PID"), std::env::var("LISTEN_FDS")) else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    match fds.trim().parse::<usize>() {
        Ok(0) => Ok(None),
        Ok(n) if n <= MAX_FDS => Ok(Some(n)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("LISTEN_FDS={fds:?} is not a count of passed sockets"),
        )),
    }
}

/// Takes `fd` as a listening TCP socket, after checking that it is one.
fn adopt(fd: RawFd) -> io::Result<TcpListener> {
    let refuse = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd}, passed by LISTEN_FDS, {what}"),
        )
    };
    let int_opt = |level, name| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are live locals of the sizes given.
        syscall!(getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len
        ))
        .map_err(|e| refuse(&format!("is not an open socket ({e})")))?;
        Ok(value)
    };
    if int_opt(libc::SOL_SOCKET, libc::SO_TYPE)? != libc::SOCK_STREAM {
        return Err(refuse("is not a stream socket"));
    }
    let domain = int_opt(libc::SOL_SOCKET, libc::SO_DOMAIN)?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return Err(refuse("is not a TCP socket (only TCP is adopted)"));
    }
    if int_opt(libc::SOL_SOCKET, libc::SO_ACCEPTCONN)? != 1 {
        return Err(refuse("is not listening"));
    }
    // SAFETY: FD_CLOEXEC on a descriptor checked open above.
    syscall!(fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC))?;
    // SAFETY: the descriptor is an open listening TCP socket (checked
    // above) that the protocol hands to this process, and `TAKEN` makes
    // this its only owner.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    listener.set_nonblocking(true)?;
    Ok(listener)
}
