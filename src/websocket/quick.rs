//! A fast DEFLATE encoder for messages compressed on their own
//! (permessage-deflate without context takeover, at level 1): greedy LZ77
//! with one probe per position and the fixed Huffman codes (RFC 1951
//! §3.2.6), the strategy of zlib-ng's level 1.
//!
//! Why not zlib-rs for these too: a zlib stream must forget the previous
//! message before each one, and its reset clears a 64 Ki-entry hash table
//! (128 KiB) every time, which cost more than compressing a 1 KiB
//! message. Here the table's entries carry the offset they were made at
//! in a position space that only grows, so an entry from an earlier
//! message is simply out of range: nothing is cleared between messages.
//!
//! The output is what a sync flush produces (RFC 7692 §7.2.1): one
//! fixed-Huffman block (not final) followed by an empty stored block
//! whose `00 00 ff ff` is left off, so the receiver's appended tail
//! completes it.

/// Hash table size: 2^12 entries (16 KiB of `u32`s), plenty for one
/// message of the sizes WebSocket carries, and small enough to stay in
/// cache across messages.
const HASH_BITS: u32 = 12;
/// The largest message this encoder takes (its positions are `u32`s);
/// larger ones, far past any sensible message limit, go to zlib-rs.
pub(crate) const QUICK_MAX: usize = 1 << 30;
/// DEFLATE's longest match (RFC 1951 §3.2.5), and the shortest this
/// encoder looks for (a 3-byte match rarely pays in the fixed code).
pub(crate) const MIN_MATCH: usize = 4;
pub(crate) const MAX_MATCH: usize = 258;

/// The encoder: its hash table survives between messages, its contents
/// are void at each new message (see the module docs).
pub(crate) struct QuickDeflate {
    /// For each hash, the position (in `base`'s numbering) where it was
    /// last seen.
    table: Box<[u32; 1 << HASH_BITS]>,
    /// Where the current message starts in the position numbering: each
    /// message starts past every position recorded for the one before.
    base: u32,
}

impl QuickDeflate {
    pub(crate) fn new() -> QuickDeflate {
        QuickDeflate {
            table: Box::new([0; 1 << HASH_BITS]),
            base: 1,
        }
    }

