//! `cyclone::handover` on its own: what the new process is given (the
//! sockets as descriptors 3 and on, `LISTEN_PID` its own pid, the report
//! pipe after them), and each way a handover ends: reported, exited
//! first, never reported; and the `READY=1` systemd is sent.

mod common;

use std::ffi::OsString;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use cyclone::handover::{self, HandoverError};

fn sh(script: &str) -> Vec<OsString> {
    vec!["-c".into(), script.into()]
}

#[test]
fn the_new_process_gets_the_sockets_its_own_pid_and_the_report_pipe() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    // Reports only if everything is where the protocol puts it.
    let script = r#"test "$LISTEN_PID" = "$$" && test "$LISTEN_FDS" = 2 &&
        test "$CYCLONE_READY_FD" = 5 && test "$LISTEN_FDNAMES" = http:metrics &&
        readlink /proc/$$/fd/3 | grep -q socket && readlink /proc/$$/fd/4 | grep -q socket &&
        printf R >&5"#;
    let fds = [(a.as_raw_fd(), "http"), (b.as_raw_fd(), "metrics")];
    let mut s = handover::spawn(Path::new("/bin/sh"), &sh(script), &fds).unwrap();
    assert!(s.wait_ready(1, common::HANG).is_ok());
}

#[test]
fn a_new_process_that_exits_first_says_how() {
    let mut s = handover::spawn(Path::new("/bin/sh"), &sh("exit 4"), &[]).unwrap();
    match s.wait_ready(1, common::HANG) {
        Err(HandoverError::Exited(how)) => assert_eq!(how, "exited with status 4"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_program_that_cannot_run_is_an_exec_error() {
    let mut s = handover::spawn(Path::new("/nonexistent/cyclone"), &[], &[]).unwrap();
    match s.wait_ready(1, common::HANG) {
        Err(HandoverError::Exec(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_process_that_never_reports_times_out_and_is_stopped() {
    let mut s = handover::spawn(Path::new("/bin/sleep"), &["30".into()], &[]).unwrap();
    let pid = s.pid() as i32;
    match s.wait_ready(1, Duration::from_millis(200)) {
        Err(HandoverError::TimedOut { got: 0, awaited: 1 }) => {}
        other => panic!("{other:?}"),
    }
    s.abandon();
    // Reaped: no such child any more.
    // SAFETY: waitpid(2) on one pid.
    let got = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    assert_eq!(got, -1, "process {pid} is still there");
}

#[test]
fn each_report_counts_once_until_as_many_as_awaited() {
    // Two workers' reports, in one write or two.
    let mut s = handover::spawn(
        Path::new("/bin/sh"),
        &sh("printf R >&3; printf R >&3; sleep 30"),
        &[],
    )
    .unwrap();
    assert!(s.wait_ready(2, common::HANG).is_ok());
    s.abandon();
}

#[test]
fn systemd_is_told_the_server_is_ready_and_its_main_pid() {
    let dir = std::env::temp_dir().join(format!("cyclone-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(common::HANG)).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args([
            "serve",
            "--port",
            "0",
            "--access-log",
            "off",
            "--log-level",
            "warn",
        ])
        .env("NOTIFY_SOCKET", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = socket.recv(&mut buf);
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let n = got.expect("a notification");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("READY=1\nMAINPID={}", child.id())
    );
}
