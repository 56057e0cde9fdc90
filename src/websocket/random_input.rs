//! The decoder on a few thousand random inputs: it never panics, and
//! feeding the bytes at once or one at a time gives the same messages and
//! the same error. A test-only file beside the decoder's own tests, which
//! keep to the rules one by one. With permessage-deflate agreed too, on
//! real compressed messages with bytes flipped.

use bytes::{Bytes, BytesMut};

use super::decoder::Decoder;
use super::deflate::{Compressor, Decompressor};
use super::encoder::Encoder;
use super::error::ProtocolError;
use super::frame::Role;
use super::message::Message;
use super::negotiation::{DeflateConfig, DirectionParams};

use super::test_support::{self, Results};

/// Decodes `bytes` fed at once with `decoder`.
fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Results {
    test_support::decode_all(|b| decoder.decode(b), bytes)
}

/// Decodes `bytes` fed one byte at a time with `decoder`.
fn decode_bytewise(decoder: &mut Decoder, bytes: &[u8]) -> Results {
    test_support::decode_bytewise(|b| decoder.decode(b), bytes)
}

/// xorshift64*: a small deterministic generator, so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Bytes that are mostly frames, with the header fields, masking,
/// lengths and UTF-8 varied enough to reach every rule.
fn random_input(rng: &mut Rng, role: Role) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.below(4) == 0 {
        let len = rng.below(64);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    for _ in 0..1 + rng.below(5) {
        let opcode_bits = [0, 1, 2, 1, 2, 8, 9, 10, 3, 11][rng.below(10) as usize];
        let fin = rng.below(3) != 0;
        let rsv = if rng.below(10) == 0 { 0x40 } else { 0 };
        // Mostly as the receiving role expects, sometimes not.
        let masked = (role == Role::Server) == (rng.below(20) != 0);
        let payload: Vec<u8> = match rng.below(3) {
            0 => (0..rng.below(20)).map(|_| rng.next() as u8).collect(),
            1 => "ok é 😀".as_bytes()[..rng.below(11) as usize].to_vec(),
            _ => vec![b'a'; rng.below(300) as usize],
        };
        out.push(u8::from(fin) << 7 | rsv | opcode_bits);
        let mask_bit = if masked { 0x80 } else { 0 };
        match (payload.len(), rng.below(8)) {
            (n, 0) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (n, 1) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
            (n, _) if n > 125 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (n, _) => out.push(mask_bit | n as u8),
        }
        if masked {
            out.extend_from_slice(&(rng.next() as u32).to_be_bytes());
        }
        out.extend_from_slice(&payload);
    }
    out
}

/// What a run of random inputs reached: messages decoded, kinds of error.
#[derive(Default)]
struct Tally {
    messages: usize,
    errors: std::collections::HashSet<std::mem::Discriminant<ProtocolError>>,
}

impl Tally {
    /// Decodes input `i` at once and byte by byte, each with a fresh
    /// decoder from `make`; both must give the same results, which are
    /// counted.
    fn split_reads_agree(&mut self, i: usize, bytes: &[u8], make: impl Fn() -> Decoder) {
        let whole = decode_all(&mut make(), bytes);
        let bytewise = decode_bytewise(&mut make(), bytes);
        assert_eq!(whole, bytewise, "input {i}: {bytes:x?}");
        for result in whole {
            match result {
                Ok(_) => self.messages += 1,
                Err(e) => {
                    self.errors.insert(std::mem::discriminant(&e));
                }
            }
        }
    }
}

#[test]
fn random_input_never_panics_and_split_reads_agree() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut tally = Tally::default();
    for i in 0..4000 {
        for role in [Role::Server, Role::Client] {
            let bytes = random_input(&mut rng, role);
            tally.split_reads_agree(i, &bytes, || Decoder::new(role, 256));
        }
    }
    // The inputs reach deep enough: real messages, and most errors.
    assert!(
        tally.messages > 1000,
        "only {} messages decoded",
        tally.messages
    );
    assert!(
        tally.errors.len() >= 10,
        "only {} kinds of error",
        tally.errors.len()
    );
}

/// Real compressed messages from the other end, as `role` receives them,
/// with a few bytes flipped (sometimes none).
fn mutated_compressed(rng: &mut Rng, role: Role, params: &DirectionParams) -> Vec<u8> {
    let sender = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut encoder = Encoder::new(sender)
        .with_max_frame_payload(1 + rng.below(64) as usize)
        .with_deflate(Compressor::new(params, &DeflateConfig::default()));
    let mut wire = BytesMut::new();
    for _ in 0..1 + rng.below(4) {
        let len = rng.below(400) as usize;
        let message = if rng.below(2) == 0 {
            Message::Text("abcé😀 ".repeat(len / 8))
        } else {
            Message::Binary(Bytes::from(vec![rng.below(4) as u8; len]))
        };
        let key = (rng.next() as u32).to_be_bytes();
        let masked = sender == Role::Client;
        if encoder
            .encode_message(&mut wire, &message, || masked.then_some(key))
            .is_err()
        {
            break;
        }
    }
    for _ in 0..rng.below(4) {
        if wire.is_empty() {
            break;
        }
        let at = rng.below(wire.len() as u64) as usize;
        wire[at] ^= 1 << rng.below(8);
    }
    wire.to_vec()
}

#[test]
fn random_input_with_deflate_agreed_never_panics_and_split_reads_agree() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut tally = Tally::default();
    for i in 0..1500 {
        let params = DirectionParams {
            window_bits: 9 + rng.below(7) as u8,
            no_context_takeover: rng.below(2) == 0,
        };
        for role in [Role::Server, Role::Client] {
            let mut bytes = mutated_compressed(&mut rng, role, &params);
            bytes.extend(random_input(&mut rng, role));
            tally.split_reads_agree(i, &bytes, || {
                Decoder::new(role, 256).with_deflate(Decompressor::new(&params))
            });
        }
    }
    assert!(
        tally.messages > 1000,
        "only {} messages decoded",
        tally.messages
    );
    for e in [
        ProtocolError::InvalidCompressedData,
        ProtocolError::MessageTooBig { size: 0, max: 0 },
        ProtocolError::InvalidUtf8,
        ProtocolError::CompressedContinuation,
        ProtocolError::CompressedControlFrame,
    ] {
        assert!(
            tally.errors.contains(&std::mem::discriminant(&e)),
            "never saw {e}"
        );
    }
}
