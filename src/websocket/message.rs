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

impl From<String> for Message {
    fn from(text: String) -> Message {
        Message::Text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Message {
        Message::Text(text.to_string())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Message {
        Message::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Message {
        Message::Binary(data.into())
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Message {
        Message::Binary(Bytes::copy_from_slice(data))
    }
}

impl Message {
    /// A text message holding `value` as JSON.
    ///
    /// ```
    /// use cyclone::websocket::Message;
    /// let m = Message::json(&serde_json::json!({"n": 1})).unwrap();
    /// assert_eq!(m, Message::Text(r#"{"n":1}"#.into()));
    /// ```
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Message, serde_json::Error> {
        serde_json::to_string(value).map(Message::Text)
    }

    /// Whether this is a text or binary message (not a control frame).
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// A data message's payload bytes (text as UTF-8); empty for control
    /// frames other than Ping and Pong.
    pub fn payload(&self) -> &[u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b,
            Message::Close(_) => &[],
        }
    }
}
