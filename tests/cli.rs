//! The `cyclone` command end to end: start it on a free port, fetch
//! pages over HTTP, stop it with SIGTERM and check it exits cleanly.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn get(addr: &str, raw: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(raw).unwrap();
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s
}

fn request(addr: &str, method: &str, path: &str) -> String {
    get(
        addr,
        &common::http::request(method, path, &[("Connection", "close")], b""),
    )
}

/// Starts `cyclone` with `args` on a free port; returns it and the
/// address it printed.
fn start(args: &[&str]) -> (Child, String) {
    let (child, line) = common::spawn_with_first_line(
        Command::new(env!("CARGO_BIN_EXE_cyclone"))
            .args(args)
            .args(["--port", "0", "--log-level", "warn"])
            .stderr(Stdio::null()),
    );
    // "cyclone HTTP server listening on http://127.0.0.1:PORT/ (...)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, addr)
}

/// Sends SIGTERM and asserts a clean exit within 20 s.
fn stop(mut child: Child) {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the server did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn serve_runs_the_demo_site_and_stops_cleanly_on_sigterm() {
    let (child, addr) = start(&["serve"]);
    let home = request(&addr, "GET", "/");
    assert!(home.starts_with("HTTP/1.1 200 OK\r\n"), "{home}");
    assert!(home.contains("<h1>Cyclone</h1>"), "{home}");
    let hello = request(&addr, "GET", "/hello");
    assert!(hello.ends_with("\r\n\r\nHello, World!"), "{hello}");
    let css = request(&addr, "GET", "/static/style.css");
    assert!(
        css.starts_with("HTTP/1.1 200 OK\r\n") && css.contains("text/css"),
        "{css}"
    );
    let echo = get(
        &addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nping",
    );
    assert!(echo.ends_with("\r\n\r\nping"), "{echo}");
    let missing = request(&addr, "GET", "/nope");
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    stop(child);
}

#[test]
fn without_a_subcommand_the_command_serves_too() {
    let (child, addr) = start(&[]);
    let hello = request(&addr, "GET", "/hello");
    assert!(hello.ends_with("Hello, World!"), "{hello}");
    stop(child);
}

#[test]
fn serve_root_serves_and_lists_a_directory() {
    let dir = std::env::temp_dir().join(format!("cyclone-cli-root-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a.txt"), "file a").unwrap();
    let (child, addr) = start(&["serve", "--root", dir.to_str().unwrap()]);
    let file = request(&addr, "GET", "/a.txt");
    let listing = request(&addr, "GET", "/");
    stop(child);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(file.ends_with("\r\n\r\nfile a"), "{file}");
    assert!(
        listing.contains("href=\"a.txt\"") && listing.contains("href=\"sub/\""),
        "{listing}"
    );
}

#[test]
fn a_missing_root_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args([
            "serve",
            "--port",
            "0",
            "--root",
            "/nonexistent/cyclone-test",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cyclone: "), "{err}");
    // It names the path given, and a missing directory is a bad argument.
    assert!(err.contains("--root /nonexistent/cyclone-test"), "{err}");
    assert!(err.contains("no such directory"), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
}

/// Runs `cyclone` with `args` and returns its exit code and stderr.
fn fail(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(args)
        .env_remove("CYCLONE_POLLER")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_root_that_is_a_file_is_a_bad_argument_naming_it() {
    let file = std::env::temp_dir().join(format!("cyclone-cli-file-{}", std::process::id()));
    std::fs::write(&file, "not a directory").unwrap();
    let path = file.to_str().unwrap().to_string();
    let (code, err) = fail(&["serve", "--port", "0", "--root", &path]);
    std::fs::remove_file(&file).unwrap();
    assert!(
        err.contains(&format!("--root {path}: not a directory")),
        "{err}"
    );
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn a_busy_port_names_the_address_suggests_a_fix_and_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = fail(&["serve", "--address", "127.0.0.1", "--port", &port]);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("choose another port with --port"), "{err}");
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn a_busy_port_in_thread_per_core_mode_names_the_address_too() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (code, err) = fail(&["serve", "--threads", "2", "--port", &port]);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert_eq!(code, Some(1), "{err}");
}

#[test]
fn an_unknown_poller_exits_2_and_lists_the_valid_ones() {
    let (code, err) = fail(&["serve", "--port", "0", "--poller", "kqueue"]);
    assert!(err.contains("'kqueue'"), "{err}");
    for name in ["epoll", "uring", "poll", "select"] {
        assert!(err.contains(name), "{name} missing from:\n{err}");
    }
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn an_unknown_poller_in_the_environment_exits_2_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["--port", "0"])
        .env("CYCLONE_POLLER", "kqueue")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CYCLONE_POLLER=kqueue"), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
}

#[test]
fn poller_named_on_the_command_line_is_used() {
    // Every backend this machine has, in any case, and uring's alias.
    let mut names: Vec<String> = cyclone::Backend::available()
        .iter()
        .map(|b| b.name().to_ascii_uppercase())
        .collect();
    if cyclone::Backend::available().contains(&cyclone::Backend::Uring) {
        names.push("io_uring".into());
    }
    for name in names {
        let (child, line) = common::spawn_with_first_line(
            Command::new(env!("CARGO_BIN_EXE_cyclone"))
                .args(["serve", "--port", "0", "--poller", &name])
                .env_remove("CYCLONE_POLLER")
                .stderr(Stdio::null()),
        );
        let expected = name.to_ascii_lowercase().replace("io_uring", "uring");
        stop(child);
        assert!(
            line.contains(&format!("({expected} poller)")),
            "{name}: {line}"
        );
    }
}

#[test]
fn help_lists_every_poller_uring_included() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    let poller = help
        .lines()
        .find(|l| l.contains("--poller"))
        .unwrap_or_else(|| panic!("no --poller in:\n{help}"));
    for name in ["epoll", "uring", "poll", "select"] {
        assert!(poller.contains(name), "{name} missing from: {poller}");
    }
}

#[test]
fn help_names_every_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--port",
        "--address",
        "--root",
        "--processes",
        "--threads",
        "--poller",
        "--log-level",
        "--max-connections",
    ] {
        assert!(help.contains(opt), "{opt} missing from:\n{help}");
    }
}

