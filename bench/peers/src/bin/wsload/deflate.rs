//! The client's side of permessage-deflate (RFC 7692 §7.2): raw deflate,
//! each message ended by a sync flush whose 00 00 FF FF tail is taken off
//! when sending and put back when receiving.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use crate::handshake::DeflateAgreed;

const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

pub struct Deflate {
    compress: Compress,
    decompress: Decompress,
    /// client_no_context_takeover: a fresh window for each message.
    reset_each: bool,
}

impl Deflate {
    pub fn new(agreed: DeflateAgreed) -> Self {
        Deflate {
            // The fastest level: it keeps wsload's share small (zlib's
            // default level took 38 µs per 1 KiB text here, more than a
            // whole uncompressed echo costs a server), and the server's
            // inflating costs about the same whatever level made the bytes.
            // No zlib header: raw deflate.
            compress: Compress::new(Compression::fast(), false),
            decompress: Decompress::new(false),
            reset_each: agreed.client_no_context_takeover,
        }
    }

    /// Replaces `out` with the compressed form of `input`, tail removed.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.clear();
        out.reserve(input.len() / 2 + 64);
        let start = self.compress.total_in();
        loop {
            let done = (self.compress.total_in() - start) as usize;
            self.compress.compress_vec(&input[done..], out, FlushCompress::Sync).map_err(|e| e.to_string())?;
            // The flush is complete once all input is in and the output
            // was not filled to capacity.
            if (self.compress.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity());
        }
        if !out.ends_with(&TAIL) {
            return Err("a sync flush did not end with 00 00 ff ff".into());
        }
        out.truncate(out.len() - TAIL.len());
        if self.reset_each {
            self.compress.reset();
        }
        Ok(())
    }

    /// Whether each message is compressed on its own (the server asked
    /// for client_no_context_takeover), so a compressed message can be
    /// sent again as it is.
    pub fn reset_each(&self) -> bool {
        self.reset_each
    }

    /// Replaces `out` with the inflated `input` (a whole message's
    /// payload, tail not included), expecting about `hint` bytes.
    pub fn decompress(&mut self, input: &[u8], out: &mut Vec<u8>, hint: usize) -> Result<(), String> {
        out.clear();
        out.reserve(hint + 64);
        for part in [input, &TAIL[..]] {
            let start = self.decompress.total_in();
            loop {
                let done = (self.decompress.total_in() - start) as usize;
                self.decompress.decompress_vec(&part[done..], out, FlushDecompress::Sync).map_err(|e| e.to_string())?;
                if (self.decompress.total_in() - start) as usize == part.len() && out.len() < out.capacity() {
                    break;
                }
                out.reserve(out.capacity());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{text, Rng};

    #[test]
    fn what_one_side_compresses_the_other_inflates() {
        let agreed = DeflateAgreed { client_no_context_takeover: false };
        let (mut a, mut b) = (Deflate::new(agreed), Deflate::new(agreed));
        let mut rng = Rng::new(7);
        let (mut packed, mut unpacked) = (Vec::new(), Vec::new());
        for len in [0, 1, 1024, 1024, 70_000] {
            let msg = text(&mut rng, len);
            a.compress(&msg, &mut packed).unwrap();
            b.decompress(&packed, &mut unpacked, len).unwrap();
            assert_eq!(unpacked, msg);
        }
    }
}
