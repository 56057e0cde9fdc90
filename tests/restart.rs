//! Restart on SIGHUP, end to end: `cyclone serve` hands its listening
//! sockets to a new process of the binary on disk and drains, while
//! clients hammer it; not one request may fail. In every mode (one
//! process, `--processes`, `--threads`) and on every poller backend; and a
//! new binary that cannot start leaves the old one serving.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use common::HANG;

/// A `cyclone serve` under test: the first process, its port, and the
/// file its standard error (the log) goes to.
struct Served {
    first: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

/// A test that fails part-way leaves no server behind: SIGTERM to the
/// first process and every successor the log names (a pid already gone,
/// and reaped, is no longer in the process table).
impl Drop for Served {
    fn drop(&mut self) {
        let mut pids = self.successors();
        pids.push(self.first.id() as i32);
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if stat.contains("cyclone") {
                // SAFETY: kill(2) on a server process this test started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cyclone-restart-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Orphans (the new process, once the old one exits) become this test
/// process's children, so that it can wait for them and reap them.
fn become_subreaper() {
    // SAFETY: prctl(2) with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
}

/// Starts `program serve --port 0 EXTRA` on `poller`.
fn serve(program: &Path, poller: &str, extra: &[&str], dir: TempDir) -> Served {
    become_subreaper();
    let log = dir.0.join("stderr.log");
    let mut cmd = Command::new(program);
    cmd.args(["serve", "--port", "0", "--access-log", "off"])
        .args(["--log-level", "info", "--poller", poller])
        .args(extra)
        .env_remove("CYCLONE_POLLER")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    // Standard output (the address, the log lines) and error to one file,
    // one open file shared by every process to come: none writes to a
    // pipe nobody reads.
    let out = File::create(&log).unwrap();
    cmd.stderr(out.try_clone().unwrap()).stdout(out);
    let first = cmd.spawn().unwrap();
    let mut line = String::new();
    common::wait_until("the server to say where it listens", || {
        line = std::fs::read_to_string(&log).unwrap_or_default();
        line.contains("listening on")
    });
    let at = line.find("127.0.0.1:").expect("an address") + "127.0.0.1:".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Served {
        first,
        port: digits.parse().unwrap(),
        log,
        _dir: dir,
    }
}

impl Served {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The pids of the processes that took over so far, in order.
    fn successors(&self) -> Vec<i32> {
        self.log()
            .lines()
            .filter_map(|l| l.split("restart: process ").nth(1))
            .filter_map(|rest| rest.split(' ').next()?.parse().ok())
            .collect()
    }

    /// Sends SIGHUP to `pid` and waits until a new process took over
    /// (the `n`-th) and the old one exited; returns the new pid.
    fn restart(&self, pid: i32, n: usize) -> i32 {
        // SAFETY: kill(2) on a server process this test started.
        unsafe { libc::kill(pid, libc::SIGHUP) };
        common::wait_until("the new process to take over", || {
            self.successors().len() >= n
        });
        let new = self.successors()[n - 1];
        if !exits(pid) {
            panic!(
                "process {pid} did not exit after the handover:\n{}",
                self.log()
            );
        }
        new
    }
}

/// Waits until `pid` (a child of this process, or an orphan it adopted)
/// has exited, reaping it.
fn wait_exit(pid: i32) {
    assert!(exits(pid), "process {pid} did not exit");
}

/// Whether `pid` exits (and is reaped) within [`HANG`].
fn exits(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + HANG;
    while std::time::Instant::now() < deadline {
        let mut status = 0;
        // SAFETY: waitpid(2) on one pid, `status` a live c_int.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid || (got == -1 && !Path::new(&format!("/proc/{pid}")).exists()) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    false
}

/// Stops the server (SIGTERM) whose current process is `pid`.
fn stop(pid: i32) {
    // SAFETY: kill(2) on a server process this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    wait_exit(pid);
}

/// One `GET /hello`; `Ok(true)` when the response says the connection
/// closes. An error before any byte of the response is `Err(true)`.
fn get(c: &mut TcpStream) -> Result<bool, bool> {
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .map_err(|_| true)?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"Hello, World!") {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => return Err(got.is_empty()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    Ok(head.contains("connection: close"))
}

/// Clients hammering the server until told to stop: two on keep-alive
/// connections, two with a new connection per request.
struct Hammer {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<String>>>,
}

impl Hammer {
    fn start(port: u16) -> Hammer {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let threads = [true, true, false, false]
            .into_iter()
            .map(|keep_alive| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || client(port, keep_alive, &stop, &ok))
            })
            .collect();
        Hammer { stop, ok, threads }
    }

    fn served(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    /// Waits until `more` requests beyond `from` were answered.
    fn wait_for(&self, from: usize, more: usize) {
        common::wait_until("requests to be answered", || self.served() >= from + more);
    }

    /// Stops the clients; returns every failure they met.
    fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    }
}

fn client(port: u16, keep_alive: bool, stop: &AtomicBool, ok: &AtomicUsize) -> Vec<String> {
    let mut failures = Vec::new();
    let mut conn: Option<(TcpStream, bool)> = None; // (stream, reused)
    while !stop.load(Ordering::SeqCst) {
        let (mut c, reused) = match conn.take() {
            Some(c) => c,
            None => match TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => {
                    c.set_read_timeout(Some(HANG)).unwrap();
                    (c, false)
                }
                Err(e) => {
                    failures.push(format!("connect: {e}"));
                    continue;
                }
            },
        };
        match get(&mut c) {
            Ok(closes) => {
                ok.fetch_add(1, Ordering::SeqCst);
                if keep_alive && !closes {
                    conn = Some((c, true));
                }
            }
            // A reused idle connection the server closed before reading
            // the request: the client retries (RFC 9112 §9.3.1), as
            // browsers and balancers do. Anything else is a failure.
            Err(true) if reused => {}
            Err(nothing) => failures.push(format!(
                "{} connection: {}",
                if reused { "reused" } else { "new" },
                if nothing {
                    "closed before any response byte"
                } else {
                    "cut mid-response"
                }
            )),
        }
    }
    failures
}

/// Starts a server in `extra`'s mode on `poller`, restarts it twice
/// under load, and asserts nothing failed and each new process served.
fn hands_over_under_load(poller: &str, extra: &[&str]) {
    let s = serve(
        Path::new(env!("CARGO_BIN_EXE_cyclone")),
        poller,
        extra,
        TempDir::new("load"),
    );
    let hammer = Hammer::start(s.port);
    hammer.wait_for(0, 200);
    let mut pid = s.first.id() as i32;
    for n in 1..=2 {
        let before = hammer.served();
        pid = s.restart(pid, n);
        // Served by the new process alone now (the old one has exited).
        hammer.wait_for(before, 200);
    }
    let failures = hammer.finish();
    let log = s.log();
    stop(pid);
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}\n{log}",
        failures.len()
    );
}

per_backend! {
    fn sighup_hands_over_to_a_new_process_without_a_failed_request(lp) {
        hands_over_under_load(lp.backend().name(), &[]);
    }

    fn sighup_hands_over_a_process_pool_without_a_failed_request(lp) {
        hands_over_under_load(lp.backend().name(), &["--processes", "2"]);
    }

    fn sighup_hands_over_thread_per_core_workers_without_a_failed_request(lp) {
        hands_over_under_load(lp.backend().name(), &["--threads", "2"]);
    }
}

/// The test's own copy of the binary (a hard link, else a copy), which
/// the test can replace as an upgrade would.
fn own_binary(dir: &TempDir) -> PathBuf {
    let path = dir.0.join("cyclone");
    let real = env!("CARGO_BIN_EXE_cyclone");
    if std::fs::hard_link(real, &path).is_err() {
        std::fs::copy(real, &path).unwrap();
    }
    path
}

/// Replaces the file at `path` by a shell script (a new inode, as an
/// install does; the running binary is untouched).
fn install_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn answers(port: u16) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    c.set_read_timeout(Some(HANG)).unwrap();
    get(&mut c).is_ok()
}

