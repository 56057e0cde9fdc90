//! The echo load: N connections, each with exactly one message in flight
//! (send, wait for the echo, check it, send again), for a warm-up and
//! then a measured window.

use std::time::{Duration, Instant};

use crate::conn::WsConn;
use crate::frame::{OP_BINARY, OP_TEXT};
use crate::handshake;
use crate::histogram::Histogram;
use crate::rng::{text, Rng};
use crate::sys::{self, Epoll, EDGE, READABLE, WRITABLE};

pub struct Options {
    pub port: u16,
    pub path: String,
    pub conns: usize,
    pub size: usize,
    pub text: bool,
    pub deflate: bool,
    pub warmup: Duration,
    pub seconds: Duration,
    pub server_pid: Option<u32>,
}

/// A run with no echo at all for this long has failed (a server that
/// stopped answering), rather than being slow.
const STALL: Duration = Duration::from_secs(10);

struct Slot {
    conn: WsConn,
    payload: Vec<u8>,
    sent_at: Instant,
    /// Which of the pool's messages is in flight (stateless deflate).
    pooled: usize,
}

/// Texts compressed once, for connections whose messages are compressed
/// each on its own (the server asked for client_no_context_takeover):
/// wsload then sends them as they are, so its own compressing does not
/// limit the load; the server's work is the same as for fresh texts.
const POOL: usize = 64;

/// A text and its compressed form.
type Pooled = (Vec<u8>, Vec<u8>);

/// `POOL` texts of `size` bytes and their compressed forms.
fn pool(rng: &mut Rng, size: usize) -> Result<Vec<Pooled>, String> {
    let mut deflate = crate::deflate::Deflate::new(handshake::DeflateAgreed { client_no_context_takeover: true });
    (0..POOL)
        .map(|_| {
            let plain = text(rng, size);
            let mut packed = Vec::new();
            deflate.compress(&plain, &mut packed)?;
            Ok((plain, packed))
        })
        .collect()
}

/// Sends the slot's next message: from the pool when the connection is
/// stateless, else its payload compressed (or not) afresh.
fn send_next(s: &mut Slot, opcode: u8, pool: &[Pooled]) -> Result<bool, String> {
    if s.conn.stateless() && !pool.is_empty() {
        s.pooled = (s.pooled + 1) % pool.len();
        s.payload.clone_from(&pool[s.pooled].0);
        return s.conn.send_compressed(opcode, &pool[s.pooled].1);
    }
    s.conn.send(opcode, &s.payload)
}

pub fn run(o: &Options) -> Result<(), String> {
    let mut rng = Rng::from_clock(0);
    let mut slots = Vec::with_capacity(o.conns);
    for i in 0..o.conns {
        let opened = handshake::open(o.port, &o.path, o.deflate, &mut rng).map_err(|e| format!("connection {i}: {e}"))?;
        if o.deflate && opened.deflate.is_none() {
            return Err("the server declined permessage-deflate".into());
        }
        let conn = WsConn::new(opened, o.size, i as u64).map_err(|e| e.to_string())?;
        slots.push(Slot { conn, payload: text(&mut rng, o.size), sent_at: Instant::now(), pooled: i % POOL });
    }
    let pool = if slots.iter().any(|s| s.conn.stateless()) { pool(&mut rng, o.size)? } else { Vec::new() };
    let opcode = if o.text { OP_TEXT } else { OP_BINARY };
    let mut epoll = Epoll::new().map_err(|e| e.to_string())?;
    for (i, s) in slots.iter_mut().enumerate() {
        epoll.add(s.conn.fd(), i as u64, READABLE | WRITABLE | EDGE).map_err(|e| e.to_string())?;
        s.sent_at = Instant::now();
        // What a full socket buffer keeps back goes out on its EPOLLOUT.
        send_next(s, opcode, &pool)?;
    }

    let start = Instant::now();
    let measure_from = start + o.warmup;
    let measure_to = measure_from + o.seconds;
    let mut window: Option<Window> = None;
    let mut hist = Histogram::new();
    let mut last_echo = start;
    loop {
        let now = Instant::now();
        if window.is_none() && now >= measure_from {
            window = Some(Window::open(o.server_pid));
        }
        if now >= measure_to {
            break;
        }
        if now - last_echo > STALL {
            return Err(format!("no echo for {} s", STALL.as_secs()));
        }
        let wake = if window.is_none() { measure_from } else { measure_to };
        let n = epoll.wait(wake - now).map_err(|e| e.to_string())?;
        for k in 0..n {
            let (token, ev) = epoll.event(k);
            let i = token as usize;
            let s = &mut slots[i];
            if ev & WRITABLE != 0 {
                s.conn.flush()?;
            }
            if ev & !WRITABLE == 0 || !s.conn.fill()? {
                continue;
            }
            let mut echoed = false;
            while let Some(m) = s.conn.next_message()? {
                if m.opcode != opcode || m.payload != s.payload.as_slice() {
                    return Err(format!(
                        "connection {i}: the echo differs (opcode {} length {}, sent opcode {opcode} length {})",
                        m.opcode,
                        m.payload.len(),
                        s.payload.len()
                    ));
                }
                echoed = true;
            }
            if !echoed {
                continue;
            }
            let t = Instant::now();
            last_echo = t;
            if window.is_some() && t < measure_to {
                hist.record((t - s.sent_at).as_nanos() as u64);
            }
            if s.conn.compressing() && !s.conn.stateless() {
                // A new text each time: the compressor's window would make
                // a repeated message almost free, which no real traffic is.
                s.payload = text(&mut rng, o.size);
            }
            s.sent_at = t;
            send_next(s, opcode, &pool)?;
        }
    }
    let w = window.ok_or("the run ended before its window opened")?.close(o.server_pid);
    report(&hist, &w);
    Ok(())
}

/// The measured window: wall time, the server's CPU, wsload's own CPU.
struct Window {
    at: Instant,
    server_ticks: Option<u64>,
    own: Duration,
}

struct Closed {
    wall: Duration,
    server_cpu: Option<f64>,
    own_cpu: Duration,
}

impl Window {
    fn open(pid: Option<u32>) -> Self {
        Window { at: Instant::now(), server_ticks: pid.and_then(sys::stat_ticks), own: sys::own_cpu() }
    }

    fn close(self, pid: Option<u32>) -> Closed {
        let wall = self.at.elapsed();
        let ticks = self.server_ticks.zip(pid.and_then(sys::stat_ticks)).map(|(a, b)| b - a);
        Closed {
            wall,
            server_cpu: ticks.map(|t| t as f64 / sys::ticks_per_second() as f64),
            own_cpu: sys::own_cpu() - self.own,
        }
    }
}

/// One line of key=value pairs on stdout (bench/ws.sh reads it).
fn report(hist: &Histogram, w: &Closed) {
    let n = hist.count();
    let secs = w.wall.as_secs_f64();
    let per_cpu = match w.server_cpu {
        Some(c) if c > 0.0 => format!("{:.0}", n as f64 / c),
        _ => "n/a".into(),
    };
    let server_cpu = w.server_cpu.map_or("n/a".into(), |c| format!("{c:.2}"));
    println!(
        "msgs={n} seconds={secs:.2} msgs_per_s={:.0} p50_ms={:.3} p99_ms={:.3} server_cpu_s={server_cpu} \
         msgs_per_server_cpu_s={per_cpu} wsload_cpu_pct={:.0}",
        n as f64 / secs,
        hist.quantile(0.50) as f64 / 1e6,
        hist.quantile(0.99) as f64 / 1e6,
        w.own_cpu.as_secs_f64() / secs * 100.0,
    );
}
