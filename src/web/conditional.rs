//! Conditional responses and compression, around every answer: gzip for
//! clients that accept it, an ETag on GET/HEAD 200s, and a matching
//! `If-None-Match` turned into `304 Not Modified`.

use std::io::Write;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, VARY};
use http::{HeaderValue, Method, StatusCode};

use super::settings::Settings;
use crate::http1::{self, Response};

/// Below this size gzip saves little and costs a round of CPU (Tornado's
/// GZipContentEncoding.MIN_LENGTH).
const GZIP_MIN_LENGTH: usize = 1024;

/// Compression, then the ETag and `304 Not Modified`.
pub(crate) fn finish(
    resp: &mut Response,
    method: &Method,
    settings: &Settings,
    wants_gzip: bool,
    if_none_match: Option<&HeaderValue>,
) {
    // A HEAD answered with its own Content-Length and no body (as the
    // HTTP layer allows) has no body here to hash or compress: its ETag
    // would be the empty body's, not GET's.
    if *method == Method::HEAD && resp.body.is_empty() && resp.headers.contains_key(CONTENT_LENGTH)
    {
        return;
    }
    let whole = resp.stream.is_none();
    // Only a whole 200 body: a 206's bytes are a slice of the identity
    // representation and must stay so.
    let compression = Compression::of(
        settings,
        wants_gzip,
        || resp.headers.get(CONTENT_TYPE),
        (whole && resp.status == StatusCode::OK).then_some(resp.body.len() as u64),
    );
    if compression.varies {
        // Caches must keep the two encodings apart.
        resp.headers
            .append(VARY, HeaderValue::from_static("Accept-Encoding"));
        if compression.gzipped
            && !resp.headers.contains_key(CONTENT_ENCODING)
            && let Ok(z) = gzip(&resp.body)
        {
            resp.body = Bytes::from(z);
            resp.headers
                .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            // A strong validator names one representation; the handler's
            // was for the identity one (nginx weakens it the same way).
            if let Some(tag) = resp.headers.get(ETAG).and_then(|v| v.to_str().ok())
                && !tag.starts_with("W/")
                && let Ok(weak) = HeaderValue::from_str(&format!("W/{tag}"))
            {
                resp.headers.insert(ETAG, weak);
            }
        }
    }
    let cacheable =
        (*method == Method::GET || *method == Method::HEAD) && resp.status == StatusCode::OK;
    if !cacheable {
        return;
    }
    if settings.etag
        && whole
        && let http::header::Entry::Vacant(slot) = resp.headers.entry(ETAG)
    {
        slot.insert(body_etag(&resp.body));
    }
    if let Some(inm) = if_none_match
        && let Some(etag) = resp.headers.get(ETAG)
        && etag_matches(inm, etag)
    {
        resp.status = StatusCode::NOT_MODIFIED;
        resp.body = Bytes::new();
        resp.stream = None;
        for h in [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING] {
            resp.headers.remove(h);
        }
    }
}

/// What compression does to a 200 response. One rule for [`finish`] and
/// for a static file's 304, which must describe the 200 it revalidates.
pub(crate) struct Compression {
    /// It says `Vary: Accept-Encoding`.
    pub(crate) varies: bool,
    /// Its body is gzipped (and a strong ETag weakened).
    pub(crate) gzipped: bool,
}

impl Compression {
    /// For a response whose whole body is `whole_len` bytes (`None`:
    /// streamed or not a 200, never compressed), of the content type
    /// `content_type` gives (asked only when compression is on), to a
    /// client that does or does not accept gzip.
    pub(crate) fn of<'a>(
        settings: &Settings,
        wants_gzip: bool,
        content_type: impl FnOnce() -> Option<&'a HeaderValue>,
        whole_len: Option<u64>,
    ) -> Compression {
        let varies =
            settings.compress_response && whole_len.is_some() && compressible(content_type());
        Compression {
            varies,
            gzipped: varies && wants_gzip && whole_len >= Some(GZIP_MIN_LENGTH as u64),
        }
    }
}

/// Whether `if_none_match` (a list of entity tags, or `*`) matches
/// `etag`, by weak comparison (RFC 9110 §13.1.2).
pub(crate) fn etag_matches(if_none_match: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = if_none_match.to_str() else {
        return false;
    };
    fn strip(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    let ours = match etag.to_str() {
        Ok(e) => strip(e),
        Err(_) => return false,
    };
    list.split(',').any(|t| t.trim() == "*" || strip(t) == ours)
}

/// Whether the client accepts gzip (and has not refused it with `q=0`).
pub(crate) fn accepts_gzip(req: &http1::Request) -> bool {
    req.headers.get_all(ACCEPT_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|coding| {
                let mut parts = coding.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                name.eq_ignore_ascii_case("gzip") && !refused
            })
        })
    })
}

/// The strong ETag of a body: its hash, as `"<16 hex digits>"`.
pub(crate) fn body_etag(body: &[u8]) -> HeaderValue {
    quoted_hex(body_hash(body))
}

/// Text types worth compressing.
fn compressible(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct.split(';').next().unwrap_or("").trim();
    ct.starts_with("text/")
        || matches!(
            ct,
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "image/svg+xml"
                | "application/xhtml+xml"
        )
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body)?;
    enc.finish()
}

/// A 64-bit hash of `body` for its ETag. Any hash that changes with the
/// body makes a validator (nginx uses size and mtime), and this one is
/// cheap: a multiply-rotate step per 8 bytes (FxHash's), with the length
/// mixed in, then a final avalanche so every digit depends on every byte.
/// Kept by hand: it runs on every 200 body, and a crate's general hasher
/// would cost more for nothing a validator needs.
pub(crate) fn body_hash(body: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = body.len() as u64;
    let mut chunks = body.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // splitmix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `"<16 hex digits>"`, formatted without a temporary string.
fn quoted_hex(v: u64) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut b = [b'"'; 18];
    for (i, d) in b[1..17].iter_mut().enumerate() {
        *d = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&b).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_etag_hash_changes_with_any_byte_and_with_the_length() {
        let base = body_hash(b"Hello, World! and some more bytes");
        for i in 0..33 {
            let mut b = b"Hello, World! and some more bytes".to_vec();
            b[i] ^= 1;
            assert_ne!(body_hash(&b), base, "byte {i}");
        }
        assert_ne!(body_hash(b"abc"), body_hash(b"abc\0"));
        assert_ne!(body_hash(b""), body_hash(b"\0"));
    }

    #[test]
    fn if_none_match_matches_weakly_in_a_list_or_by_star() {
        let etag = HeaderValue::from_static("\"abc\"");
        for inm in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            assert!(etag_matches(&HeaderValue::from_static(inm), &etag), "{inm}");
        }
        assert!(!etag_matches(&HeaderValue::from_static("\"abd\""), &etag));
    }
}
