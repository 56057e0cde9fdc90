//! Unix signals delivered as callbacks on the loop thread.
//!
//! The process-wide handler (installed through `signal-hook-registry`, which
//! chains with other users of the same signal) does only async-signal-safe
//! work: it sets the signal's pending flag and writes a byte to this loop's
//! self-pipe. The loop watches the pipe like any fd and runs the callbacks
//! of pending signals in its dispatch phase.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook_registry::SigId;

use super::IOLoop;
use super::error::Error;
use super::guard::Work;
use super::handlers::Internal;

/// Signal numbers are below this on Linux (`SIGRTMAX` is 64).
const MAX_SIGNAL: usize = 65;

type SignalCallback = Box<dyn FnMut()>;

pub(crate) struct SignalState {
    read: UnixStream,
    write: Arc<UnixStream>,
    pending: Arc<[AtomicBool; MAX_SIGNAL]>,
    /// The callback is `None` while it runs.
    handlers: HashMap<libc::c_int, (SigId, Option<SignalCallback>)>,
}

impl SignalState {
    fn new() -> std::io::Result<SignalState> {
        // A socketpair: close-on-exec from std, and both ends non-blocking,
        // so the signal handler's write can never block.
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(SignalState {
            read,
            write: Arc::new(write),
            pending: Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
            handlers: HashMap::new(),
        })
    }
}

fn invalid_signal(signal: libc::c_int) -> Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("signal {signal} cannot be handled"),
    )
    .into()
}

impl IOLoop {
    /// Calls `callback` on this loop's thread each time the process receives
    /// `signal` (e.g. `libc::SIGTERM` for a graceful shutdown). Replaces this
    /// loop's previous callback for the signal. Signals that arrive close
    /// together may be delivered once, as with any Unix signal.
    ///
    /// Installing a callback replaces the signal's default action (SIGINT no
    /// longer kills the process). `SIGKILL`, `SIGSTOP` and the fault signals
    /// (`SIGSEGV`, `SIGILL`, `SIGFPE`, `SIGBUS`) are refused.
    pub fn add_signal_handler<F: FnMut() + 'static>(
        &self,
        signal: libc::c_int,
        callback: F,
    ) -> Result<(), Error> {
        let i = &self.inner;
        if i.closed.get() {
            return Err(Error::Closed);
        }
        let index = usize::try_from(signal)
            .ok()
            .filter(|&n| n > 0 && n < MAX_SIGNAL)
            .filter(|_| {
                !signal_hook_registry::FORBIDDEN.contains(&signal) && signal != libc::SIGBUS
            })
            .ok_or_else(|| invalid_signal(signal))?;
        if i.signals.borrow().is_none() {
            let state = SignalState::new()?;
            self.add_internal(state.read.as_raw_fd(), Internal::Signals)?;
            *i.signals.borrow_mut() = Some(state);
        }
        let mut signals = i.signals.borrow_mut();
        let Some(state) = signals.as_mut() else {
            return Err(Error::Closed);
        };
        if let Some((_, cb)) = state.handlers.get_mut(&signal) {
            let old = cb.replace(Box::new(callback));
            drop(signals);
            drop(old); // outside the borrow: it may own user code
            return Ok(());
        }
        let pending = state.pending.clone();
        let write = state.write.clone();
        let action = move || {
            pending[index].store(true, Ordering::SeqCst);
            let fd: RawFd = write.as_raw_fd();
            // SAFETY: write(2) is async-signal-safe; the buffer is a static
            // byte and `fd` stays open while the action is registered (the
            // closure owns it). A full pipe (EAGAIN) already means "wake up".
            unsafe { libc::write(fd, b"!".as_ptr().cast(), 1) };
        };
        // SAFETY: the action only stores to an atomic and calls write(2),
        // both async-signal-safe; it allocates and locks nothing.
        let id = unsafe { signal_hook_registry::register(signal, action) }
            .map_err(|_| invalid_signal(signal))?;
        state
            .handlers
            .insert(signal, (id, Some(Box::new(callback))));
        Ok(())
    }

    /// Removes this loop's callback for `signal`; returns whether there was
    /// one. The signal's default action is not restored (a limitation of
    /// `signal-hook-registry`): it is then ignored.
    pub fn remove_signal_handler(&self, signal: libc::c_int) -> bool {
        let removed = {
            let mut signals = self.inner.signals.borrow_mut();
            signals.as_mut().and_then(|s| s.handlers.remove(&signal))
        };
        match removed {
            Some((id, callback)) => {
                signal_hook_registry::unregister(id);
                drop(callback);
                true
            }
            None => false,
        }
    }

    pub(crate) fn close_signals(&self) {
        let state = self.inner.signals.borrow_mut().take();
        if let Some(state) = state {
            for (id, _) in state.handlers.values() {
                signal_hook_registry::unregister(*id);
            }
            drop(state);
        }
    }

    pub(crate) fn dispatch_signals(&self) {
        let fired: Vec<libc::c_int> = {
            let mut signals = self.inner.signals.borrow_mut();
            let Some(state) = signals.as_mut() else {
                return;
            };
            let mut buf = [0u8; 64];
            while matches!((&state.read).read(&mut buf), Ok(n) if n > 0) {}
            (1..MAX_SIGNAL)
                .filter(|&n| state.pending[n].swap(false, Ordering::SeqCst))
                .map(|n| n as libc::c_int)
                .collect()
        };
        for signal in fired {
            self.run_signal_callback(signal);
        }
    }

    fn run_signal_callback(&self, signal: libc::c_int) {
        let i = &self.inner;
        let callback = {
            let mut signals = i.signals.borrow_mut();
            signals
                .as_mut()
                .and_then(|s| s.handlers.get_mut(&signal))
                .and_then(|(_, cb)| cb.take())
        };
        let Some(mut callback) = callback else {
            return;
        };
        self.guarded(Work::Signal(signal), &mut callback);
        let mut signals = i.signals.borrow_mut();
        if let Some((_, slot @ None)) = signals.as_mut().and_then(|s| s.handlers.get_mut(&signal)) {
            *slot = Some(callback);
            return;
        }
        drop(signals);
        drop(callback); // replaced or removed while it ran
    }
}
