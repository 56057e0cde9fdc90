//! What the client load generators (`client_hyper`, `client_reqwest`)
//! share, so that they measure the same way as Cyclone's
//! `examples/fetch_load.rs`: the arguments `URL CONCURRENCY SECONDS`,
//! `CONCURRENCY` tasks fetching in a loop on tokio's current_thread
//! runtime after a warm-up round (one request per task, which opens the
//! connections), the process's CPU time over the measured window, and
//! the one-line report bench/httpclient.sh reads:
//!
//! ```text
//! requests=812345 seconds=5.000 cpu_seconds=4.981 connections_opened=- errors=0
//! ```
//!
//! `connections_opened` is `-`: these clients do not count their
//! connections (the script takes nginx's count instead).

use std::future::Future;
use std::time::{Duration, Instant};

/// `URL CONCURRENCY SECONDS`, with defaults.
pub struct Args {
    pub url: String,
    pub concurrency: usize,
    pub seconds: f64,
}

pub fn args() -> Args {
    let args: Vec<String> = std::env::args().collect();
    Args {
        url: args.get(1).cloned().unwrap_or_else(|| "http://127.0.0.1:8080/".into()),
        concurrency: args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64),
        seconds: args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0),
    }
}

/// The process's user + system CPU seconds so far (getrusage).
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// Calls `fetch` (true: a successful response, body read) until `end`,
/// at least once; returns (successes, errors).
async fn fetch_until<F, Fut>(fetch: F, end: Instant) -> (u64, u64)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let (mut done, mut errors) = (0, 0);
    loop {
        if fetch().await {
            done += 1;
        } else {
            errors += 1;
        }
        if Instant::now() >= end {
            return (done, errors);
        }
    }
}

/// Runs `concurrency` fetch loops until `end`; returns their summed counts.
async fn round<F, Fut>(fetch: &F, concurrency: usize, end: Instant) -> (u64, u64)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(fetch_until(fetch.clone(), end)))
        .collect();
    let mut sum = (0, 0);
    for t in tasks {
        // A panicked task is a bug in this program, not a failed request.
        let (d, e) = t.await.expect("fetch task panicked");
        sum = (sum.0 + d, sum.1 + e);
    }
    sum
}

/// Builds the client with `setup` on a current_thread runtime, warms up,
/// measures `args.seconds` of `fetch` loops and prints the report line.
pub fn run<C, F, Fut>(args: &Args, setup: impl FnOnce() -> C, fetch: impl Fn(&C) -> F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let (requests, errors, elapsed, cpu) = rt.block_on(async {
        let client = setup();
        let fetch = fetch(&client);
        round(&fetch, args.concurrency, Instant::now()).await;
        let (start, cpu0) = (Instant::now(), cpu_seconds());
        let end = start + Duration::from_secs_f64(args.seconds);
        let (done, errors) = round(&fetch, args.concurrency, end).await;
        (done, errors, start.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
    });
    println!("requests={requests} seconds={elapsed:.3} cpu_seconds={cpu:.3} connections_opened=- errors={errors}");
}
