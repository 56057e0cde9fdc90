//! `cyclone serve --metrics`: scraped and parsed as Prometheus text while
//! requests are made, on every poller backend: counters rise by exactly
//! the requests made, histograms' buckets are cumulative and end at the
//! count, gauges follow open connections; every worker has its series
//! (`--processes`, `--threads`); the public port does not serve them.
//! (interop/metrics.sh parses the same text with Prometheus's own Python
//! parser.)

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use common::HANG;

/// A `cyclone serve --metrics` process: its public and metrics ports.
struct Server {
    child: Child,
    port: u16,
    metrics: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the child this test started.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(poller: &str, extra: &[&str]) -> Server {
    let metrics = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cyclone"));
    cmd.args(["serve", "--port", "0", "--access-log", "off"])
        .args(["--log-level", "warn", "--poller", poller])
        .args(["--metrics", &format!("127.0.0.1:{metrics}")])
        .args(extra)
        .env_remove("CYCLONE_POLLER")
        .stdin(Stdio::null());
    let (child, line) = common::spawn_with_first_line(&mut cmd);
    let at = line.find("127.0.0.1:").expect("an address") + "127.0.0.1:".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Server {
        child,
        port: digits.parse().unwrap(),
        metrics,
    }
}

/// `GET path` on a new connection: (status, headers and body as text).
fn get(port: u16, path: &str) -> (u16, String) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(HANG)).unwrap();
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    (text[9..12].parse().unwrap(), text)
}

/// One scrape: every sample, keyed by its name and labels as written
/// (labels sorted), after checking the text's shape line by line.
type Samples = HashMap<String, f64>;

fn scrape(s: &Server) -> Samples {
    let (status, text) = get(s.metrics, "/metrics");
    assert_eq!(status, 200, "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    parse(body)
}

/// A strict reading of the exposition text: `# HELP`/`# TYPE`/`# UNIT`
/// lines, samples `name{l="v",...} value`, `# EOF` last.
fn parse(body: &str) -> Samples {
    let mut samples = Samples::new();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "no # EOF at the end");
    for line in &lines[..lines.len() - 1] {
        if let Some(meta) = line.strip_prefix("# ") {
            let kind = meta.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "{line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').expect(line);
                let mut labels: Vec<&str> = rest.split(',').collect();
                for l in &labels {
                    let (k, v) = l.split_once('=').expect(line);
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                    assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
                }
                labels.sort();
                (name, labels.join(","))
            }
            None => (series, String::new()),
        };
        assert!(name.starts_with("cyclone_"), "{line}");
        let key = format!("{name}{{{labels}}}");
        assert!(samples.insert(key, value).is_none(), "twice: {line}");
    }
    samples
}

fn value(samples: &Samples, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

const GET_2XX: &str = r#"cyclone_http_requests_total{method="GET",status="2xx",worker="0"}"#;
const GET_4XX: &str = r#"cyclone_http_requests_total{method="GET",status="4xx",worker="0"}"#;

/// The buckets of `histogram` for `worker`, in `le` order.
fn buckets(samples: &Samples, histogram: &str, worker: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{histogram}_bucket{{");
    let mut found: Vec<(f64, f64)> = samples
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix) && k.contains(&format!("worker=\"{worker}\"")))
        .map(|(k, v)| {
            let le = k.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, *v)
        })
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    found
}

fn counters_rise_by_the_requests_made(poller: &str) {
    let s = serve(poller, &[]);
    let before = scrape(&s);
    for _ in 0..7 {
        assert_eq!(get(s.port, "/hello").0, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(s.port, "/nowhere").0, 404);
    }
    let after = scrape(&s);
    // The first scrape was a GET answered 200 too, counted once answered.
    assert_eq!(value(&after, GET_2XX) - value(&before, GET_2XX), 7.0 + 1.0);
    assert_eq!(value(&after, GET_4XX) - value(&before, GET_4XX), 3.0);
    let count = r#"cyclone_http_request_duration_seconds_count{worker="0"}"#;
    assert_eq!(value(&after, count) - value(&before, count), 11.0);
    let received = r#"cyclone_received_bytes_total{worker="0"}"#;
    assert!(value(&after, received) > value(&before, received));
    let turns = r#"cyclone_loop_turn_duration_seconds_count{worker="0"}"#;
    assert!(value(&after, turns) > value(&before, turns));
}

