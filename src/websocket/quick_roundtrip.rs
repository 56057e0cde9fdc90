//! Test-only: the quick encoder's output inflated by the decompressor
//! (zlib-rs), every symbol kind, the window limit, message independence.
//! Its own file so that `quick.rs` and `deflate.rs` do not import each
//! other.

use super::deflate::Decompressor;
use super::negotiation::DirectionParams;
use super::quick::{MAX_MATCH, MIN_MATCH, QuickDeflate};

fn inflate(wire: &[u8]) -> Vec<u8> {
    let peer = DirectionParams {
        window_bits: 15,
        no_context_takeover: true,
    };
    let mut out = Vec::new();
    Decompressor::new(&peer)
        .decompress(wire, &mut out, 1 << 24)
        .expect("valid DEFLATE");
    out
}

fn roundtrip(q: &mut QuickDeflate, input: &[u8], bits: u8) -> Vec<u8> {
    let mut wire = Vec::new();
    q.compress(input, bits, &mut wire);
    assert_eq!(inflate(&wire), input, "{} bytes", input.len());
    wire
}

#[test]
fn repetitive_text_compresses_and_inflates_back() {
    let text = "the user sent a message to the room; ".repeat(40);
    let wire = roundtrip(&mut QuickDeflate::new(), text.as_bytes(), 15);
    assert!(wire.len() < text.len() / 4, "{} bytes", wire.len());
}

#[test]
fn every_byte_value_and_the_empty_message_inflate_back() {
    let mut q = QuickDeflate::new();
    let all: Vec<u8> = (0..=255).collect();
    roundtrip(&mut q, &all, 15);
    roundtrip(&mut q, b"", 15);
    roundtrip(&mut q, b"abc", 15);
}

#[test]
fn every_match_length_and_long_distances_inflate_back() {
    let mut q = QuickDeflate::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    for len in MIN_MATCH..=MAX_MATCH + 3 {
        let chunk = noise(len);
        let mut input = chunk.clone();
        input.extend(noise(7));
        input.extend(&chunk);
        roundtrip(&mut q, &input, 15);
    }
    // A repeat 30,000 bytes back: the longest distance codes.
    let chunk = noise(300);
    let mut input = chunk.clone();
    input.extend(noise(30_000));
    input.extend(&chunk);
    roundtrip(&mut q, &input, 15);
}

#[test]
fn matches_never_reach_past_the_window() {
    // With a 512-byte window the repeat 1,000 bytes back must not be
    // referenced: a decompressor with that window would fail on it.
    let mut q = QuickDeflate::new();
    let chunk: Vec<u8> = (0..100u8).collect();
    let mut input = chunk.clone();
    input.extend(std::iter::repeat_n(7u8, 1000));
    input.extend(&chunk);
    let mut wire = Vec::new();
    q.compress(&input, 9, &mut wire);
    let peer = DirectionParams {
        window_bits: 9,
        no_context_takeover: true,
    };
    let mut out = Vec::new();
    Decompressor::new(&peer)
        .decompress(&wire, &mut out, 1 << 20)
        .unwrap();
    assert_eq!(out, input);
}

#[test]
fn a_message_never_refers_to_the_one_before() {
    // Each message decodes alone, with a fresh decompressor: nothing
    // of the previous message leaked into it.
    let mut q = QuickDeflate::new();
    let first = "hello world, hello world".as_bytes();
    roundtrip(&mut q, first, 15);
    roundtrip(&mut q, first, 15);
}

#[test]
fn random_messages_of_every_shape_inflate_back() {
    // Sizes from empty to 20 KB, alphabets from 2 symbols (long matches)
    // to all 256 (few): 300 messages through one encoder, as a thread's
    // connections would send them.
    let mut q = QuickDeflate::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let len = (next() % 20_000) as usize;
        let alphabet = 2 + (next() % 255) as u32;
        let input: Vec<u8> = (0..len).map(|_| (next() as u32 % alphabet) as u8).collect();
        let bits = 9 + (next() % 7) as u8;
        let mut wire = Vec::new();
        q.compress(&input, bits, &mut wire);
        let peer = DirectionParams {
            window_bits: bits,
            no_context_takeover: true,
        };
        let mut out = Vec::new();
        Decompressor::new(&peer)
            .decompress(&wire, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(
            out, input,
            "{len} bytes, alphabet {alphabet}, window {bits}"
        );
    }
}
