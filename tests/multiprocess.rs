//! Multi-process servers (`harness = false`: forking needs a process with
//! one thread, which libtest's harness is not). The test runs itself as a
//! server child that forks 3 workers; each answers every line a
//! connection sends with its task id and pid. The parent checks every id
//! answers, that a killed worker is restarted with the same id while the
//! other workers' connections, kept busy throughout, lose no request, and
//! that SIGTERM to the supervisor stops everything cleanly.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cyclone::{IOLoop, TcpServer};

const SERVER_ENV: &str = "CYCLONE_MP_SERVER";
const WORKERS: usize = 3;
const LIMIT: Duration = Duration::from_secs(20);

fn server() {
    let server = TcpServer::new(|stream, _| async move {
        let id = cyclone::process::task_id().map_or(-1, |i| i as i64);
        let answer = format!("{id} {}\n", std::process::id());
        // One answer per line, until the client leaves.
        while stream.read_until(b"\n", Some(64)).await.is_ok() {
            if stream.write(answer.clone()).await.is_err() {
                break;
            }
        }
    });
    let addrs = server.bind(0, Some("127.0.0.1"), 128, false).unwrap();
    println!("PORT {}", addrs[0].port());
    let id = server.start(WORKERS, 10).unwrap();
    assert!(id < WORKERS);
    // No SIGTERM handler on purpose: workers rely on the default action,
    // which a restarted worker must have too (it once inherited the
    // supervisor's handler and ignored SIGTERM).
    IOLoop::current().start().unwrap();
}

/// A connection to one worker, asked as often as wanted.
struct Conn(BufReader<TcpStream>);

impl Conn {
    fn open(port: u16) -> Option<Conn> {
        let c = TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(Conn(BufReader::new(c)))
    }

    /// (task id, pid) of the worker holding this connection.
    fn ask(&mut self) -> Option<(usize, u32)> {
        self.0.get_mut().write_all(b"?\n").ok()?;
        let mut s = String::new();
        self.0.read_line(&mut s).ok()?;
        let (id, pid) = s.trim_end().split_once(' ')?;
        Some((id.parse().ok()?, pid.parse().ok()?))
    }
}

/// Asks the pool once, on a new connection: (task id, pid).
fn ask(port: u16) -> Option<(usize, u32)> {
    Conn::open(port)?.ask()
}

/// Kills one worker while every other worker's connections are asked
/// without pause from threads of their own: the victim comes back with
/// its id, and the survivors' connections lose no request.
fn survivors_lose_nothing(port: u16, pids: &mut HashMap<usize, u32>) -> Result<(), String> {
    // Connections until at least two workers hold some (which worker
    // accepts a connection is the kernel's choice).
    let mut conns: Vec<(Conn, usize)> = Vec::new();
    for _ in 0..500 {
        let mut c = Conn::open(port).ok_or("connect")?;
        let (id, _) = c.ask().ok_or("first answer")?;
        conns.push((c, id));
        let workers: HashSet<usize> = conns.iter().map(|(_, id)| *id).collect();
        if workers.len() >= 2 {
            break;
        }
    }
    let victim = conns.first().map(|(_, id)| *id).ok_or("no connection")?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for (mut c, id) in conns.into_iter().filter(|(_, id)| *id != victim) {
        let stop = stop.clone();
        load.push(std::thread::spawn(move || {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                match c.ask() {
                    Some((got, _)) if got == id => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        }));
    }
    if load.is_empty() {
        return Err("every connection went to one worker".into());
    }
    let old = pids[&victim];
    // SAFETY: kill(2) on a worker this test started.
    unsafe { libc::kill(old as libc::pid_t, libc::SIGKILL) };
    let back = ask_until(port, "the killed worker to come back", |id, pid| {
        let back = id == victim && pid != old;
        if back {
            pids.insert(victim, pid); // for the cleanup below
        }
        back
    });
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for t in load {
        let (o, f) = t.join().map_err(|_| "a load thread panicked")?;
        ok += o;
        failed += f;
    }
    back?;
    match (ok, failed) {
        (0, _) => Err("the survivors answered nothing".into()),
        (_, 0) => Ok(()),
        (ok, failed) => Err(format!(
            "{failed} of {} requests on the survivors' connections failed",
            ok + failed
        )),
    }
}

/// Asks until `done` says so, or fails after LIMIT.
fn ask_until(
    port: u16,
    what: &str,
    mut done: impl FnMut(usize, u32) -> bool,
) -> Result<(), String> {
    let t0 = Instant::now();
    while t0.elapsed() < LIMIT {
        if let Some((id, pid)) = ask(port)
            && done(id, pid)
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!("timed out waiting for {what}"))
}

fn run() -> Vec<(&'static str, Result<(), String>)> {
    let mut results = Vec::new();
    let (mut child, line) = common::spawn_with_first_line(
        Command::new(std::env::current_exe().unwrap()).env(SERVER_ENV, "1"),
    );
    let port: u16 = line.trim().strip_prefix("PORT ").unwrap().parse().unwrap();

    let mut pids: HashMap<usize, u32> = HashMap::new();
    let every = ask_until(port, "all three task ids", |id, pid| {
        pids.insert(id, pid);
        pids.len() == WORKERS
    });
    let ids_ok = every.and_then(|()| {
        let mut ids: Vec<_> = pids.keys().copied().collect();
        ids.sort();
        (ids == [0, 1, 2])
            .then_some(())
            .ok_or(format!("ids {ids:?}"))
    });
    results.push(("each_worker_reports_its_task_id", ids_ok.clone()));

    let restarted = ids_ok.and_then(|()| survivors_lose_nothing(port, &mut pids));
    results.push((
        "a_killed_worker_is_restarted_with_its_id_while_the_others_lose_no_request",
        restarted,
    ));

    // SAFETY: kill(2) on the supervisor this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let t0 = Instant::now();
    let stopped = loop {
        match child.try_wait().unwrap() {
            Some(status) if status.success() => break Ok(()),
            Some(status) => break Err(format!("supervisor exited with {status}")),
            None if t0.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                // Workers that ignored SIGTERM would outlive the test (and
                // keep its output pipe open): kill the ones we know.
                for pid in pids.values() {
                    // SAFETY: kill(2) on workers this test started.
                    unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
                }
                break Err("supervisor did not stop on SIGTERM".into());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let gone = stopped.and_then(|()| match ask(port) {
        None => Ok(()),
        Some(_) => Err("a worker still answers after shutdown".into()),
    });
    results.push(("sigterm_stops_supervisor_and_workers", gone));
    results
}

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        server();
        return;
    }
    let results = run();
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!("{} passed, {failed} failed", results.len() - failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
