//! Socket activation end to end: `cyclone serve` started the way systemd
//! starts a service behind a `.socket` unit (the listening socket as
//! descriptor 3, `LISTEN_FDS=1`, `LISTEN_PID` its own pid, set by a shell
//! that then `exec`s it) serves on that socket; a descriptor that is not
//! a listening TCP socket is refused with exit status 2;
//! `LISTEN_PID` of another process is ignored.

mod common;

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// `cyclone serve ARGS` run by `sh` with `fd` as descriptor 3 and the
/// systemd variables set (`pid` "self": the process's own pid).
fn activated(fd: RawFd, pid: &str, args: &[&str]) -> Command {
    let pid = if pid == "self" { "$$" } else { pid };
    let script = format!("export LISTEN_PID={pid} LISTEN_FDS=1; exec \"$0\" serve \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script, env!("CARGO_BIN_EXE_cyclone")])
        .args(args)
        .env_remove("CYCLONE_POLLER")
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec, only dup2/fcntl (async-signal-safe)
    // on descriptors this process owns.
    unsafe {
        cmd.pre_exec(move || {
            let placed = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) // keep it across exec
            } else {
                libc::dup2(fd, 3) // the copy is not close-on-exec
            };
            if placed == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

fn terminate(mut child: Child) {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
}

/// Starts `cyclone serve EXTRA` on a passed socket; asserts it says it
/// listens there (`--port 0`: were the passed socket ignored, it would
/// print another port) and that GET /hello is answered on it.
fn serves_on_a_passed_socket(extra: &[&str]) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let args = [&["--port", "0", "--log-level", "warn"][..], extra].concat();
    let (child, line) =
        common::spawn_with_first_line(&mut activated(listener.as_raw_fd(), "self", &args));
    drop(listener); // the server holds its own copy
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}/")),
        "{line:?}"
    );
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(common::HANG)).unwrap();
    c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let resp = common::http::read_response(&mut BufReader::new(c), false);
    terminate(child);
    assert_eq!(
        (resp.status, resp.text()),
        (200, "Hello, World!".to_string())
    );
}

#[test]
fn serve_answers_on_the_socket_systemd_passed() {
    serves_on_a_passed_socket(&[]);
}

#[test]
fn forked_workers_answer_on_the_socket_systemd_passed() {
    serves_on_a_passed_socket(&["--processes", "2"]);
}

#[test]
fn another_processs_listen_pid_is_ignored() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (child, line) = common::spawn_with_first_line(&mut activated(
        listener.as_raw_fd(),
        "1",
        &["--port", "0", "--log-level", "warn"],
    ));
    terminate(child);
    assert!(line.contains("listening on http://127.0.0.1:"), "{line:?}");
    assert!(!line.contains(&format!(":{port}/")), "{line:?}");
}

#[test]
fn a_passed_descriptor_that_is_not_a_listening_socket_exits_2_naming_it() {
    let (connected, _peer) = common::socketpair();
    let out = activated(connected.as_raw_fd(), "self", &["--port", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("descriptor 3, passed by LISTEN_FDS"), "{err}");
}

#[test]
fn serve_with_threads_answers_on_the_socket_systemd_passed() {
    // Every thread accepts on the one passed socket (a shared queue, as
    // with --processes), rather than binding sockets of its own.
    serves_on_a_passed_socket(&["--threads", "2"]);
}
