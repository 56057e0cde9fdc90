//! The access log of `cyclone serve`, cheap enough to leave on: the web
//! layer's access lines (target `cyclone::access`) are formatted into a
//! buffer of the loop's thread and handed, [`HANDOVER_AFTER`] after the
//! first of them (or at [`FLUSH_AT`]), to a writer thread that writes
//! them to stdout or a file.
//! The loop never waits on a slow terminal, pipe or disk: past
//! [`MAX_QUEUED`] bytes waiting for the writer, lines are dropped, counted
//! and reported on stderr (by the writer thread), rather than stalling the
//! server. A line costs
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

/// The writer thread's end, made once by the first hand-over (threads
/// that hand over at the same moment wait for it); `None` with no
/// destination, or if the thread could not be started.
static SHARED: OnceLock<Option<Shared>> = OnceLock::new();
static OPEN: OnceLock<Mutex<Option<Box<dyn Write + Send>>>> = OnceLock::new();

/// The largest write the destination keeps whole. Stdout may be a pipe
/// shared by several worker processes (`--processes`), which keeps a write
/// whole only up to `PIPE_BUF` (4 KiB): batches go out in pieces of at
/// most that, cut at line ends, so no line is torn. A file (`--access-log
/// FILE`, opened for appending, or a stdout redirected to one) takes each
/// write whole.
static WHOLE_WRITES: OnceLock<usize> = OnceLock::new();

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
}

