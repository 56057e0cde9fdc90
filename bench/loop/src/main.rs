//! Loop benchmarks, Cyclone vs tokio current_thread, in one process run:
//!
//! 1. 1,000,000 `add_callback`s vs 1,000,000 spawned trivial tasks;
//! 2. 1,000,000 timers with random deadlines in the next 10 ms, every
//!    other one cancelled, the rest fired;
//! 3. 200,000 one-byte ping-pong round trips over a socketpair, both ends
//!    on the same single-threaded loop.
//!
//! Usage: `cyclone-loop-bench [callbacks|timers|pingpong|all] [--repeat N]`
//! or `cyclone-loop-bench one <name>` to run a single case once (for
//! `perf stat` / `strace -c` system-call counts). Pin it with taskset.

use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cyclone::{Async, Backend, IOLoop, Interest};

const CALLBACKS: usize = 1_000_000;
const TIMERS: usize = 1_000_000;
const ROUND_TRIPS: usize = 200_000;
/// Timer deadlines are spread over this window: creating a million timers
/// takes longer, so the cycle measures the heap, not the clock.
const TIMER_WINDOW_NS: u64 = 10_000_000;

/// A tiny deterministic generator, so both runtimes get the same deadlines.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn backend() -> Backend {
    std::env::var("CYCLONE_POLLER")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(Backend::Epoll)
}

fn new_loop() -> IOLoop {
    IOLoop::builder().backend(backend()).build().unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- callbacks

fn cyclone_callbacks() -> Duration {
    let lp = new_loop();
    let count = Rc::new(Cell::new(0usize));
    let t0 = Instant::now();
    for _ in 0..CALLBACKS {
        let c = count.clone();
        lp.add_callback(move || c.set(c.get() + 1));
    }
    let l = lp.clone();
    lp.add_callback(move || l.stop());
    lp.start().unwrap();
    let took = t0.elapsed();
    assert_eq!(count.get(), CALLBACKS);
    lp.close().unwrap();
    took
}

fn cyclone_spawns() -> Duration {
    let lp = new_loop();
    let count = Rc::new(Cell::new(0usize));
    let t0 = Instant::now();
    for _ in 0..CALLBACKS {
        let c = count.clone();
        drop(lp.spawn(async move { c.set(c.get() + 1) }));
    }
    // The spawned tasks were queued first, so they all run before this one.
    lp.run_sync(async {});
    let took = t0.elapsed();
    assert_eq!(count.get(), CALLBACKS);
    lp.close().unwrap();
    took
}

fn tokio_spawns() -> Duration {
    let rt = tokio_rt();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let took = rt.block_on(async move {
        let t0 = Instant::now();
        for _ in 0..CALLBACKS {
            let c = c.clone();
            drop(tokio::spawn(async move {
                c.fetch_add(1, Ordering::Relaxed);
            }));
        }
        while c.load(Ordering::Relaxed) < CALLBACKS {
            tokio::task::yield_now().await;
        }
        t0.elapsed()
    });
    assert_eq!(count.load(Ordering::Relaxed), CALLBACKS);
    took
}

// ------------------------------------------------------------------- timers

fn cyclone_timers() -> Duration {
    let lp = new_loop();
    let fired = Rc::new(Cell::new(0usize));
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let t0 = Instant::now();
    for i in 0..TIMERS {
        let at = t0 + Duration::from_nanos(rng.next() % TIMER_WINDOW_NS);
        let f = fired.clone();
        let h = lp.call_at(at, move || f.set(f.get() + 1));
        if i % 2 == 1 {
            lp.remove_timeout(h);
        }
    }
    let (f, l) = (fired.clone(), lp.clone());
    // Stop once every live timer has fired: after the last deadline.
    lp.call_at(t0 + Duration::from_nanos(TIMER_WINDOW_NS), move || {
        assert_eq!(f.get(), TIMERS / 2);
        l.stop();
    });
    lp.start().unwrap();
    let took = t0.elapsed();
    assert_eq!(fired.get(), TIMERS / 2);
    lp.close().unwrap();
    took
}

fn tokio_timers() -> Duration {
    // DelayQueue: tokio's own structure for many cancellable timers (a
    // hierarchical wheel), the closest peer to a callback timer heap.
    use futures::StreamExt;
    let rt = tokio_rt();
    rt.block_on(async {
        // No pre-sizing: Cyclone's wheel starts cold too.
        let mut q = tokio_util::time::DelayQueue::new();
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let t0 = Instant::now();
        let base = tokio::time::Instant::from_std(t0);
        for i in 0..TIMERS {
            let at = base + Duration::from_nanos(rng.next() % TIMER_WINDOW_NS);
            let k = q.insert_at(i, at);
            if i % 2 == 1 {
                q.remove(&k);
            }
        }
        let mut fired = 0;
        while q.next().await.is_some() {
            fired += 1;
        }
        assert_eq!(fired, TIMERS / 2);
        t0.elapsed()
    })
}

fn tokio_sleep_tasks() -> Duration {
    let rt = tokio_rt();
    rt.block_on(async {
        let fired = Arc::new(AtomicUsize::new(0));
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let t0 = Instant::now();
        let base = tokio::time::Instant::from_std(t0);
        for i in 0..TIMERS {
            let at = base + Duration::from_nanos(rng.next() % TIMER_WINDOW_NS);
            let f = fired.clone();
            let h = tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                f.fetch_add(1, Ordering::Relaxed);
            });
            if i % 2 == 1 {
                h.abort();
            }
        }
        while fired.load(Ordering::Relaxed) < TIMERS / 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        t0.elapsed()
    })
}

