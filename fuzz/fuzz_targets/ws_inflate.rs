//! permessage-deflate's inflater on arbitrary compressed payloads: it
//! must not panic, and must never hold more than its limit of inflated
//! bytes, however well the input compresses (a deflate bomb).
#![no_main]

use cyclone::websocket::{Decompressor, DirectionParams};
use libfuzzer_sys::fuzz_target;

/// A small limit, so bombs reach it in a few bytes.
const MAX: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let [flags, rest @ ..] = data else {
        return;
    };
    let peer = DirectionParams {
        window_bits: 9 + flags % 7,
        no_context_takeover: flags & 0x80 != 0,
    };
    let mut inflater = Decompressor::new(&peer);
    // Several messages through one context: split where a 0xFF byte is.
    for message in rest.split(|&b| b == 0xff) {
        let mut out = Vec::new();
        let result = inflater.decompress(message, &mut out, MAX);
        // Growing stops one step past the limit at most.
        assert!(out.len() <= MAX + 1, "{} bytes inflated", out.len());
        if result.is_err() {
            return;
        }
        assert!(out.len() <= MAX);
    }
});
