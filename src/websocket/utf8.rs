//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A text message may be split across frames (and each frame across reads)
//! at any byte, even inside a code point. RFC 6455 §8.1 says an endpoint
//! receiving invalid UTF-8 fails the connection (1007); failing as soon as
//! the bytes can never become valid, rather than after buffering the whole
//! message, stops a peer from making us hold a large invalid message.

/// The bytes seen so far can never be valid UTF-8, whatever follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8 in a text message")]
pub struct Utf8Error;

/// A UTF-8 validator fed one piece at a time.
///
/// It keeps at most the 3 bytes of an incomplete trailing code point
/// between calls, so it costs nothing per message beyond its own 5 bytes.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// The start of a code point split by the end of the last piece.
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next piece of the message.
    ///
    /// Fails as soon as a byte sequence can never become valid (a stray
    /// continuation byte, 0xC0/0xC1, 0xF5 and above, an overlong form, a
    /// surrogate, a code point above U+10FFFF); an incomplete code point at
    /// the end of `piece` is kept for the next call.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), Utf8Error> {
        let rest = self.complete_pending(piece)?;
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            // `error_len() == None`: the input ended inside a code point
            // that could still be completed.
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Ends the message: fails if it stopped inside a code point. The
    /// validator is ready for the next message afterwards.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.pending_len != 0;
        self.pending_len = 0;
        if incomplete { Err(Utf8Error) } else { Ok(()) }
    }

    /// Completes the code point left over from the last piece with the
    /// first bytes of `piece`; returns the part of `piece` after it.
    fn complete_pending<'a>(&mut self, piece: &'a [u8]) -> Result<&'a [u8], Utf8Error> {
        let have = usize::from(self.pending_len);
        if have == 0 {
            return Ok(piece);
        }
        let width = sequence_width(self.pending[0]);
        let take = (width - have).min(piece.len());
        let mut joined = self.pending;
        joined[have..have + take].copy_from_slice(&piece[..take]);
        let joined = &joined[..have + take];
        match std::str::from_utf8(joined) {
            Ok(_) => {
                self.pending_len = 0;
                Ok(&piece[take..])
            }
            Err(e) if e.error_len().is_none() => {
                // Still incomplete: `piece` was shorter than the rest of
                // the code point, so all of it is now pending.
                self.pending[..joined.len()].copy_from_slice(joined);
                self.pending_len = joined.len() as u8;
                Ok(&[])
            }
            Err(_) => Err(Utf8Error),
        }
    }
}

/// The length of the sequence a lead byte starts (RFC 3629 §4). Only
/// called on lead bytes `from_utf8` accepted as the start of an
/// incomplete sequence, so 2, 3 or 4.
fn sequence_width(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &[&str] = &[
        "héllo wörld",
        "κόσμε",
        "日本語のテキスト",
        "emoji 😀 and 🎉!",
        "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
    ];

    fn feed_split(bytes: &[u8], at: &[usize]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        let mut start = 0;
        for &cut in at {
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.feed(&bytes[start..])?;
        v.finish()
    }

    #[test]
    fn valid_text_passes_at_every_split_point() {
        for s in SAMPLES {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                assert_eq!(feed_split(b, &[i]), Ok(()), "{s:?} split at {i}");
                for j in i..=b.len() {
                    assert_eq!(feed_split(b, &[i, j]), Ok(()), "{s:?} at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn valid_text_passes_byte_by_byte() {
        for s in SAMPLES {
            let cuts: Vec<usize> = (1..s.len()).collect();
            assert_eq!(feed_split(s.as_bytes(), &cuts), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn a_split_four_byte_emoji_is_completed_across_pieces() {
        let emoji = "😀".as_bytes();
        assert_eq!(emoji.len(), 4);
        let mut v = Utf8Validator::new();
        for byte in emoji {
            assert_eq!(v.feed(std::slice::from_ref(byte)), Ok(()));
        }
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn an_incomplete_code_point_at_the_end_fails_finish() {
        let emoji = "😀".as_bytes();
        for len in 1..4 {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(&emoji[..len]), Ok(()));
            assert_eq!(v.finish(), Err(Utf8Error), "{len} bytes of 4");
        }
    }

    #[test]
    fn never_valid_bytes_fail_at_every_position() {
        let bad: &[&[u8]] = &[
            &[0xc0, 0x80],             // overlong NUL
            &[0xc1, 0xbf],             // overlong
            &[0xe0, 0x80, 0x80],       // overlong 3-byte
            &[0xf0, 0x80, 0x80, 0x80], // overlong 4-byte
            &[0xed, 0xa0, 0x80],       // surrogate U+D800
            &[0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
            &[0xf5],
            &[0xff],
            &[0x80],             // stray continuation
            &[0xe2, 0x82, 0x41], // truncated then ASCII
        ];
        let text = "ab😀cd".as_bytes();
        for seq in bad {
            for pos in 0..=text.len() {
                if std::str::from_utf8(&text[..pos]).is_err() {
                    continue; // only insert between code points
                }
                let mut b = text[..pos].to_vec();
                b.extend_from_slice(seq);
                b.extend_from_slice(&text[pos..]);
                assert_eq!(feed_split(&b, &[]), Err(Utf8Error), "{seq:x?} at {pos}");
                for cut in 0..=b.len() {
                    assert_eq!(feed_split(&b, &[cut]), Err(Utf8Error), "{seq:x?} at {pos}");
                }
            }
        }
    }

    #[test]
    fn fails_fast_before_the_message_ends() {
        // The bad sequence is detected in the piece that contains it, not at
        // `finish`: the rest of the message need never be read.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"fine so far "), Ok(()));
        assert_eq!(v.feed(&[0xed]), Ok(())); // could still be U+D000..U+D7FF
        assert_eq!(v.feed(&[0xa0]), Err(Utf8Error)); // a surrogate: never valid
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xc0]), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xf0, 0x9f]), Ok(()));
        assert_eq!(v.feed(b"x"), Err(Utf8Error));
    }

    #[test]
    fn finish_resets_for_the_next_message() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[0xe2]), Ok(()));
        assert_eq!(v.finish(), Err(Utf8Error));
        assert_eq!(v.feed(b"next"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
