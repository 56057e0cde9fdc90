//! The WebSocket frame decoder on arbitrary bytes, as a server receives
//! them: in pieces of arbitrary sizes, with or without permessage-deflate.
//! Whatever arrives, it must not panic, must never deliver a message over
//! its limit, and must read nothing after an error or a Close.
#![no_main]

use bytes::BytesMut;
use cyclone::websocket::{Decoder, Decompressor, DirectionParams, Message, Role};
use libfuzzer_sys::fuzz_target;

/// A small limit, so the fuzzer reaches it.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let [flags, piece, rest @ ..] = data else {
        return;
    };
    let mut decoder = Decoder::new(Role::Server, MAX);
    if flags & 1 == 1 {
        let peer = DirectionParams {
            window_bits: 9 + (flags >> 1) % 7,
            no_context_takeover: flags & 0x80 != 0,
        };
        decoder = decoder.with_deflate(Decompressor::new(&peer));
    }
    let piece = usize::from(*piece).max(1);
    let mut buf = BytesMut::new();
    for chunk in rest.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(message)) => {
                    match &message {
                        Message::Text(t) => assert!(t.len() <= MAX),
                        Message::Binary(b) => assert!(b.len() <= MAX),
                        Message::Ping(p) | Message::Pong(p) => assert!(p.len() <= 125),
                        Message::Close(_) => {}
                    }
                    if matches!(message, Message::Close(_)) {
                        assert!(decoder.is_done());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(decoder.is_done());
                    assert!(matches!(e.close_code().0, 1002 | 1007 | 1009));
                    // Nothing more is read after a failure.
                    let left = buf.len();
                    assert_eq!(decoder.decode(&mut buf), Ok(None));
                    assert_eq!(buf.len(), left);
                    return;
                }
            }
            if decoder.is_done() {
                let left = buf.len();
                assert_eq!(decoder.decode(&mut buf), Ok(None));
                assert_eq!(buf.len(), left);
                return;
            }
        }
    }
});