/// Runs `cyclone serve --tls-cert CERT --tls-key KEY` with the files
/// holding `cert` and `key` (`None`: the file does not exist); returns
/// the exit code, stderr, and the two paths.
fn serve_tls_files(
    name: &str,
    cert: Option<&str>,
    key: Option<&str>,
) -> (Option<i32>, String, String, String) {
    let dir = std::env::temp_dir().join(format!("cyclone-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (path, content) in [(&cert_path, cert), (&key_path, key)] {
        if let Some(content) = content {
            std::fs::write(path, content).unwrap();
        }
    }
    let (cert_s, key_s) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let (code, err) = fail(&[
        "serve",
        "--port",
        "0",
        "--tls-cert",
        cert_s,
        "--tls-key",
        key_s,
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    (code, err, cert_s.to_string(), key_s.to_string())
}

#[test]
fn a_tls_certificate_file_that_is_not_pem_exits_2_naming_it() {
    let dev = cyclone::tls::SelfSigned::generate(&["localhost"]).unwrap();
    let (code, err, cert, _) =
        serve_tls_files("not-pem", Some("not a certificate"), Some(&dev.key_pem));
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("--tls-cert {cert}: no certificate in it")),
        "{err}"
    );
}

#[test]
fn a_missing_tls_key_file_exits_2_naming_it() {
    let dev = cyclone::tls::SelfSigned::generate(&["localhost"]).unwrap();
    let (code, err, _, key) = serve_tls_files("no-key", Some(&dev.cert_pem), None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("--tls-key {key}: No such file")),
        "{err}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_exits_2_naming_the_key() {
    let (dev, other) = (
        cyclone::tls::SelfSigned::generate(&["localhost"]).unwrap(),
        cyclone::tls::SelfSigned::generate(&["localhost"]).unwrap(),
    );
    let (code, err, _, key) =
        serve_tls_files("wrong-key", Some(&dev.cert_pem), Some(&other.key_pem));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("--tls-key {key}: does not match the certificate")),
        "{err}"
    );
}

#[test]
fn tls_self_signed_serves_https_and_says_where_its_certificate_is() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cyclone"))
        .args([
            "serve",
            "--tls-self-signed",
            "--port",
            "0",
            "--log-level",
            "warn",
        ])
        .env_remove("CYCLONE_POLLER")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Both lines are read, and the pipe kept open until the end: a
    // server printing into a closed pipe would fail.
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut first, mut second) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut second).unwrap();
    let cert = first
        .split(" written to ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no certificate path in {first:?}"));
    assert!(first.contains("SHA-256 Fingerprint="), "{first}");
    let port: u16 = second
        .split("https://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no https address in {second:?}"));
    let ca = std::fs::read_to_string(cert).unwrap();
    let mut client = common::tls::connect(port, common::tls::rustls_client(&ca, &[]), "localhost");
    let response = common::tls::get(&mut client, "/hello");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("Hello, World!"), "{response}");
    stop(child);
    drop(out);
    std::fs::remove_dir_all(std::path::Path::new(cert).parent().unwrap()).unwrap();
}

#[test]
fn max_connections_holds_further_clients_in_the_backlog_until_one_closes() {
    let (child, addr) = start(&["serve", "--max-connections", "2"]);
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let keep_alive = |c: &mut TcpStream| {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = c.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut first = TcpStream::connect(&addr).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    assert!(keep_alive(&mut first).starts_with("HTTP/1.1 200 "));
    assert!(keep_alive(&mut second).starts_with("HTTP/1.1 200 "));
    // A third waits, connected by the kernel but not accepted.
    let mut third = TcpStream::connect(&addr).unwrap();
    common::wait_until("the third connection waits in the backlog", || {
        common::waiting_to_be_accepted(port) == 1
    });
    drop(first);
    assert!(keep_alive(&mut third).starts_with("HTTP/1.1 200 "));
    drop((second, third));
    stop(child);
}
