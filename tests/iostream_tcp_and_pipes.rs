//! IOStream over TCP and over pipes: a TCP round trip, TCP options, and a
//! pipe's writer and reader. Every test runs on every poller backend and
//! is bounded in time; the helpers are in `common::stream`.

mod common;

use bytes::Bytes;
use common::stream::{Rng, bounded, tcp_pair};
use cyclone::IOStream;

per_backend! {
    // ---- TCP ----

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
