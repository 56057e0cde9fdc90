//! The fuzz targets' properties (`cyclone::fuzzing`) replayed on their
//! checked-in inputs, on every `cargo test`: the seed corpus
//! (`fuzz/seeds/TARGET/`) and every past finding (`fuzz/regressions/
//! TARGET/`, kept there once fixed), so a fixed crash stays fixed without
//! a fuzzing run. `fuzz/run.sh` and `bench/fuzz.sh` explore beyond them.

use std::path::Path;

/// Runs `property` on every input kept for `target`; there must be some.
fn replay(target: &str, property: impl Fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| property(&data)));
            assert!(outcome.is_ok(), "{} fails its property", path.display());
            inputs += 1;
        }
    }
    assert!(inputs > 0, "no inputs kept for {target}");
}

#[test]
fn request_head_seeds_parse_only_within_the_grammar() {
    replay(
        "request_head",
        cyclone::fuzzing::request_head_within_grammar,
    );
}

#[test]
fn proxy_header_seeds_parse_alike_whole_and_in_pieces() {
    replay("proxy_header", cyclone::fuzzing::proxy_header_consistent);
}

#[test]
fn chunk_size_seeds_parse_to_the_size_they_show() {
    replay("chunk_size", cyclone::fuzzing::chunk_size_agrees);
}

#[test]
fn chunked_body_seeds_round_trip() {
    replay("chunked_body", |d| {
        if let Some((&first, rest)) = d.split_first() {
            cyclone::fuzzing::chunked_round_trip(rest, usize::from(first) + 1);
        }
    });
}

#[test]
fn multipart_seeds_round_trip() {
    replay("multipart", cyclone::fuzzing::multipart_round_trip);
}

#[test]
fn cookie_seeds_split_cleanly_and_signatures_hold() {
    replay("cookies", cyclone::fuzzing::cookies_hold);
}

#[test]
fn percent_seeds_round_trip() {
    replay("percent", cyclone::fuzzing::percent_round_trip);
}

#[test]
fn static_path_seeds_stay_inside_the_root() {
    replay("static_path", cyclone::fuzzing::static_path_stays_inside);
}

#[test]
fn http_response_seeds_decode_the_same_whole_and_in_pieces() {
    replay("http_response", |d| {
        if let Some((&first, rest)) = d.split_first() {
            let piece = usize::from(first & 0x3f) + 1;
            cyclone::fuzzing::response_decoder_agrees_with_itself(rest, piece, first & 0x40 != 0);
        }
    });
}