    /// Appends `input`, compressed on its own with matches no farther
    /// back than `1 << window_bits`, to `out`, tail left off.
    pub(crate) fn compress(&mut self, input: &[u8], window_bits: u8, out: &mut Vec<u8>) {
        let max_distance = 1usize << window_bits.clamp(8, 15);
        // Positions are u32s: the caller keeps messages under QUICK_MAX.
        debug_assert!(input.len() < QUICK_MAX);
        if self.base > u32::MAX - QUICK_MAX as u32 {
            // The numbering would wrap: start it afresh (once per ~3 GiB
            // compressed).
            self.table.fill(0);
            self.base = 1;
        }
        let base = self.base;
        let start = out.len();
        // Worst case: 9 bits per literal, plus the block framing and the
        // 8 bytes the bit writer stores at a time.
        out.resize(start + input.len() + input.len() / 8 + 24, 0);
        // BFINAL = 0, BTYPE = 01 (fixed Huffman codes).
        let mut bits = BitWriter {
            out: &mut out[start..],
            pos: 0,
            acc: 0b010,
            n: 3,
        };
        let table = &mut *self.table;
        let mut i = 0;
        while i + MIN_MATCH <= input.len() {
            let word = read_u32(input, i);
            let h = (word.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize;
            let seen = table[h];
            table[h] = base + i as u32;
            // Where it was seen in this message; an entry from an earlier
            // one wraps to far past `i` (positions differ by < QUICK_MAX).
            let at = seen.wrapping_sub(base) as usize;
            if at < i && i - at <= max_distance && read_u32(input, at) == word {
                let limit = (input.len() - i).min(MAX_MATCH);
                let len = match_length(input, at, i, limit);
                put_match(&mut bits, len, i - at);
                bits.flush();
                i += len;
                continue;
            }
            put_literal(&mut bits, input[i]);
            i += 1;
        }
        for &b in &input[i..] {
            put_literal(&mut bits, b);
        }
        // End of block (symbol 256: seven zero bits), then an empty
        // stored block, not final: its 3 header bits, then to the byte
        // boundary; its LEN/NLEN (00 00 ff ff) is the tail the sender
        // leaves off.
        bits.put(0, 7 + 3);
        bits.n = bits.n.next_multiple_of(8);
        bits.flush();
        let written = bits.pos;
        out.truncate(start + written);
        self.base = base + input.len() as u32 + 1;
    }
}

/// How many bytes (at least `MIN_MATCH`, known equal, at most `limit`)
/// the text at `at` and at `i` have in common, eight bytes at a time.
#[inline]
fn match_length(input: &[u8], at: usize, i: usize, limit: usize) -> usize {
    let mut len = MIN_MATCH;
    while len + 8 <= limit {
        let a = u64::from_le_bytes(input[at + len..at + len + 8].try_into().unwrap_or([0; 8]));
        let b = u64::from_le_bytes(input[i + len..i + len + 8].try_into().unwrap_or([0; 8]));
        let diff = a ^ b;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < limit && input[at + len] == input[i + len] {
        len += 1;
    }
    len
}

/// Bits to bytes, least significant first (RFC 1951 §3.1.1), gathered in
/// a 64-bit word and stored eight bytes at a time into a slice sized for
/// the worst case: no capacity checks, and the position advances by the
/// whole bytes gathered (the rest are stored again next time).
struct BitWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    acc: u64,
    n: u32,
}

impl BitWriter<'_> {
    /// `count` more bits; the caller flushes before 64 could be pending.
    #[inline(always)]
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
    }

    /// Stores the whole bytes gathered.
    #[inline(always)]
    fn flush(&mut self) {
        if let Some(word) = self.out.get_mut(self.pos..self.pos + 8) {
            word.copy_from_slice(&self.acc.to_le_bytes());
        }
        let bytes = self.n / 8;
        self.pos += bytes as usize;
        // In two steps: a shift by 64 would overflow.
        self.acc = (self.acc >> (bytes * 4)) >> (bytes * 4);
        self.n %= 8;
    }
}

/// The fixed literal/length code (§3.2.6) of each symbol 0..=287, bit
/// reversed for the LSB-first stream (Huffman codes go most significant
/// bit first, §3.1.1), with its length.
const FIXED: [(u16, u8); 288] = {
    let mut table = [(0u16, 0u8); 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, len) = match symbol {
            0..=143 => (0x30 + symbol, 8),
            144..=255 => (0x190 + symbol - 144, 9),
            256..=279 => (symbol - 256, 7),
            _ => (0xc0 + symbol - 280, 8),
        };
        table[symbol as usize] = (reverse(code as u16, len), len as u8);
        symbol += 1;
    }
    table
};

/// The fixed 5-bit distance codes, reversed.
const FIXED_DISTANCE: [u16; 30] = {
    let mut table = [0u16; 30];
    let mut d = 0;
    while d < 30 {
        table[d] = reverse(d as u16, 5);
        d += 1;
    }
    table
};

const fn reverse(code: u16, len: u32) -> u16 {
    code.reverse_bits() >> (16 - len)
}

/// A literal byte (at most 9 bits): stored once 32 bits are pending, so
/// that a match (at most 31) always fits after it.
#[inline(always)]
fn put_literal(bits: &mut BitWriter<'_>, b: u8) {
    let (code, len) = FIXED[b as usize];
    bits.put(u32::from(code), u32::from(len));
    if bits.n >= 32 {
        bits.flush();
    }
}

