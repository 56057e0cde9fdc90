//! Running user code: panics are caught and logged with what was running,
//! and slow work is reported against the blocking threshold.

use std::any::Any;
use std::cell::Cell;
use std::fmt;
use std::os::fd::RawFd;
use std::panic::Location;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::IOLoop;

/// What the loop was running, for log messages.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Work {
    Callback,
    Timeout,
    Handler(RawFd),
    Task(u64),
    Signal(libc::c_int),
    Periodic,
}

impl fmt::Display for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Work::Callback => f.write_str("callback"),
            Work::Timeout => f.write_str("timeout"),
            Work::Handler(fd) => write!(f, "handler for fd {fd}"),
            Work::Task(id) => write!(f, "task {id}"),
            Work::Signal(sig) => write!(f, "handler for signal {sig}"),
            Work::Periodic => f.write_str("periodic callback"),
        }
    }
}

thread_local! {
    /// Where the code running now was registered (a server's handler, a
    /// route), as last noted by [`running_at`]: the blocking warning names
    /// it, so "blocked by task 7" says whose code it was.
    static SITE: Cell<Option<&'static Location<'static>>> = const { Cell::new(None) };
}

/// Notes that code registered at `site` runs now (one thread-local
/// write): if the work it runs in holds the loop past the blocking
/// threshold, the warning names `site`. The innermost note wins: a
/// route's note, made inside its server's, names the route.
pub(crate) fn running_at(site: &'static Location<'static>) {
    SITE.set(Some(site));
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

pin_project_lite::pin_project! {
    /// A future whose panics become an error value (the payload) instead of
    /// unwinding: the HTTP server and the web layer answer 500 with it and
    /// go on serving.
    pub(crate) struct CatchUnwind<F> {
        #[pin]
        inner: F,
        site: Option<&'static Location<'static>>,
    }
}

impl<F> CatchUnwind<F> {
    pub(crate) fn new(inner: F) -> CatchUnwind<F> {
        CatchUnwind { inner, site: None }
    }

    /// Also notes `site` ([`running_at`]) each time it is polled.
    pub(crate) fn at(site: &'static Location<'static>, inner: F) -> CatchUnwind<F> {
        CatchUnwind {
            inner,
            site: Some(site),
        }
    }
}

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        if let Some(site) = *this.site {
            running_at(site);
        }
        let inner = this.inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(p) => p.map(Ok),
            Err(payload) => std::task::Poll::Ready(Err(payload)),
        }
    }
}

impl IOLoop {
    /// Runs `f`, catching and logging a panic; `None` if it panicked.
    pub(crate) fn guarded<R>(&self, what: Work, f: impl FnOnce() -> R) -> Option<R> {
        let started = self.inner.blocking_threshold.get().map(|t| {
            SITE.set(None);
            (t, Instant::now())
        });
        let result = catch_unwind(AssertUnwindSafe(f));
        if let Some((threshold, t0)) = started {
            let took = t0.elapsed();
            if took > threshold {
                let ms = took.as_secs_f64() * 1e3;
                match SITE.take() {
                    Some(site) => tracing::warn!(
                        work = %what,
                        took_ms = ms,
                        site = %site,
                        "IOLoop blocked for {ms:.1} ms by a {what}, in code registered at {site}"
                    ),
                    None => tracing::warn!(
                        work = %what,
                        took_ms = ms,
                        "IOLoop blocked for {ms:.1} ms by a {what}"
                    ),
                }
            }
        }
        match result {
            Ok(r) => Some(r),
            Err(payload) => {
                tracing::error!(work = %what, "uncaught panic in {what}: {}", panic_message(&*payload));
                None
            }
        }
    }
}
