//! Test-only: the decoder's rules, each named after its rule (fragments,
//! control frames, limits, UTF-8, masking), through its public API. Kept
//! apart so that `decoder.rs` holds the state machine alone.

use bytes::{Bytes, BytesMut};

use super::close::CloseFrame;
use super::close_code::CloseCode;
use super::decoder::{DEFAULT_MAX_MESSAGE_SIZE, Decoder};
use super::error::ProtocolError;
use super::frame::{OpCode, Role};
use super::message::Message;

use super::test_support::{self, KEY, Results, client_frame};

/// A masked frame, as a client sends it.
fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    client_frame(fin, false, opcode, payload)
}

fn server() -> Decoder {
    Decoder::new(Role::Server, DEFAULT_MAX_MESSAGE_SIZE)
}

fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Results {
    test_support::decode_all(|b| decoder.decode(b), bytes)
}

fn decode_bytewise(decoder: &mut Decoder, bytes: &[u8]) -> Results {
    test_support::decode_bytewise(|b| decoder.decode(b), bytes)
}

fn text(s: &str) -> Result<Message, ProtocolError> {
    Ok(Message::Text(s.to_string()))
}

#[test]
fn the_default_max_message_size_is_tornados_10_mib() {
    assert_eq!(DEFAULT_MAX_MESSAGE_SIZE, 10_485_760);
    assert_eq!(server().max_message_size(), DEFAULT_MAX_MESSAGE_SIZE);
}

#[test]
fn payloads_are_unmasked_whole_or_byte_by_byte() {
    let bytes = frame(true, OpCode::Text, b"Hello, unmasked world");
    assert_eq!(
        decode_all(&mut server(), &bytes),
        vec![text("Hello, unmasked world")]
    );
    assert_eq!(
        decode_bytewise(&mut server(), &bytes),
        vec![text("Hello, unmasked world")]
    );
}

#[test]
fn fragmentation_a_message_in_many_frames() {
    let mut bytes = frame(false, OpCode::Binary, b"one ");
    bytes.extend(frame(false, OpCode::Continuation, b""));
    bytes.extend(frame(false, OpCode::Continuation, b"two "));
    bytes.extend(frame(true, OpCode::Continuation, b"three"));
    let expected = vec![Ok(Message::Binary(Bytes::from_static(b"one two three")))];
    assert_eq!(decode_all(&mut server(), &bytes), expected);
    assert_eq!(decode_bytewise(&mut server(), &bytes), expected);
}

#[test]
fn control_frames_interleaved_in_a_fragmented_message_are_delivered_at_once() {
    let mut decoder = server();
    let mut buf = BytesMut::from(&frame(false, OpCode::Text, b"hel")[..]);
    buf.extend_from_slice(&frame(true, OpCode::Ping, b"p"));
    // The ping comes out before the message has ended.
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
    );
    buf.extend_from_slice(&frame(true, OpCode::Pong, b""));
    buf.extend_from_slice(&frame(true, OpCode::Continuation, b"lo"));
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Message::Pong(Bytes::new())))
    );
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(Message::Text("hello".into())))
    );
    assert_eq!(decoder.decode(&mut buf), Ok(None));
}

#[test]
fn a_continuation_without_a_started_message_is_1002() {
    let out = decode_all(&mut server(), &frame(true, OpCode::Continuation, b"x"));
    assert_eq!(out, vec![Err(ProtocolError::UnexpectedContinuation)]);
    assert_eq!(ProtocolError::UnexpectedContinuation.close_code().0, 1002);
}

#[test]
fn a_new_data_frame_while_a_fragmented_message_is_open_is_1002() {
    for opcode in [OpCode::Text, OpCode::Binary] {
        let mut bytes = frame(false, OpCode::Text, b"a");
        bytes.extend(frame(true, opcode, b"b"));
        let out = decode_all(&mut server(), &bytes);
        assert_eq!(out, vec![Err(ProtocolError::ExpectedContinuation)]);
    }
}

#[test]
fn text_is_validated_per_frame_before_the_last_fragment_1007() {
    let mut decoder = server();
    let mut buf = BytesMut::from(&frame(false, OpCode::Text, &[b'o', b'k', 0xff])[..]);
    // The final fragment has not arrived; the first already fails.
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(err, ProtocolError::InvalidUtf8);
    assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    // Within one large frame, too: fails from the first bytes.
    let mut decoder = server();
    let mut payload = vec![0xc0, 0x80];
    payload.resize(100_000, b'a');
    let bytes = frame(true, OpCode::Text, &payload);
    let mut buf = BytesMut::from(&bytes[..50]);
    assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
}

