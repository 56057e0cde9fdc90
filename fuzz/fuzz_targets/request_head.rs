//! The request-head parser and the framing rules on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(head) = cyclone::http1::parse::parse_head(bytes::Bytes::copy_from_slice(data), 100) {
        let _ = cyclone::http1::framing::body_kind(&head.headers);
    }
});
