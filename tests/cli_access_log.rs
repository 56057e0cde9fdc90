//! `cyclone serve`'s access log (`--access-log FILE|-|off`) end to end:
//! the line's format, where it goes, that lines still buffered are
//! written at shutdown, and that an output nobody reads never holds up
//! the server.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;

/// Starts `cyclone serve` on a free port with `args`; returns it, its
/// address and its stdout's remaining lines (read on a thread).
fn start(args: &[&str]) -> (Child, String, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["serve", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    out.read_line(&mut first).expect("the first line");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    (child, addr, lines(out))
}

fn lines(out: BufReader<ChildStdout>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// GETs each of `paths` over one connection, reading each response.
fn get(addr: &str, paths: &[&str]) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(common::HANG)).unwrap();
    let mut reader = BufReader::new(c.try_clone().unwrap());
    for path in paths {
        write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        common::http::read_response(&mut reader, false);
    }
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = child.wait();
}

/// Serves with `--access-log` to a file of its own (`name`), GETs
/// `paths`, stops the server; returns the file's text and stdout's lines.
fn logged_to_file(name: &str, paths: &[&str]) -> (String, mpsc::Receiver<String>) {
    let dir = std::env::temp_dir().join(format!("cyclone-access-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("access.log");
    let (mut child, addr, rx) = start(&["--access-log", file.to_str().unwrap()]);
    get(&addr, paths);
    terminate(&mut child);
    let written = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (written, rx)
}

/// The next line that is an access line, within `HANG`.
fn access_line(rx: &mpsc::Receiver<String>) -> String {
    loop {
        let line = rx
            .recv_timeout(common::HANG)
            .expect("an access line in time");
        if line.contains("cyclone::access") {
            return line;
        }
    }
}

#[test]
fn access_lines_go_to_stdout_by_default_in_the_usual_format() {
    let (mut child, addr, rx) = start(&[]);
    get(&addr, &["/hello", "/missing"]);
    let ok = access_line(&rx);
    let missing = access_line(&rx);
    terminate(&mut child);
    let shape = regex::Regex::new(
        r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z  INFO cyclone::access: 200 GET /hello \(127\.0\.0\.1\) \d+\.\d\dms$",
    )
    .unwrap();
    assert!(shape.is_match(&ok), "{ok:?}");
    assert!(
        missing.contains(" WARN cyclone::access: 404 GET /missing (127.0.0.1) "),
        "{missing:?}"
    );
}

#[test]
fn access_lines_go_to_the_file_given_and_not_to_stdout() {
    let (written, rx) = logged_to_file("file", &["/hello"]);
    assert_eq!(
        written
            .lines()
            .filter(|l| l.contains("200 GET /hello"))
            .count(),
        1,
        "{written:?}"
    );
    let stdout: Vec<String> = rx.try_iter().collect();
    assert!(
        !stdout.iter().any(|l| l.contains("cyclone::access")),
        "{stdout:?}"
    );
}

#[test]
fn access_log_off_writes_no_access_lines() {
    let (mut child, addr, rx) = start(&["--access-log", "off"]);
    get(&addr, &["/hello"]);
    terminate(&mut child);
    let stdout: Vec<String> = rx.iter().collect();
    assert!(
        !stdout.iter().any(|l| l.contains("cyclone::access")),
        "{stdout:?}"
    );
    assert!(
        stdout.iter().any(|l| l.contains("shutting down")),
        "other lines still go out: {stdout:?}"
    );
}

#[test]
fn the_log_level_hides_access_lines_below_it_and_keeps_the_rest() {
    // At warn, a 200's line (info) is not written, a 404's (warn) is.
    let (mut child, addr, rx) = start(&["--log-level", "warn"]);
    get(&addr, &["/hello", "/missing"]);
    let line = access_line(&rx);
    terminate(&mut child);
    assert!(line.contains("404 GET /missing"), "{line:?}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("200 GET /hello")),
        "{rest:?}"
    );
}

#[test]
fn lines_still_buffered_are_written_at_shutdown() {
    // Stopped as soon as answered: the lines are still in the loop's
    // buffer (they are handed over 50 ms after the first).
    let (written, _) = logged_to_file("end", &["/hello", "/hello", "/hello"]);
    assert_eq!(
        written
            .lines()
            .filter(|l| l.contains("200 GET /hello"))
            .count(),
        3,
        "{written:?}"
    );
}

#[test]
fn an_output_nobody_reads_never_holds_up_the_server() {
    // stdout is a pipe this test never reads: once its 64 KiB are full,
    // the writer thread waits and lines queue, then drop; the server
    // answers every request all the same.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["serve", "--port", "0", "--address", "127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();
    // 120,000 access lines (about 11 MiB): past the pipe and the 8 MiB
    // the log holds for its writer. Pipelined, 1,000 per write.
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(common::HANG)).unwrap();
    let reader = c.try_clone().unwrap();
    let counting = std::thread::spawn(move || {
        let mut reader = BufReader::new(reader);
        let mut answered = 0;
        let mut line = String::new();
        while answered < 120_000 {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            // A body has no line end: a status line may follow it on
            // the same line.
            answered += line.matches("HTTP/1.1 200").count();
        }
        answered
    });
    let batch = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    for _ in 0..120 {
        c.write_all(batch.as_bytes()).unwrap();
    }
    let answered = counting.join().unwrap();
    drop(out);
    terminate(&mut child);
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(answered, 120_000);
    // Reported by the writer thread once the pipe is closed under it:
    // the count covers lines dropped while it was stalled and after.
    assert!(err.contains("lines dropped so far"), "{err}");
}

#[test]
fn with_proxy_protocol_the_access_line_names_the_client_from_the_header() {
    let (mut child, addr, rx) = start(&["--proxy-protocol"]);
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_read_timeout(Some(common::HANG)).unwrap();
    c.write_all(
        b"PROXY TCP4 192.0.2.7 127.0.0.1 51234 8888\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let resp = common::http::read_response(&mut BufReader::new(c), false);
    let line = access_line(&rx);
    terminate(&mut child);
    assert_eq!(resp.status, 200);
    assert!(line.contains(" 200 GET /hello (192.0.2.7) "), "{line:?}");
}
