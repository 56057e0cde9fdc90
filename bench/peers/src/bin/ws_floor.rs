//! Not a peer: the floor of bench/ws.sh's WebSocket echo loads on this
//! machine. A single-threaded, edge-triggered epoll loop with no runtime
//! and no protocol layer: it answers the upgrade request with a 101
//! (declining permessage-deflate by not mentioning it), then echoes each
//! frame it receives with one recv and one send per read, the reply built
//! in place in the bytes just read. Whatever CPU time it spends per
//! message is, to within a little user time, what the kernel costs for an
//! echo over epoll, so a real WebSocket server can only be slower.
//!
//! It assumes a well-behaved client (wsload): it does no limit checks (a
//! frame of any announced length is waited for), no UTF-8 validation of
//! text, no handling of fragmentation (each frame is echoed as it came,
//! continuation frames included, with no reassembly), no check of the
//! mask bit, the reserved bits or the request's method, path or version.
//! It is a lower bound on CPU per message, not a competitor: bench/ws.sh
//! reports it beside the servers on the echo loads only.
//!
//!   ws_floor PORT

use std::net::TcpListener;
use std::os::fd::AsRawFd;

use sha1::{Digest, Sha1};

/// The GUID RFC 6455 §1.3 appends to the client's key.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The shared read buffer's least size: a 16 KiB frame fits whole, so
/// one recv takes a whole message; a larger frame grows the buffer.
const SCRATCH: usize = 64 << 10;
/// Events taken per epoll_wait: 500 busy connections in a turn or two.
const EVENTS: usize = 1024;
/// The listener's epoll token; a connection's is its fd.
const LISTENER: u64 = u64::MAX;

const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;
const FIN: u8 = 0x80;

