//! permessage-deflate's payload transform (RFC 7692 §7.2): one
//! [`Compressor`] for what we send and one [`Decompressor`] for what we
//! receive, per connection, each keeping its LZ77 window across messages
//! unless the agreement says that direction resets.
//!
//! Both are raw DEFLATE streams (no zlib header, RFC 1951) from flate2's
//! zlib-rs backend, the one that lets the window size be chosen.
//!
//! - Compressing (§7.2.1): deflate the message, end it with a sync flush,
//!   and drop the `00 00 ff ff` that the flush's empty stored block ends
//!   with; the receiver puts it back.
//! - Decompressing (§7.2.2): append `00 00 ff ff` and inflate, in steps,
//!   into a buffer that never grows past the message size limit, so a
//!   small payload that inflates to gigabytes (a deflate bomb) costs at
//!   most the limit before it is refused with 1009.

use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate, DeflateFlush, Method, Strategy};

use super::error::{EncodeError, ProtocolError};
use super::negotiation::{DeflateConfig, DirectionParams, MIN_COMPRESS_WINDOW_BITS};
use super::quick::{QUICK_MAX, QuickDeflate};

/// The bytes a sync flush ends with (an empty stored block's LEN and
/// NLEN), removed by the sender and appended by the receiver (RFC 7692
/// §7.2.1, §7.2.2).
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first step of an output buffer: inflated messages are usually
/// small, and doubling from here reaches any size in few steps.
const FIRST_OUTPUT_STEP: usize = 4096;

/// Compresses the messages we send.
pub struct Compressor {
    /// This connection's own stream, with context takeover; `None`
    /// without it: every message then starts from a fresh state, so the
    /// thread's shared stream for these settings does the work and the
    /// connection keeps no compression memory between messages.
    deflate: Option<Box<Deflate>>,
    min_size: usize,
    settings: Settings,
}

/// What a compressor's output depends on besides the input and its
/// history: two compressors from a fresh state with equal settings turn
/// a message into the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Settings {
    /// zlib level, 0..=9.
    level: u8,
    /// LZ77 window, 9..=15.
    bits: u8,
    /// zlib memory level, 1..=9.
    memory: u8,
}

impl Settings {
    /// A zlib-rs raw DEFLATE stream with these settings (negative window
    /// bits: no zlib header, RFC 7692 §7.2).
    fn stream(self) -> Deflate {
        Deflate::new_with_config(zlib_rs::DeflateConfig {
            level: i32::from(self.level),
            method: Method::Deflated,
            window_bits: -i32::from(self.bits),
            mem_level: i32::from(self.memory),
            strategy: Strategy::Default,
        })
    }
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("no_context_takeover", &self.deflate.is_none())
            .field("min_size", &self.min_size)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor for our direction of an agreement (`agreement.own`),
    /// at `config`'s level and minimum size.
    pub fn new(own: &DirectionParams, config: &DeflateConfig) -> Self {
        let settings = Settings {
            level: config.compression_level.min(9) as u8,
            // Never below 9: see MIN_COMPRESS_WINDOW_BITS (negotiation
            // refuses to agree to 8 for us, this keeps a hand-built
            // agreement safe; zlib-rs refuses 8 for raw streams).
            bits: own.window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, 15),
            memory: config.memory_level.clamp(1, 9),
        };
        let deflate = (!own.no_context_takeover).then(|| Box::new(settings.stream()));
        Compressor {
            deflate,
            min_size: config.min_compress_size,
            settings,
        }
    }

    /// Whether a message of `len` bytes is worth compressing (see
    /// [`DeflateConfig::min_compress_size`]).
    pub fn should_compress(&self, len: usize) -> bool {
        len >= self.min_size
    }

    /// Without context takeover every message is compressed from a fresh
    /// state, so two compressors with the same settings turn a message
    /// into the same bytes: their settings. `None` with context takeover,
    /// where the output depends on the history.
    pub(crate) fn stateless_settings(&self) -> Option<Settings> {
        self.deflate.is_none().then_some(self.settings)
    }

    /// Appends `input`, compressed as one message, to `out` (§7.2.1).
    /// On error the compressor must not be used again.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
        if input.is_empty() {
            // zlib emits nothing for a sync flush right after another with
            // no input between them, so an empty message is written by
            // hand: an empty stored block (RFC 1951 §3.2.4), its 3 header
            // bits padded to a byte, less the tail. The stream is
            // byte-aligned after every message, so it is valid at any
            // point, and it leaves the window as it was.
            out.push(0x00);
            return Ok(());
        }
        match &mut self.deflate {
            Some(own) => deflate_message(own, input, out),
            // Level 1 on its own: the quick encoder, with nothing to reset.
            // Level 1 on its own: the quick encoder, with nothing to reset
            // (and its own small table, whatever the memory level).
            None if self.settings.level == 1 && input.len() < QUICK_MAX => {
                let bits = self.settings.bits;
                QUICK.with(|q| q.borrow_mut().compress(input, bits, out));
                Ok(())
            }
            None => SHARED_DEFLATE.with(|shared| {
                let mut shared = shared.borrow_mut();
                let settings = self.settings;
                let deflate = shared_entry(&mut shared, settings, || settings.stream());
                let result = deflate_message(deflate, input, out);
                // Fresh for the next message, whoever sends it (and
                // whether or not this one failed).
                deflate.reset();
                result
            }),
        }
    }
}

