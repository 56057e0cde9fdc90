//! Content codings (RFC 9110 §8.4.1): a `gzip` or `deflate` body decoded
//! piece by piece as it arrives, within a limit on the decoded size (a
//! 1 KiB gzip bomb must not become 1 GiB in memory).

use std::io::Write;

use bytes::Bytes;
use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use http::HeaderMap;
use http::header::CONTENT_ENCODING;

use super::error::FetchError;

/// The most compressed bytes decoded between two checks of the limit:
/// at deflate's worst ratio (1032:1) about 1 MiB of output.
const SLICE: usize = 1024;

/// A body's content decoder.
pub(crate) struct Inflater {
    kind: Kind,
    limit: usize,
    total: usize,
}

enum Kind {
    Gzip(Box<MultiGzDecoder<Vec<u8>>>),
    /// `deflate` is the zlib format (RFC 9110 §8.4.1.2), but some servers
    /// send raw deflate: the first two bytes tell which, so the choice
    /// waits for them (holding a first byte that came alone).
    Deflate(Option<u8>),
    Zlib(Box<ZlibDecoder<Vec<u8>>>),
    Raw(Box<DeflateDecoder<Vec<u8>>>),
}

/// The decoder a `deflate` body needs, by its first two bytes (RFC 1950
/// §2.2: a zlib header has CM = 8 and is a multiple of 31).
fn deflate_for(start: &[u8]) -> Kind {
    let zlib = start.len() >= 2
        && start[0] & 0x0f == 8
        && (u16::from(start[0]) << 8 | u16::from(start[1])) % 31 == 0;
    if zlib {
        Kind::Zlib(Box::new(ZlibDecoder::new(Vec::new())))
    } else {
        Kind::Raw(Box::new(DeflateDecoder::new(Vec::new())))
    }
}

fn bad(e: std::io::Error) -> FetchError {
    FetchError::Malformed(format!("invalid compressed body: {e}"))
}

