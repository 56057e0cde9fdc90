//! Many fetches at once from one loop: `CONCURRENCY` tasks share one
//! [`HttpClient`] and fetch `URL` over and over for `SECONDS`, then the
//! totals are printed: requests, the process's CPU seconds, and the
//! connections the pool opened. `bench/httpclient.sh` runs it against
//! nginx beside hyper's, reqwest's and Tornado's clients.
//!
//! ```text
//! cargo run --release --example fetch_load -- http://127.0.0.1:8080/ 64 5
//! requests=812345 seconds=5.000 cpu_seconds=4.981 connections_opened=64 errors=0
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cyclone::httpclient::{ClientConfig, HttpClient};

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "http://127.0.0.1:8080/".into());
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);

    let lp = cyclone::IOLoop::new().expect("loop");
    let client = HttpClient::with_config(ClientConfig {
        max_clients: concurrency,
        max_connections_per_host: concurrency,
        ..ClientConfig::default()
    });
    let done = Rc::new(Cell::new(0u64));
    let errors = Rc::new(Cell::new(0u64));
    let (c, d, e) = (client.clone(), done.clone(), errors.clone());
    let (elapsed, cpu) = lp.run_sync(async move {
        // One warm-up round opens the connections, as the peers' do.
        let warm: Vec<_> = (0..concurrency)
            .map(|_| {
                cyclone::spawn(fetch_until(
                    c.clone(),
                    url.clone(),
                    Instant::now(),
                    Rc::default(),
                    Rc::default(),
                ))
            })
            .collect();
        for w in warm {
            let _ = w.await;
        }
        let (start, cpu0) = (Instant::now(), cpu_seconds());
        let end = start + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                cyclone::spawn(fetch_until(
                    c.clone(),
                    url.clone(),
                    end,
                    d.clone(),
                    e.clone(),
                ))
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        (start.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
    });
    println!(
        "requests={} seconds={elapsed:.3} cpu_seconds={cpu:.3} connections_opened={} errors={}",
        done.get(),
        client.stats().connections_opened,
        errors.get()
    );
}

/// Fetches `url` until `end` (at least once), counting.
async fn fetch_until(
    client: HttpClient,
    url: String,
    end: Instant,
    done: Rc<Cell<u64>>,
    errors: Rc<Cell<u64>>,
) {
    loop {
        match client.get(&url).await {
            Ok(r) if r.status.is_success() => done.set(done.get() + 1),
            _ => errors.set(errors.get() + 1),
        }
        if Instant::now() >= end {
            return;
        }
    }
}
