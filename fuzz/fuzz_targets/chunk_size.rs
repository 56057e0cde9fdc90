//! The chunk-size line parser of the chunked decoder on arbitrary bytes:
//! what it accepts is the hex size it shows, and what the encoder writes
//! parses back to its size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::chunk_size_agrees(data));
