//! The Cookie header split on arbitrary text, and signed values: each
//! verifies to itself and not once tampered with.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::cookies_hold(data));
