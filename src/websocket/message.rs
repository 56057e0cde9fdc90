//! A complete WebSocket message, as the decoder delivers it and the encoder
//! takes it.

use bytes::Bytes;

use super::close::CloseFrame;

/// A whole message: a data message reassembled from its fragments, or a
/// control frame (control frames are never fragmented, §5.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, valid UTF-8 (checked while it arrived).
    Text(String),
    /// A binary message.
    Binary(Bytes),
    /// A ping; the receiver answers with a pong carrying the same payload
    /// (§5.5.2). At most 125 bytes.
    Ping(Bytes),
    /// A pong (§5.5.3). At most 125 bytes.
    Pong(Bytes),
    /// The close handshake (§5.5.1). `None` for a Close frame without a
    /// status code, which an application reports as 1005
    /// ([`CloseCode::NO_STATUS`](super::CloseCode::NO_STATUS)).
    Close(Option<CloseFrame>),
}
