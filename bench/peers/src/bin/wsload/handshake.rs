//! The client's opening handshake (RFC 6455 §4.1), blocking: connect,
//! send the upgrade request, read the 101 and check it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::rng::Rng;

/// The GUID the server appends to the key (§1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// A 101 and its headers fit in far less; more means something is wrong.
const MAX_RESPONSE_HEAD: usize = 8192;
/// How long a handshake may take: Tornado under 10,000 connections
/// answers in well under this.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What the server agreed to about permessage-deflate (RFC 7692 §7.1).
#[derive(Clone, Copy, Debug)]
pub struct DeflateAgreed {
    /// The client must start each message with an empty window.
    pub client_no_context_takeover: bool,
}

pub struct Opened {
    pub stream: TcpStream,
    /// Bytes the server sent after its 101 (frames already).
    pub leftover: Vec<u8>,
    pub deflate: Option<DeflateAgreed>,
}

/// Opens one WebSocket connection to 127.0.0.1:`port``path`, offering
/// permessage-deflate (without parameters, so the server may not restrict
/// the client's window) when `offer_deflate`.
pub fn open(port: u16, path: &str, offer_deflate: bool, rng: &mut Rng) -> Result<Opened, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let mut raw_key = [0u8; 16];
    raw_key[..8].copy_from_slice(&rng.next().to_ne_bytes());
    raw_key[8..].copy_from_slice(&rng.next().to_ne_bytes());
    let key = base64(&raw_key);
    let extension = if offer_deflate { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extension}\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(|e| format!("send the handshake: {e}"))?;

    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return Err("the handshake response head is too long".into());
        }
        let mut chunk = [0u8; 2048];
        let n = stream.read(&mut chunk).map_err(|e| format!("read the handshake response: {e}"))?;
        if n == 0 {
            return Err("the server closed during the handshake".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| "the response head is not UTF-8".to_string())?;
    let deflate = check_response(head, &key)?;
    if deflate.is_some() && !offer_deflate {
        return Err("the server chose permessage-deflate, which was not offered".into());
    }
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(Opened { stream, leftover: buf[head_end..].to_vec(), deflate })
}

/// Checks the 101 (§4.2.2 step 5) and returns the deflate agreement.
fn check_response(head: &str, key: &str) -> Result<Option<DeflateAgreed>, String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if status.split(' ').nth(1) != Some("101") {
        return Err(format!("expected 101, got {status:?}"));
    }
    let mut accept_ok = false;
    let mut deflate = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept_ok = value == expected_accept(key);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            deflate = parse_deflate(value)?;
        }
    }
    if !accept_ok {
        return Err("missing or wrong Sec-WebSocket-Accept".into());
    }
    Ok(deflate)
}

fn parse_deflate(value: &str) -> Result<Option<DeflateAgreed>, String> {
    let mut params = value.split(';').map(str::trim);
    if params.next() != Some("permessage-deflate") {
        return Err(format!("unexpected extension {value:?}"));
    }
    let mut agreed = DeflateAgreed { client_no_context_takeover: false };
    for p in params {
        let name = p.split('=').next().unwrap_or("").trim();
        match name {
            "client_no_context_takeover" => agreed.client_no_context_takeover = true,
            // Our inflater keeps a full 32 KiB window: whatever the
            // server limits itself to, it can read.
            "server_no_context_takeover" | "server_max_window_bits" => {}
            // Not offered, so not allowed in the answer (RFC 7692 §7.1.2.2).
            _ => return Err(format!("unexpected permessage-deflate parameter {p:?}")),
        }
    }
    Ok(Some(agreed))
}

fn expected_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(GUID.as_bytes());
    base64(&h.finalize())
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept() {
        // RFC 6455 §1.3.
        assert_eq!(expected_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
