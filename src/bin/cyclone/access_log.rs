//! The access log of `cyclone serve`, cheap enough to leave on: the web
//! layer's access lines (target `cyclone::access`) are formatted into a
//! buffer of the loop's thread and handed, [`HANDOVER_AFTER`] after the
//! first of them (or at [`FLUSH_AT`]), to a writer thread that writes
//! them to stdout or a file.
//! The loop never waits on a slow terminal, pipe or disk: past
//! [`MAX_QUEUED`] bytes waiting for the writer, lines are dropped, counted
//! and reported on stderr, rather than stalling the server. A line costs
//! its formatting and a copy; a turn of many requests costs one `write`.
//! Lines still buffered are written at exit ([`finish`]).

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cyclone::IOLoop;
use tracing_subscriber::fmt::MakeWriter;

/// Lines are handed over at most this long after the first of a batch:
/// soon enough to read them as they happen, and rarely enough that waking
/// the writer thread (a futex call, 4% of a pipelined request's cost when
/// it was done every loop turn) costs nothing measurable.
const HANDOVER_AFTER: Duration = Duration::from_millis(50);

/// A batch is handed over at once past this many bytes: under load the
/// batches are this size, one hand-over (and one wake of the writer
/// thread) per ~2,800 lines.
const FLUSH_AT: usize = 256 * 1024;

/// The most bytes waiting for the writer thread: about a second of lines
/// at 100,000 requests/s. Past it, a batch is dropped and counted.
const MAX_QUEUED: usize = 8 * 1024 * 1024;

/// Batches in the channel: the byte bound above is the real limit; this
/// only keeps the channel itself bounded.
const MAX_BATCHES: usize = 4096;

/// How often dropped lines are reported (at most).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Where the access lines go (`--access-log FILE|-|off`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    File(PathBuf),
    Off,
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Stdout => f.write_str("-"),
            Destination::File(p) => write!(f, "{}", p.display()),
            Destination::Off => f.write_str("off"),
        }
    }
}

impl std::str::FromStr for Destination {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Destination, Self::Err> {
        Ok(match s {
            "-" => Destination::Stdout,
            "off" => Destination::Off,
            path => Destination::File(PathBuf::from(path)),
        })
    }
}

/// The writer thread's end: the batches and where they go.
struct Shared {
    tx: SyncSender<Vec<u8>>,
    /// Bytes handed over and not yet written; the writer says each
    /// batch it wrote through `written`.
    queued: Mutex<usize>,
    written: Condvar,
    dropped: AtomicU64,
}

static SHARED: OnceLock<Shared> = OnceLock::new();
static OPEN: OnceLock<Mutex<Option<Box<dyn Write + Send>>>> = OnceLock::new();

/// A thread's lines not yet handed over; handed over when the thread
/// ends too (a `--threads` worker that stops).
struct Batch(RefCell<Vec<u8>>);

impl Drop for Batch {
    fn drop(&mut self) {
        hand_over(std::mem::take(self.0.get_mut()));
    }
}

