//! The base framing protocol (RFC 6455 §5.2): opcodes, the frame header,
//! and decoding and encoding it.
//!
//! ```text
//!  0               1               2               3
//!  0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
//! +-+-+-+-+-------+-+-------------+-------------------------------+
//! |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//! |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//! |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//! | |1|2|3|       |K|             |                               |
//! +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//! |     Extended payload length continued, if payload len == 127  |
//! + - - - - - - - - - - - - - - - +-------------------------------+
//! |                               | Masking-key, if MASK set to 1 |
//! +-------------------------------+-------------------------------+
//! | Masking-key (continued)       |          Payload Data         |
//! +-------------------------------- - - - - - - - - - - - - - - - +
//! ```
//!
//! Only the header is handled here; payloads are the decoder's business, so
//! a payload never has to be contiguous with its header.

use bytes::{BufMut, BytesMut};

use super::error::ProtocolError;

/// The largest payload a control frame may carry (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The longest header: 2 bytes, a 64-bit length, a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 2 + 8 + 4;

/// Payload lengths up to this fit in the 7-bit field (§5.2).
const MAX_7_BIT_LEN: u64 = 125;
/// 7-bit field value announcing a 16-bit extended length (§5.2).
const LEN_16_BIT: u8 = 126;
/// 7-bit field value announcing a 64-bit extended length (§5.2).
const LEN_64_BIT: u8 = 127;

/// Which end of the connection this endpoint is. It decides masking
/// (§5.1): a client masks what it sends and rejects masked frames; a server
/// requires masked frames and sends unmasked ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The endpoint that accepted the connection.
    Server,
    /// The endpoint that opened the connection.
    Client,
}

/// A frame's opcode (§5.2). The reserved values 3–7 and 0xB–0xF are not
/// representable: decoding one is a [`ProtocolError::ReservedOpCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: the next fragment of a text or binary message.
    Continuation,
    /// 0x1: the first (or only) frame of a UTF-8 text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: the close handshake.
    Close,
    /// 0x9: a ping, to be answered with a pong.
    Ping,
    /// 0xA: a pong, answering a ping or unsolicited as a heartbeat.
    Pong,
}

impl OpCode {
    /// The opcode for the 4-bit value `bits`.
    pub fn from_bits(bits: u8) -> Result<OpCode, ProtocolError> {
        match bits {
            0x0 => Ok(OpCode::Continuation),
            0x1 => Ok(OpCode::Text),
            0x2 => Ok(OpCode::Binary),
            0x8 => Ok(OpCode::Close),
            0x9 => Ok(OpCode::Ping),
            0xa => Ok(OpCode::Pong),
            other => Err(ProtocolError::ReservedOpCode(other)),
        }
    }

    /// The 4-bit value on the wire.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xa,
        }
    }

    /// Close, Ping and Pong: opcodes with the high bit set (§5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of a message.
    pub fin: bool,
    /// Extension bit 1 (permessage-deflate's "compressed", RFC 7692).
    pub rsv1: bool,
    /// Extension bit 2; no extension we support defines it.
    pub rsv2: bool,
    /// Extension bit 3; no extension we support defines it.
    pub rsv3: bool,
    /// What the frame carries.
    pub opcode: OpCode,
    /// The masking key, present on every frame from a client.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub len: u64,
}

impl FrameHeader {
    /// A header with FIN set, no RSV bits and no mask.
    pub fn new(opcode: OpCode, len: u64) -> Self {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            len,
        }
    }

    /// The bytes [`encode_header`] writes for this header.
    pub fn encoded_len(&self) -> usize {
        let extended = match self.len {
            0..=MAX_7_BIT_LEN => 0,
            126..=0xffff => 2,
            _ => 8,
        };
        2 + extended + if self.mask.is_some() { 4 } else { 0 }
    }
}

