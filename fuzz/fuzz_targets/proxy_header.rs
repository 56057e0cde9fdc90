//! HAProxy's PROXY protocol header parser on arbitrary bytes: what it
//! takes, it takes the same way however the bytes arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::proxy_header_consistent(data));
