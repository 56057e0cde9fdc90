//! A body framed as chunks by the HTTP layer's encoder, read back by the
//! HTTP client's decoder: it must come back unchanged, however the pieces
//! were cut on either side. The first byte chooses the read size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&first, rest)) = data.split_first() {
        cyclone::fuzzing::chunked_round_trip(rest, usize::from(first) + 1);
    }
});
