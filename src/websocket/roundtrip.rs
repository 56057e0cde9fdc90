//! Encoder → decoder round trips, for both roles: what one end sends, the
//! other receives unchanged. A test-only file, so that neither the encoder
//! nor the decoder depends on the other.

use bytes::{Bytes, BytesMut};

use super::close::CloseFrame;
use super::close_code::CloseCode;
use super::decoder::{DEFAULT_MAX_MESSAGE_SIZE, Decoder};
use super::encoder::Encoder;
use super::frame::Role;
use super::message::Message;

fn messages() -> Vec<Message> {
    vec![
        Message::Text(String::new()),
        Message::Text("hello ✓ 😀".into()),
        Message::Text("x".repeat(70_000)),
        Message::Binary(Bytes::new()),
        Message::Binary((0..=255u8).cycle().take(125).collect()),
        Message::Binary((0..=255u8).cycle().take(126).collect()),
        Message::Binary((0..=255u8).cycle().take(65_535).collect()),
        Message::Binary((0..=255u8).cycle().take(65_536).collect()),
        Message::Ping(Bytes::new()),
        Message::Ping(Bytes::from(vec![9; 125])),
        Message::Pong(Bytes::from_static(b"pong")),
        Message::Close(None),
        Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, ""))),
        Message::Close(Some(CloseFrame::new(CloseCode(4000), "é".repeat(61)))),
    ]
}

/// Sends `message` from the opposite end of `receiver`, split into frames
/// of `frame_size`, and decodes it `read_size` bytes at a time.
fn round_trip(receiver: Role, message: &Message, frame_size: usize, read_size: usize) -> Message {
    let sender = match receiver {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut key = 0x1234_5678u32;
    let mut wire = BytesMut::new();
    Encoder::new(sender)
        .with_max_frame_payload(frame_size)
        .encode_message(&mut wire, message, || {
            key = key.rotate_left(7).wrapping_add(0x9e37_79b9);
            (sender == Role::Client).then_some(key.to_be_bytes())
        })
        .expect("encodable");
    let mut decoder = Decoder::new(receiver, DEFAULT_MAX_MESSAGE_SIZE);
    let mut buf = BytesMut::new();
    let mut received = Vec::new();
    for piece in wire.chunks(read_size) {
        buf.extend_from_slice(piece);
        while let Some(m) = decoder.decode(&mut buf).expect("valid") {
            received.push(m);
        }
    }
    assert_eq!(received.len(), 1, "one message");
    assert!(buf.is_empty(), "every byte used");
    received.remove(0)
}

#[test]
fn every_message_round_trips_for_both_roles() {
    for role in [Role::Server, Role::Client] {
        for message in messages() {
            assert_eq!(round_trip(role, &message, usize::MAX, usize::MAX), message);
        }
    }
}

#[test]
fn every_message_round_trips_split_into_frames_and_reads() {
    for role in [Role::Server, Role::Client] {
        for message in messages() {
            for (frame_size, read_size) in [(1, 7), (3, 1), (125, 4096), (1000, 999)] {
                if matches!(&message, Message::Text(t) if t.len() > 1000)
                    && (frame_size, read_size) == (3, 1)
                {
                    continue; // 70,000 one-byte reads add time, not coverage
                }
                let got = round_trip(role, &message, frame_size, read_size);
                assert_eq!(got, message, "frames of {frame_size}, reads of {read_size}");
            }
        }
    }
}

#[test]
fn many_messages_in_one_read_come_out_in_order() {
    let mut wire = BytesMut::new();
    let mut encoder = Encoder::new(Role::Server).with_max_frame_payload(2);
    for message in messages() {
        encoder
            .encode_message(&mut wire, &message, || None)
            .unwrap();
    }
    let mut decoder = Decoder::new(Role::Client, DEFAULT_MAX_MESSAGE_SIZE);
    let mut out = Vec::new();
    while let Some(m) = decoder.decode(&mut wire).unwrap() {
        out.push(m);
    }
    // The first Close ends the stream; the messages after it stay unread.
    let first_close = messages()
        .iter()
        .position(|m| matches!(m, Message::Close(_)))
        .unwrap();
    assert_eq!(out, messages()[..=first_close].to_vec());
    assert!(!wire.is_empty());
}
