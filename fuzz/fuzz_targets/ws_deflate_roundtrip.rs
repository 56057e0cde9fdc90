//! permessage-deflate's compressor without context takeover (the quick
//! encoder at level 1, zlib-rs at the others) on arbitrary messages: what
//! it sends must inflate back to the message, within the window agreed.
#![no_main]

use cyclone::websocket::{Compressor, DeflateConfig, Decompressor, DirectionParams};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, message @ ..] = data else {
        return;
    };
    let params = DirectionParams {
        window_bits: 9 + flags % 7,
        no_context_takeover: true,
    };
    let config = DeflateConfig {
        compression_level: if flags & 0x80 == 0 { 1 } else { 6 },
        ..DeflateConfig::stateless()
    };
    let mut compressor = Compressor::new(&params, &config);
    let mut wire = Vec::new();
    compressor.compress(message, &mut wire).unwrap();
    let mut out = Vec::new();
    Decompressor::new(&params)
        .decompress(&wire, &mut out, message.len() + 1)
        .unwrap();
    assert_eq!(out, message);
});
