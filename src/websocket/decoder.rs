//! The receiving state machine: bytes in, whole messages out (sans-I/O).
//!
//! The caller reads from its socket into a `BytesMut` and calls
//! [`Decoder::decode`] until it returns `Ok(None)`. The decoder takes from
//! the front of the buffer only what it has used: frame headers once they
//! are complete, and payloads whole or in 64 KiB pieces, unmasked in
//! place (it reserves room in the buffer for what it waits for, so the
//! bytes are read where they stay). So a large frame is never held twice,
//! and every limit is checked from a frame's header before its payload is
//! buffered.
//!
//! ```text
//!            header complete            payload complete
//!   Header ───────────────────▶ Payload ───────────────▶ Header (+ message?)
//!     │  any error, or a Close delivered
//!     └──────────────────────────────────────────────────▶ Done (reads nothing)
//! ```

use bytes::{Buf, BytesMut};

use super::close::parse_close_payload;
use super::deflate::Decompressor;
use super::error::ProtocolError;
use super::frame::{FrameHeader, OpCode, Role, decode_header};
use super::mask::apply_mask;
use super::message::Message;
use super::utf8::Utf8Validator;

/// The default limit on one message's size: 10 MiB, Tornado's
/// `websocket_max_message_size` default, so an application ported from
/// Tornado keeps its limit.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 10 * 1024 * 1024;

/// A frame's payload is taken whole, or in pieces of at least this many
/// bytes: 64 KiB, the stream's largest single read, so a large frame is
/// received in reads of that size directly into the buffer that keeps it.
const PAYLOAD_PIECE: usize = 64 << 10;

/// Turns received bytes into messages for one connection.
///
/// An idle decoder owns no buffer: its message buffer exists only while a
/// message is arriving.
#[derive(Debug)]
pub struct Decoder {
    role: Role,
    max_message_size: usize,
    state: State,
    /// The data message being received, from its first frame to its last.
    message: Option<Partial>,
    /// The payload of the control frame being received (≤ 125 bytes).
    control: BytesMut,
    /// permessage-deflate, when negotiated: RSV1 then marks a compressed
    /// message (RFC 7692 §6).
    /// Boxed: most connections never compress, and an idle one should
    /// not carry a decompressor's worth of empty room.
    inflater: Option<Box<Decompressor>>,
}

/// Where the decoder is within the byte stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Waiting for a complete frame header.
    Header,
    /// Inside a frame's payload, `received` bytes of it taken so far and
    /// the first `ready` bytes of the buffer already unmasked (and, for
    /// text, validated) while waiting for the rest.
    Payload {
        header: FrameHeader,
        received: u64,
        ready: usize,
    },
    /// A Close was delivered or the peer broke the protocol: the rest of
    /// the connection's bytes are not read (§7.1.7).
    Done,
}

/// A data message still arriving.
#[derive(Debug)]
struct Partial {
    text: bool,
    /// RSV1 was set on the first frame: the payload is DEFLATE data,
    /// inflated (and only then validated as text) once complete.
    compressed: bool,
    /// Unmasked payload so far.
    data: BytesMut,
    /// Bytes declared by the headers of the message's frames so far: the
    /// size the limit is checked against, before the payload is buffered.
    declared: u64,
    /// Text validated as it arrives, so invalid text fails before the rest
    /// of the message is read (§8.1).
    utf8: Utf8Validator,
}

impl Decoder {
    /// A decoder for the `role` end of a connection (a server requires
    /// masked frames, a client refuses them) that fails any message over
    /// `max_message_size` bytes with 1009.
    pub fn new(role: Role, max_message_size: usize) -> Self {
        Decoder {
            role,
            max_message_size,
            state: State::Header,
            message: None,
            control: BytesMut::new(),
            inflater: None,
        }
    }

    /// Receives with permessage-deflate (RFC 7692), as negotiated:
    /// RSV1 is then allowed on the first frame of a data message, whose
    /// payload is inflated once the message is complete. The limit
    /// applies twice: to the compressed bytes as they arrive, and to the
    /// inflated message, which is refused with 1009 as soon as it passes
    /// `max_message_size` (so one message costs at most the limit twice).
    pub fn with_deflate(mut self, inflater: Decompressor) -> Self {
        self.inflater = Some(Box::new(inflater));
        self
    }

