//! The parser and framing code never panic, whatever the bytes: a bounded
//! randomized run over mutations of valid requests (the cargo-fuzz
//! targets in fuzz/ explore the same functions without a bound).

use bytes::Bytes;
use cyclone::fuzzing::{body_kind, parse_chunk_size, parse_head};

const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET /a?b=c HTTP/1.0\r\nConnection: keep-alive\r\nX-A: b\r\n\r\n",
];

/// Mutations per seed: enough to hit every byte position many times,
/// small enough to run in well under a second.
const ROUNDS: usize = 50_000;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.next() % 4 {
        let at = (rng.next() as usize) % (v.len() + 1);
        match rng.next() % 4 {
            0 if at < v.len() => v[at] = rng.next() as u8,
            1 => {
                const ODD: &[u8] = b"\r\n:; ,\t\0\x7f0aF";
                v.insert(at, ODD[rng.next() as usize % ODD.len()]);
            }
            2 if at < v.len() => {
                v.remove(at);
            }
            _ => v.insert(at, rng.next() as u8),
        }
    }
    v
}

#[test]
fn mutated_request_heads_never_panic_the_parser_or_framing() {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let mut parsed = 0;
    for seed in SEEDS {
        for _ in 0..ROUNDS {
            let input = Bytes::from(mutate(&mut rng, seed));
            if let Ok(head) = parse_head(input, 100) {
                parsed += 1;
                let _ = body_kind(&head.headers);
            }
        }
    }
    // The mutations must not all be rejected, or this tests nothing.
    assert!(parsed > 1000, "only {parsed} mutated heads parsed");
}

#[test]
fn arbitrary_chunk_size_lines_never_panic() {
    let mut rng = XorShift(42);
    for _ in 0..ROUNDS {
        let len = (rng.next() % 24) as usize;
        let line: Vec<u8> = (0..len)
            .map(|_| b"0123456789abcdefABCDEF;= \tx\xff"[rng.next() as usize % 28])
            .collect();
        let _ = parse_chunk_size(&line);
    }
}
