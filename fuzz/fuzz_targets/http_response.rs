//! The HTTP client's response decoder on arbitrary bytes: decoded whole
//! and in pieces, the two must agree (and stay within the limits).
//! The first byte chooses the piece size and whether the request was HEAD.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first & 0x3f) + 1;
    cyclone::fuzzing::response_decoder_agrees_with_itself(rest, piece, first & 0x40 != 0);
});