/// Decodes the frame header at the start of `buf`.
///
/// Returns `Ok(None)` if `buf` does not hold the whole header yet, else the
/// header and its length in bytes (the payload starts there). `role` is
/// this endpoint's: a server requires masked frames, a client refuses them.
/// `allow_rsv1` is set by a negotiated extension that defines RSV1
/// (permessage-deflate); RSV2 and RSV3 are always refused.
///
/// Errors are found in the order of the bytes that reveal them, so the
/// result never depends on how `buf` was split into reads.
pub fn decode_header(
    buf: &[u8],
    role: Role,
    allow_rsv1: bool,
) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
    let Some(&[b0, b1]) = buf.first_chunk::<2>() else {
        return Ok(None);
    };
    let opcode = OpCode::from_bits(b0 & 0x0f)?;
    let rsv = (b0 >> 4) & 0b111;
    let allowed = if allow_rsv1 { 0b100 } else { 0 };
    if rsv & !allowed != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    let fin = b0 & 0x80 != 0;
    let short_len = b1 & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if u64::from(short_len) > MAX_7_BIT_LEN {
            // The exact length is in bytes we may not have; any extended
            // length is over 125 anyway.
            return Err(ProtocolError::ControlFrameTooLong(u64::from(short_len)));
        }
    }
    let masked = b1 & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
        _ => {}
    }
    let (len, mut pos) = match short_len {
        LEN_16_BIT => {
            let Some(&ext) = buf[2..].first_chunk::<2>() else {
                return Ok(None);
            };
            let len = u64::from(u16::from_be_bytes(ext));
            if len <= MAX_7_BIT_LEN {
                return Err(ProtocolError::NonMinimalLength(len));
            }
            (len, 4)
        }
        LEN_64_BIT => {
            let Some(&ext) = buf[2..].first_chunk::<8>() else {
                return Ok(None);
            };
            let len = u64::from_be_bytes(ext);
            if len >> 63 != 0 {
                return Err(ProtocolError::LengthOverflow);
            }
            if len <= 0xffff {
                return Err(ProtocolError::NonMinimalLength(len));
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    let mask = if masked {
        let Some(&key) = buf[pos..].first_chunk::<4>() else {
            return Ok(None);
        };
        pos += 4;
        Some(key)
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        rsv1: rsv & 0b100 != 0,
        rsv2: rsv & 0b010 != 0,
        rsv3: rsv & 0b001 != 0,
        opcode,
        mask,
        len,
    };
    Ok(Some((header, pos)))
}

/// Appends `header` to `dst`, its length in the minimal encoding (§5.2).
///
/// Writes the header as given: the rules about what may be sent (control
/// frame limits, masking by role) are the encoder's, so an extension can
/// build its own headers here (permessage-deflate setting RSV1).
pub fn encode_header(header: &FrameHeader, dst: &mut BytesMut) {
    dst.reserve(header.encoded_len());
    let b0 = u8::from(header.fin) << 7
        | u8::from(header.rsv1) << 6
        | u8::from(header.rsv2) << 5
        | u8::from(header.rsv3) << 4
        | header.opcode.bits();
    let mask_bit = if header.mask.is_some() { 0x80 } else { 0 };
    dst.put_u8(b0);
    match header.len {
        len @ 0..=MAX_7_BIT_LEN => dst.put_u8(mask_bit | len as u8),
        len @ 126..=0xffff => {
            dst.put_u8(mask_bit | LEN_16_BIT);
            dst.put_u16(len as u16);
        }
        len => {
            dst.put_u8(mask_bit | LEN_64_BIT);
            dst.put_u64(len);
        }
    }
    if let Some(key) = header.mask {
        dst.put_slice(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 4] = [1, 2, 3, 4];

    fn encode(header: &FrameHeader) -> BytesMut {
        let mut dst = BytesMut::new();
        encode_header(header, &mut dst);
        dst
    }

    fn decode_server(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        decode_header(buf, Role::Server, false)
    }

    fn masked(opcode: OpCode, len: u64) -> FrameHeader {
        FrameHeader {
            mask: Some(KEY),
            ..FrameHeader::new(opcode, len)
        }
    }

    #[test]
    fn reserved_opcodes_are_a_protocol_error() {
        for bits in [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
            let buf = [0x80 | bits, 0x80, 1, 2, 3, 4];
            assert_eq!(
                decode_server(&buf),
                Err(ProtocolError::ReservedOpCode(bits))
            );
            assert!(OpCode::from_bits(bits).is_err());
        }
    }

    #[test]
    fn opcodes_round_trip_through_their_bits() {
        for bits in [0, 1, 2, 8, 9, 0xa] {
            assert_eq!(OpCode::from_bits(bits).map(OpCode::bits), Ok(bits));
        }
        assert!(OpCode::Ping.is_control() && !OpCode::Continuation.is_control());
    }

    #[test]
    fn control_frames_must_have_fin() {
        for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
            let buf = [op.bits(), 0x80, 1, 2, 3, 4];
            assert_eq!(
                decode_server(&buf),
                Err(ProtocolError::FragmentedControlFrame)
            );
        }
    }

    #[test]
    fn control_frames_must_have_payload_of_at_most_125() {
        let ok = encode(&masked(OpCode::Ping, 125));
        assert!(matches!(decode_server(&ok), Ok(Some((h, 6))) if h.len == 125));
        // Detected from the first two bytes, before the extended length.
        for short in [126, 127] {
            let buf = [0x89, 0x80 | short];
            assert_eq!(
                decode_server(&buf),
                Err(ProtocolError::ControlFrameTooLong(u64::from(short)))
            );
        }
    }

    #[test]
    fn the_64_bit_length_most_significant_bit_must_be_0() {
        let mut buf = vec![0x82, 0x80 | 127];
        buf.extend_from_slice(&(1u64 << 63 | 0x10000).to_be_bytes());
        buf.extend_from_slice(&KEY);
        assert_eq!(decode_server(&buf), Err(ProtocolError::LengthOverflow));
    }

    #[test]
    fn lengths_must_use_the_minimal_encoding() {
        // 125 in the 16-bit form, 65535 and 126 in the 64-bit form.
        let mut buf = vec![0x82, 0x80 | 126, 0, 125];
        buf.extend_from_slice(&KEY);
        assert_eq!(
            decode_server(&buf),
            Err(ProtocolError::NonMinimalLength(125))
        );
        for len in [0xffffu64, 126, 0] {
            let mut buf = vec![0x82, 0x80 | 127];
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&KEY);
            assert_eq!(
                decode_server(&buf),
                Err(ProtocolError::NonMinimalLength(len))
            );
        }
    }

    #[test]
    fn a_server_requires_masked_frames() {
        let buf = encode(&FrameHeader::new(OpCode::Text, 5));
        assert_eq!(decode_server(&buf), Err(ProtocolError::UnmaskedFrame));
    }

    #[test]
    fn a_client_rejects_masked_frames() {
        let buf = encode(&masked(OpCode::Text, 5));
        assert_eq!(
            decode_header(&buf, Role::Client, false),
            Err(ProtocolError::MaskedFrame)
        );
        let unmasked = encode(&FrameHeader::new(OpCode::Text, 5));
        assert!(matches!(
            decode_header(&unmasked, Role::Client, false),
            Ok(Some((h, 2))) if h.mask.is_none()
        ));
    }

    #[test]
    fn rsv_bits_must_be_0_unless_an_extension_allows_rsv1() {
        for (bit, rsv) in [(0x40, 0b100), (0x20, 0b010), (0x10, 0b001), (0x70, 0b111)] {
            let buf = [0x81 | bit, 0x80, 1, 2, 3, 4];
            assert_eq!(decode_server(&buf), Err(ProtocolError::ReservedBits(rsv)));
        }
        let rsv1 = [0xc1, 0x80, 1, 2, 3, 4];
        let (h, _) = decode_header(&rsv1, Role::Server, true).unwrap().unwrap();
        assert!(h.rsv1 && !h.rsv2 && !h.rsv3);
        let rsv2 = [0xa1, 0x80, 1, 2, 3, 4];
        assert_eq!(
            decode_header(&rsv2, Role::Server, true),
            Err(ProtocolError::ReservedBits(0b010))
        );
    }

    #[test]
    fn length_encodings_round_trip_at_their_boundaries() {
        let cases = [
            (0, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 62, 10),
        ];
        for (len, size) in cases {
            for role in [Role::Server, Role::Client] {
                let header = match role {
                    Role::Server => masked(OpCode::Binary, len),
                    Role::Client => FrameHeader::new(OpCode::Binary, len),
                };
                let buf = encode(&header);
                let with_mask = size + if role == Role::Server { 4 } else { 0 };
                assert_eq!(buf.len(), with_mask, "len {len}");
                assert_eq!(header.encoded_len(), with_mask);
                assert_eq!(
                    decode_header(&buf, role, false),
                    Ok(Some((header, with_mask))),
                    "len {len}"
                );
            }
        }
    }

    #[test]
    fn every_header_field_round_trips() {
        let header = FrameHeader {
            fin: false,
            rsv1: true,
            rsv2: false,
            rsv3: false,
            opcode: OpCode::Continuation,
            mask: Some([0xff, 0, 0x80, 7]),
            len: 300,
        };
        let buf = encode(&header);
        assert_eq!(
            decode_header(&buf, Role::Server, true),
            Ok(Some((header, 8)))
        );
    }

    #[test]
    fn an_incomplete_header_needs_more_bytes_at_every_length() {
        for len in [5u64, 200, 70000] {
            let buf = encode(&masked(OpCode::Binary, len));
            for cut in 0..buf.len() {
                assert_eq!(decode_server(&buf[..cut]), Ok(None), "len {len} cut {cut}");
            }
            assert!(decode_server(&buf).unwrap().is_some());
        }
    }
}
