//! Counters for monitoring: requests by method and status class, request
//! and loop-turn durations, open connections, bytes, accept errors,
//! callbacks and timers run, handler panics. Off until [`enable`]d, when
//! each event costs a relaxed atomic add (and a request or a loop turn
//! two clock reads); off, a relaxed load.
//!
//! Every worker (a forked process or a thread-per-core thread) counts in
//! a slot of its own, in memory shared across `fork` when [`enable`] runs
//! before forking, so that whichever worker is asked reports them all,
//! one series per worker. [`snapshot`] reads them; the web layer renders
//! them as Prometheus text (`cyclone::web::metrics`).
//!
//! ```
//! cyclone::stats::enable(1);
//! let before = cyclone::stats::snapshot();
//! assert_eq!(before[0].worker, 0);
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether counting is on.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// The slots: `SLOTS` of them, from `enable`.
static REGION: AtomicPtr<Slot> = AtomicPtr::new(std::ptr::null_mut());
static SLOTS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot (its worker id); 0 unless a worker set it.
    static WORKER: Cell<usize> = const { Cell::new(0) };
    /// When this thread's loop last woke from its wait (while counting).
    static WOKE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The methods counted by name; any other is `OTHER`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER",
];

/// Status classes: `1xx` … `5xx`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Request duration buckets' upper bounds, in seconds: from 100 µs (a
/// small answer over loopback) to 10 s (the default shutdown grace; a
/// request longer than that is an outlier whatever its cause).
pub const REQUEST_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Loop turn duration buckets' upper bounds, in seconds: the work of one
/// turn (callbacks, tasks, timers, the ready fds' handlers), not its
/// wait. Most turns take microseconds; one past 10 ms delays every
/// connection of the loop, which is what this shows.
pub const TURN_BUCKETS: [f64; 13] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1,
    1.0,
];

/// A histogram in atomics: per-bucket counts (not cumulative; the last is
/// past every bound), the sum in nanoseconds, the count.
#[repr(C)]
struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    over: AtomicU64,
    sum_ns: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[f64; N], d: Duration) {
        let secs = d.as_secs_f64();
        match bounds.iter().position(|&b| secs <= b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn read(&self, bounds: &[f64; N]) -> HistogramSnapshot {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(N + 1);
        for (b, count) in bounds.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*b, cumulative));
        }
        cumulative += self.over.load(Ordering::Relaxed);
        buckets.push((f64::INFINITY, cumulative));
        HistogramSnapshot {
            buckets,
            count: cumulative,
            sum: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// One worker's counters. All-zero bytes are a valid empty slot (what a
/// fresh anonymous mapping holds).
#[repr(C)]
struct Slot {
    requests: [[AtomicU64; 5]; 8],
    request_duration: Histogram<16>,
    http_connections: AtomicU64,
    websocket_connections: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    accept_errors: AtomicU64,
    loop_turn: Histogram<13>,
    callbacks: AtomicU64,
    timers: AtomicU64,
    handler_panics: AtomicU64,
}

/// Turns counting on, with room for `workers` workers (0: one per CPU;
/// at least 1). Call it before forking workers ([`crate::process`]) or
/// starting threads ([`crate::workers`]): the slots are one mapping
/// shared by every process forked after, so any of them can report all.
/// Idempotent; a later call with more workers than the first is refused
/// (the slots cannot move under running workers) and returns `false`.
pub fn enable(workers: usize) -> bool {
    let workers = match workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let have = SLOTS.load(Ordering::Acquire);
    if have > 0 {
        return workers <= have;
    }
    let len = workers * std::mem::size_of::<Slot>();
    // SAFETY: a fresh anonymous shared mapping; no pointer is passed in.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if region == libc::MAP_FAILED {
        tracing::warn!(
            "metrics: cannot map {len} bytes: {}",
            std::io::Error::last_os_error()
        );
        return false;
    }
    // Never unmapped: the counters live as long as the process.
    REGION.store(region.cast(), Ordering::Release);
    SLOTS.store(workers, Ordering::Release);
    ENABLED.store(true, Ordering::Release);
    true
}

/// Whether counting is on.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Makes this thread count as worker `id` (a forked process's task id, a
/// worker thread's index). Ids past the slots count in the last one.
pub fn set_worker(id: usize) {
    WORKER.with(|w| w.set(id));
    // A worker restarted after a crash takes its predecessor's slot: the
    // counters go on, but the connections it had open are gone.
    if let Some(s) = slot() {
        s.http_connections.store(0, Ordering::Relaxed);
        s.websocket_connections.store(0, Ordering::Relaxed);
    }
}

/// This thread's slot, if counting is on.
#[inline]
fn slot() -> Option<&'static Slot> {
    if !enabled() {
        return None;
    }
    let slots = SLOTS.load(Ordering::Relaxed);
    let id = WORKER.with(Cell::get).min(slots - 1);
    // SAFETY: `enable` mapped `slots` zero-initialised `Slot`s (all
    // atomics, valid at zero) and never unmaps them; `id < slots`.
    Some(unsafe { &*REGION.load(Ordering::Relaxed).add(id) })
}

/// When this thread's loop woke for the turn running now, if counting is
/// on: a request's start. One clock read per turn serves every request
/// of the turn (a pipelined batch), and it counts the time a request
/// waited behind the others of its batch, as its client saw it.
#[inline]
pub(crate) fn turn_start() -> Option<Instant> {
    if !enabled() {
        return None; // spare the thread-local on every request
    }
    WOKE.with(Cell::get)
}

