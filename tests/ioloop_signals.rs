//! Signal handlers run on the loop thread. Each backend uses its own signal
//! so that the per-backend tests, which run in parallel in one process, never see
//! each other's signals.

mod common;

use std::cell::Cell;
use std::rc::Rc;

use common::start_bounded;
use cyclone::Backend;

/// A signal of its own for each backend, by its place in
/// `Backend::available()` (at most four backends, so four signals).
fn signal_for(backend: Backend) -> libc::c_int {
    const SIGNALS: [libc::c_int; 4] = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH, libc::SIGURG];
    let place = Backend::available()
        .iter()
        .position(|&b| b == backend)
        .expect("a loop runs on an available backend");
    SIGNALS[place]
}

per_backend! {
    fn signal_handler_runs_on_the_loop_thread(lp) {
        let signal = signal_for(lp.backend());
        let loop_thread = std::thread::current().id();
        let on_loop = Rc::new(Cell::new(false));
        let (o, l) = (on_loop.clone(), lp.clone());
        lp.add_signal_handler(signal, move || {
            o.set(std::thread::current().id() == loop_thread);
            l.stop();
        })
        .unwrap();
        lp.add_callback(move || {
            // SAFETY: raise(3) sends a signal to this thread; a handler is installed.
            unsafe { libc::raise(signal) };
        });
        start_bounded(&lp);
        assert!(on_loop.get());
        assert!(lp.remove_signal_handler(signal));
    }

    fn forbidden_signal_is_refused(lp) {
        assert!(lp.add_signal_handler(libc::SIGKILL, || {}).is_err());
        assert!(lp.add_signal_handler(0, || {}).is_err());
    }
}
