//! wsload: a WebSocket load generator for bench/ws.sh, one thread, raw
//! frames over an edge-triggered epoll loop (so it costs less per message
//! than the servers it loads), talking only to 127.0.0.1.
//!
//!   wsload --port P [--path /ws/echo] [--conns 100] [--size 20] [--text]
//!          [--deflate] [--seconds 5] [--warmup 1] [--server-pid PID]
//!       Echo: each connection keeps exactly one message of --size bytes
//!       in flight (binary unless --text), checks the echo (opcode and
//!       bytes), sends the next. After the warm-up, prints one line:
//!       messages/s, p50/p99 latency, and with --server-pid the server's
//!       CPU time over the window (/proc/PID/stat) and messages per server
//!       CPU-second; wsload_cpu_pct says how busy wsload itself was.
//!       --deflate offers permessage-deflate (and fails if the server
//!       declines); each message is then a fresh text.
//!   wsload --port P --idle N [--path /ws/echo]
//!       Opens N connections, completes each handshake, prints "ready"
//!       and holds them until killed.
//!   wsload --port P --broadcast N [--path /ws/chat] [--rounds 5] [--server-pid PID]
//!       N connections, then one more sends a 100-byte text; the time
//!       until all N have it and the server's CPU time (schedstat), per
//!       round on stderr, medians on stdout.
//!   wsload --port P --check [--path /ws/echo]
//!       One connection, one 20-byte echo; exit status 0 if it came back.

mod broadcast;
mod conn;
mod deflate;
mod echo;
mod frame;
mod handshake;
mod histogram;
mod rng;
mod sys;

use std::io::Write;
use std::time::Duration;

enum Mode {
    Echo,
    Idle(usize),
    Broadcast(usize),
    Check,
}

struct Args {
    mode: Mode,
    port: u16,
    path: Option<String>,
    conns: usize,
    size: usize,
    text: bool,
    deflate: bool,
    seconds: f64,
    warmup: f64,
    rounds: usize,
    server_pid: Option<u32>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        mode: Mode::Echo,
        port: 0,
        path: None,
        conns: 100,
        size: 20,
        text: false,
        deflate: false,
        seconds: 5.0,
        warmup: 1.0,
        rounds: 5,
        server_pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        }
        match flag.as_str() {
            "--port" => a.port = num(&flag, value()?)?,
            "--path" => a.path = Some(value()?),
            "--conns" => a.conns = num(&flag, value()?)?,
            "--size" => a.size = num(&flag, value()?)?,
            "--text" => a.text = true,
            "--deflate" => a.deflate = true,
            "--seconds" => a.seconds = num(&flag, value()?)?,
            "--warmup" => a.warmup = num(&flag, value()?)?,
            "--rounds" => a.rounds = num(&flag, value()?)?,
            "--server-pid" => a.server_pid = Some(num(&flag, value()?)?),
            "--idle" => a.mode = Mode::Idle(num(&flag, value()?)?),
            "--broadcast" => a.mode = Mode::Broadcast(num(&flag, value()?)?),
            "--check" => a.mode = Mode::Check,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.port == 0 {
        return Err("--port is required".into());
    }
    if a.deflate && !a.text {
        // permessage-deflate is measured on text, as the benchmark asks.
        a.text = true;
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wsload: {e} (see the comment at the top of bench/peers/src/bin/wsload/main.rs)");
            std::process::exit(2);
        }
    };
    let result = match args.mode {
        Mode::Echo => echo::run(&echo::Options {
            port: args.port,
            path: args.path.unwrap_or_else(|| "/ws/echo".into()),
            conns: args.conns,
            size: args.size,
            text: args.text,
            deflate: args.deflate,
            warmup: Duration::from_secs_f64(args.warmup),
            seconds: Duration::from_secs_f64(args.seconds),
            server_pid: args.server_pid,
        }),
        Mode::Idle(n) => idle(args.port, &args.path.unwrap_or_else(|| "/ws/echo".into()), n),
        Mode::Broadcast(n) => broadcast::run(&broadcast::Options {
            port: args.port,
            path: args.path.unwrap_or_else(|| "/ws/chat".into()),
            receivers: n,
            rounds: args.rounds,
            server_pid: args.server_pid,
        }),
        Mode::Check => check(args.port, &args.path.unwrap_or_else(|| "/ws/echo".into())),
    };
    if let Err(e) = result {
        eprintln!("wsload: {e}");
        std::process::exit(1);
    }
}

/// Opens `n` connections and holds them, idle, until killed.
fn idle(port: u16, path: &str, n: usize) -> Result<(), String> {
    let mut rng = rng::Rng::from_clock(2);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        held.push(handshake::open(port, path, false, &mut rng).map_err(|e| format!("connection {i}: {e}"))?);
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// One echo on one connection, bounded in time: is the server up?
fn check(port: u16, path: &str) -> Result<(), String> {
    /// Far more than a 20-byte echo takes on 127.0.0.1.
    const TIMEOUT: Duration = Duration::from_secs(2);
    let mut rng = rng::Rng::from_clock(3);
    let opened = handshake::open(port, path, false, &mut rng)?;
    let mut conn = conn::WsConn::new(opened, 20, 0).map_err(|e| e.to_string())?;
    let payload = rng::text(&mut rng, 20);
    let mut epoll = sys::Epoll::new().map_err(|e| e.to_string())?;
    epoll.add(conn.fd(), 0, sys::READABLE | sys::WRITABLE | sys::EDGE).map_err(|e| e.to_string())?;
    conn.send(frame::OP_BINARY, &payload)?;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < TIMEOUT {
        if epoll.wait(Duration::from_millis(100)).map_err(|e| e.to_string())? == 0 || !conn.fill()? {
            continue;
        }
        if let Some(m) = conn.next_message()? {
            return if m.opcode == frame::OP_BINARY && m.payload == payload.as_slice() {
                Ok(())
            } else {
                Err("the echo differs".into())
            };
        }
    }
    Err("no echo".into())
}