    /// The role this decoder receives as.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The largest message accepted, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Whether the decoder has stopped: a Close was delivered or a
    /// protocol error returned. From then on `decode` returns `Ok(None)`
    /// and leaves the buffer untouched.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes bytes from the front of `buf` and returns the next complete
    /// message, or `Ok(None)` when `buf` holds no more of one (read more
    /// and call again).
    ///
    /// Call it in a loop until `Ok(None)`: one call returns at most one
    /// message. Control frames arriving inside a fragmented message are
    /// returned at once. After a `Close` message or an error the decoder
    /// is done (see [`Decoder::is_done`]); answer an error with a Close
    /// frame carrying [`ProtocolError::close_code`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        let result = self.step(buf);
        if matches!(result, Err(_) | Ok(Some(Message::Close(_)))) {
            self.state = State::Done;
            self.message = None;
            self.control = BytesMut::new();
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ProtocolError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Header => {
                    let Some((header, len)) =
                        decode_header(buf, self.role, self.inflater.is_some())?
                    else {
                        return Ok(None);
                    };
                    self.start_frame(&header)?;
                    buf.advance(len);
                    self.state = State::Payload {
                        header,
                        received: 0,
                        ready: 0,
                    };
                }
                State::Payload {
                    header,
                    received,
                    ready,
                } => {
                    let remaining = header.len - received;
                    // Bounded by `buf.len()`, so it fits a usize.
                    let available = remaining.min(buf.len() as u64) as usize;
                    let whole = available as u64 == remaining;
                    // Bytes not seen yet are unmasked now; and text, unless
                    // it is the end of the message (validated with the
                    // whole message when it becomes a `String`), is checked
                    // as it arrives, so invalid text fails before the rest
                    // of a frame is read (§8.1).
                    if available > ready {
                        let fresh = &mut buf[ready..available];
                        if let Some(key) = header.mask {
                            // The key only depends on the offset modulo 4.
                            apply_mask(fresh, key, ((received + ready as u64) % 4) as usize);
                        }
                        let end_of_message = whole && header.fin;
                        if let Some(partial) = self.message.as_mut()
                            && !header.opcode.is_control()
                            && partial.text
                            && !partial.compressed
                            && !end_of_message
                        {
                            partial
                                .utf8
                                .feed(fresh)
                                .map_err(|_| ProtocolError::InvalidUtf8)?;
                        }
                    }
                    if !whole && available < PAYLOAD_PIECE {
                        // Wait for the rest of the frame, or a large piece
                        // of it, with room for it reserved: the reader then
                        // receives it in one call straight into this buffer,
                        // instead of a small read at a time. Bounded by the
                        // piece size, so a peer announcing a large frame
                        // and sending it slowly is not given the room ahead.
                        let want = (remaining - available as u64).min(PAYLOAD_PIECE as u64);
                        buf.reserve(want as usize);
                        self.state = State::Payload {
                            header,
                            received,
                            ready: available,
                        };
                        return Ok(None);
                    }
                    let take = available;
                    let chunk = buf.split_to(take);
                    let received = received + take as u64;
                    let complete = received == header.len;
                    self.take_payload(&header, chunk)?;
                    if !complete {
                        self.state = State::Payload {
                            header,
                            received,
                            ready: 0,
                        };
                        return Ok(None);
                    }
                    self.state = State::Header;
                    if let Some(message) = self.finish_frame(&header)? {
                        return Ok(Some(message));
                    }
                }
            }
        }
    }

    /// The rules decided from a header, before any of its payload is
    /// taken: message ordering (§5.4), RSV1's place (only `decode_header`
    /// with deflate agreed lets it through; RFC 7692 §6 allows it on a
    /// message's first frame only) and the size limit.
    fn start_frame(&mut self, header: &FrameHeader) -> Result<(), ProtocolError> {
        let text = match header.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong if header.rsv1 => {
                return Err(ProtocolError::CompressedControlFrame);
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => return Ok(()),
            OpCode::Continuation if header.rsv1 => {
                return Err(ProtocolError::CompressedContinuation);
            }
            OpCode::Continuation => None,
            OpCode::Text => Some(true),
            OpCode::Binary => Some(false),
        };
        let declared = match (&self.message, text) {
            (None, None) => return Err(ProtocolError::UnexpectedContinuation),
            (Some(_), Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (Some(partial), None) => partial.declared,
            (None, Some(_)) => 0,
        };
        let size = declared.saturating_add(header.len);
        if size > self.max_message_size as u64 {
            return Err(ProtocolError::MessageTooBig {
                size,
                max: self.max_message_size,
            });
        }
        match (&mut self.message, text) {
            (Some(partial), _) => partial.declared = size,
            (None, Some(text)) => {
                self.message = Some(Partial {
                    text,
                    compressed: header.rsv1,
                    data: BytesMut::new(),
                    declared: size,
                    utf8: Utf8Validator::new(),
                });
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Stores an unmasked piece of the current frame's payload.
    fn take_payload(&mut self, header: &FrameHeader, chunk: BytesMut) -> Result<(), ProtocolError> {
        if header.opcode.is_control() {
            self.control.extend_from_slice(&chunk);
            return Ok(());
        }
        let Some(partial) = self.message.as_mut() else {
            // `start_frame` opened the message for every data frame.
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if partial.data.is_empty() {
            // Keeps the caller's bytes without copying them.
            partial.data = chunk;
        } else {
            partial.data.unsplit(chunk);
        }
        Ok(())
    }

    /// Acts on a frame whose payload is complete: a control frame is a
    /// message of its own; a data frame with FIN ends its message.
    fn finish_frame(&mut self, header: &FrameHeader) -> Result<Option<Message>, ProtocolError> {
        match header.opcode {
            OpCode::Ping => return Ok(Some(Message::Ping(self.control.split().freeze()))),
            OpCode::Pong => return Ok(Some(Message::Pong(self.control.split().freeze()))),
            OpCode::Close => {
                let payload = self.control.split();
                return Ok(Some(Message::Close(parse_close_payload(&payload)?)));
            }
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {}
        }
        if !header.fin {
            return Ok(None);
        }
        let Some(partial) = self.message.take() else {
            return Err(ProtocolError::UnexpectedContinuation);
        };
        if partial.compressed {
            return self.inflate(partial);
        }
        if !partial.text {
            return Ok(Some(Message::Binary(partial.data.freeze())));
        }
        match String::from_utf8(Vec::from(partial.data)) {
            Ok(text) => Ok(Some(Message::Text(text))),
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// A complete compressed message, inflated within the size limit and
    /// then, for text, validated (§8.1 applies to the inflated bytes).
    fn inflate(&mut self, partial: Partial) -> Result<Option<Message>, ProtocolError> {
        let Some(inflater) = self.inflater.as_mut() else {
            // RSV1 only passes `decode_header` with an inflater.
            return Err(ProtocolError::ReservedBits(0b100));
        };
        let mut data = Vec::new();
        inflater.decompress(&partial.data, &mut data, self.max_message_size)?;
        if !partial.text {
            return Ok(Some(Message::Binary(data.into())));
        }
        match String::from_utf8(data) {
            Ok(text) => Ok(Some(Message::Text(text))),
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{self, client_frame};
    use super::*;

    #[test]
    fn an_idle_decoder_holds_no_buffer_between_messages() {
        let mut decoder = Decoder::new(Role::Server, DEFAULT_MAX_MESSAGE_SIZE);
        let bytes = client_frame(true, false, OpCode::Binary, &[5; 1000]);
        let out = test_support::decode_all(|b| decoder.decode(b), &bytes);
        assert_eq!(out.len(), 1);
        assert!(decoder.message.is_none());
        assert_eq!(decoder.control.capacity(), 0);
    }
}
