//! IOStream behaviour: reads (from the buffer first, one at a time), writes
//! (in order, with flow control), buffer limits, closing (by us, by the
//! peer, by a reset), SIGPIPE, TCP options and pipes. Every test runs on
//! every poller backend and is bounded in time.

mod common;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::HANG;
use cyclone::{IOLoop, IOStream, StreamError};
use regex::bytes::Regex;

/// Runs `fut` on `lp`, failing the test if it takes longer than [`HANG`].
fn bounded<F>(lp: &IOLoop, fut: F) -> F::Output
where
    F: Future + 'static,
    F::Output: 'static,
{
    lp.run_sync_timeout(fut, HANG)
        .unwrap_or_else(|_| panic!("the test did not finish within {HANG:?}"))
}

/// A connected Unix socket pair, both ends as streams on the current loop.
fn stream_pair() -> (IOStream, IOStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (IOStream::new(a).unwrap(), IOStream::new(b).unwrap())
}

/// A stream on the current loop and its peer as a plain blocking socket.
fn stream_and_peer() -> (IOStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (IOStream::new(a).unwrap(), b)
}

/// A connected TCP pair on 127.0.0.1: (client, server), blocking std sockets.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    (client, server)
}

/// Reads `n` bytes from a blocking socket in a thread, slowly if `pause`
/// is set, and returns them (fewer if the stream closes first).
fn slow_reader(
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
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn is_closed_err(r: &Result<impl std::fmt::Debug, StreamError>) -> bool {
    matches!(r, Err(StreamError::Closed(_)))
}

/// The child half of the SIGPIPE test runs when this is set.
const SIGPIPE_CHILD_ENV: &str = "CYCLONE_IOSTREAM_SIGPIPE_CHILD";
const SIGPIPE_CHILD_DONE: &str = "sigpipe-scenario-completed";

per_backend! {
    // ---- reads return the right bytes ----

    fn read_until_returns_the_bytes_up_to_and_including_the_delimiter(lp) {
        let (head, rest) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody").unwrap();
            let head = s.read_until(b"\r\n\r\n", None).await.unwrap();
            let rest = s.read_bytes(4, false).await.unwrap();
            (head, rest)
        });
        assert_eq!(&head[..], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(&rest[..], b"body");
    }

    fn read_until_finds_a_multibyte_delimiter_arriving_one_byte_at_a_time(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            s.set_read_chunk_size(1);
            peer.write_all(b"ab\r\r\n\rcd\r\n\r\nef").unwrap();
            s.read_until(b"\r\n\r\n", None).await.unwrap()
        });
        assert_eq!(&got[..], b"ab\r\r\n\rcd\r\n\r\n");
    }

    fn read_until_waits_for_a_delimiter_sent_later(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"partial line").unwrap();
            let mut read = pin!(s.read_until(b"\n", None));
            assert!(futures::poll!(read.as_mut()).is_pending(), "no delimiter yet");
            peer.write_all(b" finished\nnext").unwrap();
            read.await.unwrap()
        });
        assert_eq!(&got[..], b"partial line finished\n");
    }

    fn read_until_regex_returns_the_bytes_up_to_the_end_of_the_match(lp) {
        let (first, second) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let re = Regex::new(r"\r?\n").unwrap();
            peer.write_all(b"unix line\ndos line\r\ntail").unwrap();
            let first = s.read_until_regex(&re, None).await.unwrap();
            let second = s.read_until_regex(&re, None).await.unwrap();
            (first, second)
        });
        assert_eq!(&first[..], b"unix line\n");
        assert_eq!(&second[..], b"dos line\r\n");
    }

    fn read_bytes_exact_returns_exactly_n_bytes(lp) {
        let (got, left) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"0123456789").unwrap();
            let got = s.read_bytes(4, false).await.unwrap();
            (got, s.buffered())
        });
        assert_eq!(&got[..], b"0123");
        assert_eq!(left, 6);
    }

    fn read_bytes_exact_waits_until_all_n_bytes_arrived(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"abc").unwrap();
            let mut read = pin!(s.read_bytes(6, false));
            assert!(futures::poll!(read.as_mut()).is_pending(), "only 3 of 6 bytes arrived");
            peer.write_all(b"defgh").unwrap();
            read.await.unwrap()
        });
        assert_eq!(&got[..], b"abcdef");
    }

    fn read_bytes_partial_returns_whatever_is_available(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"xyz").unwrap();
            s.read_bytes(100, true).await.unwrap()
        });
        assert_eq!(&got[..], b"xyz");
    }

    fn read_bytes_partial_returns_at_most_n_bytes(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"0123456789").unwrap();
            s.read_bytes(3, true).await.unwrap()
        });
        assert_eq!(&got[..], b"012");
    }

    fn read_into_exact_fills_the_whole_buffer(lp) {
        let (n, buf) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"hello").unwrap();
            let mut buf = [0u8; 8];
            let n = {
                let mut read = pin!(s.read_into(&mut buf, false));
                assert!(futures::poll!(read.as_mut()).is_pending(), "5 of 8 bytes");
                peer.write_all(b" world").unwrap();
                read.await.unwrap()
            };
            (n, buf)
        });
        assert_eq!(n, 8);
        assert_eq!(&buf, b"hello wo");
    }

    fn read_into_partial_returns_the_count_of_available_bytes(lp) {
        let (n, buf) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"abc").unwrap();
            let mut buf = [0u8; 16];
            let n = s.read_into(&mut buf, true).await.unwrap();
            (n, buf)
        });
        assert_eq!(n, 3);
        assert_eq!(&buf[..3], b"abc");
        assert!(buf[3..].iter().all(|&b| b == 0), "only n bytes are written");
    }

    fn read_until_close_returns_everything_the_peer_sent(lp) {
        let data = Rng(7).bytes(300_000);
        let expected = data.clone();
        let got = bounded(&lp, async move {
            let (s, mut peer) = stream_and_peer();
            // A thread: 300 KB is more than a socket buffer holds.
            let writer = std::thread::spawn(move || peer.write_all(&data).unwrap());
            let got = s.read_until_close().await.unwrap();
            writer.join().unwrap();
            got
        });
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "data differs");
    }

    fn tcp_stream_round_trips_data(lp) {
        let (request, reply) = bounded(&lp, async {
            let (c, s) = tcp_pair();
            let (c, s) = (IOStream::new(c).unwrap(), IOStream::new(s).unwrap());
            c.write(&b"ping\n"[..]).await.unwrap();
            let request = s.read_until(b"\n", None).await.unwrap();
            s.write(&b"pong\n"[..]).await.unwrap();
            let reply = c.read_until(b"\n", None).await.unwrap();
            (request, reply)
        });
        assert_eq!(&request[..], b"ping\n");
        assert_eq!(&reply[..], b"pong\n");
    }

    // ---- one read at a time ----

    fn a_second_concurrent_read_fails_with_read_pending(lp) {
        let second = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let mut first = pin!(s.read_bytes(1, false));
            assert!(futures::poll!(first.as_mut()).is_pending());
            s.read_until(b"\n", None).await
        });
        assert!(matches!(second, Err(StreamError::ReadPending)), "{second:?}");
    }

    fn a_concurrent_read_into_fails_with_read_pending(lp) {
        let second = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let mut first = pin!(s.read_until_close());
            assert!(futures::poll!(first.as_mut()).is_pending());
            let mut buf = [0u8; 4];
            s.read_into(&mut buf, true).await
        });
        assert!(matches!(second, Err(StreamError::ReadPending)), "{second:?}");
    }

    fn a_refused_read_leaves_the_pending_read_working(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let mut first = pin!(s.read_bytes(3, false));
            assert!(futures::poll!(first.as_mut()).is_pending());
            assert!(matches!(s.read_bytes(1, false).await, Err(StreamError::ReadPending)));
            assert!(!s.is_closed(), "ReadPending does not close the stream");
            peer.write_all(b"abc").unwrap();
            first.await.unwrap()
        });
        assert_eq!(&got[..], b"abc");
    }

    fn dropping_a_pending_read_allows_a_new_read(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            {
                let mut first = pin!(s.read_bytes(3, false));
                assert!(futures::poll!(first.as_mut()).is_pending());
            }
            assert!(!s.reading());
            peer.write_all(b"abc").unwrap();
            s.read_bytes(3, false).await.unwrap()
        });
        assert_eq!(&got[..], b"abc");
    }

    // ---- the buffer first ----

    fn a_read_is_served_from_the_buffer_without_the_peer_sending_more(lp) {
        let (line, buffered, rest) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"line\nrest of the data").unwrap();
            let line = s.read_until(b"\n", None).await.unwrap();
            let buffered = s.buffered();
            // The peer sends nothing more (and stays open): the read must be
            // ready on its first poll.
            let mut rest = pin!(s.read_bytes(buffered, false));
            let rest = match futures::poll!(rest.as_mut()) {
                std::task::Poll::Ready(r) => r.unwrap(),
                std::task::Poll::Pending => panic!("read waited although the buffer held the data"),
            };
            drop(peer);
            (line, buffered, rest)
        });
        assert_eq!(&line[..], b"line\n");
        assert_eq!(buffered, b"rest of the data".len());
        assert_eq!(&rest[..], b"rest of the data");
    }

    fn reads_alternating_between_multibyte_delimiters_each_find_their_own(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"a--b\r\n\r\nc--d\r\n\r\n").unwrap();
            let mut got = Vec::new();
            for delim in [&b"--"[..], b"\r\n\r\n", b"--", b"\r\n\r\n"] {
                got.push(s.read_until(delim, None).await.unwrap());
            }
            got
        });
        let want: [&[u8]; 4] = [b"a--", b"b\r\n\r\n", b"c--", b"d\r\n\r\n"];
        assert_eq!(got, want);
    }

    fn try_read_until_buffered_takes_a_buffered_delimited_chunk_at_once(lp) {
        let (first, second, left) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"one\r\n\r\ntwo\r\n\r\nthr").unwrap();
            s.wait_for_data().await.unwrap();
            // Everything sent fits one read; both heads come from it.
            while s.buffered() < 17 {
                s.wait_for_data().await.unwrap();
            }
            let first = s.try_read_until_buffered(b"\r\n\r\n", 64).unwrap().unwrap();
            let second = s.try_read_until_buffered(b"\r\n\r\n", 64).unwrap().unwrap();
            (first, second, s.buffered())
        });
        assert_eq!(&first[..], b"one\r\n\r\n");
        assert_eq!(&second[..], b"two\r\n\r\n");
        assert_eq!(left, 3);
    }

    fn try_read_until_buffered_without_the_delimiter_consumes_nothing(lp) {
        let (none, buffered, later) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"partial").unwrap();
            s.wait_for_data().await.unwrap();
            let none = s.try_read_until_buffered(b"\n", 64).is_none();
            let buffered = s.buffered();
            peer.write_all(b" line\n").unwrap();
            let later = s.read_until(b"\n", None).await.unwrap();
            (none, buffered, later)
        });
        assert!(none);
        assert_eq!(buffered, 7);
        assert_eq!(&later[..], b"partial line\n");
    }

    fn try_read_until_buffered_past_max_bytes_fails_and_leaves_the_stream_open(lp) {
        let (err, open) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"0123456789").unwrap();
            while s.buffered() < 10 {
                s.wait_for_data().await.unwrap();
            }
            let err = s.try_read_until_buffered(b"\n", 8).unwrap().unwrap_err();
            (err, !s.is_closed())
        });
        assert!(matches!(err, StreamError::Unsatisfiable { max_bytes: 8 }), "{err:?}");
        assert!(open);
    }

    fn bytes_read_by_many_streams_stay_intact_after_the_read_arena_is_renewed(lp) {
        // Small reads share a per-thread arena that is renewed every few
        // dozen KiB; bytes handed out earlier must not change when it is.
        let ok = bounded(&lp, async {
            let mut kept = Vec::new();
            for i in 0..2_000u32 {
                let (s, mut peer) = stream_and_peer();
                let msg = format!("message {i:05} {}\n", "x".repeat((i % 50) as usize));
                peer.write_all(msg.as_bytes()).unwrap();
                let got = s.read_until(b"\n", None).await.unwrap();
                kept.push((msg, got));
            }
            kept.iter().all(|(msg, got)| msg.as_bytes() == &got[..])
        });
        assert!(ok);
    }

    fn many_small_read_bytes_from_a_large_buffer_return_the_right_data(lp) {
        const TOTAL: usize = 1 << 20;
        const STEP: usize = 7;
        let data = Rng(11).bytes(TOTAL);
        let expected = data.clone();
        let got = bounded(&lp, async move {
            let (s, mut peer) = stream_and_peer();
            let writer = std::thread::spawn(move || peer.write_all(&data).unwrap());
            let mut got = Vec::with_capacity(TOTAL);
            while got.len() < TOTAL {
                let n = STEP.min(TOTAL - got.len());
                let chunk = s.read_bytes(n, false).await.unwrap();
                assert_eq!(chunk.len(), n);
                got.extend_from_slice(&chunk);
            }
            writer.join().unwrap();
            got
        });
        assert!(got == expected, "data differs");
    }

    // ---- closing with data in flight ----

    fn data_the_peer_sent_before_closing_is_still_delivered(lp) {
        let (got, after) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"last words").unwrap();
            drop(peer);
            let got = s.read_bytes(10, false).await;
            let after = s.read_bytes(1, false).await;
            (got, after)
        });
        assert_eq!(&got.unwrap()[..], b"last words");
        assert!(matches!(after, Err(StreamError::Closed(None))), "{after:?}");
    }

    fn a_pending_read_the_data_satisfies_completes_when_the_peer_closes(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let mut read = pin!(s.read_bytes(5, false));
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"hello").unwrap();
            drop(peer);
            read.await
        });
        assert_eq!(&got.unwrap()[..], b"hello");
    }

    fn a_pending_read_until_close_completes_when_the_peer_closes(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"first ").unwrap();
            let mut read = pin!(s.read_until_close());
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"second").unwrap();
            drop(peer);
            read.await
        });
        assert_eq!(&got.unwrap()[..], b"first second");
    }

    fn a_pending_read_the_buffer_cannot_satisfy_fails_with_closed(lp) {
        let (got, closed, buffered) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let mut read = pin!(s.read_bytes(10, false));
            assert!(futures::poll!(read.as_mut()).is_pending());
            peer.write_all(b"only5").unwrap();
            drop(peer);
            let got = read.await;
            (got, s.is_closed(), s.buffered())
        });
        assert!(matches!(got, Err(StreamError::Closed(None))), "{got:?}");
        assert!(closed);
        assert_eq!(buffered, 5, "the short data stays buffered");
    }

    fn a_pending_read_until_close_completes_on_a_local_close(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            let s = Rc::new(s);
            peer.write_all(b"buffered").unwrap();
            let closer = s.clone();
            cyclone::spawn(async move {
                // Close once the reader has the data buffered.
                while closer.buffered() < 8 {
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                closer.close();
            });
            let got = s.read_until_close().await;
            drop(peer);
            got
        });
        assert_eq!(&got.unwrap()[..], b"buffered");
    }

    // ---- peer reset / EPIPE is a normal close ----

    fn writing_to_a_dropped_unix_peer_fails_with_a_disconnect_error(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (a, b) = stream_pair();
            drop(b);
            let res = a.write(&b"into the void"[..]).await;
            (res, a.is_closed(), a.error())
        });
        assert!(is_closed_err(&res), "{res:?}");
        assert!(res.unwrap_err().is_disconnect());
        assert!(closed);
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
    }

    fn writing_to_a_dropped_tcp_peer_eventually_fails_with_a_disconnect_error(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (c, s) = tcp_pair();
            let c = IOStream::new(c).unwrap();
            drop(s);
            let mut res = Ok(());
            for _ in 0..1000 {
                res = c.write(vec![b'x'; 1024]).await;
                if res.is_err() {
                    break;
                }
                cyclone::sleep(Duration::from_millis(1)).await;
            }
            (res, c.is_closed(), c.error())
        });
        assert!(is_closed_err(&res), "{res:?}");
        assert!(closed);
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
    }

    fn a_tcp_reset_closes_a_reading_stream_without_a_warning(lp) {
        let mut outcome = None;
        let logs = common::capture_logs(|| {
            outcome = Some(bounded(&lp, async {
                let (c, s) = tcp_pair();
                let c = IOStream::new(c).unwrap();
                // Linger 0: dropping the socket sends RST, not FIN.
                socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
                let mut read = pin!(c.read_bytes(1, false));
                assert!(futures::poll!(read.as_mut()).is_pending());
                drop(s);
                let res = read.await;
                (res, c.error())
            }));
        });
        let (res, error) = outcome.unwrap();
        assert!(is_closed_err(&res), "{res:?}");
        let error = error.expect("error() says why");
        assert!(error.is_disconnect(), "{error:?}");
        assert!(!logs.contains("WARN"), "a reset is a normal close, not a warning:\n{logs}");
    }

    fn read_until_close_returns_the_data_sent_before_a_tcp_reset(lp) {
        let got = bounded(&lp, async {
            let (c, mut s) = tcp_pair();
            let c = IOStream::new(c).unwrap();
            s.write_all(b"the response").unwrap();
            socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
            drop(s);
            c.read_until_close().await
        });
        assert_eq!(&got.unwrap()[..], b"the response");
    }

    fn read_until_close_returns_the_data_when_the_unix_peer_leaves_ours_unread(lp) {
        let got = bounded(&lp, async {
            let (c, mut peer) = stream_and_peer();
            // The peer never reads our request: closing it resets us.
            c.write(&b"request"[..]).await.unwrap();
            peer.write_all(b"the response").unwrap();
            drop(peer);
            c.read_until_close().await
        });
        assert_eq!(&got.unwrap()[..], b"the response");
    }

    fn writing_to_a_vanished_peer_never_raises_sigpipe(lp) {
        if std::env::var_os(SIGPIPE_CHILD_ENV).is_some() {
            // The child: SIGPIPE back to its default action (kill), then
            // write to sockets whose peers are gone.
            // SAFETY: sets a signal disposition; no handler runs.
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            bounded(&lp, async {
                let (a, b) = stream_pair();
                drop(b);
                for _ in 0..3 {
                    assert!(a.write(&b"x"[..]).await.is_err());
                }
                let (c, s) = tcp_pair();
                let c = IOStream::new(c).unwrap();
                drop(s);
                let mut failed = false;
                for _ in 0..1000 {
                    if c.write(vec![0u8; 1024]).await.is_err() {
                        failed = true;
                        break;
                    }
                    cyclone::sleep(Duration::from_millis(1)).await;
                }
                assert!(failed, "writes to a closed TCP peer kept succeeding");
            });
            println!("{SIGPIPE_CHILD_DONE}");
            return;
        }
        // "iostream::epoll" -> "epoll::writing_to_..."
        let module = module_path!().split_once("::").map_or(module_path!(), |(_, m)| m);
        let name = format!("{module}::writing_to_a_vanished_peer_never_raises_sigpipe");
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--nocapture", "--test-threads=1"])
            .env(SIGPIPE_CHILD_ENV, "1")
            .output()
            .expect("run the child");
        use std::os::unix::process::ExitStatusExt;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.signal(), None, "the child was killed by a signal\n{stdout}\n{stderr}");
        assert!(out.status.success(), "the child failed\n{stdout}\n{stderr}");
        assert!(stdout.contains(SIGPIPE_CHILD_DONE), "the child did not run the scenario\n{stdout}\n{stderr}");
    }

    // ---- max_bytes ----

    fn read_until_past_max_bytes_closes_with_unsatisfiable_even_with_the_delimiter_in_the_same_packet(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"aaaaaaaaaa\n").unwrap();
            let res = s.read_until(b"\n", Some(5)).await;
            (res, s.is_closed(), s.error())
        });
        assert!(matches!(res, Err(StreamError::Unsatisfiable { max_bytes: 5 })), "{res:?}");
        assert!(closed);
        assert!(matches!(error, Some(StreamError::Unsatisfiable { max_bytes: 5 })), "{error:?}");
    }

    fn read_until_past_max_bytes_closes_with_unsatisfiable_without_a_delimiter(lp) {
        let (res, closed) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"no delimiter in sight").unwrap();
            let res = s.read_until(b"\n", Some(8)).await;
            (res, s.is_closed())
        });
        assert!(matches!(res, Err(StreamError::Unsatisfiable { max_bytes: 8 })), "{res:?}");
        assert!(closed);
    }

    fn read_until_with_the_delimiter_ending_exactly_at_max_bytes_succeeds(lp) {
        let got = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"abcd\nefgh").unwrap();
            s.read_until(b"\n", Some(5)).await
        });
        assert_eq!(&got.unwrap()[..], b"abcd\n");
    }

    fn read_until_regex_past_max_bytes_closes_with_unsatisfiable(lp) {
        let (res, closed) = bounded(&lp, async {
            let (s, mut peer) = stream_and_peer();
            peer.write_all(b"aaaaaaaaaa\n").unwrap();
            let res = s.read_until_regex(&Regex::new(r"\n").unwrap(), Some(5)).await;
            (res, s.is_closed())
        });
        assert!(matches!(res, Err(StreamError::Unsatisfiable { max_bytes: 5 })), "{res:?}");
        assert!(closed);
    }

    // ---- large transfers ----

    fn read_until_on_a_4_mib_body_arriving_in_small_chunks_returns_it_whole(lp) {
        const BODY: usize = 4 << 20;
        // Random bytes without '\n', then the delimiter.
        let mut data: Vec<u8> = Rng(3).bytes(BODY).into_iter().map(|b| if b == b'\n' { b'.' } else { b }).collect();
        data.extend_from_slice(b"\n\ntrailer");
        let expected = data[..BODY + 2].to_vec();
        let got = bounded(&lp, async move {
            let (a, b) = stream_pair();
            // Small reads on the reading side: the body arrives 4 KiB at a time.
            b.set_read_chunk_size(4 << 10);
            let a = Rc::new(a);
            let data = Bytes::from(data);
            let w = a.clone();
            cyclone::spawn(async move {
                for off in (0..data.len()).step_by(1024) {
                    w.write(data.slice(off..(off + 1024).min(data.len()))).await.unwrap();
                }
            });
            b.read_until(b"\n\n", None).await.unwrap()
        });
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "data differs");
    }

    fn ten_mib_through_a_five_mib_read_buffer_arrives_intact_when_reads_keep_up(lp) {
        const TOTAL: usize = 10 << 20;
        let data = Bytes::from(Rng(5).bytes(TOTAL));
        let expected = data.clone();
        let (got, error) = bounded(&lp, async move {
            let (a, b) = stream_pair();
            b.set_max_buffer_size(5 << 20);
            let a = Rc::new(a);
            let w = a.clone();
            let writer = cyclone::spawn(async move {
                for off in (0..TOTAL).step_by(1 << 20) {
                    w.write(data.slice(off..off + (1 << 20))).await.unwrap();
                }
            });
            let mut got = Vec::with_capacity(TOTAL);
            while got.len() < TOTAL {
                let chunk = b.read_bytes(64 << 10, true).await.unwrap();
                assert!(!chunk.is_empty() && chunk.len() <= 64 << 10);
                got.extend_from_slice(&chunk);
            }
            writer.await.unwrap();
            (got, b.error())
        });
        assert!(error.is_none(), "{error:?}");
        assert_eq!(got.len(), TOTAL);
        assert!(got[..] == expected[..], "data differs");
    }

    fn awaited_writes_to_a_slow_reader_never_overflow_the_write_buffer(lp) {
        const CHUNK: usize = 64 << 10;
        const CHUNKS: usize = 48;
        let data = Bytes::from(Rng(9).bytes(CHUNK * CHUNKS));
        let expected = data.clone();
        let got = bounded(&lp, async move {
            let (a, peer) = stream_and_peer();
            let reader = slow_reader(peer, CHUNK * CHUNKS, 4096, Some(Duration::from_micros(200)));
            // Room for exactly one chunk: a writer that awaits each write
            // has nothing queued when it writes the next.
            a.set_max_write_buffer_size(Some(CHUNK));
            for i in 0..CHUNKS {
                let res = a.write(data.slice(i * CHUNK..(i + 1) * CHUNK)).await;
                assert!(res.is_ok(), "write {i}: {res:?}");
                assert!(!a.writing(), "an awaited write left data queued");
            }
            drop(a);
            reader.join().unwrap()
        });
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "data differs");
    }

    fn unread_data_past_max_buffer_size_closes_the_stream_with_buffer_full(lp) {
        let (res, closed, error) = bounded(&lp, async {
            let (s, peer) = stream_and_peer();
            s.set_max_buffer_size(1024);
            let writer = std::thread::spawn(move || {
                let mut peer = peer;
                // Ends with an error once the stream closes.
                let _ = peer.write_all(&[b'x'; 8192]);
            });
            // No delimiter ever comes: the buffer fills up.
            let res = s.read_until(b"\n", None).await;
            let out = (res, s.is_closed(), s.error());
            drop(s);
            writer.join().unwrap();
            out
        });
        assert!(matches!(res, Err(StreamError::BufferFull)), "{res:?}");
        assert!(closed);
        assert!(matches!(error, Some(StreamError::BufferFull)), "{error:?}");
    }

    fn a_write_that_would_queue_past_max_write_buffer_size_fails_with_buffer_full(lp) {
        let (queued, res) = bounded(&lp, async {
            let (a, _peer) = stream_and_peer();
            a.set_max_write_buffer_size(Some(256 << 10));
            // The peer never reads: fill the kernel until writes queue.
            let mut pending = Vec::new();
            for _ in 0..10_000 {
                if a.writing() {
                    break;
                }
                pending.push(a.write(vec![1u8; 4096]));
            }
            let queued = a.writing();
            let res = a.write(vec![2u8; 256 << 10]).await;
            drop(pending);
            (queued, res)
        });
        assert!(queued, "the kernel never filled up");
        assert!(matches!(res, Err(StreamError::BufferFull)), "{res:?}");
    }

    fn a_write_within_max_write_buffer_size_is_accepted(lp) {
        let (res, got) = bounded(&lp, async {
            let (a, mut peer) = stream_and_peer();
            a.set_max_write_buffer_size(Some(16));
            let res = a.write(&b"sixteen bytes!!!"[..]).await;
            let mut got = [0u8; 16];
            peer.read_exact(&mut got).unwrap();
            (res, got)
        });
        assert!(res.is_ok(), "{res:?}");
        assert_eq!(&got, b"sixteen bytes!!!");
    }

    // ---- write ordering ----

    fn outstanding_writes_resolve_in_the_order_they_were_made(lp) {
        const N: usize = 200;
        const SIZE: usize = 16 << 10;
        let order = bounded(&lp, async {
            let (a, b) = stream_pair();
            let b = Rc::new(b);
            let r = b.clone();
            let reader = cyclone::spawn(async move { r.read_bytes(N * SIZE, false).await.map(|d| d.len()) });
            let order = Rc::new(RefCell::new(Vec::new()));
            let writes: Vec<_> = (0..N).map(|i| a.write(vec![i as u8; SIZE])).collect();
            assert!(a.writing(), "writes were queued");
            let waits = writes.into_iter().enumerate().map(|(i, w)| {
                let order = order.clone();
                async move {
                    w.await.unwrap();
                    order.borrow_mut().push(i);
                }
            });
            futures::future::join_all(waits).await;
            assert_eq!(reader.await.unwrap().unwrap(), N * SIZE);
            order.take()
        });
        assert_eq!(order, (0..N).collect::<Vec<_>>());
    }

    fn many_outstanding_writes_deliver_all_data_in_order(lp) {
        const N: usize = 500;
        let mut rng = Rng(17);
        let chunks: Vec<Vec<u8>> = (0..N).map(|_| {
            let n = rng.range(1, 20_000);
            rng.bytes(n)
        }).collect();
        let expected: Vec<u8> = chunks.concat();
        let total = expected.len();
        let got = bounded(&lp, async move {
            let (a, b) = stream_pair();
            let b = Rc::new(b);
            let r = b.clone();
            let reader = cyclone::spawn(async move { r.read_bytes(total, false).await.unwrap() });
            let writes: Vec<_> = chunks.into_iter().map(|c| a.write(c)).collect();
            for w in writes {
                w.await.unwrap();
            }
            reader.await.unwrap()
        });
        assert_eq!(got.len(), expected.len());
        assert!(got[..] == expected[..], "data differs");
    }

    // ---- memory ----

    fn a_new_stream_holds_no_read_buffer(lp) {
        let cap = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            s.read_buffer_capacity()
        });
        assert_eq!(cap, 0);
    }

    fn a_stream_holds_no_read_buffer_once_everything_is_read(lp) {
        const TOTAL: usize = 1 << 20;
        let (after_small, after_large) = bounded(&lp, async {
            let (a, b) = stream_pair();
            a.write(&b"small\n"[..]).await.unwrap();
            b.read_until(b"\n", None).await.unwrap();
            let after_small = b.read_buffer_capacity();
            let a = Rc::new(a);
            let w = a.clone();
            cyclone::spawn(async move { w.write(vec![7u8; TOTAL]).await.unwrap() });
            // One read for all of it, so the buffer grows to hold 1 MiB.
            let all = b.read_bytes(TOTAL, false).await.unwrap();
            assert_eq!(all.len(), TOTAL);
            (after_small, b.read_buffer_capacity())
        });
        assert_eq!(after_small, 0, "bytes held after a small read");
        assert_eq!(after_large, 0, "bytes held after a 1 MiB read");
    }

    // ---- random mix ----

    fn one_mib_of_random_data_through_a_random_mix_of_reads_arrives_intact(lp) {
        const TOTAL: usize = 1 << 20;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let data = Bytes::from(rng.bytes(TOTAL));
        let expected = data.clone();
        let want = data.clone();
        let got = bounded(&lp, async move {
            let (a, b) = stream_pair();
            let a = Rc::new(a);
            let w = a.clone();
            let mut wrng = Rng(rng.next() | 1);
            let writer = cyclone::spawn(async move {
                let mut off = 0;
                while off < TOTAL {
                    let n = wrng.range(1, 70_000).min(TOTAL - off);
                    w.write(data.slice(off..off + n)).await.unwrap();
                    off += n;
                    if wrng.range(0, 3) == 0 {
                        cyclone::sleep(Duration::from_millis(1)).await;
                    }
                }
            });
            let chunk_sizes = [7, 100, 1000, 4096, 65536];
            let mut got: Vec<u8> = Vec::with_capacity(TOTAL);
            while got.len() < TOTAL {
                let left = TOTAL - got.len();
                b.set_read_chunk_size(chunk_sizes[rng.range(0, chunk_sizes.len() - 1)]);
                let pos = got.len();
                match rng.range(0, 3) {
                    0 => {
                        let delim: &[u8] = if rng.range(0, 1) == 0 { b"\n" } else { b"\x00\xff" };
                        match memchr::memmem::find(&want[pos..], delim) {
                            Some(at) => {
                                let line = b.read_until(delim, None).await.unwrap();
                                assert_eq!(line.len(), at + delim.len(), "read_until at {pos}");
                                got.extend_from_slice(&line);
                            }
                            None => {
                                got.extend_from_slice(&b.read_bytes(left, false).await.unwrap());
                            }
                        }
                    }
                    1 => {
                        let n = rng.range(1, 100_000).min(left);
                        let partial = rng.range(0, 1) == 0;
                        let chunk = b.read_bytes(n, partial).await.unwrap();
                        assert!(!chunk.is_empty() && chunk.len() <= n);
                        assert!(partial || chunk.len() == n);
                        got.extend_from_slice(&chunk);
                    }
                    _ => {
                        let n = rng.range(1, 100_000).min(left);
                        let partial = rng.range(0, 1) == 0;
                        let mut buf = vec![0u8; n];
                        let k = b.read_into(&mut buf, partial).await.unwrap();
                        assert!(k >= 1 && k <= n);
                        assert!(partial || k == n);
                        got.extend_from_slice(&buf[..k]);
                    }
                }
                assert!(got[pos..] == want[pos..got.len()], "data differs at {pos}");
            }
            writer.await.unwrap();
            got
        });
        assert!(got[..] == expected[..], "data differs");
    }

    // ---- close ----

    fn close_marks_the_stream_closed(lp) {
        let (before, after) = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let before = s.is_closed();
            s.close();
            (before, s.is_closed())
        });
        assert!(!before);
        assert!(after);
    }

    fn the_closed_future_resolves_on_close(lp) {
        let res = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            let s = Rc::new(s);
            let c = s.clone();
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                c.close();
            });
            cyclone::timeout(Duration::from_secs(5), s.closed()).await
        });
        assert!(res.is_ok(), "closed() did not resolve");
    }

    fn the_close_callback_runs_once(lp) {
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        bounded(&lp, async move {
            let (s, _peer) = stream_and_peer();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                c.set(c.get() + 1);
                let _ = tx.send(());
            });
            s.close();
            s.close();
            drop(s);
            rx.await.unwrap();
            // Let any (wrong) second run happen.
            cyclone::sleep(Duration::from_millis(10)).await;
        });
        assert_eq!(count.get(), 1);
    }

    fn a_close_callback_on_an_idle_stream_fires_when_the_peer_closes(lp) {
        let (fired, closed, error) = bounded(&lp, async {
            let (s, peer) = stream_and_peer();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                let _ = tx.send(());
            });
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                drop(peer);
            });
            // No read is pending: only the stream's own listener can notice.
            let fired = cyclone::timeout(Duration::from_secs(5), rx).await;
            (fired, s.is_closed(), s.error())
        });
        assert!(matches!(fired, Ok(Ok(()))), "the close callback did not fire");
        assert!(closed);
        assert!(error.is_none(), "{error:?}");
    }

    fn the_closed_future_resolves_when_the_peer_closes(lp) {
        let res = bounded(&lp, async {
            let (s, peer) = stream_and_peer();
            cyclone::spawn(async move {
                cyclone::sleep(Duration::from_millis(5)).await;
                drop(peer);
            });
            let res = cyclone::timeout(Duration::from_secs(5), s.closed()).await;
            (res, s.is_closed())
        });
        assert!(res.0.is_ok(), "closed() did not resolve");
        assert!(res.1);
    }

    fn a_close_callback_set_on_a_closed_stream_still_runs(lp) {
        let fired = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            s.close();
            let (tx, rx) = futures::channel::oneshot::channel();
            s.set_close_callback(move || {
                let _ = tx.send(());
            });
            cyclone::timeout(Duration::from_secs(5), rx).await
        });
        assert!(matches!(fired, Ok(Ok(()))));
    }

    fn reads_and_writes_on_a_closed_stream_fail_with_closed(lp) {
        let (read, write) = bounded(&lp, async {
            let (s, _peer) = stream_and_peer();
            s.close();
            (s.read_bytes(1, false).await, s.write(&b"x"[..]).await)
        });
        assert!(matches!(read, Err(StreamError::Closed(None))), "{read:?}");
        assert!(matches!(write, Err(StreamError::Closed(None))), "{write:?}");
    }

    fn close_fails_pending_writes_with_closed(lp) {
        let res = bounded(&lp, async {
            let (a, _peer) = stream_and_peer();
            let a = Rc::new(a);
            // More than the kernel takes, so the write waits in the queue.
            let pending = a.clone();
            let w = cyclone::spawn(async move { pending.write(vec![0u8; 16 << 20]).await });
            common::until("the spawned write to start", || a.writing()).await;
            assert!(a.writing());
            a.close();
            w.await.unwrap()
        });
        assert!(matches!(res, Err(StreamError::Closed(None))), "{res:?}");
    }

    // ---- TCP options ----

    fn set_nodelay_sets_tcp_nodelay(lp) {
        let (on, off) = bounded(&lp, async {
            let (c, _s) = tcp_pair();
            let c = IOStream::new(c).unwrap();
            let get = |fd| {
                let mut v: libc::c_int = -1;
                let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                // SAFETY: passes a live c_int and its size.
                let rc = unsafe {
                    libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&mut v as *mut libc::c_int).cast(), &mut len)
                };
                assert_eq!(rc, 0);
                v
            };
            c.set_nodelay(true).unwrap();
            let on = get(c.fd());
            c.set_nodelay(false).unwrap();
            (on, get(c.fd()))
        });
        assert_ne!(on, 0);
        assert_eq!(off, 0);
    }

    // ---- pipes ----

    fn data_written_to_a_pipe_arrives_at_the_reader(lp) {
        let got = bounded(&lp, async {
            let (r, w) = IOStream::pipe().unwrap();
            w.write(&b"through the pipe\n"[..]).await.unwrap();
            r.read_until(b"\n", None).await.unwrap()
        });
        assert_eq!(&got[..], b"through the pipe\n");
    }

    fn a_pipe_reader_sees_eof_when_the_writer_is_dropped(lp) {
        const TOTAL: usize = 300_000;
        let data = Bytes::from(Rng(21).bytes(TOTAL));
        let expected = data.clone();
        let got = bounded(&lp, async move {
            let (r, w) = IOStream::pipe().unwrap();
            // More than a pipe holds: the write has to wait for the reader.
            cyclone::spawn(async move {
                w.write(data).await.unwrap();
                drop(w);
            });
            r.read_until_close().await.unwrap()
        });
        assert_eq!(got.len(), TOTAL);
        assert!(got[..] == expected[..], "data differs");
    }
}

