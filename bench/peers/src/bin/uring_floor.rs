//! Not a peer: the floor of a completion-based design on this machine. A
//! single-threaded io_uring loop (single issuer, deferred task running)
//! that answers every `\r\n\r\n` it receives with a fixed "Hello, World!"
//! response: no HTTP parsing, no headers read, a constant Date. Whatever
//! CPU time it spends per request is what the kernel costs under io_uring
//! (recv and send submitted in batches, one `io_uring_enter` per loop
//! turn), so a real server on io_uring can only be slower. bench/run.sh
//! reports it beside the servers to show how much of each target the
//! kernel leaves reachable.
//!
//!   uring_floor PORT

use std::net::TcpListener;
use std::os::fd::AsRawFd;

use io_uring::{IoUring, cqueue, opcode, types};

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: F\r\nDate: Thu, 26 Nov 2026 00:00:00 GMT\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 13\r\n\r\nHello, World!";
/// The accept's user data; connections use their slot index * 2 (+1 for a send).
const ACCEPT: u64 = u64::MAX;
/// wrk's requests fit many times over; a longer read just takes two.
const READ_BUFFER: usize = 4096;

struct Conn {
    fd: i32,
    input: Vec<u8>,
    /// Bytes being sent: untouched until the send completes, because the
    /// kernel reads them meanwhile.
    sending: Vec<u8>,
    sent: usize,
    /// Responses due while a send is in flight.
    next: Vec<u8>,
    /// The peer is gone: close once the send in flight completes.
    closing: bool,
}

fn close(conns: &mut [Option<Conn>], slot: usize) {
    if let Some(c) = conns[slot].take() {
        // SAFETY: our own fd, closed once, with no operation on it in flight.
        unsafe { libc::close(c.fd) };
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: uring_floor PORT");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let lfd = listener.as_raw_fd();
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(1024)
        .expect("io_uring (kernel 6.1 or later)");
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut queue: Vec<io_uring::squeue::Entry> =
        vec![opcode::AcceptMulti::new(types::Fd(lfd)).build().user_data(ACCEPT)];
    loop {
        for e in queue.drain(..) {
            // SAFETY: every buffer an entry points to lives in a `Conn`
            // slot that is not touched (nor freed) until its completion.
            while unsafe { ring.submission().push(&e) }.is_err() {
                ring.submit().expect("submit");
            }
        }
        ring.submit_and_wait(1).expect("io_uring_enter");
        let done: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result(), c.flags()))
            .collect();
        for (data, res, flags) in done {
            if data == ACCEPT {
                if res >= 0 {
                    let slot = conns.iter().position(Option::is_none).unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let fd = res;
                    let one: libc::c_int = 1;
                    // SAFETY: a valid option pointer and length for TCP_NODELAY.
                    unsafe {
                        libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&raw const one).cast(), 4);
                    }
                    let c = conns[slot].insert(Conn {
                        fd,
                        input: vec![0; READ_BUFFER],
                        sending: Vec::new(),
                        sent: 0,
                        next: Vec::new(),
                        closing: false,
                    });
                    queue.push(recv(c, slot));
                }
                if !cqueue::more(flags) {
                    queue.push(opcode::AcceptMulti::new(types::Fd(lfd)).build().user_data(ACCEPT));
                }
                continue;
            }
            let slot = (data >> 1) as usize;
            let Some(c) = conns[slot].as_mut() else { continue };
            if data & 1 == 0 {
                if res <= 0 {
                    if c.sending.is_empty() {
                        close(&mut conns, slot);
                    } else {
                        c.closing = true;
                    }
                    continue;
                }
                let got = &c.input[..res as usize];
                let requests = got.windows(4).filter(|w| *w == b"\r\n\r\n").count();
                for _ in 0..requests {
                    c.next.extend_from_slice(RESPONSE);
                }
                if c.sending.is_empty() && !c.next.is_empty() {
                    std::mem::swap(&mut c.sending, &mut c.next);
                    c.sent = 0;
                    queue.push(send(c, slot));
                }
                queue.push(recv(c, slot));
            } else {
                if res < 0 || c.closing {
                    c.sending.clear();
                    if c.closing {
                        close(&mut conns, slot);
                    }
                    continue;
                }
                c.sent += res as usize;
                if c.sent < c.sending.len() {
                    queue.push(send(c, slot));
                    continue;
                }
                c.sending.clear();
                if !c.next.is_empty() {
                    std::mem::swap(&mut c.sending, &mut c.next);
                    c.sent = 0;
                    queue.push(send(c, slot));
                }
            }
        }
    }
}

fn recv(c: &mut Conn, slot: usize) -> io_uring::squeue::Entry {
    opcode::Recv::new(types::Fd(c.fd), c.input.as_mut_ptr(), c.input.len() as u32)
        .build()
        .user_data((slot as u64) << 1)
}

fn send(c: &Conn, slot: usize) -> io_uring::squeue::Entry {
    let rest = &c.sending[c.sent..];
    opcode::Send::new(types::Fd(c.fd), rest.as_ptr(), rest.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(((slot as u64) << 1) | 1)
}
