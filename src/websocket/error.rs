//! What a peer can do wrong (each with the close code that answers it), and
//! what a caller can ask the encoder for that the protocol forbids.

use super::close_code::CloseCode;

/// A violation by the peer. The connection must be failed (RFC 6455
/// §7.1.7): send a Close frame with [`ProtocolError::close_code`] and read
/// nothing more from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An opcode RFC 6455 reserves (3–7, 0xB–0xF; §5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpCode(u8),
    /// An RSV bit set that no negotiated extension defines (§5.2). The
    /// value is the three bits, RSV1 highest.
    #[error("reserved bits {0:#05b} set without an extension")]
    ReservedBits(u8),
    /// A Close, Ping or Pong frame without FIN: control frames must not be
    /// fragmented (§5.5).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A control frame whose payload is over 125 bytes (§5.5). Refused
    /// from the 7-bit length field alone, so the value is that field (126
    /// or 127: an extended length follows, which is not read).
    #[error("control frame with length field {0} (payload limit 125)")]
    ControlFrameTooLong(u64),
    /// A server received an unmasked frame: clients must mask (§5.1).
    #[error("unmasked frame from a client")]
    UnmaskedFrame,
    /// A client received a masked frame: servers must not mask (§5.1).
    #[error("masked frame from a server")]
    MaskedFrame,
    /// A 64-bit payload length with its most significant bit set (§5.2).
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A payload length not in its shortest form (§5.2: "the minimal number
    /// of bytes MUST be used"). Many implementations accept these; we do
    /// not, so one length has one encoding.
    #[error("payload length {0} not minimally encoded")]
    NonMinimalLength(u64),
    /// A continuation frame with no fragmented message open (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message is still open
    /// (§5.4: fragments of one message must not be interleaved).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A Close frame payload of 1 byte: a code needs 2 (§5.5.1).
    #[error("close payload of 1 byte")]
    TruncatedCloseCode,
    /// A Close frame with a code that may not be on the wire (§7.4).
    #[error("close code {0} may not be sent")]
    InvalidCloseCode(u16),
    /// A text message or close reason that is not UTF-8 (§8.1).
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// RSV1 ("compressed", RFC 7692 §6) on a continuation frame: with
    /// permessage-deflate it belongs on a message's first frame only
    /// (RFC 7692 §6: the receiver must fail the connection).
    #[error("RSV1 set on a continuation frame")]
    CompressedContinuation,
    /// RSV1 on a Close, Ping or Pong: permessage-deflate never compresses
    /// control frames (RFC 7692 §6).
    #[error("RSV1 set on a control frame")]
    CompressedControlFrame,
    /// A compressed message that does not inflate. RFC 7692 names no
    /// close code for it; it is the extension's framing that is broken,
    /// not the message's content type, so it closes with 1002 (RFC 6455
    /// §7.4.1, "protocol error") rather than 1007.
    #[error("compressed payload is not a valid DEFLATE stream")]
    InvalidCompressedData,
    /// A message larger than the configured maximum: detected from a frame
    /// header before its payload is buffered, or while a compressed
    /// message inflates, as soon as its output passes the limit.
    #[error("message of at least {size} bytes exceeds the limit of {max}")]
    MessageTooBig {
        /// Bytes of the message so far, counting the declared length of the
        /// frame that crossed the limit (or the inflated bytes so far).
        size: u64,
        /// The configured `max_message_size`.
        max: usize,
    },
}

impl ProtocolError {
    /// The code of the Close frame that fails the connection (§7.4.1):
    /// 1007 for bad text, 1009 for a message over the limit, 1002 for the
    /// rest.
    pub fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            ProtocolError::MessageTooBig { .. } => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL,
        }
    }
}

/// A frame or message the encoder refuses to produce: sending it would make
/// a conforming peer fail the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A control frame payload over 125 bytes (§5.5).
    #[error("control frame payload of {0} bytes (limit 125)")]
    ControlPayloadTooLong(usize),
    /// A control frame without FIN: control frames are never fragmented
    /// (§5.5).
    #[error("control frames cannot be fragmented")]
    FragmentedControlFrame,
    /// A close code that may not be sent (1005, 1006, 1015, reserved or
    /// undefined ranges; §7.4).
    #[error("close code {0} may not be sent")]
    UnsendableCloseCode(u16),
    /// A close reason over 123 bytes: with the 2-byte code it would pass
    /// the 125-byte control frame limit (§5.5.1).
    #[error("close reason of {0} bytes (limit 123)")]
    CloseReasonTooLong(usize),
    /// The DEFLATE compressor failed (zlib reported an error): the
    /// compression context can no longer be trusted, so the connection
    /// should be closed with 1011.
    #[error("permessage-deflate compression failed")]
    Compression,
    /// A mask key given to a server's encoder, or none to a client's:
    /// clients mask every frame, servers none (§5.1).
    #[error("a client must mask every frame and a server none")]
    MaskingMismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_close_code() {
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), CloseCode(1007));
        let big = ProtocolError::MessageTooBig { size: 11, max: 10 };
        assert_eq!(big.close_code(), CloseCode(1009));
        for e in [
            ProtocolError::ReservedOpCode(3),
            ProtocolError::ReservedBits(4),
            ProtocolError::FragmentedControlFrame,
            ProtocolError::ControlFrameTooLong(126),
            ProtocolError::UnmaskedFrame,
            ProtocolError::MaskedFrame,
            ProtocolError::LengthOverflow,
            ProtocolError::NonMinimalLength(5),
            ProtocolError::UnexpectedContinuation,
            ProtocolError::ExpectedContinuation,
            ProtocolError::TruncatedCloseCode,
            ProtocolError::InvalidCloseCode(1005),
            ProtocolError::CompressedContinuation,
            ProtocolError::CompressedControlFrame,
            ProtocolError::InvalidCompressedData,
        ] {
            assert_eq!(e.close_code(), CloseCode(1002), "{e}");
        }
    }
}