/// Regression tests for IOStream writes on io_uring: each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
        // io_uring: another stream's close submitted our queued send, and the
        // loop kept its completion for the next poll. A write made meanwhile
        // started a second send that the stream counted as part of the first:
        // the first completion resolved both writes, so the second claimed to
        // be out while the kernel still held most of it, and a third write
        // then went out ahead of it.
        fn a_write_behind_a_completed_but_unreported_send_is_not_counted_with_it(lp) {
            const BIG: usize = 8 << 20; // more than loopback's socket buffers hold
            let (peer, still_writing) = lp.run_sync(async {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
                let a = cyclone::IOStream::new(listener.accept().unwrap().0).unwrap();
                let (b, _b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
                let b = cyclone::IOStream::new(b).unwrap();
                drop(a.write(&b"x"[..]));
                drop(b.write(&b"b"[..]));
                b.close(); // hands the loop's queued sends over, ours with them
                drop(a.write(vec![b'y'; BIG]));
                cyclone::sleep(Duration::from_millis(20)).await;
                let still_writing = a.writing(); // nobody has read yet
                drop(a.write(&b"z"[..]));
                let reader = std::thread::spawn(move || {
                    let mut peer = peer;
                    peer.set_read_timeout(Some(common::HANG)).unwrap();
                    let mut got = Vec::new();
                    std::io::Read::read_to_end(&mut peer, &mut got).unwrap();
                    got
                });
                a.write(bytes::Bytes::new()).await.unwrap(); // everything is out
                drop(a);
                common::thread_finished(&reader).await;
                (reader, still_writing)
            });
            assert!(still_writing, "8 MiB reported written with nobody reading");
            let got = peer.join().unwrap();
            assert_eq!(got.len(), BIG + 2);
            assert_eq!(got[0], b'x');
            assert!(got[1..=BIG].iter().all(|&c| c == b'y'), "a byte came out of order");
            assert_eq!(got[BIG + 1], b'z');
        }
    }
}
