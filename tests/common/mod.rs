//! Shared test helpers: run a test body on every poller backend, bound a
//! loop's run time, capture logs; [`http`], a small HTTP/1.1 client;
//! [`scripted`], servers that send exactly scripted bytes, and a proxy;
//! [`demo_server`], the demo HTTP/1.1 server and raw exchanges with it;
//! [`stream`], helpers for the IOStream tests; [`ws`], a raw WebSocket
//! client and an application served for in-loop WebSocket tests.
#![allow(dead_code)]

pub mod demo_server;
pub mod http;
pub mod scripted;
pub mod stream;
pub mod tls;
pub mod web;
pub mod ws;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cyclone::{Backend, IOLoop};

/// Generates one `#[test]` per backend (modules `epoll`, `poll`, `select`,
/// `uring`) for each `fn name(lp) { body }`, with `lp` a fresh loop on that
/// backend. Where the kernel or sandbox refuses io_uring, the `uring` tests
/// say so on stderr and pass without running: the platform lacks the mode
/// (unless [`REQUIRE_ENV`] names it: see [`backend_runs_here`]).
#[macro_export]
macro_rules! per_backend {
    ($($(#[$meta:meta])* fn $name:ident($lp:ident) $body:block)*) => {
        $crate::per_backend!(@mod epoll, Epoll; $($(#[$meta])* fn $name($lp) $body)*);
        $crate::per_backend!(@mod poll, Poll; $($(#[$meta])* fn $name($lp) $body)*);
        $crate::per_backend!(@mod select, Select; $($(#[$meta])* fn $name($lp) $body)*);
        $crate::per_backend!(@mod uring, Uring; $($(#[$meta])* fn $name($lp) $body)*);
    };
    (@mod $m:ident, $backend:ident; $($(#[$meta:meta])* fn $name:ident($lp:ident) $body:block)*) => {
        mod $m {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    if !$crate::common::backend_runs_here(cyclone::Backend::$backend) {
                        return;
                    }
                    let $lp = cyclone::IOLoop::builder()
                        .backend(cyclone::Backend::$backend)
                        .build()
                        .expect("loop");
                    $body
                    let _ = $lp.close();
                }
            )*
        }
    };
}

/// The environment variable listing the backends a run must not skip,
/// comma-separated (`epoll,poll,select,uring`); `.ci/run` sets it, so a
/// machine where a backend fails to start fails CI instead of skipping it.
pub const REQUIRE_ENV: &str = "CYCLONE_REQUIRE_BACKENDS";

/// Whether a test for `backend` runs here: true where it is available.
/// Otherwise the skip is said on stderr, or, where [`REQUIRE_ENV`] names
/// the backend, the test fails. Every skip site goes through here.
pub fn backend_runs_here(backend: Backend) -> bool {
    let available = Backend::available();
    if available.contains(&backend) {
        return true;
    }
    let required = std::env::var(REQUIRE_ENV).ok();
    if let Err(why) = check_required(available, required.as_deref()) {
        panic!("{why}");
    }
    // Straight to the process's stderr: libtest captures `eprintln!` and
    // shows it only for failures, and a skip must be seen on a green run.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: the {backend} backend is not available here (set {REQUIRE_ENV} to make this a failure)"
    );
    false
}

/// Checks `required` (the value of [`REQUIRE_ENV`], if set) against the
/// `available` backends: an error names a required backend that is not
/// available, or a name that is no backend at all.
pub fn check_required(available: &[Backend], required: Option<&str>) -> Result<(), String> {
    let Some(list) = required else {
        return Ok(());
    };
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        // Parsing checks this machine's backends too; only the name matters here.
        let backend = match name.parse::<Backend>() {
            Ok(b) | Err(cyclone::Error::BackendUnavailable(b)) => b,
            Err(e) => return Err(format!("{REQUIRE_ENV}={list}: {e}")),
        };
        if !available.contains(&backend) {
            return Err(format!(
                "the {backend} backend is required ({REQUIRE_ENV}={list}) but is not available here"
            ));
        }
    }
    Ok(())
}

/// The longest any single test lets a loop run before calling it hung.
pub const HANG: Duration = Duration::from_secs(10);

/// Runs `lp` until it stops, failing the test if it runs longer than
/// [`HANG`] (a hang becomes a failure, not a stuck CI job).
pub fn start_bounded(lp: &IOLoop) {
    let hung = std::rc::Rc::new(std::cell::Cell::new(false));
    let (h, l) = (hung.clone(), lp.clone());
    let guard = lp.call_later(HANG, move || {
        h.set(true);
        l.stop();
    });
    lp.start().expect("start");
    lp.remove_timeout(guard);
    assert!(!hung.get(), "loop did not stop within {HANG:?}");
}

/// Waits, polling every millisecond, until `cond` holds; fails the test
/// naming `what` if it does not within [`HANG`]. For a test thread (a
/// blocking client); on the loop use [`until`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + HANG;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {HANG:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// [`wait_until`] on the loop: polls `cond` every millisecond without
/// blocking the loop.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + HANG;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {HANG:?} waiting for {what}"
        );
        cyclone::sleep(Duration::from_millis(1)).await;
    }
}

/// This machine's TCP sockets on local `port` (a test server's), from
/// `/proc/net/tcp{,6}`: each one's state (`0A` listening, `01`
/// established, ...) and receive queue (bytes not yet read; for a listener,
/// connections not yet accepted).
fn tcp_sockets(port: u16) -> Vec<(String, usize)> {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let (local, state, queues) = (f.get(1)?, f.get(3)?, f.get(4)?);
                    if !local.ends_with(&port) {
                        return None;
                    }
                    let rx = usize::from_str_radix(queues.split(':').nth(1)?, 16).ok()?;
                    Some((state.to_string(), rx))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The state of a listening socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Bytes that arrived at the server's connections on local `port` that
/// the server has not read yet. 0 once it has taken everything it was sent
/// (or closed the connections).
pub fn unread_by_server(port: u16) -> usize {
    tcp_sockets(port)
        .into_iter()
        .filter(|(state, _)| state != LISTEN)
        .map(|(_, rx)| rx)
        .sum()
}

/// Connections to the listener on local `port` whose handshake is done and
/// that wait in its accept queue.
pub fn waiting_to_be_accepted(port: u16) -> usize {
    tcp_sockets(port)
        .into_iter()
        .filter(|(state, _)| state == LISTEN)
        .map(|(_, rx)| rx)
        .sum()
}

/// This thread's id, for [`thread_is_asleep`] from another thread.
pub fn thread_id() -> libc::pid_t {
    // SAFETY: gettid(2) has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process is blocked in a system call (state
/// `S` in `/proc/self/task/TID/stat`): for a loop thread with nothing to
/// do, in its poll.
pub fn thread_is_asleep(tid: libc::pid_t) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // "tid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('S'))
}

/// Runs `lp` for `d`, then stops it.
pub fn run_for(lp: &IOLoop, d: Duration) {
    let l = lp.clone();
    lp.call_later(d, move || l.stop());
    lp.start().expect("start");
}

#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with `tracing` output captured (this thread only) and returns
/// what was logged.
///
/// `tracing` caches per call site whether anyone listens. A call site first
/// reached by another test's thread while this one installs its subscriber
/// could be cached as "nobody" and this test would capture nothing; so a
/// process-wide subscriber that listens to nothing but asks every time is
/// installed first, and the cache is rebuilt under this thread's capture.
pub fn capture_logs(f: impl FnOnce()) -> String {
    static ASK_EVERY_TIME: std::sync::Once = std::sync::Once::new();
    ASK_EVERY_TIME.call_once(|| {
        let _ = tracing::subscriber::set_global_default(AskEveryTime);
    });
    let cap = LogCapture::default();
    let writer = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        tracing::callsite::rebuild_interest_cache();
        f()
    });
    cap.text()
}

/// A subscriber that records nothing and keeps every call site's interest
/// at "sometimes", so that the thread-local capture of [`capture_logs`] is
/// always asked.
struct AskEveryTime;

impl tracing::Subscriber for AskEveryTime {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Two connected, non-blocking Unix stream sockets.
pub fn socketpair() -> (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
) {
    let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// Waits on the loop (without blocking it) until a helper thread, e.g. a
/// blocking test client, has finished.
pub async fn thread_finished<T>(h: &std::thread::JoinHandle<T>) {
    while !h.is_finished() {
        cyclone::sleep(Duration::from_millis(1)).await;
    }
}

/// Spawns `cmd` with its stdout piped and returns the child with the
/// first line it printed (a server says where it listens).
pub fn spawn_with_first_line(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    (child, line)
}