/// Opens the destination (a file is created or appended to) for the
/// writer thread, which starts with the first line (after any fork, so
/// each worker process has its own).
pub fn open(destination: &Destination) -> io::Result<()> {
    let out: Box<dyn Write + Send> = match destination {
        Destination::Stdout => {
            // A regular file (a shell's `>`) serialises writes on it; a
            // pipe or terminal does so only up to PIPE_BUF.
            let regular = std::fs::metadata("/dev/stdout").is_ok_and(|m| m.is_file());
            if !regular {
                let _ = WHOLE_WRITES.set(libc::PIPE_BUF);
            }
            Box::new(io::stdout())
        }
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
    SHARED
        .get_or_init(|| {
            let out = OPEN.get()?.lock().ok()?.take()?;
            let (tx, rx) = sync_channel(MAX_BATCHES);
            let whole = WHOLE_WRITES.get().copied().unwrap_or(usize::MAX);
            let spawned = std::thread::Builder::new()
                .name("cyclone-access-log".into())
                .spawn(move || write_batches(rx, out, whole));
            if let Err(e) = spawned {
                let _ = writeln!(io::stderr(), "cyclone: access log: no writer thread: {e}");
                return None;
            }
            Some(Shared {
                tx,
                queued: Mutex::new(0),
                written: Condvar::new(),
                dropped: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// The writer thread: each batch in one `write` (or a few), as it comes.
/// It also says on stderr, at most once a second, how many lines were
/// dropped and why a write failed: the loop never writes there itself, so
/// a stalled terminal holds up only this thread. A failed write (a full
/// disk, a reader gone) loses its batch, not the log.
fn write_batches(rx: Receiver<Vec<u8>>, mut out: Box<dyn Write + Send>, whole: usize) {
    let mut reported = (0u64, None::<Instant>);
    let mut failure: Option<io::Error> = None;
    while let Ok(batch) = rx.recv() {
        if let Err(e) = write_whole_lines(&mut out, &batch, whole) {
            let lines = batch.iter().filter(|&&b| b == b'\n').count() as u64;
            if let Some(s) = SHARED.get().and_then(Option::as_ref) {
                s.dropped.fetch_add(lines, Ordering::Relaxed);
            }
            failure = Some(e);
        }
        let Some(s) = SHARED.get().and_then(Option::as_ref) else {
            continue;
        };
        if let Ok(mut q) = s.queued.lock() {
            *q = q.saturating_sub(batch.len());
        }
        s.written.notify_all();
        let dropped = s.dropped.load(Ordering::Relaxed);
        let due = reported
            .1
            .is_none_or(|at: Instant| at.elapsed() >= REPORT_EVERY);
        if dropped > reported.0 && due {
            let why = match failure.take() {
                Some(e) => format!("writing failed: {e}"),
                None => "its output does not keep up".to_string(),
            };
            let _ = writeln!(
                io::stderr(),
                "cyclone: access log: {dropped} lines dropped so far: {why}"
            );
            reported = (dropped, Some(Instant::now()));
        }
    }
}

/// Writes `batch` in writes of at most `whole` bytes that end at a line
/// end (a longer line goes alone).
fn write_whole_lines(out: &mut dyn Write, mut batch: &[u8], whole: usize) -> io::Result<()> {
    while !batch.is_empty() {
        let n = if batch.len() <= whole {
            batch.len()
        } else {
            match memchr::memrchr(b'\n', &batch[..whole]) {
                Some(i) => i + 1,
                None => memchr::memchr(b'\n', batch).map_or(batch.len(), |i| i + 1),
            }
        };
        out.write_all(&batch[..n])?;
        batch = &batch[n..];
    }
    out.flush()
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
    // Counted here; the writer thread says so (the loop never writes to
    // stderr, which may be as stalled as the output).
    let lines = batch.iter().filter(|&&b| b == b'\n').count() as u64;
    s.dropped.fetch_add(lines, Ordering::Relaxed);
}

/// Writes what is buffered on this thread and waits (a second at most)
/// for the writer thread to finish: at exit, no line is lost.
pub fn finish() {
    flush();
    let Some(s) = SHARED.get().and_then(Option::as_ref) else {
        return;
    };
    let Ok(queued) = s.queued.lock() else { return };
    // Bounded: a writer stuck on a full pipe must not hold the exit.
    let _ = s
        .written
        .wait_timeout_while(queued, Duration::from_secs(1), |q| *q > 0);
}

/// A `MakeWriter` into this thread's buffer: `Buffered { at_once: false }`
/// for access lines formatted by `fmt` (a colour terminal), handed over
/// as [`appended`] says; `at_once: true` for the other log lines when the
/// access lines go to stdout too, handed over with what is buffered at
/// once, so the lines keep their order and the loop never takes stdout's
/// lock from the writer thread (which may hold it on a stalled terminal).
#[derive(Clone, Copy)]
pub struct Buffered {
    pub at_once: bool,
}

impl Write for Buffered {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let len = BUF.with(|b| {
            let mut b = b.0.borrow_mut();
            b.extend_from_slice(data);
            b.len()
        });
        if self.at_once {
            flush();
        } else {
            appended(len);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = Buffered;
    fn make_writer(&'a self) -> Buffered {
        *self
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
                // A timer dropped unrun (its loop closed) lets the next
                // line schedule again.
                let unset = Unschedule;
                lp.call_later(HANDOVER_AFTER, move || {
                    drop(unset);
                    flush();
                });
            }
            _ => flush(),
        }
    }
}

/// Clears `SCHEDULED` when dropped.
struct Unschedule;

impl Drop for Unschedule {
    fn drop(&mut self) {
        let _ = SCHEDULED.try_with(|s| s.set(false));
    }
}

/// The access lines' layer where no colours are wanted (a file, a pipe):
/// each line formatted straight into the buffer, in the format
/// `tracing_subscriber::fmt` writes (`2026-12-06T10:24:17.229525Z  INFO
/// cyclone::access: 200 GET /hello (127.0.0.1) 0.01ms`) at a fraction of
/// its cost: the date and time to the second are formatted once a second,
/// and the message is scanned for control characters (escaped as `fmt`
/// does) rather than written through an escaping writer byte by byte.
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
            let start = b.len();
            event.record(&mut Message(&mut b));
            escape_controls(&mut b, start);
            b.push(b'\n');
            b.len()
        });
        appended(len);
    }
}

/// Control characters in what was written from `start` on are escaped
/// (`\u{9b}`), as `fmt` escapes them: a request target may hold UTF-8,
/// and a C1 control in a log is a terminal's escape sequence. The scan
/// is for the bytes that can begin one; most lines have none.
fn escape_controls(b: &mut Vec<u8>, start: usize) {
    if !b[start..]
        .iter()
        .any(|&c| c < 0x20 || c == 0x7f || c == 0xc2)
    {
        return;
    }
    let text = String::from_utf8_lossy(&b[start..]).into_owned();
    b.truncate(start);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(b, "\\u{{{:x}}}", c as u32);
        } else {
            let mut utf8 = [0; 4];
            b.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_written_in_pieces_that_end_at_line_ends() {
        struct Writes(Vec<Vec<u8>>);
        impl Write for Writes {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                self.0.push(d.to_vec());
                Ok(d.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = Writes(Vec::new());
        write_whole_lines(&mut w, b"aaaa\nbb\ncccccccc\nd\n", 8).unwrap();
        let pieces: Vec<&[u8]> = w.0.iter().map(Vec::as_slice).collect();
        assert_eq!(pieces, [&b"aaaa\nbb\n"[..], b"cccccccc\n", b"d\n"]);
    }

    #[test]
    fn control_characters_in_a_line_are_escaped() {
        let mut b = b"kept\x1b ".to_vec();
        b.extend_from_slice("GET /a\u{9b}31m b\u{e9}".as_bytes());
        escape_controls(&mut b, 6);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "kept\u{1b} GET /a\\u{9b}31m b\u{e9}"
        );
        let mut plain = b"GET /hello".to_vec();
        escape_controls(&mut plain, 0);
        assert_eq!(plain, b"GET /hello");
    }

    #[test]
    fn the_date_and_time_are_utc_rfc_3339() {
        assert_eq!(&date_time(0), b"1970-01-01T00:00:00.");
        // 2026-12-06T10:24:17Z, as `date -u -d @1796552657` says.
        assert_eq!(&date_time(1_796_552_657), b"2026-12-06T10:24:17.");
        // A leap day.
        assert_eq!(&date_time(951_782_400), b"2000-02-29T00:00:00.");
    }
}
