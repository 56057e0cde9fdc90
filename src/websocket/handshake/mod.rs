//! The opening handshake (RFC 6455 §4), both sides, sans-I/O: which
//! requests may become a WebSocket and the headers that say yes
//! (server), the request to send and the checks on the answer (client).
//!
//! The server side decides from a request's method, version and headers;
//! a refusal carries its status (400, or 426 with `Sec-WebSocket-Version:
//! 13` for a version we do not speak, §4.4), never a 101. Extensions
//! (`Sec-WebSocket-Extensions`) are handed on as offered: permessage-deflate
//! decides what to accept.
//!
//! `server.rs` holds the server's side, `client.rs` the client's; this file
//! the constants, the accept key and the header-list reading both share.

use base64::Engine;
use http::header::{HeaderMap, HeaderName};
use sha1::{Digest, Sha1};

mod client;
mod server;

pub use client::{Accepted, ClientHandshake, ClientHandshakeError};
pub use server::{AcceptError, HandshakeError, Offer};

/// The protocol version this implementation speaks (§4.1): the only one
/// RFC 6455 defines.
pub const WEBSOCKET_VERSION: &str = "13";

/// Appended to the client's key before hashing (§1.3): a value no other
/// protocol would produce, so a 101 proves the server read the handshake.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Key` is 16 random bytes (§4.1), 24 characters of
/// base64.
pub(super) const KEY_BYTES: usize = 16;

/// `Sec-WebSocket-Accept` for a client's key (§4.2.2): base64 of the SHA-1
/// of the key and the protocol's GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The header's value if it appears exactly once and is text.
pub(super) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

/// Every text value of a header, trimmed, empty ones left out.
pub(super) fn values<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The comma-separated tokens of every value of a header (RFC 9110 §5.6.1
/// lists), trimmed.
pub(super) fn tokens<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> impl Iterator<Item = &'a str> {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether a header's token list holds `token`, in any case. For
/// `Upgrade`, a protocol's version suffix (`websocket/13`) is ignored.
pub(super) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| {
        let t = t.split('/').next().unwrap_or(t);
        t.eq_ignore_ascii_case(token)
    })
}

/// 24 characters of padded base64 decoding to exactly 16 bytes.
pub(super) fn is_valid_key(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|bytes| bytes.len() == KEY_BYTES)
}

/// The RFC's sample key and its accept value (§1.3), for the tests.
#[cfg(test)]
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
#[cfg(test)]
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Headers from (name, value) pairs, repeats kept, for the tests.
#[cfg(test)]
fn test_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::header::HeaderValue::from_str(value).unwrap(),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_of_the_rfc_sample_matches_section_1_3() {
        assert_eq!(accept_key(SAMPLE_KEY), SAMPLE_ACCEPT);
    }
}
