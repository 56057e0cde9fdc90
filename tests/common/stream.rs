//! IOStream test helpers: run a future on a loop with a time bound, stream
//! pairs (Unix and TCP), a slow blocking reader, deterministic pseudo-random
//! data, and a check for a `Closed` error.

use std::future::Future;
use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use cyclone::{IOLoop, IOStream, StreamError};

use super::HANG;

/// Runs `fut` on `lp`, failing the test if it takes longer than [`HANG`].
pub fn bounded<F>(lp: &IOLoop, fut: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    lp.run_sync_timeout(fut, HANG)
        .unwrap_or_else(|_| panic!("the test did not finish within {HANG:?}"))
}

/// A connected Unix socket pair, both ends as streams on the current loop.
pub fn stream_pair() -> (IOStream, IOStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (IOStream::new(a).unwrap(), IOStream::new(b).unwrap())
}

/// A stream on the current loop and its peer as a plain blocking socket.
pub fn stream_and_peer() -> (IOStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (IOStream::new(a).unwrap(), b)
}

/// A connected TCP pair on 127.0.0.1: (client, server), blocking std sockets.
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// Reads `n` bytes from a blocking socket in a thread, slowly if `pause`
/// is set, and returns them (fewer if the stream closes first).
pub fn slow_reader(
    mut sock: UnixStream,
    n: usize,
    chunk: usize,
    pause: Option<Duration>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::with_capacity(n);
        let mut buf = vec![0u8; chunk];
        while out.len() < n {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(k) => out.extend_from_slice(&buf[..k]),
            }
            if let Some(p) = pause {
                std::thread::sleep(p);
            }
        }
        out
    })
}

/// xorshift64: deterministic pseudo-random data without a rand crate.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

pub fn is_closed_err(r: &Result<impl std::fmt::Debug, StreamError>) -> bool {
    matches!(r, Err(StreamError::Closed(_)))
}
