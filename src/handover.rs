//! Restarts and upgrades without downtime: a server hands its listening
//! sockets to a new process of its program (the binary on disk, perhaps a
//! newer one), waits until that process reports that it serves, and only
//! then stops accepting and drains its own connections. The sockets are
//! never closed, so the kernel keeps queueing connections throughout and
//! none is refused.
//!
//! The sockets travel the way systemd passes them
//! ([`crate::socket_activation`]): descriptors 3, 4, … announced by
//! `LISTEN_FDS` and `LISTEN_PID`. The new process reports through one more
//! inherited descriptor, a pipe named by `CYCLONE_READY_FD`: a byte per
//! serving process ([`Notifier::ready`]). If the new process dies first,
//! the pipe's end of file says so at once; if it hangs, the wait times out.
//! Either way the old process kills it and goes on serving.
//!
//! ```no_run
//! use std::time::Duration;
//! use cyclone::handover;
//!
//! # fn listening_fds() -> Vec<(std::os::fd::RawFd, &'static str)> { Vec::new() }
//! // On SIGHUP, in the old process:
//! let program = std::env::current_exe()?;
//! let args: Vec<_> = std::env::args_os().skip(1).collect();
//! let mut successor = handover::spawn(&program, &args, &listening_fds())?;
//! match successor.wait_ready(1, Duration::from_secs(30)) {
//!     Ok(()) => { /* stop accepting, drain, exit */ }
//!     Err(e) => {
//!         eprintln!("restart failed, still serving: {e}");
//!         successor.abandon();
//!     }
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! In the new process, once it serves: `handover::notifier().ready(pid)`,
//! which also tells systemd (`NOTIFY_SOCKET`, for `Type=notify` units).

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::sys::syscall;

/// The variable naming the descriptor a new process reports readiness on.
pub const READY_FD_ENV: &str = "CYCLONE_READY_FD";

/// The first passed descriptor, as in [`crate::socket_activation`].
const FIRST_FD: RawFd = 3;

/// A report byte: one serving process.
const READY: u8 = b'R';
/// A report byte: `execve` failed; the errno follows (4 bytes, native order).
const EXEC_FAILED: u8 = b'E';

/// Variables the old process may have been given that must not reach the
/// new one: they are set afresh for it.
const REPLACED: [&str; 4] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", READY_FD_ENV];

/// Room for `LISTEN_PID=` and any pid (`pid_t` has at most 10 digits).
const PID_ROOM: usize = 12;

/// How long [`Successor::abandon`] lets the new process stop on SIGTERM
/// before killing it: a process that has not served has nothing to drain.
const ABANDON_GRACE: Duration = Duration::from_secs(2);

/// A new process of the program, holding the listening sockets, not yet
/// known to serve. Dropping it leaves the process running (it is the
/// server now, or [`abandon`](Successor::abandon) was meant).
#[derive(Debug)]
pub struct Successor {
    pid: libc::pid_t,
    ready: OwnedFd,
    reports: usize,
    /// Reaped already: its pid may be another process's now.
    reaped: bool,
}

/// Why the new process did not take over; the old one keeps serving.
#[derive(Debug)]
pub enum HandoverError {
    /// The program could not be run at all (`execve` failed).
    Exec(io::Error),
    /// It exited (or was killed) before it reported that it serves;
    /// its own error is on the standard error the two share.
    Exited(String),
    /// It did not report in time.
    TimedOut {
        /// Reports that came.
        got: usize,
        /// Reports awaited.
        awaited: usize,
    },
    /// Reading its reports failed.
    Io(io::Error),
}

impl fmt::Display for HandoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandoverError::Exec(e) => write!(f, "cannot run the program: {e}"),
            HandoverError::Exited(how) => write!(f, "the new process {how} before it served"),
            HandoverError::TimedOut { got, awaited } => write!(
                f,
                "the new process did not report that it serves in time ({got} of {awaited} reports)"
            ),
            HandoverError::Io(e) => write!(f, "reading the new process's reports: {e}"),
        }
    }
}

impl std::error::Error for HandoverError {}

