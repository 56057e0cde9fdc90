//! IOStream reads: each kind of read returns the right bytes, one read
//! runs at a time, a read is served from the buffer before the socket, and
//! a random mix of reads over 1 MiB loses nothing. Every test runs on
//! every poller backend and is bounded in time; the helpers are in
//! `common::stream`.

mod common;

use std::io::Write as _;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::stream::{Rng, bounded, stream_and_peer, stream_pair};
use cyclone::StreamError;
use regex::bytes::Regex;

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
}