thread_local! {
    /// The compressors that connections without context takeover share,
    /// one per (level, window bits): the loop's thread compresses one
    /// message at a time, and a reset stream is as good as a new one.
    /// uWebSockets' "shared compressor", for the same reason: a zlib
    /// stream holds about 300 KiB (its 64 Ki-entry hash table and the
    /// window), too much to keep per idle connection.
    static SHARED_DEFLATE: std::cell::RefCell<Vec<(Settings, Deflate)>> =
        const { std::cell::RefCell::new(Vec::new()) };
    /// Level 1 without context takeover: see `quick.rs`.
    static QUICK: std::cell::RefCell<QuickDeflate> = std::cell::RefCell::new(QuickDeflate::new());
    /// The same for inflating, one per window size.
    static SHARED_INFLATE: std::cell::RefCell<Vec<(u8, Decompress)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The thread's shared stream for `key`, made on first use. A short list:
/// a program uses one or two settings.
fn shared_entry<K: PartialEq, V>(
    list: &mut Vec<(K, V)>,
    key: K,
    make: impl FnOnce() -> V,
) -> &mut V {
    let at = match list.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            list.push((key, make()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// Compresses `input` as one message into `out`, on `deflate`.
fn deflate_message(
    deflate: &mut Deflate,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let mut consumed = 0;
    loop {
        // Room for the rest of the input plus the flush's few bytes;
        // incompressible data grows by a few bytes per 16 KiB block.
        // zlib-rs writes into an initialized slice: zeroed here, cut
        // back to what was written below.
        let filled = out.len();
        let room = (input.len() - consumed) / 2 + 64;
        out.resize(filled + room, 0);
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let result = deflate.compress(
            &input[consumed..],
            &mut out[filled..],
            DeflateFlush::SyncFlush,
        );
        // Both bounded by the slices given, so they fit a usize.
        let written = (deflate.total_out() - before_out) as usize;
        out.truncate(filled + written);
        result.map_err(|_| EncodeError::Compression)?;
        consumed += (deflate.total_in() - before_in) as usize;
        // Done once every byte is in and the flush did not fill the
        // room (a full buffer may hold back more output).
        if consumed == input.len() && written < room {
            break;
        }
    }
    if !out[start..].ends_with(&DEFLATE_TAIL) {
        return Err(EncodeError::Compression);
    }
    out.truncate(out.len() - DEFLATE_TAIL.len());
    Ok(())
}

/// Inflates the messages we receive, never past a size limit.
pub struct Decompressor {
    /// This connection's own stream, with the peer's context takeover;
    /// `None` without it (the thread's shared one inflates, as for
    /// compressing).
    inflate: Option<Box<Decompress>>,
    bits: u8,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.inflate.is_none())
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor for the peer's direction of an agreement
    /// (`agreement.peer`).
    pub fn new(peer: &DirectionParams) -> Self {
        // At least 9 bits: a zlib peer that agreed to 8 compresses with 9
        // (see MIN_COMPRESS_WINDOW_BITS), and a larger window than the
        // sender's always decodes its stream.
        let bits = peer.window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, 15);
        let inflate = (!peer.no_context_takeover)
            .then(|| Box::new(Decompress::new_with_window_bits(false, bits)));
        Decompressor { inflate, bits }
    }

    /// Appends the inflated form of one compressed message to `out`
    /// (§7.2.2), failing with 1009 as soon as `out` would hold more than
    /// `max_size` bytes of it: `out` is grown in steps and never past
    /// `max_size + 1` bytes of this message, so a deflate bomb costs no
    /// more than the limit. A payload that does not inflate is
    /// [`ProtocolError::InvalidCompressedData`]. After an error the
    /// decompressor must not be used again (the connection is failed).
    pub fn decompress(
        &mut self,
        payload: &[u8],
        out: &mut Vec<u8>,
        max_size: usize,
    ) -> Result<(), ProtocolError> {
        let limit = Limit {
            start: out.len(),
            max_size,
        };
        match &mut self.inflate {
            Some(own) => inflate_message(own, payload, out, limit),
            None => SHARED_INFLATE.with(|shared| {
                let mut shared = shared.borrow_mut();
                let bits = self.bits;
                let inflate = shared_entry(&mut shared, bits, || {
                    Decompress::new_with_window_bits(false, bits)
                });
                let result = inflate_message(inflate, payload, out, limit);
                inflate.reset(false);
                result
            }),
        }
    }
}

/// Inflates one message into `out`, within `limit`, on `inflate`.
fn inflate_message(
    inflate: &mut Decompress,
    payload: &[u8],
    out: &mut Vec<u8>,
    limit: Limit,
) -> Result<(), ProtocolError> {
    let ended = inflate_all(inflate, payload, out, limit)?
        || inflate_all(inflate, &DEFLATE_TAIL, out, limit)?;
    // A block with BFINAL set ends the stream (RFC 7692 §7.2.3.4):
    // whatever follows it is ignored and the next message starts a fresh
    // stream.
    if ended {
        inflate.reset(false);
    }
    Ok(())
}

/// Feeds all of `input`; `Ok(true)` if the DEFLATE stream ended.
fn inflate_all(
    inflate: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: Limit,
) -> Result<bool, ProtocolError> {
    let mut consumed = 0;
    loop {
        if out.len() == out.capacity() {
            grow_within(out, limit)?;
        }
        let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
        let status = inflate
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|_| ProtocolError::InvalidCompressedData)?;
        // Bounded by input.len(), so it fits a usize.
        consumed += (inflate.total_in() - before_in) as usize;
        if out.len() > limit.end() {
            return Err(limit.too_big(out.len()));
        }
        if status == Status::StreamEnd {
            return Ok(true);
        }
        let room_left = out.len() < out.capacity();
        if consumed == input.len() && room_left {
            return Ok(false);
        }
        let progress = inflate.total_in() != before_in || inflate.total_out() != before_out;
        if !progress && room_left {
            // Input left, room left, nothing done: not DEFLATE.
            return Err(ProtocolError::InvalidCompressedData);
        }
    }
}

/// Where this message's output starts in the buffer, and how long it may
/// be.
#[derive(Clone, Copy)]
struct Limit {
    start: usize,
    max_size: usize,
}

impl Limit {
    /// The buffer length the output may reach.
    fn end(self) -> usize {
        self.start.saturating_add(self.max_size)
    }

    fn too_big(self, len: usize) -> ProtocolError {
        ProtocolError::MessageTooBig {
            size: len.saturating_sub(self.start) as u64,
            max: self.max_size,
        }
    }
}

/// Doubles `out`'s capacity, but never past the limit plus one byte: one
/// byte over the limit is how the decompressor learns there is more.
/// (Capacity the caller had already reserved is used as it is.)
fn grow_within(out: &mut Vec<u8>, limit: Limit) -> Result<(), ProtocolError> {
    let cap = out.capacity();
    let target = cap
        .saturating_mul(2)
        .max(FIRST_OUTPUT_STEP)
        .min(limit.end().saturating_add(1));
    if target <= cap {
        return Err(limit.too_big(out.len().saturating_add(1)));
    }
    out.reserve_exact(target - out.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(window_bits: u8, no_context_takeover: bool) -> DirectionParams {
        DirectionParams {
            window_bits,
            no_context_takeover,
        }
    }

    /// At zlib's default level 6, with which RFC 7692's examples were made.
    fn compressor(no_context_takeover: bool) -> Compressor {
        let config = DeflateConfig {
            compression_level: 6,
            ..DeflateConfig::default()
        };
        Compressor::new(&params(15, no_context_takeover), &config)
    }

    fn compress(c: &mut Compressor, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        c.compress(input, &mut out).unwrap();
        out
    }

    #[test]
    fn connections_without_context_takeover_share_a_stream_and_keep_none() {
        let config = DeflateConfig::stateless();
        let (mut a, mut b) = (
            Compressor::new(&params(15, true), &config),
            Compressor::new(&params(15, true), &config),
        );
        assert!(a.deflate.is_none() && b.deflate.is_none());
        let mut inflater = Decompressor::new(&params(15, true));
        assert!(inflater.inflate.is_none());
        // Interleaved, each message is still compressed on its own.
        let first = compress(&mut a, b"the same message");
        let other = compress(&mut b, b"something else entirely");
        assert_eq!(compress(&mut a, b"the same message"), first);
        for (wire, text) in [
            (&first, &b"the same message"[..]),
            (&other, &b"something else entirely"[..]),
        ] {
            let mut out = Vec::new();
            inflater.decompress(wire, &mut out, 1 << 10).unwrap();
            assert_eq!(out, text);
        }
    }

    const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    #[test]
    fn hello_compresses_as_in_rfc_7692_section_7_2_3_1() {
        assert_eq!(compress(&mut compressor(false), b"Hello"), HELLO);
    }

    #[test]
    fn context_takeover_shrinks_a_repeated_message_rfc_7692_section_7_2_3_2() {
        let mut c = compressor(false);
        assert_eq!(compress(&mut c, b"Hello"), HELLO);
        // The second "Hello" is a back-reference into the first.
        assert_eq!(compress(&mut c, b"Hello"), [0xf2, 0x00, 0x11, 0x00, 0x00]);
    }

    #[test]
    fn no_context_takeover_compresses_a_repeated_message_identically() {
        let mut c = compressor(true);
        for _ in 0..3 {
            assert_eq!(compress(&mut c, b"Hello"), HELLO);
        }
    }

    #[test]
    fn an_empty_message_compresses_to_a_single_zero_byte_even_twice_in_a_row() {
        let mut c = compressor(false);
        assert_eq!(compress(&mut c, b""), [0x00]);
        assert_eq!(compress(&mut c, b""), [0x00]);
        // ...and leaves the context as it was.
        assert_eq!(compress(&mut c, b"Hello"), HELLO);
        let mut out = Vec::new();
        let mut d = Decompressor::new(&params(15, false));
        d.decompress(&[0x00], &mut out, 10).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn the_rfc_examples_inflate_including_a_stored_block_and_bfinal() {
        let mut d = Decompressor::new(&params(15, false));
        let mut out = Vec::new();
        d.decompress(&HELLO, &mut out, 100).unwrap();
        d.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        assert_eq!(out, b"HelloHello");
        // §7.2.3.3: "Hello" in a stored (uncompressed) block.
        let stored = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut out = Vec::new();
        d.decompress(&stored, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.5: two blocks, "He" then a sync flush then "llo".
        let two = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut out = Vec::new();
        d.decompress(&two, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.4: a block with BFINAL set; the stream restarts after it.
        let bfinal = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        for _ in 0..2 {
            let mut out = Vec::new();
            d.decompress(&bfinal, &mut out, 100).unwrap();
            assert_eq!(out, b"Hello");
        }
    }

    #[test]
    fn compress_then_decompress_at_every_window_size() {
        let text: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for bits in 9..=15 {
            let mut c = Compressor::new(&params(bits, false), &DeflateConfig::default());
            let mut d = Decompressor::new(&params(bits, false));
            for _ in 0..3 {
                let packed = compress(&mut c, &text);
                let mut out = Vec::new();
                d.decompress(&packed, &mut out, text.len()).unwrap();
                assert_eq!(out, text, "window bits {bits}");
            }
        }
    }

    #[test]
    fn a_peer_that_agreed_to_8_bits_is_inflated_with_9() {
        // zlib turns 8 into 9; our decompressor for an 8-bit peer must
        // accept a 9-bit stream.
        let text = b"abcdefgh".repeat(200);
        let mut c = Compressor::new(&params(9, false), &DeflateConfig::default());
        let packed = compress(&mut c, &text);
        let mut out = Vec::new();
        Decompressor::new(&params(8, false))
            .decompress(&packed, &mut out, usize::MAX)
            .unwrap();
        assert_eq!(out, text);
    }

    /// 100 MiB of zeros as a few KiB of DEFLATE, built cheaply: one 1 MiB
    /// message establishes a window of zeros, and a second, compressed
    /// with that context, is repeated (each message ends byte-aligned at
    /// its sync flush, so they concatenate into one valid stream).
    fn deflate_bomb() -> Vec<u8> {
        let mut c = compressor(false);
        let zeros = vec![0; 1 << 20];
        let mut bomb = compress(&mut c, &zeros);
        let repeat = compress(&mut c, &zeros);
        for _ in 1..100 {
            bomb.extend_from_slice(&DEFLATE_TAIL);
            bomb.extend_from_slice(&repeat);
        }
        bomb
    }

    #[test]
    fn a_deflate_bomb_is_refused_with_1009_and_never_outgrows_the_limit() {
        let bomb = deflate_bomb();
        assert!(bomb.len() < 150 * 1024, "{} bytes", bomb.len());
        // Sanity: without a limit it really is 100 MiB.
        let mut all = Vec::new();
        Decompressor::new(&params(15, false))
            .decompress(&bomb, &mut all, usize::MAX)
            .unwrap();
        assert_eq!(all.len(), 100 << 20);
        drop(all);
        let limit = 1 << 20;
        let mut out = Vec::new();
        let err = Decompressor::new(&params(15, false))
            .decompress(&bomb, &mut out, limit)
            .unwrap_err();
        assert_eq!(
            err,
            ProtocolError::MessageTooBig {
                size: limit as u64 + 1,
                max: limit
            }
        );
        assert_eq!(err.close_code().0, 1009);
        assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
    }

    #[test]
    fn a_message_of_exactly_the_limit_inflates() {
        let text = vec![b'x'; 10_000];
        let packed = compress(&mut compressor(false), &text);
        let mut out = Vec::new();
        Decompressor::new(&params(15, false))
            .decompress(&packed, &mut out, 10_000)
            .unwrap();
        assert_eq!(out.len(), 10_000);
        let mut out = Vec::new();
        let err = Decompressor::new(&params(15, false))
            .decompress(&packed, &mut out, 9_999)
            .unwrap_err();
        assert_eq!(err.close_code().0, 1009);
    }

    #[test]
    fn corrupt_deflate_data_is_invalid_compressed_data_1002() {
        // BTYPE 11 is reserved (RFC 1951 §3.2.3).
        for corrupt in [
            &[0xff, 0xff, 0xff][..],
            &[0x07],
            &[0x00, 0x05, 0x00, 0x00, 0x00],
        ] {
            let mut out = Vec::new();
            let err = Decompressor::new(&params(15, false))
                .decompress(corrupt, &mut out, 1000)
                .unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCompressedData, "{corrupt:x?}");
            assert_eq!(err.close_code().0, 1002);
        }
    }

    /// 64 KiB of numbers from a simple generator: digits and spaces,
    /// compressible by their Huffman codes more than by matches, so tens
    /// of thousands of symbols (many blocks at a low memory level).
    fn numbers() -> Vec<u8> {
        let mut x = 1u64;
        let mut text = Vec::new();
        while text.len() < 64 << 10 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            text.extend_from_slice(format!("{} ", x >> 44).as_bytes());
        }
        text
    }

    #[test]
    fn the_memory_level_sets_zlibs_block_size_and_output_still_inflates() {
        let text = numbers();
        let mut sizes = Vec::new();
        for memory_level in [1, 9] {
            let config = DeflateConfig {
                compression_level: 6,
                memory_level,
                ..DeflateConfig::default()
            };
            let packed = compress(&mut Compressor::new(&params(15, false), &config), &text);
            let mut out = Vec::new();
            Decompressor::new(&params(15, false))
                .decompress(&packed, &mut out, text.len())
                .unwrap();
            assert_eq!(out, text, "memory level {memory_level}");
            sizes.push(packed.len());
        }
        // Level 1 gathers 128 symbols a block, 9 gathers 32 Ki: hundreds
        // of block headers more (34,500 bytes against 31,830 here).
        assert!(sizes[0] > sizes[1] * 21 / 20, "{sizes:?}");
    }

    #[test]
    fn memory_levels_out_of_range_are_clamped_not_refused() {
        for memory_level in [0, 10, u8::MAX] {
            let config = DeflateConfig {
                compression_level: 6,
                memory_level,
                ..DeflateConfig::default()
            };
            let mut c = Compressor::new(&params(15, false), &config);
            assert_eq!(compress(&mut c, b"Hello"), HELLO);
        }
    }

    #[test]
    fn the_minimum_size_decides_what_is_compressed() {
        let config = DeflateConfig {
            min_compress_size: 16,
            ..DeflateConfig::default()
        };
        let c = Compressor::new(&params(15, false), &config);
        assert!(!c.should_compress(15));
        assert!(c.should_compress(16));
        assert!(compressor(false).should_compress(0));
    }
}