/// Per connection, only what outlives one read: two empty Vecs (no
/// allocation) on an idle connection.
#[derive(Default)]
struct Conn {
    upgraded: bool,
    /// A Close was answered (or the upgrade refused): close the socket
    /// once `unsent` is out, and read nothing more.
    closing: bool,
    /// The incomplete frame (or request head) at the end of the last read.
    held: Vec<u8>,
    /// Replies the socket had no room for, sent on EPOLLOUT.
    unsent: Vec<u8>,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Runs a syscall again if a signal interrupted it; otherwise its result.
fn retry(mut call: impl FnMut() -> isize) -> isize {
    loop {
        let r = call();
        if r >= 0 || errno() != libc::EINTR {
            return r;
        }
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: ws_floor PORT");
    raise_fd_limit();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking listener");
    let lfd = listener.as_raw_fd();
    // SAFETY: no pointers; the result is checked.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(ep >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
    // Level-triggered: a listener costs nothing per message, and a missed
    // edge there (after EMFILE, say) would stall new connections for good.
    add(ep, lfd, libc::EPOLLIN as u32, LISTENER);

    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut scratch = vec![0u8; SCRATCH];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    loop {
        // SAFETY: the buffer holds EVENTS entries, the count given.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), EVENTS as i32, -1) };
        if n < 0 {
            assert_eq!(errno(), libc::EINTR, "epoll_wait: {}", std::io::Error::last_os_error());
            continue;
        }
        for e in &events[..n as usize] {
            // Copied out: the struct is packed on x86-64.
            let (token, ev) = (e.u64, e.events);
            if token == LISTENER {
                accept_all(ep, lfd, &mut conns);
                continue;
            }
            // An fd closed earlier in this batch and reused by an accept
            // gets a stale event: a recv that finds nothing, harmless.
            let fd = token as i32;
            let Some(c) = conns.get_mut(fd as usize).and_then(Option::as_mut) else { continue };
            let mut alive = true;
            if ev & libc::EPOLLOUT as u32 != 0 && !c.unsent.is_empty() {
                alive = flush(fd, c);
            }
            let readable = (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            if alive && !c.closing && ev & readable != 0 {
                alive = on_readable(fd, c, &mut scratch);
            }
            if !alive || (c.closing && c.unsent.is_empty()) {
                conns[fd as usize] = None;
                // SAFETY: our own fd, closed once; closing it also takes
                // it out of the epoll set.
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// 10,000 idle connections need more descriptors than the usual soft
/// limit of 1024; the hard limit is ours to take.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid rlimit pointer for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn add(ep: i32, fd: i32, interest: u32, token: u64) {
    let mut ev = libc::epoll_event { events: interest, u64: token };
    // SAFETY: `ev` is a valid epoll_event for the call's duration.
    let r = unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
    assert!(r == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
}

fn accept_all(ep: i32, lfd: i32, conns: &mut Vec<Option<Conn>>) {
    loop {
        // accept4 makes the socket nonblocking in the same call: no fcntl.
        // SAFETY: null address pointers are allowed; the result is checked.
        let fd = unsafe {
            libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        };
        if fd < 0 {
            match errno() {
                libc::EINTR | libc::ECONNABORTED => continue,
                libc::EAGAIN => return,
                e => {
                    eprintln!("ws_floor: accept: {}", std::io::Error::from_raw_os_error(e));
                    return;
                }
            }
        }
        let one: libc::c_int = 1;
        // SAFETY: a valid option pointer and length for TCP_NODELAY.
        unsafe {
            libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&raw const one).cast(), 4);
        }
        if conns.len() <= fd as usize {
            conns.resize_with(fd as usize + 1, || None);
        }
        conns[fd as usize] = Some(Conn::default());
        // Edge-triggered, both directions registered once: no epoll_ctl
        // per message, and no re-poll of each ready socket on the next
        // wait as level-triggered epoll does. EPOLLOUT costs no wake-ups
        // of its own: the kernel signals write space only after a send
        // found the buffer full.
        add(ep, fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32, fd as u64);
    }
}

/// Reads until the socket is drained, echoing every complete frame.
/// False when the connection is gone.
fn on_readable(fd: i32, c: &mut Conn, scratch: &mut Vec<u8>) -> bool {
    loop {
        // Reading into one shared buffer rather than one per connection:
        // it stays in cache, and idle connections hold no buffer at all.
        // Only an incomplete frame is copied, to and from `held`.
        let held = c.held.len();
        if scratch.len() < held + SCRATCH {
            scratch.resize(held + SCRATCH, 0);
        }
        scratch[..held].copy_from_slice(&c.held);
        let room = scratch.len() - held;
        // SAFETY: the pointer and length describe scratch[held..].
        let n = retry(|| unsafe { libc::recv(fd, scratch[held..].as_mut_ptr().cast(), room, 0) });
        if n == 0 {
            return false;
        }
        if n < 0 {
            return errno() == libc::EAGAIN;
        }
        let n = n as usize;
        let end = held + n;
        c.held.clear();
        let start = if c.upgraded {
            0
        } else {
            let Some(head_end) = scratch[..end].windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
                c.held.extend_from_slice(&scratch[..end]);
                if n < room {
                    return true;
                }
                continue;
            };
            let response = upgrade_response(&scratch[..head_end]);
            c.upgraded = response.starts_with(b"HTTP/1.1 101");
            c.closing = !c.upgraded;
            if !emit(fd, c, &response) {
                return false;
            }
            head_end
        };
        let (from, to, consumed) = echo_frames(c, &mut scratch[..end], start);
        c.held.extend_from_slice(&scratch[consumed..end]);
        // All the replies to this read in one send.
        if to > from && !emit(fd, c, &scratch[from..to]) {
            return false;
        }
        // Edge-triggered, the socket must be drained before the next wait
        // reports it again; a read that left room in the buffer took all
        // there was, which spares the recv that would say EAGAIN.
        if c.closing || n < room {
            return true;
        }
    }
}

/// The answer to one request head: a 101 with its Sec-WebSocket-Accept
/// (RFC 6455 §4.2.2), or a 400 when there is no key.
fn upgrade_response(head: &[u8]) -> Vec<u8> {
    let key = head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(b"sec-websocket-key")
            .then(|| line[colon + 1..].trim_ascii())
    });
    let Some(key) = key else {
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
    };
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    let mut r = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
        .to_vec();
    base64(&h.finalize(), &mut r);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// Standard base64 with padding (RFC 4648 §4), for the 20-byte digest:
/// a dozen lines rather than a dependency.
fn base64(data: &[u8], out: &mut Vec<u8>) {
    const DIGITS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for group in data.chunks(3) {
        let bits = group.iter().enumerate().fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        // n input bytes make n + 1 digits; '=' pads the group to 4.
        for i in 0..4 {
            out.push(if i <= group.len() { DIGITS[(bits >> (18 - 6 * i) & 63) as usize] } else { b'=' });
        }
    }
}

/// Turns the complete client frames in buf[pos..] into their replies, in
/// place, and returns (replies start, replies end, bytes consumed).
///
/// A reply's head is the request's minus the 4-byte mask key (same length
/// encoding, mask bit clear), so each reply is built where its frame lay,
/// 4 bytes in, and no buffer is copied for the usual single frame; later
/// frames in the same read are moved down behind the first reply.
fn echo_frames(c: &mut Conn, buf: &mut [u8], mut pos: usize) -> (usize, usize, usize) {
    let mut replies: Option<(usize, usize)> = None;
    while !c.closing {
        let rest = &buf[pos..];
        if rest.len() < 2 {
            break;
        }
        let (len_bytes, len) = match rest[1] & 0x7f {
            126 if rest.len() < 4 => break,
            126 => (2, usize::from(u16::from_be_bytes([rest[2], rest[3]]))),
            127 if rest.len() < 10 => break,
            127 => (8, u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize),
            n => (0, usize::from(n)),
        };
        let head = 2 + len_bytes + 4;
        if rest.len() < head + len {
            break;
        }
        let (b0, b1) = (rest[0], rest[1]);
        let key: [u8; 4] = rest[head - 4..head].try_into().unwrap();
        let frame_end = pos + head + len;
        let first = match b0 & 0x0f {
            // Nothing asked, nothing answered.
            OP_PONG => {
                pos = frame_end;
                continue;
            }
            OP_PING => FIN | OP_PONG,
            // Echoing the status code is a valid Close of our own.
            OP_CLOSE => {
                c.closing = true;
                FIN | OP_CLOSE
            }
            _ => b0,
        };
        unmask(&mut buf[pos + head..frame_end], key);
        let at = pos + 4;
        // The extended length first: it may overlap where the new first
        // two bytes go.
        buf.copy_within(pos + 2..pos + 2 + len_bytes, at + 2);
        buf[at] = first;
        buf[at + 1] = b1 & 0x7f;
        replies = Some(match replies {
            None => (at, frame_end),
            Some((from, to)) => {
                buf.copy_within(at..frame_end, to);
                (from, to + frame_end - at)
            }
        });
        pos = frame_end;
    }
    let (from, to) = replies.unwrap_or((pos, pos));
    (from, to, pos)
}

/// XORs `data` with the repeating key, eight bytes at a time.
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut words = data.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_ne_bytes((&*w).try_into().unwrap()) ^ wide;
        w.copy_from_slice(&v.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, where the key starts over.
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// Sends `bytes` after whatever is still unsent, keeping what the socket
/// will not take now. False when the connection is gone.
fn emit(fd: i32, c: &mut Conn, bytes: &[u8]) -> bool {
    if !c.unsent.is_empty() {
        c.unsent.extend_from_slice(bytes);
        return flush(fd, c);
    }
    match send(fd, bytes) {
        Some(n) => {
            c.unsent.extend_from_slice(&bytes[n..]);
            true
        }
        None => false,
    }
}

/// One send of the unsent bytes: if it is short, the buffer is full and
/// EPOLLOUT will say when to go on, so a second send would only fail.
fn flush(fd: i32, c: &mut Conn) -> bool {
    match send(fd, &c.unsent) {
        Some(n) => {
            c.unsent.drain(..n);
            true
        }
        None => false,
    }
}

/// Bytes sent (0 if the buffer is full), None if the connection is gone.
fn send(fd: i32, bytes: &[u8]) -> Option<usize> {
    // SAFETY: the pointer and length describe `bytes`; MSG_NOSIGNAL
    // turns a write to a closed peer into EPIPE rather than SIGPIPE.
    let n = retry(|| unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_NOSIGNAL) });
    if n >= 0 {
        Some(n as usize)
    } else if errno() == libc::EAGAIN {
        Some(0)
    } else {
        None
    }
}
