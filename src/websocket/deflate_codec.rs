//! permessage-deflate through the codec: Encoder → Decoder for both roles,
//! and the decoder's rules about RSV1 (RFC 7692 §6). A test-only file, so
//! that neither the encoder nor the decoder depends on the other.

use bytes::{Bytes, BytesMut};

use super::close::CloseFrame;
use super::close_code::CloseCode;
use super::decoder::{DEFAULT_MAX_MESSAGE_SIZE, Decoder};
use super::deflate::{Compressor, Decompressor};
use super::encoder::Encoder;
use super::error::ProtocolError;
use super::frame::{OpCode, Role};
use super::message::Message;
use super::negotiation::{DeflateAgreement, DeflateConfig, DirectionParams};

use super::test_support::{KEY, client_frame};

fn takeover(no_context_takeover: bool) -> DeflateAgreement {
    let params = DirectionParams {
        window_bits: 15,
        no_context_takeover,
    };
    DeflateAgreement {
        own: params,
        peer: params,
    }
}

fn peer_of(role: Role) -> Role {
    match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// An encoder for `role` compressing under `agreed` (both ends of these
/// tests agree symmetrically, so `own` and `peer` are interchangeable).
fn encoder(role: Role, agreed: &DeflateAgreement, config: &DeflateConfig) -> Encoder {
    Encoder::new(role).with_deflate(Compressor::new(&agreed.own, config))
}

fn decoder(role: Role, agreed: &DeflateAgreement, max: usize) -> Decoder {
    Decoder::new(role, max).with_deflate(Decompressor::new(&agreed.peer))
}

fn encode(encoder: &mut Encoder, message: &Message) -> BytesMut {
    let mut wire = BytesMut::new();
    let masked = encoder.role() == Role::Client;
    encoder
        .encode_message(&mut wire, message, || masked.then_some(KEY))
        .expect("encodable");
    wire
}

/// Decodes everything in `wire`, `read_size` bytes at a time.
fn decode(decoder: &mut Decoder, wire: &[u8], read_size: usize) -> Vec<Message> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(read_size) {
        buf.extend_from_slice(piece);
        while let Some(m) = decoder.decode(&mut buf).expect("valid") {
            out.push(m);
        }
    }
    assert!(buf.is_empty(), "every byte used");
    out
}

fn compressed(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Compressor::new(&takeover(false).own, &DeflateConfig::default())
        .compress(input, &mut out)
        .unwrap();
    out
}

/// The first error decoding `bytes` on a server with deflate agreed.
fn server_error(bytes: &[u8]) -> ProtocolError {
    let mut decoder = decoder(Role::Server, &takeover(false), DEFAULT_MAX_MESSAGE_SIZE);
    let mut buf = BytesMut::from(bytes);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error in {bytes:x?}"),
            Err(e) => return e,
        }
    }
}

fn messages() -> Vec<Message> {
    vec![
        Message::Text(String::new()),
        Message::Text("Hello".into()),
        Message::Text("hello ✓ 😀 ".repeat(3000)),
        Message::Binary(Bytes::new()),
        Message::Binary((0..=255u8).cycle().take(70_000).collect()),
        Message::Binary(Bytes::from(vec![0; 200_000])),
        Message::Ping(Bytes::from_static(b"ping")),
        Message::Pong(Bytes::new()),
        Message::Close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))),
    ]
}

#[test]
fn a_compressed_hello_frame_matches_rfc_7692_section_7_2_3_1() {
    let config = DeflateConfig::default();
    let wire = encode(
        &mut encoder(Role::Server, &takeover(false), &config),
        &Message::Text("Hello".into()),
    );
    // FIN + RSV1 + Text, length 7, then the compressed bytes.
    let expected = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(&wire[..], &expected);
    let mut client = decoder(Role::Client, &takeover(false), 100);
    assert_eq!(
        decode(&mut client, &expected, usize::MAX),
        vec![Message::Text("Hello".into())]
    );
}

#[test]
fn every_message_round_trips_compressed_for_both_roles_in_frames_and_reads() {
    let config = DeflateConfig::default();
    for role in [Role::Server, Role::Client] {
        for no_context_takeover in [false, true] {
            for (frame_size, read_size) in [(usize::MAX, usize::MAX), (1000, 999), (3, 4096)] {
                let agreed = takeover(no_context_takeover);
                let mut sender = encoder(role, &agreed, &config).with_max_frame_payload(frame_size);
                let mut receiver = decoder(peer_of(role), &agreed, DEFAULT_MAX_MESSAGE_SIZE);
                let mut wire = BytesMut::new();
                for message in messages() {
                    wire.extend_from_slice(&encode(&mut sender, &message));
                }
                let got = decode(&mut receiver, &wire, read_size);
                assert_eq!(got, messages(), "{role:?} frames {frame_size}");
            }
        }
    }
}

#[test]
fn rsv1_is_set_on_the_first_frame_only_and_never_on_control_frames() {
    let config = DeflateConfig::default();
    let mut sender = encoder(Role::Server, &takeover(false), &config).with_max_frame_payload(2);
    let wire = encode(&mut sender, &Message::Text("Hello".into()));
    // 7 compressed bytes in frames of 2: RSV1 only on the first.
    let firsts: Vec<u8> = wire.chunks(4).map(|f| f[0]).collect();
    assert_eq!(firsts, [0x41, 0x00, 0x00, 0x80]);
    for control in [
        Message::Ping(Bytes::from_static(b"Hello")),
        Message::Close(None),
    ] {
        let wire = encode(&mut sender, &control);
        assert_eq!(wire[0] & 0x40, 0, "{control:?}");
    }
}

