//! The request-head parser on arbitrary bytes: whatever it accepts must
//! be a head RFC 9112's grammar allows (`cyclone::fuzzing::
//! head_grammar_allows`), and its framing rules must not panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::request_head_within_grammar(data));
