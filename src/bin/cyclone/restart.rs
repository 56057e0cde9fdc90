//! `cyclone serve`'s restart on SIGHUP, without downtime: start the
//! binary on disk (a new version, if one was installed) with the same
//! arguments, hand it the listening sockets (`cyclone::handover`), wait
//! until it reports that it serves, then stop accepting and drain. If the
//! new process fails, this one logs why and keeps serving.

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use cyclone::IOLoop;
use cyclone::handover::{self, Notifier};

/// How long the new process may take to report that it serves. Start-up
/// takes milliseconds; this allows for a cold disk and a slow machine,
/// beyond which the new binary is taken to hang and is stopped.
pub(crate) const RESTART_TIMEOUT: Duration = Duration::from_secs(30);

/// The program to restart: the binary's path as it was at start (where a
/// new version is installed), and the arguments it was given.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    path: PathBuf,
    args: Vec<OsString>,
}

impl Program {
    /// This process's program. Taken at start: once the file is replaced
    /// the running binary's own link reads "… (deleted)".
    pub(crate) fn this() -> std::io::Result<Program> {
        Ok(Program {
            path: std::env::current_exe()?,
            args: std::env::args_os().skip(1).collect(),
        })
    }

    /// Starts the new process on `listeners` and waits (blocking) for
    /// `reports` of it to say it serves. On failure the new process is
    /// stopped and the error says why.
    pub(crate) fn hand_over(
        &self,
        listeners: &[(RawFd, &str)],
        reports: usize,
    ) -> Result<u32, String> {
        tracing::info!(
            "SIGHUP: starting {} to take over {} listening sockets",
            self.path.display(),
            listeners.len()
        );
        let mut successor = handover::spawn(&self.path, &self.args, listeners)
            .map_err(|e| format!("cannot start {}: {e}", self.path.display()))?;
        let pid = successor.pid();
        match successor.wait_ready(reports, RESTART_TIMEOUT) {
            Ok(()) => Ok(pid),
            Err(e) => {
                successor.abandon();
                Err(format!("{} (pid {pid}): {e}", self.path.display()))
            }
        }
    }

    /// Logs the outcome of [`Program::hand_over`]; whether to retire.
    pub(crate) fn handed_over(result: Result<u32, String>) -> bool {
        match result {
            Ok(pid) => {
                tracing::info!("restart: process {pid} serves; draining this one");
                true
            }
            Err(e) => {
                tracing::error!("restart failed, still serving: {e}");
                false
            }
        }
    }
}

/// On SIGHUP, hands over on a thread of its own (the loop serves
/// meanwhile), then, on this loop, runs `retire` if the new process
/// serves. A SIGHUP while one handover runs is ignored.
pub(crate) fn on_hangup<F>(
    lp: &IOLoop,
    listeners: F,
    reports: usize,
    program: Program,
    retire: Rc<dyn Fn()>,
) -> Result<(), cyclone::Error>
where
    F: Fn() -> Vec<(RawFd, &'static str)> + 'static,
{
    let busy = Rc::new(Cell::new(false));
    let l = lp.clone();
    lp.add_signal_handler(libc::SIGHUP, move || {
        if busy.replace(true) {
            tracing::warn!("SIGHUP: a restart is already under way");
            return;
        }
        let fds = listeners();
        let remote = l.remote();
        let program = program.clone();
        RETIRE.with(|r| *r.borrow_mut() = Some((retire.clone(), busy.clone())));
        std::thread::spawn(move || {
            let served = Program::handed_over(program.hand_over(&fds, reports));
            let _ = remote.add_callback(move || {
                let Some((retire, busy)) = RETIRE.with(|r| r.borrow_mut().take()) else {
                    return;
                };
                if served {
                    retire();
                } else {
                    busy.set(false);
                }
            });
        });
    })?;
    Ok(())
}

thread_local! {
    /// What the loop does once a handover succeeded, and the flag to clear
    /// once one failed (not `Send`: kept here for the thread's callback).
    #[allow(clippy::type_complexity)]
    static RETIRE: RefCell<Option<(Rc<dyn Fn()>, Rc<Cell<bool>>)>> = const { RefCell::new(None) };
}

/// Reports, once this process's loop runs, that it serves (to the old
/// process of a handover, and to systemd), naming `main_pid` as the
/// process to watch.
pub(crate) fn report_ready_on(lp: &IOLoop, notifier: Notifier, main_pid: u32) {
    lp.add_callback(move || notifier.ready(main_pid));
}