/// Starts `program` with `args` (without the program name), this
/// process's environment and working directory, and the listening
/// sockets `listeners` as its descriptors 3, 4, … announced by
/// `LISTEN_FDS`/`LISTEN_PID`, with their names in `LISTEN_FDNAMES` (see
/// [`crate::socket_activation::named_listeners`]). The descriptors stay
/// open here: both processes accept on them until this one stops.
pub fn spawn(
    program: &Path,
    args: &[OsString],
    listeners: &[(RawFd, &str)],
) -> io::Result<Successor> {
    let n = listeners.len();
    let names: Vec<&str> = listeners.iter().map(|(_, name)| *name).collect();
    if names.iter().any(|name| name.contains([':', '\0'])) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a socket name with ':' in it",
        ));
    }
    let listeners: Vec<RawFd> = listeners.iter().map(|(fd, _)| *fd).collect();
    let cstring = |s: &OsStr| {
        CString::new(s.as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in an argument"))
    };
    let path = cstring(program.as_os_str())?;
    let mut argv = vec![path.clone()];
    for a in args {
        argv.push(cstring(a)?);
    }
    let mut env: Vec<CString> = Vec::new();
    for (key, value) in std::env::vars_os() {
        if REPLACED.iter().any(|r| key == OsStr::new(r)) {
            continue;
        }
        let mut pair = key.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(value.as_bytes());
        if let Ok(c) = CString::new(pair) {
            env.push(c);
        }
    }
    env.push(CString::new(format!("LISTEN_FDS={n}")).expect("no NUL"));
    env.push(CString::new(format!("LISTEN_FDNAMES={}", names.join(":"))).expect("no NUL"));
    env.push(CString::new(format!("{READY_FD_ENV}={}", FIRST_FD + n as RawFd)).expect("no NUL"));
    // The child writes its own pid here between fork and exec, where it
    // must not allocate: the room is made now.
    let mut pid_var = b"LISTEN_PID=".to_vec();
    let digits_at = pid_var.len();
    pid_var.resize(digits_at + PID_ROOM, 0);
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // One pointer for both the child's write and execve's read.
    let pid_ptr: *mut u8 = pid_var.as_mut_ptr();
    let mut env_ptrs: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_ptrs.push(pid_ptr.cast_const().cast());
    env_ptrs.push(std::ptr::null());

    let mut ends = [0 as RawFd; 2];
    // SAFETY: `ends` has room for the two descriptors pipe2 returns.
    syscall!(pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC))?;
    // SAFETY: pipe2 just returned these two open descriptors; each has
    // one owner from here on.
    let (ready, report) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let mut sources: Vec<RawFd> = listeners;
    sources.push(report.as_raw_fd());
    let mut moved = vec![-1 as RawFd; sources.len()];

    // SAFETY: between fork and exec the child calls only async-signal-safe
    // functions (fcntl, dup2, sigprocmask, sigaction, getpid, execve,
    // write, _exit) on memory prepared above; nothing allocates or locks.
    let pid = syscall!(fork())?;
    if pid == 0 {
        // SAFETY: as above; every pointer is into buffers that outlive
        // the call (the child's copy of this frame).
        unsafe {
            child(
                &sources,
                &mut moved,
                // SAFETY: `digits_at + PID_ROOM` is the buffer's length.
                pid_ptr.add(digits_at),
                path.as_ptr(),
                &argv_ptrs,
                &env_ptrs,
                report.as_raw_fd(),
            )
        }
    }
    drop(report);
    Ok(Successor {
        pid,
        ready,
        reports: 0,
        reaped: false,
    })
}

/// The child's side of [`spawn`]: descriptors into place, the pid into
/// `LISTEN_PID`, a clean signal state, then `execve`. Never returns.
///
/// # Safety
/// Called only in the child of `fork`, with the pointers of [`spawn`].
unsafe fn child(
    sources: &[RawFd],
    moved: &mut [RawFd],
    pid_digits: *mut u8,
    path: *const libc::c_char,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    let fail = |errno: libc::c_int| -> ! {
        let mut msg = [EXEC_FAILED, 0, 0, 0, 0];
        msg[1..].copy_from_slice(&errno.to_ne_bytes());
        // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is live.
        unsafe {
            libc::write(report, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // First above every target, so that placing one cannot overwrite
    // another still to be placed.
    let above = FIRST_FD + sources.len() as RawFd;
    for (slot, &fd) in moved.iter_mut().zip(sources) {
        // SAFETY: fcntl on a descriptor the parent holds open.
        *slot = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, above) };
        if *slot < 0 {
            fail(errno());
        }
    }
    for (i, &fd) in moved.iter().enumerate() {
        // dup2 leaves the target without FD_CLOEXEC: it crosses exec.
        // SAFETY: both descriptors are valid numbers; the source is open.
        if unsafe { libc::dup2(fd, FIRST_FD + i as RawFd) } < 0 {
            fail(errno());
        }
    }
    // SAFETY: getpid cannot fail.
    let mut pid = unsafe { libc::getpid() } as u32;
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (pid % 10) as u8;
        len += 1;
        pid /= 10;
        if pid == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: at most 10 digits into the PID_ROOM (12) bytes after
        // `LISTEN_PID=`; the rest stay NUL, ending the string.
        unsafe { *pid_digits.add(i) = digits[len - 1 - i] };
    }
    // The old process's blocked signals and its handlers (a loop's
    // signal handling) are not the new one's: start from the defaults.
    // SAFETY: sigset_t and sigaction are plain data, zeroed = empty.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
            libc::sigaction(signal, &dfl, std::ptr::null_mut());
        }
        libc::execve(path, argv.as_ptr(), envp.as_ptr());
    }
    fail(errno())
}