thread_local! {
    /// This thread's lines not yet handed over.
    static BUF: Batch = const { Batch(RefCell::new(Vec::new())) };
    /// A hand-over is scheduled on this thread's loop.
    static SCHEDULED: Cell<bool> = const { Cell::new(false) };
    /// When dropped lines were last reported.
    static REPORTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Opens the destination (a file is created or appended to) for the
/// writer thread, which starts with the first line (after any fork, so
/// each worker process has its own).
pub fn open(destination: &Destination) -> io::Result<()> {
    let out: Box<dyn Write + Send> = match destination {
        Destination::Stdout => Box::new(io::stdout()),
        Destination::File(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        Destination::Off => return Ok(()),
    };
    let _ = OPEN.set(Mutex::new(Some(out)));
    Ok(())
}

fn shared() -> Option<&'static Shared> {
    if let Some(s) = SHARED.get() {
        return Some(s);
    }
    let out = OPEN.get()?.lock().ok()?.take()?;
    let (tx, rx) = sync_channel(MAX_BATCHES);
    std::thread::Builder::new()
        .name("cyclone-access-log".into())
        .spawn(move || write_batches(rx, out))
        .ok()?;
    let _ = SHARED.set(Shared {
        tx,
        queued: Mutex::new(0),
        written: Condvar::new(),
        dropped: AtomicU64::new(0),
    });
    SHARED.get()
}

/// The writer thread: each batch in one `write` (or a few), as it comes.
fn write_batches(rx: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>) {
    while let Ok(batch) = rx.recv() {
        let failed = out.write_all(&batch).and_then(|()| out.flush()).is_err();
        if let Some(s) = SHARED.get() {
            if let Ok(mut q) = s.queued.lock() {
                *q = q.saturating_sub(batch.len());
            }
            s.written.notify_all();
        }
        if failed {
            // A closed stdout or a full disk: the server keeps serving.
            return;
        }
    }
}

/// Hands this thread's buffered lines to the writer thread.
pub fn flush() {
    SCHEDULED.with(|s| s.set(false));
    let batch = BUF.with(|b| {
        let mut b = b.0.borrow_mut();
        // The next batch starts with this one's room: no regrowing.
        let room = b.len().min(FLUSH_AT + FLUSH_AT / 4);
        std::mem::replace(&mut *b, Vec::with_capacity(room))
    });
    hand_over(batch);
}

/// Queues `batch` for the writer thread, or drops and counts its lines.
fn hand_over(batch: Vec<u8>) {
    if batch.is_empty() {
        return;
    }
    let Some(s) = shared() else { return };
    let len = batch.len();
    let admitted = match s.queued.lock() {
        Ok(mut q) if *q + len <= MAX_QUEUED => {
            *q += len;
            true
        }
        _ => false,
    };
    let batch = if admitted {
        match s.tx.try_send(batch) {
            Ok(()) => return,
            Err(e) => {
                if let Ok(mut q) = s.queued.lock() {
                    *q -= len;
                }
                match e {
                    TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
                }
            }
        }
    } else {
        batch
    };
    let lines = batch.iter().filter(|&&b| b == b'\n').count() as u64;
    s.dropped.fetch_add(lines, Ordering::Relaxed);
    report_dropped(s);
}

/// Says on stderr how many lines were dropped, at most once a second.
fn report_dropped(s: &Shared) {
    let now = Instant::now();
    let due = REPORTED.with(|r| match r.get() {
        Some(at) if now.duration_since(at) < REPORT_EVERY => false,
        _ => {
            r.set(Some(now));
            true
        }
    });
    if due {
        // Not `eprintln!`, which panics when stderr is gone: the server
        // runs on regardless.
        let _ = writeln!(
            io::stderr(),
            "cyclone: access log: {} lines dropped so far: its output does not keep up",
            s.dropped.load(Ordering::Relaxed)
        );
    }
}

/// Writes what is buffered on this thread and waits (a second at most)
/// for the writer thread to finish: at exit, no line is lost.
pub fn finish() {
    flush();
    let Some(s) = SHARED.get() else { return };
    let Ok(queued) = s.queued.lock() else { return };
    // Bounded: a writer stuck on a full pipe must not hold the exit.
    let _ = s
        .written
        .wait_timeout_while(queued, Duration::from_secs(1), |q| *q > 0);
}

/// The `MakeWriter` of the access lines' layer.
#[derive(Clone, Copy)]
pub struct Buffered;

/// Appends a line to this thread's buffer.
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let len = BUF.with(|b| {
            let mut b = b.0.borrow_mut();
            b.extend_from_slice(data);
            b.len()
        });
        appended(len);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// After a line went into the buffer (now `len` bytes): hands it over
/// now past [`FLUSH_AT`], else [`HANDOVER_AFTER`] after the batch's first
/// line; with no loop running, at once.
fn appended(len: usize) {
    if len >= FLUSH_AT {
        flush();
    } else if !SCHEDULED.with(|s| s.replace(true)) {
        match IOLoop::try_current() {
            Ok(lp) if lp.is_running() => {
                lp.call_later(HANDOVER_AFTER, flush);
            }
            _ => flush(),
        }
    }
}

/// The access lines' layer where no colours are wanted (a file, a pipe):
/// each line formatted straight into the buffer, in the format
/// `tracing_subscriber::fmt` writes (`2026-12-06T10:24:17.229525Z  INFO
/// cyclone::access: 200 GET /hello (127.0.0.1) 0.01ms`) at a fraction of
/// its cost: the date and time to the second are formatted once a second,
/// and the message is not escaped, since every part a client controls is
/// checked visible ASCII before it gets here (the method and target by
/// the HTTP parser, the address by its type).
pub struct Lines;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let len = BUF.with(|b| {
            let mut b = b.0.borrow_mut();
            timestamp(&mut b);
            b.extend_from_slice(match *event.metadata().level() {
                tracing::Level::ERROR => b" ERROR ",
                tracing::Level::WARN => b"  WARN ",
                tracing::Level::INFO => b"  INFO ",
                tracing::Level::DEBUG => b" DEBUG ",
                tracing::Level::TRACE => b" TRACE ",
            });
            b.extend_from_slice(event.metadata().target().as_bytes());
            b.extend_from_slice(b": ");
            event.record(&mut Message(&mut b));
            b.push(b'\n');
            b.len()
        });
        appended(len);
    }
}

/// Writes an event's fields as the default format does: the message,
/// then any other field as ` name=value`.
struct Message<'a>(&'a mut Vec<u8>);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

thread_local! {
    /// The seconds `STAMP` is for, and `YYYY-MM-DDTHH:MM:SS.`.
    static STAMP: Cell<(u64, [u8; 20])> = const { Cell::new((u64::MAX, [0; 20])) };
}

/// Appends the UTC time as RFC 3339 with microseconds (`...:17.229525Z`).
fn timestamp(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (cached, mut prefix) = STAMP.with(Cell::get);
    if cached != secs {
        prefix = date_time(secs);
        STAMP.with(|s| s.set((secs, prefix)));
    }
    out.extend_from_slice(&prefix);
    let micros = now.subsec_micros();
    let mut digits = [b'0'; 6];
    let mut n = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
    out.push(b'Z');
}

/// `YYYY-MM-DDTHH:MM:SS.` for seconds since the epoch (UTC), by Howard
/// Hinnant's days-to-civil algorithm.
fn date_time(secs: u64) -> [u8; 20] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = [0u8; 20];
    let text = format!("{year:04}-{month:02}-{d:02}T{h:02}:{m:02}:{s:02}.");
    let n = text.len().min(20);
    out[..n].copy_from_slice(&text.as_bytes()[..n]);
    out
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_and_time_are_utc_rfc_3339() {
        assert_eq!(&date_time(0), b"1970-01-01T00:00:00.");
        // 2026-12-06T10:24:17Z, as `date -u -d @1796552657` says.
        assert_eq!(&date_time(1_796_552_657), b"2026-12-06T10:24:17.");
        // A leap day.
        assert_eq!(&date_time(951_782_400), b"2000-02-29T00:00:00.");
    }
}
