//! Close status codes (RFC 6455 §7.4) and which of them may be on the wire.

use std::fmt;

/// The status code of a Close frame (RFC 6455 §7.4.1, IANA registry).
///
/// A `u16` newtype rather than an enum: applications may use any code in
/// 3000–4999 (§7.4.2), and a received code must be kept as the peer sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection has been fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutting down, page closed).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept (text or binary).
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: the Close frame had no code. Reported locally, never sent.
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection dropped without a Close frame. Reported
    /// locally, never sent.
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: a message's data did not match its type (invalid UTF-8 text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: the message violates the endpoint's policy.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: (client) the server did not negotiate a required extension.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later (temporary overload).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: a gateway or proxy got an invalid response upstream.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: the TLS handshake failed. Reported locally, never sent.
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a Close frame, sent or received.
    ///
    /// RFC 6455 §7.4.1–7.4.2: 1000–1003 and 1007–1014 are defined for the
    /// wire (1012–1014 by the IANA registry); 3000–4999 belong to
    /// libraries and applications. Below 1000 is unused, 1004 is reserved,
    /// 1005/1006/1015 are local reports only, the rest of 1016–2999 is
    /// reserved for future RFCs, and 5000 and up is undefined. A received
    /// frame with any of those fails the connection with 1002.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_valid_on_the_wire_follow_rfc_6455_section_7_4() {
        let valid = |c: u16| CloseCode(c).is_valid_on_wire();
        for c in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert!(valid(c), "{c}");
        }
        for c in [3000, 3999, 4000, 4999] {
            assert!(valid(c), "{c}");
        }
        for c in [
            0,
            999,
            1004,
            1005,
            1006,
            1015,
            1016,
            2000,
            2999,
            5000,
            u16::MAX,
        ] {
            assert!(!valid(c), "{c}");
        }
    }

    #[test]
    fn named_codes_have_their_registered_numbers() {
        assert_eq!(u16::from(CloseCode::NORMAL), 1000);
        assert_eq!(CloseCode::NO_STATUS.0, 1005);
        assert_eq!(CloseCode::TLS_HANDSHAKE.0, 1015);
        assert_eq!(CloseCode::from(1009), CloseCode::TOO_BIG);
        assert_eq!(CloseCode::BAD_GATEWAY.to_string(), "1014");
    }
}
