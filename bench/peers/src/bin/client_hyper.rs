//! hyper's pooled client as its users set it up, as a load generator:
//! `hyper_util::client::legacy::Client` with an `HttpConnector` on tokio's
//! current_thread runtime. `CONCURRENCY` tasks share one client and GET
//! `URL` over and over, each reading the whole body, for `SECONDS` after a
//! warm-up round (one request per task, which opens the connections).
//! Prints the same line as Cyclone's `examples/fetch_load.rs`, for
//! bench/httpclient.sh:
//!
//! ```text
//! client_hyper URL CONCURRENCY SECONDS
//! requests=812345 seconds=5.000 cpu_seconds=4.981 connections_opened=- errors=0
//! ```
//!
//! `connections_opened` is `-`: the client does not count its
//! connections (the script takes nginx's count instead).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

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

/// GETs `url` until `end` (at least once); returns (successes, errors).
async fn fetch_until(client: HttpClient, url: Uri, end: Instant) -> (u64, u64) {
    let (mut done, mut errors) = (0, 0);
    loop {
        let ok = match client.get(url.clone()).await {
            Ok(resp) => {
                let success = resp.status().is_success();
                // The whole body, as a user reading the answer would.
                resp.into_body().collect().await.is_ok() && success
            }
            Err(_) => false,
        };
        if ok {
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
async fn round(client: &HttpClient, url: &Uri, concurrency: usize, end: Instant) -> (u64, u64) {
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| tokio::spawn(fetch_until(client.clone(), url.clone(), end)))
        .collect();
    let mut sum = (0, 0);
    for t in tasks {
        // A panicked task is a bug in this program, not a failed request.
        let (d, e) = t.await.expect("fetch task panicked");
        sum = (sum.0 + d, sum.1 + e);
    }
    sum
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: Uri = args
        .get(1)
        .map_or("http://127.0.0.1:8080/", String::as_str)
        .parse()
        .unwrap_or_else(|e| panic!("URL: {e}"));
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(64);
    let seconds: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5.0);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let (requests, errors, elapsed, cpu) = rt.block_on(async {
        let mut connector = HttpConnector::new();
        // As Cyclone's and reqwest's clients do: a request is one small
        // write, not worth Nagle's wait.
        connector.set_nodelay(true);
        let client: HttpClient = Client::builder(TokioExecutor::new())
            // Every task's connection stays pooled between its requests.
            .pool_max_idle_per_host(concurrency)
            .build(connector);
        round(&client, &url, concurrency, Instant::now()).await;
        let (start, cpu0) = (Instant::now(), cpu_seconds());
        let (done, errors) = round(&client, &url, concurrency, start + Duration::from_secs_f64(seconds)).await;
        (done, errors, start.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
    });
    println!("requests={requests} seconds={elapsed:.3} cpu_seconds={cpu:.3} connections_opened=- errors={errors}");
}
