//! The Close frame's payload (RFC 6455 §5.5.1): an optional 2-byte status
//! code and a UTF-8 reason, parsed strictly and encoded only when valid.

use bytes::{BufMut, BytesMut};

use super::close_code::CloseCode;
use super::error::{EncodeError, ProtocolError};

/// The longest reason that fits a control frame beside its 2-byte code
/// (125 − 2, §5.5 and §5.5.1).
pub const MAX_CLOSE_REASON: usize = 123;

/// A Close frame's status code and reason.
///
/// A Close frame with an empty payload has neither; the decoder reports it
/// as `Message::Close(None)`, which an application sees as
/// [`CloseCode::NO_STATUS`] (1005) — a code that never goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// Why the connection is closing.
    pub code: CloseCode,
    /// Human-readable detail, for debugging; at most 123 bytes on the wire.
    pub reason: String,
}

impl CloseFrame {
    /// A close frame with `code` and `reason`.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }
}

/// Parses a received Close payload (already unmasked).
///
/// Empty: no code (`Ok(None)`). One byte: 1002, a code needs two. A code
/// that may not be on the wire ([`CloseCode::is_valid_on_wire`]): 1002. A
/// reason that is not UTF-8: 1007 (§8.1).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseFrame>, ProtocolError> {
    let Some((&code, reason)) = payload.split_first_chunk::<2>() else {
        return match payload.len() {
            0 => Ok(None),
            _ => Err(ProtocolError::TruncatedCloseCode),
        };
    };
    let code = CloseCode(u16::from_be_bytes(code));
    if !code.is_valid_on_wire() {
        return Err(ProtocolError::InvalidCloseCode(code.0));
    }
    let reason = std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
    Ok(Some(CloseFrame::new(code, reason)))
}

/// Appends the payload for `frame` to `dst` (unmasked; the encoder masks).
///
/// Refuses codes that may not be sent (1005, 1006 and 1015 are local
/// reports; reserved and undefined ranges would make the peer fail the
/// connection) and reasons over [`MAX_CLOSE_REASON`] bytes.
pub fn encode_close_payload(frame: &CloseFrame, dst: &mut BytesMut) -> Result<(), EncodeError> {
    if !frame.code.is_valid_on_wire() {
        return Err(EncodeError::UnsendableCloseCode(frame.code.0));
    }
    if frame.reason.len() > MAX_CLOSE_REASON {
        return Err(EncodeError::CloseReasonTooLong(frame.reason.len()));
    }
    dst.reserve(2 + frame.reason.len());
    dst.put_u16(frame.code.0);
    dst.put_slice(frame.reason.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(code: u16, reason: &[u8]) -> Vec<u8> {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        p
    }

    #[test]
    fn an_empty_close_payload_has_no_code() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
    }

    #[test]
    fn a_one_byte_close_payload_is_a_protocol_error() {
        let err = parse_close_payload(&[0x03]).unwrap_err();
        assert_eq!(err, ProtocolError::TruncatedCloseCode);
        assert_eq!(err.close_code(), CloseCode::PROTOCOL);
    }

    #[test]
    fn codes_that_may_not_be_on_the_wire_are_a_protocol_error() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let err = parse_close_payload(&payload(code, b"")).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCloseCode(code));
            assert_eq!(err.close_code(), CloseCode::PROTOCOL);
        }
    }

    #[test]
    fn defined_and_application_codes_are_accepted_with_their_reason() {
        for code in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 4999] {
            let parsed = parse_close_payload(&payload(code, "bye ✓".as_bytes()));
            assert_eq!(parsed, Ok(Some(CloseFrame::new(CloseCode(code), "bye ✓"))));
        }
    }

    #[test]
    fn a_close_reason_that_is_not_utf8_is_invalid_payload() {
        let err = parse_close_payload(&payload(1000, &[b'a', 0xff])).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidUtf8);
        assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn encoding_refuses_codes_that_may_not_be_sent() {
        for code in [
            CloseCode::NO_STATUS,
            CloseCode::ABNORMAL,
            CloseCode::TLS_HANDSHAKE,
        ] {
            let mut dst = BytesMut::new();
            assert_eq!(
                encode_close_payload(&CloseFrame::new(code, ""), &mut dst),
                Err(EncodeError::UnsendableCloseCode(code.0))
            );
            assert!(dst.is_empty());
        }
    }

    #[test]
    fn encoding_refuses_reasons_over_123_bytes() {
        let mut dst = BytesMut::new();
        let ok = CloseFrame::new(CloseCode::NORMAL, "x".repeat(123));
        assert_eq!(encode_close_payload(&ok, &mut dst), Ok(()));
        assert_eq!(dst.len(), 125);
        let long = CloseFrame::new(CloseCode::NORMAL, "x".repeat(124));
        assert_eq!(
            encode_close_payload(&long, &mut BytesMut::new()),
            Err(EncodeError::CloseReasonTooLong(124))
        );
    }

    #[test]
    fn a_close_payload_round_trips() {
        let frame = CloseFrame::new(CloseCode::GOING_AWAY, "server restart");
        let mut dst = BytesMut::new();
        encode_close_payload(&frame, &mut dst).unwrap();
        assert_eq!(&dst[..2], &[0x03, 0xe9]);
        assert_eq!(parse_close_payload(&dst), Ok(Some(frame)));
    }
}