impl Inflater {
    /// The decoder for a response's `Content-Encoding`, if it is one the
    /// client asked for (`gzip`, `x-gzip`, `deflate`).
    pub(crate) fn for_headers(headers: &HeaderMap, limit: usize) -> Option<Inflater> {
        let coding = headers.get(CONTENT_ENCODING)?.to_str().ok()?.trim();
        let kind = if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            Kind::Gzip(Box::new(MultiGzDecoder::new(Vec::new())))
        } else if coding.eq_ignore_ascii_case("deflate") {
            Kind::Deflate(None)
        } else {
            return None;
        };
        Some(Inflater {
            kind,
            limit,
            total: 0,
        })
    }

    /// Decodes `piece`; returns what it decoded to (possibly nothing yet).
    pub(crate) fn push(&mut self, piece: &[u8]) -> Result<Bytes, FetchError> {
        if piece.is_empty() {
            return Ok(Bytes::new());
        }
        let joined;
        let piece = match &mut self.kind {
            // The zlib header is two bytes: a first piece of one waits.
            Kind::Deflate(first @ None) if piece.len() == 1 => {
                *first = Some(piece[0]);
                return Ok(Bytes::new());
            }
            Kind::Deflate(first) => {
                joined = first
                    .take()
                    .into_iter()
                    .chain(piece.iter().copied())
                    .collect::<Vec<u8>>();
                self.kind = deflate_for(&joined);
                &joined[..]
            }
            _ => piece,
        };
        // Fed a slice at a time, the limit is checked before deflate's
        // 1032:1 worst case can turn a large piece into much more.
        let mut out = Vec::new();
        for slice in piece.chunks(SLICE) {
            let before = out.len();
            match &mut self.kind {
                Kind::Gzip(d) => {
                    d.write_all(slice).map_err(bad)?;
                    out.append(d.get_mut());
                }
                Kind::Zlib(d) => {
                    d.write_all(slice).map_err(bad)?;
                    d.flush().map_err(bad)?;
                    out.append(d.get_mut());
                }
                Kind::Raw(d) => {
                    d.write_all(slice).map_err(bad)?;
                    d.flush().map_err(bad)?;
                    out.append(d.get_mut());
                }
                Kind::Deflate(_) => {}
            }
            self.count(out.len() - before)?;
        }
        Ok(Bytes::from(out))
    }

    /// The body ended: a stream cut short is an error.
    pub(crate) fn finish(&mut self) -> Result<Bytes, FetchError> {
        let out = match &mut self.kind {
            Kind::Gzip(d) => {
                d.try_finish().map_err(bad)?;
                std::mem::take(d.get_mut())
            }
            Kind::Zlib(d) => {
                d.try_finish().map_err(bad)?;
                std::mem::take(d.get_mut())
            }
            Kind::Raw(d) => {
                d.try_finish().map_err(bad)?;
                std::mem::take(d.get_mut())
            }
            // One byte in all: not a stream of either format.
            Kind::Deflate(Some(_)) => return Err(bad(std::io::Error::other("one byte"))),
            Kind::Deflate(None) => Vec::new(),
        };
        self.count(out.len())?;
        Ok(Bytes::from(out))
    }

    fn count(&mut self, n: usize) -> Result<(), FetchError> {
        self.total += n;
        if self.total > self.limit {
            return Err(FetchError::TooLarge {
                what: "body",
                limit: self.limit,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(coding: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static(coding));
        h
    }

    fn inflate_in_pieces(
        coding: &'static str,
        data: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, FetchError> {
        let mut inf = Inflater::for_headers(&headers(coding), limit).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(7) {
            out.extend_from_slice(&inf.push(piece)?);
        }
        out.extend_from_slice(&inf.finish()?);
        Ok(out)
    }

    fn compress(coding: &str, data: &[u8]) -> Vec<u8> {
        let level = flate2::Compression::default();
        match coding {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), level);
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn gzip_bodies_decode_piece_by_piece() {
        let text = b"hello hello hello hello".repeat(100);
        assert_eq!(
            inflate_in_pieces("gzip", &compress("gzip", &text), 1 << 20).unwrap(),
            text
        );
    }

    #[test]
    fn deflate_bodies_decode_as_zlib_or_raw() {
        let text = b"deflate deflate deflate".repeat(100);
        for format in ["zlib", "raw"] {
            let got = inflate_in_pieces("deflate", &compress(format, &text), 1 << 20).unwrap();
            assert_eq!(got, text, "{format}");
        }
    }

    #[test]
    fn a_zlib_body_whose_first_piece_is_one_byte_is_still_zlib() {
        let text = b"one byte at first".repeat(20);
        let z = compress("zlib", &text);
        let mut inf = Inflater::for_headers(&headers("deflate"), 1 << 20).unwrap();
        let mut out = inf.push(&z[..1]).unwrap().to_vec();
        out.extend_from_slice(&inf.push(&z[1..]).unwrap());
        out.extend_from_slice(&inf.finish().unwrap());
        assert_eq!(out, text);
    }

    #[test]
    fn the_limit_applies_to_the_decoded_size() {
        let bomb = compress("gzip", &vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        let err = inflate_in_pieces("gzip", &bomb, 64 << 10).unwrap_err();
        assert!(matches!(
            err,
            FetchError::TooLarge {
                what: "body",
                limit: 65536
            }
        ));
    }

    #[test]
    fn a_corrupt_or_cut_gzip_body_is_malformed() {
        assert!(matches!(
            inflate_in_pieces("gzip", b"not gzip at all", 1024),
            Err(FetchError::Malformed(_))
        ));
        let whole = compress("gzip", b"some text that is long enough");
        let cut = &whole[..whole.len() - 6];
        assert!(matches!(
            inflate_in_pieces("gzip", cut, 1024),
            Err(FetchError::Malformed(_))
        ));
    }

    #[test]
    fn other_codings_are_left_alone() {
        assert!(Inflater::for_headers(&headers("br"), 10).is_none());
        assert!(Inflater::for_headers(&HeaderMap::new(), 10).is_none());
    }
}
