//! Multi-process servers: fork workers after binding, like Tornado and
//! nginx, and restart the ones that die.

use std::collections::HashMap;
use std::io;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::sys::syscall;

/// The worker id of this process, once [`fork_processes`] made it one.
static TASK_ID: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Set by the supervisor's SIGTERM/SIGINT handler.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Set by the supervisor's SIGHUP handler (when a hook is installed).
static HANGUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hangup_signal(_: libc::c_int) {
    HANGUP.store(true, Ordering::SeqCst);
}

/// What the supervisor runs on SIGHUP; see [`on_hangup`].
type HangupHook = Box<dyn FnMut() -> bool>;

thread_local! {
    static ON_HANGUP: std::cell::RefCell<Option<HangupHook>> =
        const { std::cell::RefCell::new(None) };
}

/// Gives the [`fork_processes`] supervisor something to do on SIGHUP: it
/// runs `hook` (supervision waits meanwhile), and when the hook returns
/// `true` it retires: SIGTERM to its workers, exiting once they are gone,
/// as on SIGTERM. This is how a restart hands over: the hook starts the
/// new server ([`crate::handover`]) and returns whether it serves. Set it
/// before forking, on the thread that forks; the workers then ignore
/// SIGHUP (it is the supervisor's). Without a hook SIGHUP keeps its
/// default action.
pub fn on_hangup(hook: impl FnMut() -> bool + 'static) {
    ON_HANGUP.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

fn has_hangup_hook() -> bool {
    ON_HANGUP.with(|h| h.borrow().is_some())
}

/// Sets `signal`'s disposition to `handler` (a function or `SIG_DFL`).
fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed means no flags, empty mask.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: `act` is a valid sigaction; the old one is not wanted.
    syscall!(sigaction(signal, &act, std::ptr::null_mut()))?;
    Ok(())
}

/// How often the supervisor checks for dead workers and signals. Restarts
/// are not time-critical; a tenth of a second keeps the idle cost nil.
const SUPERVISE_TICK: Duration = Duration::from_millis(100);

/// The number of CPUs this process may run on.
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// This worker's id (`0..n`) in a [`fork_processes`] pool, or `None` in a
/// process that was not forked by it.
pub fn task_id() -> Option<usize> {
    match TASK_ID.load(Ordering::Relaxed) {
        usize::MAX => None,
        id => Some(id),
    }
}

fn threads_in_process() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Forks `n` worker processes (`0`: one per CPU) and returns, in each
/// worker, its task id. The calling process becomes a supervisor: it
/// never returns; it restarts a worker that dies abnormally (killed by a
/// signal or a non-zero exit) with the same id, at most `max_restarts`
/// times in all, forwards SIGTERM/SIGINT to the workers, and exits when
/// they have all exited (with status 0 if they all exited cleanly).
///
/// Must be called before any `IOLoop` or extra thread exists: a forked
/// child keeps only the calling thread, and a loop's epoll set would be
/// shared with every child. Both are checked.
pub fn fork_processes(n: usize, max_restarts: usize) -> io::Result<usize> {
    if crate::ioloop::loop_was_created() {
        return Err(io::Error::other(
            "fork_processes: an IOLoop already exists in this process; fork first",
        ));
    }
    if threads_in_process() > 1 {
        return Err(io::Error::other(
            "fork_processes: the process has other threads; fork before starting any",
        ));
    }
    let n = if n == 0 { cpu_count() } else { n };
    let mut children: HashMap<libc::pid_t, usize> = HashMap::new();
    for id in 0..n {
        match fork_worker(id) {
            Ok(None) => return Ok(id),
            Ok(Some(pid)) => {
                children.insert(pid, id);
            }
            Err(e) => {
                // Do not leave half a pool running unsupervised.
                for pid in children.keys() {
                    // SAFETY: kill(2)/waitpid(2) on our own children.
                    unsafe {
                        libc::kill(*pid, libc::SIGKILL);
                        libc::waitpid(*pid, std::ptr::null_mut(), 0);
                    }
                }
                return Err(e);
            }
        }
    }
    supervise(children, max_restarts)
}

/// Forks one worker; `None` in the child. A child starts with the default
/// SIGTERM/SIGINT actions, even when forked by a supervisor that catches
/// them (a restarted worker must stop on SIGTERM like the first ones).
fn fork_worker(id: usize) -> io::Result<Option<libc::pid_t>> {
    let pid = syscall!(fork())?;
    if pid == 0 {
        TASK_ID.store(id, Ordering::Relaxed);
        crate::stats::set_worker(id);
        for signal in [libc::SIGTERM, libc::SIGINT] {
            set_disposition(signal, libc::SIG_DFL)?;
        }
        if has_hangup_hook() {
            set_disposition(libc::SIGHUP, libc::SIG_IGN)?;
        }
        return Ok(None);
    }
    Ok(Some(pid))
}

fn supervise(mut children: HashMap<libc::pid_t, usize>, max_restarts: usize) -> io::Result<usize> {
    // A plain handler (not signal-hook's registry), so that forked
    // children can put the default action back.
    for signal in [libc::SIGTERM, libc::SIGINT] {
        set_disposition(signal, on_stop_signal as *const () as libc::sighandler_t)?;
    }
    if has_hangup_hook() {
        set_disposition(
            libc::SIGHUP,
            on_hangup_signal as *const () as libc::sighandler_t,
        )?;
    }
    let mut restarts = 0;
    let mut clean = true;
    let mut forwarded = false;
    while !children.is_empty() {
        if HANGUP.swap(false, Ordering::SeqCst) && !forwarded {
            let retire = ON_HANGUP.with(|h| h.borrow_mut().as_mut().is_some_and(|hook| hook()));
            // A SIGHUP that came while the hook ran is not a new request:
            // a restart was just tried (as a loop ignores one under way).
            HANGUP.store(false, Ordering::SeqCst);
            if retire {
                STOP.store(true, Ordering::SeqCst);
            }
        }
        if STOP.load(Ordering::SeqCst) && !forwarded {
            forwarded = true;
            for pid in children.keys() {
                // SAFETY: kill(2) on our own children.
                unsafe { libc::kill(*pid, libc::SIGTERM) };
            }
        }
        let mut status = 0;
        // SAFETY: `status` is a live c_int for waitpid to fill.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            std::thread::sleep(SUPERVISE_TICK);
            continue;
        }
        let Some(id) = children.remove(&pid) else {
            continue;
        };
        let normal = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        if normal || forwarded {
            continue;
        }
        clean = false;
        if libc::WIFSIGNALED(status) {
            tracing::warn!(
                "worker {id} (pid {pid}) killed by signal {}",
                libc::WTERMSIG(status)
            );
        } else {
            tracing::warn!(
                "worker {id} (pid {pid}) exited with status {}",
                libc::WEXITSTATUS(status)
            );
        }
        if restarts >= max_restarts {
            tracing::error!("too many worker restarts ({restarts}); not restarting worker {id}");
            continue;
        }
        restarts += 1;
        match fork_worker(id) {
            Ok(None) => return Ok(id),
            Ok(Some(new_pid)) => {
                children.insert(new_pid, id);
            }
            // The supervisor never returns: log it and run with one fewer.
            Err(e) => tracing::error!("cannot restart worker {id}: {e}"),
        }
    }
    std::process::exit(if clean || forwarded { 0 } else { 1 });
}
