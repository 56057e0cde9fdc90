//! The counters of [`crate::stats`] in Prometheus's text format, one
//! series per worker (`worker` label), for a scraper: mount them on an
//! [`Application`] with [`Application::metrics`], or serve [`render`]
//! yourself. `cyclone serve --metrics ADDRESS:PORT` serves them on a
//! listener of their own.
//!
//! The exposition is written by `prometheus-client` (the Prometheus
//! project's Rust client): the format's escaping, `_total`/`_bucket`
//! suffixes, `+Inf` and `# EOF` are its business; the counting is ours,
//! in memory every worker process shares.
//!
//! ```
//! use cyclone::web::Application;
//!
//! cyclone::stats::enable(1); // before forking or starting threads
//! let app = Application::new().metrics("/metrics");
//! # drop(app);
//! ```
//!
//! | series | type | labels |
//! |---|---|---|
//! | `cyclone_http_requests_total` | counter | `worker`, `method`, `status` (`2xx`…) |
//! | `cyclone_http_request_duration_seconds` | histogram | `worker` |
//! | `cyclone_open_connections` | gauge | `worker`, `protocol` (`http`, `websocket`) |
//! | `cyclone_received_bytes_total`, `cyclone_sent_bytes_total` | counter | `worker` |
//! | `cyclone_accept_errors_total` | counter | `worker` |
//! | `cyclone_loop_turn_duration_seconds` | histogram | `worker` |
//! | `cyclone_loop_callbacks_total`, `cyclone_loop_timers_total` | counter | `worker` |
//! | `cyclone_handler_panics_total` | counter | `worker` |

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::Application;
use crate::http1::Response;
use crate::stats::{self, HistogramSnapshot, METHODS, STATUS_CLASSES, WorkerSnapshot};

/// The media type of [`render`]'s text: OpenMetrics 1.0, which
/// Prometheus reads (and prefers) since 2.5.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every worker's counters as exposition text (only `# EOF` when
/// [`stats::enable`] was not called).
pub fn render() -> String {
    let mut registry = Registry::with_prefix("cyclone");
    registry.register_collector(Box::new(Snapshot(stats::snapshot())));
    let mut out = String::with_capacity(16 << 10);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// The metrics as a response.
fn response() -> Response {
    let mut resp = Response::text(render());
    resp.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(CONTENT_TYPE),
    );
    resp
}

impl Application {
    /// Serves the metrics ([`render`]) at `path` (GET and HEAD). Counting
    /// starts with [`stats::enable`], which this calls with one worker if
    /// nobody did: call it first, with the number of workers, for
    /// `--processes`/`--threads`. Public by default: mount it on an
    /// application behind your own access control, or on its own
    /// listener, as `cyclone serve --metrics` does.
    pub fn metrics(self, path: &str) -> Application {
        stats::enable(1);
        self.route(path, |_req: super::Request| async { response() })
    }
}

/// One scrape's snapshot, encoded.
#[derive(Debug)]
struct Snapshot(Vec<WorkerSnapshot>);

type Labels = Vec<(&'static str, String)>;

impl Snapshot {
    /// One family: `name`'s descriptor, then a sample per label set.
    fn family<T>(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        kind: MetricType,
        samples: impl IntoIterator<Item = (Labels, T)>,
        encode: impl Fn(&T, prometheus_client::encoding::MetricEncoder) -> std::fmt::Result,
    ) -> std::fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
        for (labels, value) in samples {
            encode(&value, metric.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn counter(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        unit: Option<&Unit>,
        value: impl Fn(&WorkerSnapshot) -> u64,
    ) -> std::fmt::Result {
        let samples = self.0.iter().map(|w| (worker(w), value(w)));
        Self::family(
            encoder,
            name,
            help,
            unit,
            MetricType::Counter,
            samples,
            |v, e| ConstCounter::new(*v).encode(e),
        )
    }

    fn histogram(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        value: impl Fn(&WorkerSnapshot) -> &HistogramSnapshot,
    ) -> std::fmt::Result {
        let samples = self.0.iter().map(|w| (worker(w), value(w)));
        Self::family(
            encoder,
            name,
            help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
            samples,
            |h, mut e| {
                // The encoder accumulates: it takes each bucket's own count,
                // and f64::MAX for +Inf.
                let mut below = 0;
                let buckets: Vec<(f64, u64)> = h
                    .buckets
                    .iter()
                    .map(|&(le, cumulative)| {
                        let own = cumulative - below;
                        below = cumulative;
                        (if le.is_finite() { le } else { f64::MAX }, own)
                    })
                    .collect();
                e.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)
            },
        )
    }
}

fn worker(w: &WorkerSnapshot) -> Labels {
    vec![("worker", w.worker.to_string())]
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        let requests = self.0.iter().flat_map(|w| {
            METHODS.iter().enumerate().flat_map(move |(m, method)| {
                STATUS_CLASSES
                    .iter()
                    .enumerate()
                    .map(move |(c, class)| (w, m, c, method, class))
            })
        });
        let requests = requests
            // A method never seen is left out, not a row of zeros.
            .filter(|(w, m, ..)| w.requests[*m].iter().any(|&n| n > 0))
            .map(|(w, m, c, method, class)| {
                let mut labels = worker(w);
                labels.push(("method", (*method).to_string()));
                labels.push(("status", (*class).to_string()));
                (labels, w.requests[m][c])
            });
        Self::family(
            e,
            "http_requests",
            "HTTP requests answered, by method and status class.",
            None,
            MetricType::Counter,
            requests,
            |v, enc| ConstCounter::new(*v).encode(enc),
        )?;
        self.histogram(
            e,
            "http_request_duration",
            "Time from the loop turn that read a request's head to its response (its head, if streamed).",
            |w| &w.request_duration,
        )?;
        let open = self.0.iter().flat_map(|w| {
            [
                ("http", w.http_connections),
                ("websocket", w.websocket_connections),
            ]
            .map(|(protocol, n)| {
                let mut labels = worker(w);
                labels.push(("protocol", protocol.to_string()));
                (labels, n as i64)
            })
        });
        Self::family(
            e,
            "open_connections",
            "Connections open, by protocol (an upgraded one counts as a WebSocket).",
            None,
            MetricType::Gauge,
            open,
            |v, enc| ConstGauge::new(*v).encode(enc),
        )?;
        let bytes = Some(&Unit::Bytes);
        self.counter(e, "received", "Bytes read from connections.", bytes, |w| {
            w.bytes_received
        })?;
        self.counter(e, "sent", "Bytes written to connections.", bytes, |w| {
            w.bytes_sent
        })?;
        self.counter(e, "accept_errors", "Failed accept calls.", None, |w| {
            w.accept_errors
        })?;
        self.histogram(
            e,
            "loop_turn_duration",
            "The work of one loop turn (callbacks, tasks, timers, ready handlers), not its wait.",
            |w| &w.loop_turn,
        )?;
        self.counter(e, "loop_callbacks", "Callbacks the loop ran.", None, |w| {
            w.callbacks
        })?;
        self.counter(e, "loop_timers", "Timeouts the loop fired.", None, |w| {
            w.timers
        })?;
        self.counter(
            e,
            "handler_panics",
            "Handlers that panicked (answered 500, or a WebSocket closed with 1011).",
            None,
            |w| w.handler_panics,
        )
    }
}
