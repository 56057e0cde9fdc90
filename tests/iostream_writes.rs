//! IOStream writes: outstanding writes resolve, and their data arrives, in
//! the order they were made, with the io_uring regression that pins it.
//! Every test runs on every poller backend and is bounded in time; the
//! helpers are in `common::stream`.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::stream::{Rng, bounded, stream_pair};

per_backend! {
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