fn histogram_buckets_are_cumulative_and_end_at_the_count(poller: &str) {
    let s = serve(poller, &[]);
    for _ in 0..5 {
        get(s.port, "/hello");
    }
    let m = scrape(&s);
    for h in [
        "cyclone_http_request_duration_seconds",
        "cyclone_loop_turn_duration_seconds",
    ] {
        let b = buckets(&m, h, "0");
        assert!(b.len() > 5, "{h}: {b:?}");
        assert!(
            b.windows(2).all(|w| w[0].1 <= w[1].1),
            "{h} not cumulative: {b:?}"
        );
        let last = b.last().unwrap();
        assert_eq!(last.0, f64::INFINITY, "{h}");
        let count = value(&m, &format!("{h}_count{{worker=\"0\"}}"));
        assert_eq!(last.1, count, "{h}: +Inf bucket is not the count");
        assert!(count > 0.0, "{h}: nothing observed");
    }
}

fn the_open_connections_gauge_follows_connections(poller: &str) {
    let s = serve(poller, &[]);
    let key = r#"cyclone_open_connections{protocol="http",worker="0"}"#;
    // The scrape's own connection is open while it is answered.
    let idle = value(&scrape(&s), key);
    let held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            // A request answered: the server has surely accepted it.
            c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf).unwrap();
            c
        })
        .collect();
    assert_eq!(value(&scrape(&s), key), idle + 3.0);
    drop(held);
    common::wait_until("the closed connections to be counted", || {
        value(&scrape(&s), key) == idle
    });
}

per_backend! {
    fn metrics_counters_rise_by_the_requests_made(lp) {
        counters_rise_by_the_requests_made(lp.backend().name());
    }

    fn metrics_histogram_buckets_are_cumulative_and_end_at_the_count(lp) {
        histogram_buckets_are_cumulative_and_end_at_the_count(lp.backend().name());
    }

    fn metrics_open_connections_gauge_follows_connections(lp) {
        the_open_connections_gauge_follows_connections(lp.backend().name());
    }
}

/// Requests until every worker has answered some (the kernel picks).
fn every_worker_has_its_series(extra: &[&str]) {
    let s = serve("epoll", extra);
    common::wait_until("both workers to answer requests", || {
        get(s.port, "/hello");
        let m = scrape(&s);
        ["0", "1"].iter().all(|w| {
            let key =
                format!(r#"cyclone_http_requests_total{{method="GET",status="2xx",worker="{w}"}}"#);
            value(&m, &key) > 0.0
        })
    });
}

#[test]
fn each_forked_worker_has_its_own_series() {
    every_worker_has_its_series(&["--processes", "2"]);
}

#[test]
fn each_worker_thread_has_its_own_series() {
    every_worker_has_its_series(&["--threads", "2"]);
}

#[test]
fn the_public_port_does_not_serve_the_metrics() {
    let s = serve("epoll", &[]);
    assert_eq!(get(s.port, "/metrics").0, 404);
}

#[test]
fn a_handler_panic_is_counted() {
    use cyclone::http1::{HttpServer, Response};
    cyclone::stats::enable(1);
    let panics = || -> u64 {
        cyclone::stats::snapshot()
            .iter()
            .map(|w| w.handler_panics)
            .sum()
    };
    let before = panics();
    let lp = cyclone::IOLoop::new().unwrap();
    let server = HttpServer::new(|_req| async {
        if true {
            panic!("a handler bug");
        }
        Response::text("never")
    });
    let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
    let client = std::thread::spawn(move || get(port, "/").0);
    let status = lp.run_sync(async move {
        common::thread_finished(&client).await;
        client.join().unwrap()
    });
    assert_eq!(status, 500);
    assert_eq!(panics() - before, 1);
}
