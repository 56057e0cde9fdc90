//! Random masking keys and handshake nonces for the client side (RFC 6455
//! §5.3, §4.1: from a strong source of entropy, unpredictable per frame).

use std::cell::RefCell;
use std::hash::{BuildHasher, RandomState};

/// Keys are drawn from the OS generator this many bytes at a time: one
/// system call per 64 frames instead of one per frame.
const POOL: usize = 256;

struct Pool {
    bytes: [u8; POOL],
    used: usize,
}

thread_local! {
    static KEYS: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; POOL], used: POOL }) };
}

/// Fills `out` from the OS generator; should that fail (it does not on a
/// working Linux), from the standard library's per-process random hash
/// keys, so a client never masks with a predictable or zero key.
pub(crate) fn fill(out: &mut [u8]) {
    if getrandom::fill(out).is_ok() {
        return;
    }
    let state = RandomState::new();
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let word = state.hash_one((i, std::time::Instant::now()));
        chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
    }
}

/// A fresh masking key.
pub(crate) fn mask_key() -> [u8; 4] {
    KEYS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used + 4 > POOL {
            fill(&mut pool.bytes);
            pool.used = 0;
        }
        let at = pool.used;
        pool.used += 4;
        let mut key = [0; 4];
        key.copy_from_slice(&pool.bytes[at..at + 4]);
        key
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_mask_keys_differ() {
        let keys: Vec<[u8; 4]> = (0..200).map(|_| mask_key()).collect();
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        // 200 draws from 2^32 values: a repeat is a 5e-6 chance.
        assert!(distinct.len() >= 199);
    }
}