#[test]
fn text_split_inside_a_code_point_across_frames_is_accepted() {
    let s = "😀 é";
    let b = s.as_bytes();
    for cut in 0..=b.len() {
        let mut bytes = frame(false, OpCode::Text, &b[..cut]);
        bytes.extend(frame(true, OpCode::Continuation, &b[cut..]));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            vec![text(s)],
            "cut {cut}"
        );
    }
    let mut bytes = frame(false, OpCode::Text, &b[..2]);
    bytes.extend(frame(true, OpCode::Continuation, b""));
    assert_eq!(
        decode_all(&mut server(), &bytes),
        vec![Err(ProtocolError::InvalidUtf8)]
    );
}

#[test]
fn a_message_over_max_message_size_is_1009_before_its_payload_is_buffered() {
    let mut decoder = Decoder::new(Role::Server, 100);
    let bytes = frame(true, OpCode::Binary, &[7; 101]);
    // Only the header (2 + 4 bytes of mask) has arrived.
    let mut buf = BytesMut::from(&bytes[..6]);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::MessageTooBig {
            size: 101,
            max: 100
        }
    );
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    // Across fragments: 60 buffered + 41 declared.
    let mut decoder = Decoder::new(Role::Server, 100);
    let mut buf = BytesMut::from(&frame(false, OpCode::Binary, &[1; 60])[..]);
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    buf.extend_from_slice(&frame(true, OpCode::Continuation, &[2; 41])[..6]);
    assert_eq!(
        decoder.decode(&mut buf),
        Err(ProtocolError::MessageTooBig {
            size: 101,
            max: 100
        })
    );
}

#[test]
fn a_message_of_exactly_max_message_size_is_accepted() {
    let mut bytes = frame(false, OpCode::Binary, &[1; 60]);
    bytes.extend(frame(true, OpCode::Continuation, &[2; 40]));
    let out = decode_all(&mut Decoder::new(Role::Server, 100), &bytes);
    assert!(matches!(&out[..], [Ok(Message::Binary(b))] if b.len() == 100));
}

#[test]
fn a_huge_declared_length_is_refused_without_overflow() {
    let mut bytes = vec![0x82, 0xff];
    bytes.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
    bytes.extend_from_slice(&KEY);
    let out = decode_all(&mut server(), &bytes);
    assert!(matches!(
        &out[..],
        [Err(ProtocolError::MessageTooBig { .. })]
    ));
}

#[test]
fn nothing_is_read_after_a_close() {
    let mut decoder = server();
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    let mut buf = BytesMut::from(&frame(true, OpCode::Close, &payload)[..]);
    buf.extend_from_slice(&frame(true, OpCode::Text, b"after"));
    let expected = Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")));
    assert_eq!(decoder.decode(&mut buf), Ok(Some(expected)));
    let left = buf.len();
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), left, "the frame after the close stays unread");
    assert!(decoder.is_done());
}

#[test]
fn nothing_is_read_after_a_protocol_error() {
    let mut decoder = server();
    let mut buf = BytesMut::from(&[0x83u8, 0x80][..]); // reserved opcode 3
    buf.extend_from_slice(&frame(true, OpCode::Text, b"after"));
    assert_eq!(
        decoder.decode(&mut buf),
        Err(ProtocolError::ReservedOpCode(3))
    );
    let left = buf.len();
    assert_eq!(decoder.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), left);
    assert!(decoder.is_done());
}

#[test]
fn a_close_without_a_code_is_close_none() {
    let out = decode_all(&mut server(), &frame(true, OpCode::Close, b""));
    assert_eq!(out, vec![Ok(Message::Close(None))]);
}

#[test]
fn a_close_with_a_bad_payload_is_a_protocol_error_with_its_code() {
    let out = decode_all(&mut server(), &frame(true, OpCode::Close, &[3]));
    assert_eq!(out, vec![Err(ProtocolError::TruncatedCloseCode)]);
    let out = decode_all(
        &mut server(),
        &frame(true, OpCode::Close, &1005u16.to_be_bytes()),
    );
    assert_eq!(out, vec![Err(ProtocolError::InvalidCloseCode(1005))]);
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.push(0xff);
    let out = decode_all(&mut server(), &frame(true, OpCode::Close, &bad_reason));
    assert_eq!(out, vec![Err(ProtocolError::InvalidUtf8)]);
}

#[test]
fn header_errors_end_the_decoder_a_server_requires_masked_frames() {
    let mut decoder = server();
    let out = decode_all(&mut decoder, &[0x81, 0x01, b'x']);
    assert_eq!(out, vec![Err(ProtocolError::UnmaskedFrame)]);
    assert!(decoder.is_done());
}
