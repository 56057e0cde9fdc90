//! The multipart/form-data parser on arbitrary bodies, and on bodies
//! built by the rules from arbitrary parts: those must parse back to the
//! parts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::multipart_round_trip(data));
