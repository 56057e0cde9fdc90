//! The request-head parser and the framing rules on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = cyclone::fuzzing::parse_head(bytes::Bytes::copy_from_slice(data), 100) {
        let _ = cyclone::fuzzing::body_kind(&head.headers);
    }
});