#[test]
fn a_new_binary_that_fails_to_start_leaves_the_old_one_serving() {
    let dir = TempDir::new("fails");
    let program = own_binary(&dir);
    let s = serve(&program, "epoll", &[], dir);
    install_script(&program, "echo 'the new build is broken' >&2; exit 3");
    let pid = s.first.id() as i32;
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_until("the restart to fail", || {
        s.log().contains("restart failed, still serving")
    });
    let log = s.log();
    assert!(
        log.contains("exited with status 3 before it served"),
        "{log}"
    );
    assert!(log.contains("the new build is broken"), "{log}");
    assert!(answers(s.port), "the old process stopped serving");
    stop(pid);
}

#[test]
fn a_missing_binary_leaves_the_old_one_serving() {
    let dir = TempDir::new("missing");
    let program = own_binary(&dir);
    let s = serve(&program, "epoll", &[], dir);
    std::fs::remove_file(&program).unwrap();
    let pid = s.first.id() as i32;
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_until("the restart to fail", || {
        s.log().contains("restart failed, still serving")
    });
    let log = s.log();
    assert!(log.contains("cannot run the program"), "{log}");
    assert!(answers(s.port), "the old process stopped serving");
    stop(pid);
}

#[test]
fn a_restart_after_a_failed_one_runs_the_binary_now_on_disk() {
    let dir = TempDir::new("upgrade");
    let program = own_binary(&dir);
    let marker = dir.0.join("upgraded");
    let s = serve(&program, "epoll", &[], dir);
    let pid = s.first.id() as i32;
    install_script(&program, "exit 1");
    // SAFETY: kill(2) on the server this test started.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    common::wait_until("the restart to fail", || {
        s.log().contains("restart failed, still serving")
    });
    // The "new version": it leaves a mark, then runs the server.
    install_script(
        &program,
        &format!(
            "touch '{}'; exec '{}' \"$@\"",
            marker.display(),
            env!("CARGO_BIN_EXE_cyclone")
        ),
    );
    let new = s.restart(pid, 1);
    assert!(marker.exists(), "the binary on disk did not run");
    assert!(answers(s.port), "the new process does not serve");
    stop(new);
}

#[test]
fn a_restart_hands_over_the_metrics_listener_too() {
    let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mport = metrics.local_addr().unwrap().port();
    drop(metrics);
    let at = format!("127.0.0.1:{mport}");
    let s = serve(
        Path::new(env!("CARGO_BIN_EXE_cyclone")),
        "epoll",
        &["--metrics", &at],
        TempDir::new("metrics"),
    );
    let new = s.restart(s.first.id() as i32, 1);
    // Answered by the new process: the old one has exited (restart waits
    // for that), and a new process that could not have its metrics
    // socket would have failed to start (the port is taken).
    let mut c = TcpStream::connect(("127.0.0.1", mport)).unwrap();
    c.set_read_timeout(Some(HANG)).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    stop(new);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("cyclone_open_connections"), "{text}");
}