fn cyclone_sleep_tasks() -> Duration {
    let lp = new_loop();
    let fired = Rc::new(Cell::new(0usize));
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let t0 = Instant::now();
    for i in 0..TIMERS {
        let at = t0 + Duration::from_nanos(rng.next() % TIMER_WINDOW_NS);
        let f = fired.clone();
        let h = lp.spawn(async move {
            cyclone::sleep_until(at).await;
            f.set(f.get() + 1);
        });
        if i % 2 == 1 {
            h.abort();
        }
    }
    let f = fired.clone();
    lp.run_sync(async move {
        while f.get() < TIMERS / 2 {
            cyclone::sleep(Duration::from_millis(1)).await;
        }
    });
    let took = t0.elapsed();
    lp.close().unwrap();
    took
}

// ---------------------------------------------------------------- ping-pong

/// Tornado style: two level-triggered fd handlers. Each reads once per
/// readiness event (no read to EAGAIN) and writes the byte straight back.
fn cyclone_pingpong_handlers() -> Duration {
    let lp = new_loop();
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
    let mut b = b;
    lp.add_handler(fb, Interest::READ, move |_, _| {
        let mut buf = [0u8; 1];
        if let Ok(1) = b.read(&mut buf) {
            let _ = b.write(&buf);
        }
    })
    .unwrap();
    let mut a2 = a.try_clone().unwrap();
    let (l, trips) = (lp.clone(), Rc::new(Cell::new(0usize)));
    let t = trips.clone();
    lp.add_handler(fa, Interest::READ, move |_, _| {
        let mut buf = [0u8; 1];
        if let Ok(1) = a2.read(&mut buf) {
            t.set(t.get() + 1);
            if t.get() == ROUND_TRIPS {
                l.stop();
            } else {
                let _ = a2.write(&buf);
            }
        }
    })
    .unwrap();
    let t0 = Instant::now();
    (&a).write_all(b"x").unwrap();
    lp.start().unwrap();
    let took = t0.elapsed();
    assert_eq!(trips.get(), ROUND_TRIPS);
    lp.close().unwrap();
    took
}

