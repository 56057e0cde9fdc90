//! The static-file resolver on arbitrary request paths: nothing it
//! resolves may lie outside the root, symlinks included.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| cyclone::fuzzing::static_path_stays_inside(data));
