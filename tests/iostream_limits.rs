//! IOStream buffer limits: `max_bytes` on a read, `max_buffer_size` and
//! `max_write_buffer_size` under large transfers (flow control), and the
//! memory a stream holds once its data is read. Every test runs on every
//! poller backend and is bounded in time; the helpers are in
//! `common::stream`.

mod common;

use std::io::{Read as _, Write as _};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use common::stream::{Rng, bounded, slow_reader, stream_and_peer, stream_pair};
use cyclone::StreamError;
use regex::bytes::Regex;

per_backend! {
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
}
