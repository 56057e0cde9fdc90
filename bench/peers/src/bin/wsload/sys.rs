//! The few system interfaces wsload needs: an epoll set, and CPU time
//! (the server's from /proc, its own from getrusage).

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Turns a -1 return into the last OS error.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// An epoll set, used edge-triggered with reading and writing interest
/// registered once: no epoll_ctl per message, and no re-poll of each
/// ready socket on the next wait as level-triggered epoll does.
pub struct Epoll {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
}

pub const READABLE: u32 = libc::EPOLLIN as u32;
pub const WRITABLE: u32 = libc::EPOLLOUT as u32;
pub const EDGE: u32 = libc::EPOLLET as u32;

/// Events taken per epoll_wait: enough to drain 500 busy connections in
/// a turn or two.
const EVENTS_PER_WAIT: usize = 1024;

impl Epoll {
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; the result is checked.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd, events: vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT] })
    }

    pub fn add(&self, fd: RawFd, token: u64, interest: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: interest, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call's duration.
        check(unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut ev) })?;
        Ok(())
    }

    /// Waits up to `timeout` (rounded up to a millisecond); returns how
    /// many events `event` can then give.
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: the buffer holds `events.len()` entries, the count given.
        let r = unsafe { libc::epoll_wait(self.fd, self.events.as_mut_ptr(), self.events.len() as libc::c_int, ms) };
        match check(r) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// The `i`th event of the last wait: (token, events).
    pub fn event(&self, i: usize) -> (u64, u32) {
        let e = self.events[i];
        (e.u64, e.events)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the fd is ours and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// The server's user + system CPU time in clock ticks (/proc/PID/stat
/// fields 14 and 15), summed over its threads by the kernel.
pub fn stat_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split(' ').skip(11);
    Some(f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?)
}

/// Clock ticks per second, for stat_ticks.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// The server's CPU time in nanoseconds, summed over its threads
/// (/proc/PID/task/*/schedstat, first field): precise where stat's 10 ms
/// ticks are too coarse, as for one broadcast that takes a few ms.
pub fn schedstat_ns(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let s = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        sum += s.split(' ').next()?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// wsload's own user + system CPU time.
pub fn own_cpu() -> Duration {
    // SAFETY: an all-zero rusage is valid; getrusage fills it.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid rusage to write into.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}
