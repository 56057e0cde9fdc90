//! Micro-benchmarks of the hot paths, one figure per operation:
//! request-head parsing, response-head formatting, the timer wheel
//! (insert, cancel, fire) and callback dispatch.
//!
//!   cargo bench --bench micro
//!
//! Each figure is the best of several rounds (the least disturbed by
//! other work on a shared machine). Speed comparisons with peers live in
//! bench/ (`bench/loop.sh`, `bench/http.sh`, `bench/run.sh`).

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use cyclone::IOLoop;
use cyclone::fuzzing::{Persist, encode_response, parse_head};
use cyclone::http1::Response;
use http::{Method, Version};

/// Rounds per figure; the best is reported.
const ROUNDS: usize = 7;

/// Runs `f` (which performs `ops` operations and returns the time they
/// took, setup excluded) `ROUNDS` times and prints the best time per
/// operation.
fn report(name: &str, ops: u64, mut f: impl FnMut() -> Duration) {
    let best = (0..ROUNDS).map(|_| f()).min().unwrap_or_default();
    let ns = best.as_nanos() as f64 / ops as f64;
    println!("{name:<48} {ns:>9.1} ns/op  ({:.2} M op/s)", 1e3 / ns);
}

/// The time `f` takes.
fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

const WRK_HEAD: &[u8] = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8888\r\n\r\n";

const BROWSER_HEAD: &[u8] = b"GET /static/style.css?v=3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n\
Accept: text/css,*/*;q=0.1\r\n\
Accept-Language: en-GB,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Cookie: session=0123456789abcdef; theme=dark\r\n\
Connection: keep-alive\r\n\
If-None-Match: \"5f3a-1b2c\"\r\n\r\n";

fn parsing() {
    const N: u64 = 200_000;
    for (name, head) in [
        ("parse_head: wrk's request (1 header)", WRK_HEAD),
        ("parse_head: a browser's request (9 headers)", BROWSER_HEAD),
    ] {
        let head = Bytes::from_static(head);
        report(name, N, || {
            timed(|| {
                for _ in 0..N {
                    let h = parse_head(black_box(head.clone()), 100).expect("valid head");
                    black_box(&h);
                }
            })
        });
    }
}

fn formatting() {
    const N: u64 = 200_000;
    let mut out = BytesMut::with_capacity(1 << 20);
    let resp = Response::text("Hello, World!");
    report("encode_response: 200 text, keep-alive", N, || {
        timed(|| {
            for _ in 0..N {
                if out.len() > (1 << 20) - 512 {
                    out.clear();
                }
                encode_response(
                    &mut out,
                    Version::HTTP_11,
                    &Method::GET,
                    black_box(&resp),
                    Persist::KeepAlive,
                    b"Cyclone",
                );
            }
        })
    });
}

/// A deterministic spread of deadlines (xorshift).
fn deadlines(n: usize, base: Instant) -> Vec<Instant> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            base + Duration::from_micros(x % 1_000_000)
        })
        .collect()
}

fn timers() {
    const N: usize = 100_000;
    let lp = IOLoop::new().expect("loop");
    let fired = Rc::new(Cell::new(0usize));
    report("timers: call_at (insert)", N as u64, || {
        let at = deadlines(N, Instant::now() + Duration::from_secs(3600));
        let mut handles = Vec::with_capacity(N);
        let t = timed(|| handles.extend(at.iter().map(|&d| lp.call_at(d, || {}))));
        for h in handles {
            lp.remove_timeout(h);
        }
        t
    });
    report("timers: remove_timeout (cancel)", N as u64, || {
        let at = deadlines(N, Instant::now() + Duration::from_secs(3600));
        let handles: Vec<_> = at.iter().map(|&d| lp.call_at(d, || {})).collect();
        timed(|| {
            for h in handles {
                lp.remove_timeout(black_box(h));
            }
        })
    });
    report(
        "timers: insert + fire (deadlines within 1 ms)",
        N as u64,
        || {
            timed(|| {
                let base = Instant::now();
                for i in 0..N {
                    let f = fired.clone();
                    let at = base + Duration::from_nanos((i % 1000) as u64 * 1000);
                    lp.call_at(at, move || f.set(f.get() + 1));
                }
                let l = lp.clone();
                lp.call_at(base + Duration::from_millis(1), move || l.stop());
                lp.start().expect("run");
            })
        },
    );
    black_box(fired.get());
}

fn callbacks() {
    const N: usize = 1_000_000;
    let lp = IOLoop::new().expect("loop");
    let count = Rc::new(Cell::new(0usize));
    report("callbacks: add_callback + run", N as u64, || {
        timed(|| {
            for _ in 0..N {
                let c = count.clone();
                lp.add_callback(move || c.set(c.get() + 1));
            }
            let l = lp.clone();
            lp.add_callback(move || l.stop());
            lp.start().expect("run");
        })
    });
    black_box(count.get());
}

fn main() {
    println!("cyclone micro-benchmarks (best of {ROUNDS} rounds)");
    parsing();
    formatting();
    timers();
    callbacks();
}
