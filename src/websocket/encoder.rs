//! Encoding frames and messages for the wire.
//!
//! Sans-I/O like the decoder: it appends bytes to a caller's `BytesMut`
//! and never touches a socket. Masking keys come from the caller, because
//! they must be unpredictable (§5.3, §10.3) and randomness belongs to the
//! layer that owns the connection, not to a codec that must be testable
//! with fixed bytes.

use bytes::BytesMut;

use super::close::encode_close_payload;
use super::deflate::{Compressor, Settings};
use super::error::EncodeError;
use super::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, Role, encode_header};
use super::mask::apply_mask;
use super::message::Message;

/// Encodes frames for one end of a connection.
///
/// The role decides masking (§5.1): a client's encoder requires a key for
/// every frame, a server's refuses one. A data message longer than
/// [`Encoder::max_frame_payload`] is sent as several frames (§5.4);
/// control messages are never split (§5.5).
///
/// With permessage-deflate ([`Encoder::with_deflate`]) data messages are
/// compressed whole, then framed, RSV1 set on the first frame only (RFC
/// 7692 §6); control frames are never compressed.
#[derive(Debug)]
pub struct Encoder {
    role: Role,
    max_frame_payload: usize,
    /// Boxed, as the decoder's inflater: idle connections mostly have none.
    deflater: Option<Box<Compressor>>,
}

impl Encoder {
    /// An encoder for `role` that sends every message as one frame.
    pub fn new(role: Role) -> Self {
        Encoder {
            role,
            max_frame_payload: usize::MAX,
            deflater: None,
        }
    }

    /// Sends data messages compressed with permessage-deflate, as
    /// negotiated (RFC 7692). Messages shorter than the compressor's
    /// minimum size go uncompressed, RSV1 clear.
    pub fn with_deflate(mut self, deflater: Compressor) -> Self {
        self.deflater = Some(Box::new(deflater));
        self
    }

    /// Splits data messages into frames of at most `max` payload bytes
    /// (at least 1). Fragmenting lets a sender start a message before it
    /// knows its end; it is also how an endpoint is tested for
    /// fragmentation.
    pub fn with_max_frame_payload(mut self, max: usize) -> Self {
        self.max_frame_payload = max.max(1);
        self
    }

    /// The role this encoder sends as.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The most payload bytes one data frame carries.
    pub fn max_frame_payload(&self) -> usize {
        self.max_frame_payload
    }

    /// Appends one frame to `dst`.
    ///
    /// `mask_key` must be `Some` for a client and `None` for a server.
    /// Control frames (Close, Ping, Pong) must have `fin` set and at most
    /// 125 bytes of payload. On error `dst` is unchanged.
    pub fn encode_frame(
        &self,
        dst: &mut BytesMut,
        fin: bool,
        opcode: OpCode,
        payload: &[u8],
        mask_key: Option<[u8; 4]>,
    ) -> Result<(), EncodeError> {
        self.write_frame(dst, fin, false, opcode, payload, mask_key)
    }

    /// [`Encoder::encode_frame`] with RSV1 as given.
    fn write_frame(
        &self,
        dst: &mut BytesMut,
        fin: bool,
        rsv1: bool,
        opcode: OpCode,
        payload: &[u8],
        mask_key: Option<[u8; 4]>,
    ) -> Result<(), EncodeError> {
        self.check_mask(mask_key)?;
        if opcode.is_control() {
            if payload.len() > MAX_CONTROL_PAYLOAD {
                return Err(EncodeError::ControlPayloadTooLong(payload.len()));
            }
            if !fin {
                return Err(EncodeError::FragmentedControlFrame);
            }
        }
        let header = FrameHeader {
            fin,
            rsv1,
            mask: mask_key,
            ..FrameHeader::new(opcode, payload.len() as u64)
        };
        dst.reserve(header.encoded_len() + payload.len());
        encode_header(&header, dst);
        let start = dst.len();
        dst.extend_from_slice(payload);
        if let Some(key) = mask_key {
            apply_mask(&mut dst[start..], key, 0);
        }
        Ok(())
    }

    /// Whether a data message of `len` bytes encodes the same on every
    /// connection that answers the same [`Sharing`], so one encoding can
    /// be sent to all of them: `None` for a client (each frame has its
    /// own mask) and for a compressor that keeps context across messages.
    pub(crate) fn sharing(&self, len: usize) -> Option<Sharing> {
        if self.role == Role::Client {
            return None;
        }
        let split = len > self.max_frame_payload;
        match &self.deflater {
            Some(d) if d.should_compress(len) => d.stateless_settings().map(|settings| Sharing {
                deflate: Some(settings),
                split: split.then_some(self.max_frame_payload),
            }),
            _ => Some(Sharing {
                deflate: None,
                split: split.then_some(self.max_frame_payload),
            }),
        }
    }

