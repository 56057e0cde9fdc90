//! How a stream's written data meets its end: a shutdown, a close, or the
//! loop stopping right after the write. On io_uring a write is sent by the
//! loop with its next wait, so each of these is a race the stream must win
//! on every backend: the peer gets the bytes, then the EOF.

mod common;

use std::io::Read as _;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::HANG;
use cyclone::IOStream;

/// A connected TCP pair on 127.0.0.1: the stream's end on the current
/// loop, and the peer as a blocking socket that gives up after [`HANG`].
fn stream_and_tcp_peer() -> (IOStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let peer = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (ours, _) = listener.accept().expect("accept");
    peer.set_read_timeout(Some(HANG)).unwrap();
    (IOStream::new(ours).unwrap(), peer)
}

/// Everything the peer reads until EOF (a reset counts as the end too).
fn read_to_end(mut peer: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match peer.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("reading after {} bytes: {e}", got.len()),
        }
    }
}

per_backend! {
    fn shutdown_write_right_after_a_write_sends_the_data_before_the_eof(lp) {
        // The loop stops at once: nothing after the shutdown may be needed
        // to get the data, then the EOF, to the peer.
        let (s, peer) = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(&b"the last words"[..])); // not awaited
            s.shutdown_write().unwrap();
            (s, peer)
        });
        // The stream (and so the socket) is still open: only the shutdown
        // can end the peer's read.
        assert_eq!(read_to_end(peer), b"the last words");
        drop(s);
    }

    fn shutdown_write_after_two_writes_sends_both_before_the_eof(lp) {
        let (s, peer) = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(&b"first, "[..]));
            drop(s.write(&b"second"[..]));
            s.shutdown_write().unwrap();
            (s, peer)
        });
        assert_eq!(read_to_end(peer), b"first, second");
        drop(s);
    }

    fn close_after_two_writes_sends_both_before_the_eof(lp) {
        let peer = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(&b"first, "[..]));
            drop(s.write(&b"second"[..]));
            s.close();
            peer
        });
        assert_eq!(read_to_end(peer), b"first, second");
    }

    fn a_stream_dropped_after_the_loop_stopped_closes_its_socket(lp) {
        let (s, peer) = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            // Wait on the fd once, so that it is watched when we leave.
            s.write(&b"hi"[..]).await.unwrap();
            cyclone::sleep(Duration::from_millis(5)).await;
            (s, peer)
        });
        drop(s); // the loop is not running
        assert_eq!(read_to_end(peer), b"hi");
    }

    fn close_right_after_a_write_sends_the_data_before_the_eof(lp) {
        let peer = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(&b"goodbye"[..])); // not awaited
            s.close();
            peer
        });
        assert_eq!(read_to_end(peer), b"goodbye");
    }

    fn a_write_made_in_the_loops_last_turn_goes_out_when_the_loop_stops(lp) {
        let (s, mut peer) = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(&b"before stopping"[..])); // not awaited
            (s, peer)
        });
        // The loop no longer runs: whatever it had queued must be out.
        let mut got = [0u8; 15];
        peer.read_exact(&mut got).expect("the write reached the peer");
        assert_eq!(&got, b"before stopping");
        drop(s);
    }

    fn close_drops_what_the_kernel_has_not_taken_from_a_peer_that_never_reads(lp) {
        // Far more than loopback's socket buffers hold (a few MiB at most).
        const WRITTEN: usize = 64 << 20;
        let peer = lp.run_sync(async {
            let (s, peer) = stream_and_tcp_peer();
            drop(s.write(vec![7u8; WRITTEN])); // cannot complete: nobody reads
            // Let the loop hand over what the kernel takes.
            cyclone::sleep(Duration::from_millis(50)).await;
            assert!(s.writing(), "the kernel took everything");
            s.close();
            peer
        });
        // The socket is really closed: the peer reads what the kernel had
        // taken, then the end, instead of the rest trickling out of a send
        // left in flight.
        let got = read_to_end(peer);
        assert!(got.len() < WRITTEN, "read all {} bytes", got.len());
        assert!(got.iter().all(|&b| b == 7));
    }
}

/// Regression tests for a stream's end (close, EOF): each pins a fixed bug and is named
/// after it (moved here from the former tests/regressions.rs).
mod regressions {
    #[allow(unused_imports)]
    use super::*;
    #[allow(unused_imports)]
    use std::{cell::Cell, rc::Rc, time::Duration};

    crate::per_backend! {
        // A `closed()` future dropped before the close (say, by a timeout) left
        // its waker behind, so the idle stream kept reading incoming data into
        // its buffer as if someone were listening for the close.
        fn dropped_closed_future_stops_listening_for_the_close(lp) {
            use std::io::Write;
            let buffered = lp.run_sync_timeout(async {
                let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                let a = cyclone::IOStream::new(a).unwrap();
                let waited = cyclone::timeout(Duration::from_millis(5), a.closed()).await;
                assert!(waited.is_err());
                b.write_all(b"unread").unwrap();
                cyclone::sleep(Duration::from_millis(20)).await;
                a.buffered()
            }, common::HANG).unwrap();
            assert_eq!(buffered, 0, "nobody reads or listens: the data stays in the kernel");
        }

        // Edge-triggered streams: data and the peer's FIN arriving together
        // make one edge; the short read that got the data used to be taken as
        // "drained", the EOF was never read and read_until_close hung.
        fn data_and_fin_together_still_end_read_until_close(lp) {
            use std::io::Write;
            let got = lp.run_sync_timeout(async {
                let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                let a = cyclone::IOStream::new(a).unwrap();
                b.write_all(b"last words").unwrap();
                drop(b);
                a.read_until_close().await.unwrap()
            }, common::HANG).unwrap();
            assert_eq!(&got[..], b"last words");
        }

        // The same edge when the data is read in two parts: the second read
        // found the EOF only if the first did not take the edge as drained.
        fn data_then_fin_after_a_partial_read_still_closes(lp) {
            use std::io::Write;
            let closed = lp.run_sync_timeout(async {
                let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                let a = cyclone::IOStream::new(a).unwrap();
                b.write_all(b"abc").unwrap();
                drop(b);
                let first = a.read_bytes(16, true).await.unwrap();
                assert_eq!(&first[..], b"abc");
                a.read_bytes(1, false).await.is_err() && a.is_closed()
            }, common::HANG).unwrap();
            assert!(closed);
        }

        // StreamWatcher::closed (a long-poll handler's `req.connection`) had its
        // own copy of the waiter without the fix above: dropped after a
        // timeout, it kept the stream pulling in data.
        fn dropped_watcher_closed_future_stops_listening_for_the_close(lp) {
            use std::io::Write;
            let buffered = lp.run_sync_timeout(async {
                let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
                let a = cyclone::IOStream::new(a).unwrap();
                let watcher = a.watcher();
                assert!(cyclone::timeout(Duration::from_millis(5), watcher.closed()).await.is_err());
                b.write_all(b"unread").unwrap();
                cyclone::sleep(Duration::from_millis(20)).await;
                a.buffered()
            }, common::HANG).unwrap();
            assert_eq!(buffered, 0);
        }
    }
}