/// async style: two tasks over `Async<UnixStream>`.
fn cyclone_pingpong_async() -> Duration {
    let lp = new_loop();
    lp.run_sync(async {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
        let server = cyclone::spawn(async move {
            let mut buf = [0u8; 1];
            while let Ok(1) = b.read_with(|mut s| s.read(&mut buf)).await {
                b.write_with(|mut s| s.write(&buf)).await.unwrap();
            }
        });
        let t0 = Instant::now();
        let mut buf = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            a.write_with(|mut s| s.write(b"x")).await.unwrap();
            a.read_with(|mut s| s.read(&mut buf)).await.unwrap();
        }
        let took = t0.elapsed();
        drop(a);
        server.await.unwrap();
        took
    })
}

fn tokio_pingpong() -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio_rt();
    rt.block_on(async {
        let (mut a, mut b) = tokio::net::UnixStream::pair().unwrap();
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 1];
            while let Ok(1) = b.read(&mut buf).await {
                b.write_all(&buf).await.unwrap();
            }
        });
        let t0 = Instant::now();
        let mut buf = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            a.write_all(b"x").await.unwrap();
            a.read_exact(&mut buf).await.unwrap();
        }
        let took = t0.elapsed();
        drop(a);
        server.await.unwrap();
        took
    })
}

// -------------------------------------------------------------------- main

type Case = (&'static str, &'static str, usize, fn() -> Duration);

const CASES: &[Case] = &[
    (
        "callbacks",
        "cyclone add_callback",
        CALLBACKS,
        cyclone_callbacks,
    ),
    ("callbacks", "cyclone spawn", CALLBACKS, cyclone_spawns),
    ("callbacks", "tokio spawn", CALLBACKS, tokio_spawns),
    ("timers", "cyclone call_at", TIMERS, cyclone_timers),
    ("timers", "cyclone sleep tasks", TIMERS, cyclone_sleep_tasks),
    ("timers", "tokio DelayQueue", TIMERS, tokio_timers),
    ("timers", "tokio sleep tasks", TIMERS, tokio_sleep_tasks),
    (
        "pingpong",
        "cyclone handlers",
        ROUND_TRIPS,
        cyclone_pingpong_handlers,
    ),
    (
        "pingpong",
        "cyclone Async<T>",
        ROUND_TRIPS,
        cyclone_pingpong_async,
    ),
    ("pingpong", "tokio UnixStream", ROUND_TRIPS, tokio_pingpong),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("one") {
        let name = args.get(1).expect("one <case name>");
        let case = CASES.iter().find(|c| c.1 == name).expect("unknown case");
        let took = (case.3)();
        println!(
            "{}: {:.0} ops/s",
            case.1,
            case.2 as f64 / took.as_secs_f64()
        );
        return;
    }
    let group = args.first().cloned().unwrap_or_else(|| "all".into());
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    println!(
        "backend: {} (cyclone); repeats: {repeat}; median shown\n",
        backend()
    );
    println!("| benchmark | implementation | ops/s (median) | vs tokio |");
    println!("|---|---|---:|---:|");
    for g in ["callbacks", "timers", "pingpong"] {
        if group != "all" && group != g {
            continue;
        }
        let cases: Vec<&Case> = CASES.iter().filter(|c| c.0 == g).collect();
        // Interleave the implementations round by round, so a noisy moment
        // on a shared machine hits all of them alike.
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
        for _ in 0..repeat {
            for (k, c) in cases.iter().enumerate() {
                rates[k].push(c.2 as f64 / (c.3)().as_secs_f64());
            }
        }
        let medians: Vec<f64> = rates.into_iter().map(median).collect();
        let tokio_best = cases
            .iter()
            .zip(&medians)
            .filter(|(c, _)| c.1.starts_with("tokio"))
            .map(|(_, m)| *m)
            .fold(0.0, f64::max);
        for (c, m) in cases.iter().zip(&medians) {
            println!("| {g} | {} | {:.0} | {:.2}x |", c.1, m, m / tokio_best);
        }
    }
    println!("\n(vs tokio: against the fastest tokio variant of the same benchmark)");
}
