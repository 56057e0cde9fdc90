//! The chunk-size line parser of the chunked decoder on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cyclone::fuzzing::parse_chunk_size(data);
});
