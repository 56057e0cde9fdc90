//! Percent-decoding on arbitrary text, and encoding then decoding: the
//! text must come back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::percent_round_trip(data));
