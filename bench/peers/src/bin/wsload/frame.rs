//! RFC 6455 §5.2 framing, the client's half: masked frames out, the
//! server's unmasked frames in.

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const FIN: u8 = 0x80;
/// Set on the first frame of a compressed message (RFC 7692 §6).
pub const RSV1: u8 = 0x40;
const MASK: u8 = 0x80;

/// Appends one whole (FIN) frame carrying `payload`, masked with `key`
/// (RFC 6455 §5.3: a client masks every frame).
pub fn encode(out: &mut Vec<u8>, opcode: u8, rsv1: bool, payload: &[u8], key: [u8; 4]) {
    out.push(FIN | if rsv1 { RSV1 } else { 0 } | opcode);
    let n = payload.len();
    // Lengths up to 125 fit the first byte; 126 and 127 announce a 16- or
    // 64-bit length (§5.2).
    if n < 126 {
        out.push(MASK | n as u8);
    } else if n <= u16::MAX as usize {
        out.push(MASK | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(MASK | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key);
}

/// XORs `data` with the repeating 4-byte key, eight bytes at a time.
fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    // The tail starts at a multiple of 8, so the key's phase is 0 again.
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

/// The head of one server frame found at the start of a buffer.
pub struct Head {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    /// Bytes of head before the payload.
    pub head_len: usize,
    pub payload_len: usize,
}

/// Parses the head at the start of `buf`: `Ok(None)` when more bytes are
/// needed, an error for a masked server frame (§5.1 forbids it).
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[1] & MASK != 0 {
        return Err("the server sent a masked frame".into());
    }
    let (head_len, payload_len) = match buf[1] & 0x7f {
        126 if buf.len() < 4 => return Ok(None),
        126 => (4, u16::from_be_bytes([buf[2], buf[3]]) as usize),
        127 if buf.len() < 10 => return Ok(None),
        127 => (10, u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize),
        n => (2, n as usize),
    };
    Ok(Some(Head { fin: buf[0] & FIN != 0, rsv1: buf[0] & RSV1 != 0, opcode: buf[0] & 0x0f, head_len, payload_len }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_twice_gives_the_payload_back() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for n in [0, 1, 7, 8, 125, 126, 1000] {
            let mut out = Vec::new();
            encode(&mut out, OP_BINARY, false, &payload[..n], [1, 2, 3, 4]);
            let head = if n < 126 { 2 } else { 4 };
            let mut body = out[head + 4..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, &payload[..n]);
        }
    }
}