    /// Appends `message` to `dst`, as one frame or (for data messages
    /// longer than [`Encoder::max_frame_payload`]) several.
    ///
    /// `mask_key` is called once per frame: a client returns a fresh random
    /// key each time (§5.3), a server returns `None`. On error `dst` is
    /// unchanged. With deflate, a message is compressed after its first
    /// key is checked; a compression error, or a later key that breaks
    /// the masking rule, leaves the compression context ahead of the
    /// peer's, so the encoder must not be used again.
    pub fn encode_message(
        &mut self,
        dst: &mut BytesMut,
        message: &Message,
        mut mask_key: impl FnMut() -> Option<[u8; 4]>,
    ) -> Result<(), EncodeError> {
        let start = dst.len();
        let result = match message {
            Message::Text(text) => {
                self.encode_data(dst, OpCode::Text, text.as_bytes(), &mut mask_key)
            }
            Message::Binary(data) => self.encode_data(dst, OpCode::Binary, data, &mut mask_key),
            Message::Ping(data) => self.encode_frame(dst, true, OpCode::Ping, data, mask_key()),
            Message::Pong(data) => self.encode_frame(dst, true, OpCode::Pong, data, mask_key()),
            Message::Close(None) => self.encode_frame(dst, true, OpCode::Close, &[], mask_key()),
            Message::Close(Some(frame)) => {
                let mut payload = BytesMut::new();
                encode_close_payload(frame, &mut payload)?;
                self.encode_frame(dst, true, OpCode::Close, &payload, mask_key())
            }
        };
        if result.is_err() {
            // A later frame of a split message may have failed (an
            // inconsistent mask key): leave no partial message behind.
            dst.truncate(start);
        }
        result
    }

    /// A data message, compressed if deflate is on and the message is
    /// long enough, then framed.
    fn encode_data(
        &mut self,
        dst: &mut BytesMut,
        opcode: OpCode,
        payload: &[u8],
        mask_key: &mut impl FnMut() -> Option<[u8; 4]>,
    ) -> Result<(), EncodeError> {
        let compress = self
            .deflater
            .as_ref()
            .is_some_and(|d| d.should_compress(payload.len()));
        if !compress {
            return self.frame_data(dst, opcode, false, payload, None, mask_key);
        }
        // The first key is checked before the compressor takes the message
        // in, so a role mistake does not desynchronise the contexts.
        let first_key = mask_key();
        self.check_mask(first_key)?;
        let mut compressed = Vec::new();
        if let Some(deflater) = self.deflater.as_mut() {
            deflater.compress(payload, &mut compressed)?;
        }
        self.frame_data(dst, opcode, true, &compressed, Some(first_key), mask_key)
    }

    /// A payload as frames of at most `max_frame_payload` bytes, RSV1 as
    /// `compressed` on the first; an empty payload is one empty frame.
    /// `first_key`, if given, masks the first frame.
    fn frame_data(
        &self,
        dst: &mut BytesMut,
        opcode: OpCode,
        compressed: bool,
        payload: &[u8],
        mut first_key: Option<Option<[u8; 4]>>,
        mask_key: &mut impl FnMut() -> Option<[u8; 4]>,
    ) -> Result<(), EncodeError> {
        let mut key = || first_key.take().unwrap_or_else(&mut *mask_key);
        let mut chunks = payload.chunks(self.max_frame_payload).peekable();
        if chunks.peek().is_none() {
            return self.write_frame(dst, true, compressed, opcode, &[], key());
        }
        let (mut opcode, mut rsv1) = (opcode, compressed);
        while let Some(chunk) = chunks.next() {
            let fin = chunks.peek().is_none();
            self.write_frame(dst, fin, rsv1, opcode, chunk, key())?;
            opcode = OpCode::Continuation;
            rsv1 = false;
        }
        Ok(())
    }

