//! `decompress_request`: gzip request bodies inflated before the handler
//! sees them, with the size limit applied to the *decompressed* size (a
//! 1 KiB gzip bomb must not become 1 GiB in memory).

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderName, HeaderValue};

use super::error::RequestError;

/// Inflates `body` if `headers` say it is gzip; then the request looks as
/// if it had been sent plain: Content-Encoding moves to
/// X-Consumed-Content-Encoding and Content-Length is the new length.
pub(crate) fn gunzip_request(
    headers: &mut HeaderMap,
    body: Bytes,
    max: usize,
) -> Result<Bytes, RequestError> {
    let gzip = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok(body);
    }
    let mut out = Vec::new();
    // One byte past the limit tells "exactly max" from "too large".
    let decoder = flate2::read::GzDecoder::new(&body[..]);
    decoder
        .take((max as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| RequestError::Malformed("invalid gzip body"))?;
    if out.len() > max {
        return Err(RequestError::BodyTooLarge);
    }
    if let Some(enc) = headers.remove(CONTENT_ENCODING) {
        headers.insert(HeaderName::from_static("x-consumed-content-encoding"), enc);
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(out.len()));
    // Now framed by Content-Length alone: never both (RFC 9112 §6.3).
    headers.remove(http::header::TRANSFER_ENCODING);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    fn gzip_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        h
    }

    #[test]
    fn a_gzip_body_is_inflated_and_the_headers_say_so() {
        let mut h = gzip_headers();
        let body = gunzip_request(&mut h, gz(b"hello hello hello"), 1024).unwrap();
        assert_eq!(&body[..], b"hello hello hello");
        assert!(h.get(CONTENT_ENCODING).is_none());
        assert_eq!(h["x-consumed-content-encoding"], "gzip");
        assert_eq!(h[CONTENT_LENGTH], "17");
    }

    #[test]
    fn the_limit_applies_to_the_inflated_size() {
        let bomb = gz(&vec![0u8; 1 << 20]); // about 1 KiB compressed
        assert!(bomb.len() < 4096);
        assert_eq!(
            gunzip_request(&mut gzip_headers(), bomb, 64 * 1024),
            Err(RequestError::BodyTooLarge)
        );
    }

    #[test]
    fn corrupt_gzip_is_a_bad_request() {
        let r = gunzip_request(&mut gzip_headers(), Bytes::from_static(b"not gzip"), 1024);
        assert_eq!(r, Err(RequestError::Malformed("invalid gzip body")));
    }

    #[test]
    fn a_plain_body_is_left_alone() {
        let mut h = HeaderMap::new();
        assert_eq!(
            &gunzip_request(&mut h, Bytes::from_static(b"x"), 1).unwrap()[..],
            b"x"
        );
    }
}