/// The length symbols 257..=285: (base length, extra bits) (§3.2.5).
const LENGTHS: [(u16, u8); 29] = [
    (3, 0),
    (4, 0),
    (5, 0),
    (6, 0),
    (7, 0),
    (8, 0),
    (9, 0),
    (10, 0),
    (11, 1),
    (13, 1),
    (15, 1),
    (17, 1),
    (19, 2),
    (23, 2),
    (27, 2),
    (31, 2),
    (35, 3),
    (43, 3),
    (51, 3),
    (59, 3),
    (67, 4),
    (83, 4),
    (99, 4),
    (115, 4),
    (131, 5),
    (163, 5),
    (195, 5),
    (227, 5),
    (258, 0),
];

/// The distance codes 0..=29: (base distance, extra bits) (§3.2.5).
const DISTANCES: [(u16, u8); 30] = [
    (1, 0),
    (2, 0),
    (3, 0),
    (4, 0),
    (5, 1),
    (7, 1),
    (9, 2),
    (13, 2),
    (17, 3),
    (25, 3),
    (33, 4),
    (49, 4),
    (65, 5),
    (97, 5),
    (129, 6),
    (193, 6),
    (257, 7),
    (385, 7),
    (513, 8),
    (769, 8),
    (1025, 9),
    (1537, 9),
    (2049, 10),
    (3073, 10),
    (4097, 11),
    (6145, 11),
    (8193, 12),
    (12289, 12),
    (16385, 13),
    (24577, 13),
];

/// A match of `len` bytes `distance` back, in the fixed code: at most
/// 8 + 5 bits of length and 5 + 13 of distance.
#[inline(always)]
fn put_match(bits: &mut BitWriter<'_>, len: usize, distance: usize) {
    let (code, code_len) = LENGTH_CODE_BITS[len - 3];
    bits.put(code, u32::from(code_len));
    // zlib's two-part table: distances to 256 directly, farther ones by
    // their bits above the 7th (each such code spans a multiple of 128).
    let d = usize::from(if distance <= 256 {
        DISTANCE_CODE[distance - 1]
    } else {
        DISTANCE_CODE[256 + ((distance - 1) >> 7)]
    });
    let (base, extra) = DISTANCES[d];
    let extra_bits = (distance - usize::from(base)) as u32;
    bits.put(
        u32::from(FIXED_DISTANCE[d]) | extra_bits << 5,
        5 + u32::from(extra),
    );
}

/// Each length 3..=258 as its whole code: the symbol's fixed code, then
/// the extra bits, and their total length.
const LENGTH_CODE_BITS: [(u32, u8); 256] = {
    let mut table = [(0u32, 0u8); 256];
    let mut len = 3;
    while len <= 258 {
        let l = LENGTH_CODE[len - 3] as usize;
        let (code, code_len) = FIXED[257 + l];
        let (base, extra) = LENGTHS[l];
        let extra_bits = (len - base as usize) as u32;
        table[len - 3] = (code as u32 | extra_bits << code_len, code_len + extra);
        len += 1;
    }
    table
};

/// The index into `LENGTHS` of each length 3..=258.
const LENGTH_CODE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut len = 3;
    while len <= 258 {
        let mut l = 0;
        while l + 1 < LENGTHS.len() && LENGTHS[l + 1].0 as usize <= len {
            l += 1;
        }
        table[len - 3] = l as u8;
        len += 1;
    }
    table
};

/// The distance code of each distance: `[d - 1]` for d up to 256,
/// `[256 + ((d - 1) >> 7)]` beyond.
const DISTANCE_CODE: [u8; 512] = {
    let mut table = [0u8; 512];
    let mut c = 0;
    while c < DISTANCES.len() {
        let (base, extra) = DISTANCES[c];
        let mut d = base as usize;
        while d < base as usize + (1 << extra) {
            if d <= 256 {
                table[d - 1] = c as u8;
            } else {
                table[256 + ((d - 1) >> 7)] = c as u8;
            }
            // Beyond 256 one entry stands for 128 distances.
            d += if d <= 256 { 1 } else { 128 };
        }
        c += 1;
    }
    table
};

/// Four bytes at `i`, little-endian (the caller has checked `i + 4`).
#[inline]
fn read_u32(input: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(input[i..i + 4].try_into().unwrap_or([0; 4]))
}