    fn check_mask(&self, mask_key: Option<[u8; 4]>) -> Result<(), EncodeError> {
        match (self.role, mask_key) {
            (Role::Client, Some(_)) | (Role::Server, None) => Ok(()),
            _ => Err(EncodeError::MaskingMismatch),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::close::CloseFrame;
    use super::super::close_code::CloseCode;
    use super::*;

    const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn server(message: &Message) -> Result<BytesMut, EncodeError> {
        let mut dst = BytesMut::new();
        Encoder::new(Role::Server).encode_message(&mut dst, message, || None)?;
        Ok(dst)
    }

    fn text(s: &str) -> Message {
        Message::Text(s.to_string())
    }

    #[test]
    fn an_unmasked_text_frame_matches_rfc_6455_section_5_7() {
        let dst = server(&text("Hello")).unwrap();
        assert_eq!(&dst[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn a_masked_text_frame_matches_rfc_6455_section_5_7() {
        let mut dst = BytesMut::new();
        Encoder::new(Role::Client)
            .encode_message(&mut dst, &text("Hello"), || Some(RFC_KEY))
            .unwrap();
        let expected = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(&dst[..], &expected);
    }

    #[test]
    fn a_message_split_into_frames_matches_rfc_6455_section_5_7() {
        let mut dst = BytesMut::new();
        Encoder::new(Role::Server)
            .with_max_frame_payload(3)
            .encode_message(&mut dst, &text("Hello"), || None)
            .unwrap();
        let expected = [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f];
        assert_eq!(&dst[..], &expected);
    }

    #[test]
    fn control_frames_match_rfc_6455_section_5_7() {
        let ping = server(&Message::Ping(Bytes::from_static(b"Hello"))).unwrap();
        assert_eq!(&ping[..2], &[0x89, 0x05]);
        let pong = server(&Message::Pong(Bytes::new())).unwrap();
        assert_eq!(&pong[..], &[0x8a, 0x00]);
        let close = server(&Message::Close(None)).unwrap();
        assert_eq!(&close[..], &[0x88, 0x00]);
        let frame = CloseFrame::new(CloseCode::NORMAL, "ok");
        let close = server(&Message::Close(Some(frame))).unwrap();
        assert_eq!(&close[..], &[0x88, 0x04, 0x03, 0xe8, b'o', b'k']);
    }

    #[test]
    fn extended_lengths_match_rfc_6455_section_5_7() {
        let dst = server(&Message::Binary(Bytes::from(vec![0; 256]))).unwrap();
        assert_eq!(&dst[..4], &[0x82, 0x7e, 0x01, 0x00]);
        assert_eq!(dst.len(), 4 + 256);
        let dst = server(&Message::Binary(Bytes::from(vec![0; 65536]))).unwrap();
        assert_eq!(&dst[..10], &[0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn a_control_payload_over_125_bytes_is_refused() {
        let big = Bytes::from(vec![0; 126]);
        for message in [Message::Ping(big.clone()), Message::Pong(big)] {
            assert_eq!(
                server(&message),
                Err(EncodeError::ControlPayloadTooLong(126))
            );
        }
        assert!(server(&Message::Ping(Bytes::from(vec![0; 125]))).is_ok());
        let mut dst = BytesMut::new();
        let err = Encoder::new(Role::Server).encode_frame(&mut dst, false, OpCode::Ping, b"", None);
        assert_eq!(err, Err(EncodeError::FragmentedControlFrame));
    }

    #[test]
    fn an_unsendable_close_is_refused() {
        let frame = CloseFrame::new(CloseCode::ABNORMAL, "");
        assert_eq!(
            server(&Message::Close(Some(frame))),
            Err(EncodeError::UnsendableCloseCode(1006))
        );
    }

    #[test]
    fn a_client_must_mask_and_a_server_must_not() {
        let mut dst = BytesMut::from(&b"earlier"[..]);
        let mut client = Encoder::new(Role::Client);
        let mut server = Encoder::new(Role::Server);
        let msg = text("hi");
        assert_eq!(
            client.encode_message(&mut dst, &msg, || None),
            Err(EncodeError::MaskingMismatch)
        );
        assert_eq!(
            server.encode_message(&mut dst, &msg, || Some(RFC_KEY)),
            Err(EncodeError::MaskingMismatch)
        );
        assert_eq!(&dst[..], b"earlier");
    }

    #[test]
    fn a_failure_in_a_later_frame_leaves_dst_unchanged() {
        let mut dst = BytesMut::from(&b"earlier"[..]);
        let mut calls = 0;
        let result = Encoder::new(Role::Client)
            .with_max_frame_payload(2)
            .encode_message(&mut dst, &text("abcdef"), || {
                calls += 1;
                (calls < 3).then_some(RFC_KEY)
            });
        assert_eq!(result, Err(EncodeError::MaskingMismatch));
        assert_eq!(&dst[..], b"earlier");
    }

    #[test]
    fn an_empty_data_message_is_one_empty_frame() {
        let mut dst = BytesMut::new();
        Encoder::new(Role::Server)
            .with_max_frame_payload(4)
            .encode_message(&mut dst, &Message::Binary(Bytes::new()), || None)
            .unwrap();
        assert_eq!(&dst[..], &[0x82, 0x00]);
    }

    #[test]
    fn each_frame_of_a_split_message_gets_a_fresh_key() {
        let mut dst = BytesMut::new();
        let mut next = 0u8;
        Encoder::new(Role::Client)
            .with_max_frame_payload(1)
            .encode_message(&mut dst, &text("ab"), || {
                next += 1;
                Some([next; 4])
            })
            .unwrap();
        assert_eq!(&dst[2..6], &[1; 4]);
        assert_eq!(&dst[9..13], &[2; 4]);
    }
}

/// What a message's encoding depends on, for connections that can share
/// it (see [`Encoder::sharing`]): equal values encode a message alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Sharing {
    /// Compressed with these settings, from a fresh state.
    pub(crate) deflate: Option<Settings>,
    /// Split into frames of this many payload bytes.
    pub(crate) split: Option<usize>,
}
