//! Running out of file descriptors must not spin the loop (libuv's test,
//! done the same way): a child process with RLIMIT_NOFILE lowered to 64
//! runs an echo server; the parent opens more connections than the child
//! can hold, then checks the child's own CPU time over one second (from
//! getrusage) stays small, that it is alive, and that it serves again once
//! the connections are closed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use cyclone::{IOLoop, Interest, TcpServer};

const CHILD_ENV: &str = "CYCLONE_EMFILE_CHILD";
/// The child's descriptor limit: the loop, the listener and stdio fit,
/// and 100 connections do not.
const FD_LIMIT: u64 = 64;
const CLIENTS: usize = 100;
/// A spinning loop burns ~1,000,000 µs of CPU per second; back-off
/// wake-ups and a little logging cost a few thousand.
const MAX_CPU_US_PER_SECOND: u64 = 150_000;

fn cpu_micros() -> u64 {
    // SAFETY: rusage is plain data; getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// The child: an echo server under a tiny fd limit, driven by commands on
/// stdin ("cpu": report CPU time used over the next second).
fn child(lp: IOLoop) {
    let lim = libc::rlimit {
        rlim_cur: FD_LIMIT,
        rlim_max: FD_LIMIT,
    };
    // SAFETY: setrlimit with a live rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let server = lp.run_sync(async {
        let server = TcpServer::new(|stream, _| async move {
            while let Ok(d) = stream.read_bytes(4096, true).await {
                if stream.write(d).await.is_err() {
                    break;
                }
            }
        });
        let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
        println!("PORT {port}");
        server
    });
    let l = lp.clone();
    lp.add_handler(0, Interest::READ, move |_, _| {
        let mut line = [0u8; 64];
        // SAFETY: reads into a live buffer from stdin.
        let n = unsafe { libc::read(0, line.as_mut_ptr().cast(), line.len()) };
        if n <= 0 {
            l.stop();
            return;
        }
        let start = cpu_micros();
        l.call_later(Duration::from_secs(1), move || {
            println!("CPU {}", cpu_micros() - start);
        });
    })
    .unwrap();
    lp.start().unwrap();
    server.stop();
}

fn parent(backend: cyclone::Backend, test_name: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, backend.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A stuck child must fail the test, not hang it: kill it after a while
    // (its stdout then closes and the reads below fail).
    let pid = child.id() as libc::pid_t;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
            // Stop before the child is reaped, so its pid is never reused
            // under us.
            if d.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
        }
        // SAFETY: kill(2) on our child, still unreaped (we wait below).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let read_tagged = |out: &mut BufReader<_>, tag: &str| -> String {
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
            // libtest may print its "test name ..." on the same line first.
            if let Some(at) = line.find(tag) {
                return line[at + tag.len()..].trim().to_string();
            }
        }
    };
    let port: u16 = read_tagged(&mut out, "PORT ").parse().unwrap();
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    // The child is out of fds: every slot is used and connections still
    // wait in its accept queue.
    let child_fds = || std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    common::wait_until("the child to run out of descriptors", || {
        child_fds() as u64 >= FD_LIMIT && common::waiting_to_be_accepted(port) > 0
    });
    stdin.write_all(b"cpu\n").unwrap();
    let cpu: u64 = read_tagged(&mut out, "CPU ").parse().unwrap();
    println!("{backend}: CPU used in 1 s while out of fds: {cpu} µs");
    assert!(child.try_wait().unwrap().is_none(), "the server died");
    assert!(
        cpu < MAX_CPU_US_PER_SECOND,
        "{backend}: the server used {cpu} µs of CPU in 1 s while out of fds (spinning)"
    );
    drop(clients); // frees the child's descriptors
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"again").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"again", "serves again once descriptors are freed");
    drop(stdin); // the child stops on EOF
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(status.success(), "child: {status}");
    // The EMFILE path once double-borrowed a RefCell: the panic was caught
    // and logged, and the reserve fd was lost. No panic may show up.
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!err.contains("panicked"), "the child panicked: {err}");
}

per_backend! {
    fn running_out_of_fds_neither_spins_nor_kills_the_server(lp) {
        let name = format!(
            "{}::running_out_of_fds_neither_spins_nor_kills_the_server",
            module_path!().split_once("::").map_or("", |m| m.1)
        );
        if std::env::var(CHILD_ENV).is_ok() {
            child(lp.clone());
        } else {
            parent(lp.backend(), &name);
        }
    }
}
