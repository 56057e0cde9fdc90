//! Masking and unmasking payloads (RFC 6455 §5.3).
//!
//! Every frame a client sends carries a 4-byte key; payload byte `i` is
//! XORed with `key[i % 4]`. The operation is its own inverse, so one
//! function masks and unmasks. It runs in place and a word at a time: this
//! is the one loop every received byte of a server goes through.

/// XORs `buf` with the masking `key`, in place.
///
/// `offset` is the position of `buf[0]` within the frame's payload, so a
/// payload can be unmasked in pieces as it arrives: unmasking `p[..n]` with
/// offset 0 and then `p[n..]` with offset `n` equals unmasking `p` at once.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that `key[0]` applies to `buf[0]`.
    let shift = offset % 4;
    let key = [
        key[shift],
        key[(shift + 1) % 4],
        key[(shift + 2) % 4],
        key[(shift + 3) % 4],
    ];
    // Eight payload bytes per XOR. `[u8; 8]` has no alignment requirement,
    // so an unaligned start needs no separate head loop; the compiler turns
    // this into wide vector XORs where the target has them.
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let (words, tail) = buf.as_chunks_mut::<8>();
    for word in words {
        *word = (u64::from_ne_bytes(*word) ^ wide).to_ne_bytes();
    }
    // Every word covered a multiple of 4 bytes, so the tail starts at key[0].
    for (i, byte) in tail.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's definition, one byte at a time.
    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= key[(offset + i) % 4];
        }
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn matches_the_byte_at_a_time_definition_for_every_length_and_offset() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        for len in 0..70 {
            for offset in 0..9 {
                let mut fast = payload(len);
                let mut slow = fast.clone();
                apply_mask(&mut fast, key, offset);
                reference(&mut slow, key, offset);
                assert_eq!(fast, slow, "len {len} offset {offset}");
            }
        }
    }

    #[test]
    fn matches_the_definition_on_unaligned_subslices() {
        let key = [1, 2, 3, 0xff];
        let original = payload(300);
        for start in 0..9 {
            let mut fast = original.clone();
            let mut slow = original.clone();
            apply_mask(&mut fast[start..], key, start);
            reference(&mut slow[start..], key, start);
            assert_eq!(fast, slow, "start {start}");
        }
    }

    #[test]
    fn unmasking_in_pieces_equals_unmasking_at_once() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let original = payload(1000);
        let mut whole = original.clone();
        apply_mask(&mut whole, key, 0);
        for cuts in [[1, 2], [3, 500], [7, 8], [13, 999], [0, 1000]] {
            let mut pieces = original.clone();
            let (a, rest) = pieces.split_at_mut(cuts[0]);
            let (b, c) = rest.split_at_mut(cuts[1] - cuts[0]);
            apply_mask(a, key, 0);
            apply_mask(b, key, cuts[0]);
            apply_mask(c, key, cuts[1]);
            assert_eq!(pieces, whole, "cuts {cuts:?}");
        }
    }

    #[test]
    fn masking_twice_restores_the_payload() {
        let key = [9, 8, 7, 6];
        let original = payload(123);
        let mut buf = original.clone();
        apply_mask(&mut buf, key, 5);
        apply_mask(&mut buf, key, 5);
        assert_eq!(buf, original);
    }

    #[test]
    fn the_rfc_example_masked_hello_unmasks() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&buf, b"Hello");
    }
}