/// The loop is about to wait: the turn that ends here is observed.
#[inline]
pub(crate) fn turn_ends() {
    if !enabled() {
        return; // spare the thread-local on every turn
    }
    if let Some(woke) = WOKE.with(Cell::take) {
        loop_turn(woke.elapsed());
    }
}

/// The loop woke from its wait: a turn begins.
#[inline]
pub(crate) fn turn_begins() {
    if enabled() {
        WOKE.with(|w| w.set(Some(Instant::now())));
    }
}

fn method_index(method: &http::Method) -> usize {
    METHODS[..7]
        .iter()
        .position(|m| *m == method.as_str())
        .unwrap_or(7)
}

/// A request answered with `status`; its duration observed if `started`.
#[inline]
pub(crate) fn request(method: Option<&http::Method>, status: u16, started: Option<Instant>) {
    let Some(s) = slot() else { return };
    let m = method.map_or(7, method_index);
    let class = usize::from(status / 100).clamp(1, 5) - 1;
    s.requests[m][class].fetch_add(1, Ordering::Relaxed);
    if let Some(t) = started {
        s.request_duration.observe(&REQUEST_BUCKETS, t.elapsed());
    }
}

/// Counts a connection open for as long as it lives (one byte in the
/// connection's state: whether it was counted, so that a guard made
/// before counting began never takes one off).
pub(crate) struct Open<const WS: bool> {
    counted: bool,
}

impl<const WS: bool> Open<WS> {
    pub(crate) fn new() -> Open<WS> {
        let s = slot();
        if let Some(s) = s {
            counter_of(s, WS).fetch_add(1, Ordering::Relaxed);
        }
        Open {
            counted: s.is_some(),
        }
    }
}

fn counter_of(s: &Slot, ws: bool) -> &AtomicU64 {
    if ws {
        &s.websocket_connections
    } else {
        &s.http_connections
    }
}

impl<const WS: bool> Drop for Open<WS> {
    fn drop(&mut self) {
        if self.counted
            && let Some(s) = slot()
        {
            counter_of(s, WS).fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An HTTP connection open.
pub(crate) type OpenHttp = Open<false>;
/// A WebSocket open.
pub(crate) type OpenWebSocket = Open<true>;

macro_rules! counter {
    ($($(#[$doc:meta])* $name:ident => $field:ident;)*) => {$(
        $(#[$doc])*
        #[inline]
        pub(crate) fn $name(n: u64) {
            if let Some(s) = slot() {
                s.$field.fetch_add(n, Ordering::Relaxed);
            }
        }
    )*};
}

counter! {
    /// Bytes read from sockets and pipes.
    bytes_received => bytes_received;
    /// Bytes written to sockets and pipes.
    bytes_sent => bytes_sent;
    /// `accept` failures (descriptor shortage, aborted connections, …).
    accept_error => accept_errors;
    /// Callbacks the loop ran.
    callbacks_run => callbacks;
    /// Timeouts the loop fired.
    timers_run => timers;
    /// Handlers that panicked (answered 500).
    handler_panic => handler_panics;
}

/// A loop turn's work took `d`.
#[inline]
pub(crate) fn loop_turn(d: Duration) {
    if let Some(s) = slot() {
        s.loop_turn.observe(&TURN_BUCKETS, d);
    }
}

/// A histogram read: cumulative `(upper bound, count)` pairs ending with
/// `+Inf`, the count, and the sum in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSnapshot {
    /// `(le, observations at or below it)`, the last `le` infinite.
    pub buckets: Vec<(f64, u64)>,
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

/// One worker's counters, read.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerSnapshot {
    /// The worker's id (its `worker` label).
    pub worker: usize,
    /// Requests answered: `[method][status class]`, indexed as [`METHODS`]
    /// and [`STATUS_CLASSES`].
    pub requests: [[u64; 5]; 8],
    /// Time from the loop turn that read a request's head to its
    /// response (its head, for a streamed one), in seconds.
    pub request_duration: HistogramSnapshot,
    /// HTTP connections open (a WebSocket's counts in the next field).
    pub http_connections: u64,
    /// WebSockets open.
    pub websocket_connections: u64,
    /// Bytes read from sockets and pipes.
    pub bytes_received: u64,
    /// Bytes written to them.
    pub bytes_sent: u64,
    /// Failed `accept` calls.
    pub accept_errors: u64,
    /// The work of each loop turn, in seconds.
    pub loop_turn: HistogramSnapshot,
    /// Callbacks run.
    pub callbacks: u64,
    /// Timeouts fired.
    pub timers: u64,
    /// Handlers that panicked.
    pub handler_panics: u64,
}

/// Every worker's counters (empty when counting is off).
pub fn snapshot() -> Vec<WorkerSnapshot> {
    if !enabled() {
        return Vec::new();
    }
    let slots = SLOTS.load(Ordering::Acquire);
    let region = REGION.load(Ordering::Acquire);
    (0..slots)
        .map(|worker| {
            // SAFETY: as in `slot`: `worker < slots`, mapped and zeroed.
            let s = unsafe { &*region.add(worker) };
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            WorkerSnapshot {
                worker,
                requests: std::array::from_fn(|m| std::array::from_fn(|c| load(&s.requests[m][c]))),
                request_duration: s.request_duration.read(&REQUEST_BUCKETS),
                http_connections: load(&s.http_connections),
                websocket_connections: load(&s.websocket_connections),
                bytes_received: load(&s.bytes_received),
                bytes_sent: load(&s.bytes_sent),
                accept_errors: load(&s.accept_errors),
                loop_turn: s.loop_turn.read(&TURN_BUCKETS),
                callbacks: load(&s.callbacks),
                timers: load(&s.timers),
                handler_panics: load(&s.handler_panics),
            }
        })
        .collect()
}