#[test]
fn context_takeover_across_many_messages_keeps_both_ends_in_step() {
    let config = DeflateConfig::default();
    let agreed = takeover(false);
    let mut sender = encoder(Role::Client, &agreed, &config);
    let mut receiver = decoder(Role::Server, &agreed, DEFAULT_MAX_MESSAGE_SIZE);
    let mut sizes = Vec::new();
    for i in 0..500 {
        let message = Message::Text(format!(
            "{{\"user\":\"alice\",\"seq\":{i},\"text\":\"hi\"}}"
        ));
        let wire = encode(&mut sender, &message);
        sizes.push(wire.len());
        assert_eq!(decode(&mut receiver, &wire, 5), vec![message]);
    }
    // Later messages refer back to earlier ones: far smaller than the first.
    assert!(sizes[499] * 2 < sizes[0], "{} vs {}", sizes[499], sizes[0]);
}

#[test]
fn messages_under_the_minimum_size_go_uncompressed_and_still_round_trip() {
    let config = DeflateConfig {
        min_compress_size: 10,
        ..DeflateConfig::default()
    };
    let agreed = takeover(false);
    let mut sender = encoder(Role::Server, &agreed, &config);
    let mut receiver = decoder(Role::Client, &agreed, DEFAULT_MAX_MESSAGE_SIZE);
    for text in [
        "short",
        "long enough to compress",
        "tiny",
        "long enough to compress",
    ] {
        let message = Message::Text(text.into());
        let wire = encode(&mut sender, &message);
        assert_eq!(wire[0] & 0x40 != 0, text.len() >= 10, "{text}");
        assert_eq!(decode(&mut receiver, &wire, 3), vec![message]);
    }
}

#[test]
fn rsv1_without_agreed_deflate_is_1002() {
    let mut decoder = Decoder::new(Role::Server, DEFAULT_MAX_MESSAGE_SIZE);
    let mut buf = BytesMut::from(&client_frame(true, true, OpCode::Text, &compressed(b"x"))[..]);
    let err = decoder.decode(&mut buf).unwrap_err();
    assert_eq!(err, ProtocolError::ReservedBits(0b100));
    assert_eq!(err.close_code(), CloseCode::PROTOCOL);
}

#[test]
fn rsv1_on_a_continuation_is_1002() {
    let mut bytes = client_frame(false, true, OpCode::Text, &compressed(b"ab")[..1]);
    bytes.extend(client_frame(
        true,
        true,
        OpCode::Continuation,
        &compressed(b"ab")[1..],
    ));
    let err = server_error(&bytes);
    assert_eq!(err, ProtocolError::CompressedContinuation);
    assert_eq!(err.close_code(), CloseCode::PROTOCOL);
}

#[test]
fn rsv1_on_a_control_frame_is_1002() {
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let err = server_error(&client_frame(true, true, opcode, b""));
        assert_eq!(err, ProtocolError::CompressedControlFrame, "{opcode:?}");
        assert_eq!(err.close_code(), CloseCode::PROTOCOL);
    }
}

#[test]
fn corrupt_deflate_data_fails_the_message_with_1002() {
    let err = server_error(&client_frame(true, true, OpCode::Binary, &[0xff, 0xff]));
    assert_eq!(err, ProtocolError::InvalidCompressedData);
    assert_eq!(err.close_code(), CloseCode::PROTOCOL);
}

#[test]
fn text_is_validated_after_inflation_1007() {
    let bytes = client_frame(true, true, OpCode::Text, &compressed(&[b'o', b'k', 0xff]));
    let err = server_error(&bytes);
    assert_eq!(err, ProtocolError::InvalidUtf8);
    assert_eq!(err.close_code(), CloseCode::INVALID_PAYLOAD);
    // Compressed bytes are not UTF-8 and must not be checked as such,
    // frame by frame, before inflation.
    let packed = compressed("é".repeat(100).as_bytes());
    let mut bytes = client_frame(false, true, OpCode::Text, &packed[..3]);
    bytes.extend(client_frame(
        true,
        false,
        OpCode::Continuation,
        &packed[3..],
    ));
    let mut server = decoder(Role::Server, &takeover(false), 1000);
    assert_eq!(
        decode(&mut server, &bytes, 2),
        vec![Message::Text("é".repeat(100))]
    );
}

#[test]
fn max_message_size_applies_after_decompression_1009() {
    let packed = compressed(&[b'a'; 5000]);
    assert!(packed.len() < 100);
    let bytes = client_frame(true, true, OpCode::Binary, &packed);
    let mut server = decoder(Role::Server, &takeover(false), 4999);
    let err = server.decode(&mut BytesMut::from(&bytes[..])).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::MessageTooBig {
            size: 5000,
            max: 4999
        }
    );
    assert_eq!(err.close_code(), CloseCode::TOO_BIG);
    assert!(server.is_done());
    let mut server = decoder(Role::Server, &takeover(false), 5000);
    let out = decode(&mut server, &bytes, usize::MAX);
    assert!(matches!(&out[..], [Message::Binary(b)] if b.len() == 5000));
}

#[test]
fn an_uncompressed_message_is_accepted_with_deflate_agreed() {
    let mut bytes = client_frame(false, false, OpCode::Text, b"plain ");
    bytes.extend(client_frame(true, false, OpCode::Continuation, b"text"));
    let mut server = decoder(Role::Server, &takeover(false), 100);
    assert_eq!(
        decode(&mut server, &bytes, 1),
        vec![Message::Text("plain text".into())]
    );
}