impl Successor {
    /// The new process's id.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Waits (blocking) until `reports` processes of the new program
    /// report that they serve (one, or one per forked worker), the
    /// program exits first, or `timeout` passes.
    pub fn wait_ready(&mut self, reports: usize, timeout: Duration) -> Result<(), HandoverError> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 64];
        while self.reports < reports {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HandoverError::TimedOut {
                    got: self.reports,
                    awaited: reports,
                });
            }
            let mut pfd = libc::pollfd {
                fd: self.ready.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = crate::sys::timeout_ms_round_up(Some(left));
            // SAFETY: one live pollfd.
            match syscall!(poll(&mut pfd, 1, ms)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HandoverError::Io(e)),
            }
            // SAFETY: `buf` is live and as long as the length given.
            let got = match syscall!(read(
                self.ready.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len()
            )) {
                Ok(n) => n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HandoverError::Io(e)),
            };
            if got == 0 {
                return Err(HandoverError::Exited(self.exit_status()));
            }
            if buf[0] == EXEC_FAILED && got >= 5 {
                let errno = i32::from_ne_bytes([buf[1], buf[2], buf[3], buf[4]]);
                self.exit_status(); // reap it
                return Err(HandoverError::Exec(io::Error::from_raw_os_error(errno)));
            }
            self.reports += buf[..got].iter().filter(|&&b| b == READY).count();
        }
        Ok(())
    }

    /// How the process ended, once it has (reaping it).
    fn exit_status(&mut self) -> String {
        let mut status = 0;
        // SAFETY: waitpid on our own child, `status` a live c_int.
        let reaped = unsafe { libc::waitpid(self.pid, &mut status, 0) };
        self.reaped = true;
        if reaped != self.pid {
            // Reaped elsewhere (a supervisor's waitpid(-1)).
            return "exited".into();
        }
        if libc::WIFSIGNALED(status) {
            format!("was killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exited with status {}", libc::WEXITSTATUS(status))
        }
    }

    /// Stops the new process (SIGTERM, then SIGKILL after a short grace)
    /// and reaps it: the restart is called off.
    pub fn abandon(self) {
        if self.reaped {
            return; // it ended by itself; its pid is no longer ours to signal
        }
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + ABANDON_GRACE;
        loop {
            let mut status = 0;
            // SAFETY: waitpid on our own child, `status` a live c_int.
            let reaped = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if reaped != 0 {
                return; // reaped, or no longer ours to reap
            }
            if Instant::now() >= deadline {
                // SAFETY: kill(2) and waitpid(2) on our own child.
                unsafe {
                    libc::kill(self.pid, libc::SIGKILL);
                    libc::waitpid(self.pid, &mut status, 0);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// How a process started by [`spawn`] (or by systemd) says it serves.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    ready_fd: Option<RawFd>,
    notify_socket: Option<OsString>,
}

/// This process's [`Notifier`]: the report pipe if an old process started
/// it (the descriptor `CYCLONE_READY_FD` names, for the process
/// `LISTEN_PID` names), and systemd's `NOTIFY_SOCKET` if set. Call it
/// once, before forking workers (they report through the same pipe).
pub fn notifier() -> Notifier {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        == Some(std::process::id());
    let ready_fd = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<RawFd>().ok())
        .filter(|&fd| ours && fd >= FIRST_FD)
        // The pipe must not leak into programs the server runs.
        // SAFETY: fcntl on a number; a closed one only fails.
        .filter(|&fd| syscall!(fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC)).is_ok());
    Notifier {
        ready_fd,
        notify_socket: std::env::var_os("NOTIFY_SOCKET"),
    }
}

impl Notifier {
    /// Whether an old process is waiting for this one's report.
    pub fn is_handover(&self) -> bool {
        self.ready_fd.is_some()
    }

    /// Reports that this process serves: a byte to the old process, if
    /// one waits, and `READY=1` with `MAINPID=main_pid` to systemd, if it
    /// asked (`main_pid`: the process systemd should watch, the
    /// supervisor of forked workers). Errors are logged, not returned:
    /// a report that cannot be made must not stop a server that runs.
    pub fn ready(&self, main_pid: u32) {
        // systemd first: once the old process has its byte it may exit, and
        // systemd must know the new main process by then, or it would take
        // the old one's exit for the service's.
        if let Some(path) = &self.notify_socket
            && let Err(e) = notify_systemd(path, &format!("READY=1\nMAINPID={main_pid}"))
        {
            tracing::warn!("cannot notify systemd at {path:?}: {e}");
        }
        if let Some(fd) = self.ready_fd {
            // SAFETY: one byte from a live buffer to the inherited pipe.
            match syscall!(write(fd, [READY].as_ptr().cast(), 1)) {
                // The old process is gone: a worker restarted long after
                // the handover has no one to tell.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) => tracing::warn!("cannot report readiness to the old process: {e}"),
                Ok(_) => {}
            }
        }
    }
}

/// Sends `message` to systemd's notification socket: a datagram to a
/// path, or to an abstract name when the path starts with `@`.
fn notify_systemd(path: &OsStr, message: &str) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let bytes = path.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(Path::new(path))?,
    };
    UnixDatagram::unbound()?.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}
