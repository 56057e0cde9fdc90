//! A peer that breaks RFC 6455 gets the right close code, and nothing it
//! sends after the violation is read. Frames built by hand, on every
//! backend.

mod common;

use common::http::with_server;
use common::ws::{RawClient, frame};
use cyclone::web::{Application, WebSocketHandler};
use cyclone::websocket::{
    Compressor, DeflateConfig, DirectionParams, Message, WebSocket, WebSocketOptions,
};

/// The echo endpoint's message limit in these tests.
const LIMIT: usize = 64 << 10;

struct Echo {
    deflate: bool,
}

impl WebSocketHandler for Echo {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().max_message_size(LIMIT)
    }

    fn compression_options(&self) -> Option<DeflateConfig> {
        self.deflate.then(DeflateConfig::default)
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        let _ = ws.write_message(message).await;
    }
}

fn app() -> Application {
    Application::new()
        .websocket("/ws", || Echo { deflate: false })
        .websocket("/deflate", || Echo { deflate: true })
}

/// Opens `/ws`, sends `bytes` and returns the server's close code and
/// whether it then ended the connection.
fn close_code_for(lp: &cyclone::IOLoop, bytes: Vec<u8>) -> (Option<u16>, bool) {
    with_server(lp, app(), move |port| {
        let mut c = RawClient::open(port, "/ws", "");
        c.send_raw(&bytes);
        let code = c.read_close_code();
        (code, c.sees_end())
    })
}

per_backend! {
    fn an_unmasked_client_frame_closes_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0, 0x1, b"hi", false)), (Some(1002), true));
    }

    fn invalid_utf8_text_closes_with_1007(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0, 0x1, b"\xff\xfe", true)), (Some(1007), true));
    }

    fn invalid_utf8_split_across_fragments_closes_with_1007(lp) {
        // "é" is C3 A9: the first fragment ends inside the character and the
        // second does not continue it.
        let mut bytes = frame(false, 0, 0x1, b"ab\xc3", true);
        bytes.extend(frame(true, 0, 0x0, b"(", true));
        assert_eq!(close_code_for(&lp, bytes), (Some(1007), true));
    }

    fn a_message_over_the_limit_closes_with_1009_before_its_payload_is_sent(lp) {
        // Only the header, announcing one byte more than the limit: the
        // close must come without the payload.
        let mut header = vec![0x82, 0x80 | 127];
        header.extend_from_slice(&(LIMIT as u64 + 1).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(close_code_for(&lp, header), (Some(1009), true));
    }

    fn fragments_adding_up_past_the_limit_close_with_1009(lp) {
        let half = vec![b'a'; LIMIT / 2 + 1];
        let mut bytes = frame(false, 0, 0x1, &half, true);
        bytes.extend(frame(true, 0, 0x0, &half, true));
        assert_eq!(close_code_for(&lp, bytes), (Some(1009), true));
    }

    fn a_reserved_opcode_closes_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0, 0x3, b"", true)), (Some(1002), true));
    }

    fn rsv1_without_a_negotiated_extension_closes_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0b100, 0x1, b"x", true)), (Some(1002), true));
    }

    fn a_fragmented_ping_closes_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(false, 0, 0x9, b"", true)), (Some(1002), true));
    }

    fn a_continuation_without_a_message_closes_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0, 0x0, b"x", true)), (Some(1002), true));
    }

    fn a_close_with_a_code_that_may_not_be_sent_is_answered_with_1002(lp) {
        assert_eq!(close_code_for(&lp, frame(true, 0, 0x8, &1005u16.to_be_bytes(), true)), (Some(1002), true));
    }

    fn nothing_after_a_protocol_error_is_read(lp) {
        // A bad frame and a good one in the same packet: the good one is
        // never echoed, only the close comes back, then the end.
        let mut bytes = frame(true, 0, 0x1, b"bad", false);
        bytes.extend(frame(true, 0, 0x1, b"smuggled", true));
        let frames = with_server(&lp, app(), move |port| {
            let mut c = RawClient::open(port, "/ws", "");
            c.send_raw(&bytes);
            let mut frames = Vec::new();
            while let Some((_, opcode, _)) = c.try_read_frame() {
                frames.push(opcode);
            }
            frames
        });
        assert_eq!(frames, vec![0x8]);
    }

    fn a_fragmented_message_with_a_ping_between_its_fragments_is_reassembled(lp) {
        let (first, second) = with_server(&lp, app(), |port| {
            let mut c = RawClient::open(port, "/ws", "");
            let mut bytes = frame(false, 0, 0x1, b"hel", true);
            bytes.extend(frame(true, 0, 0x9, b"p", true));
            bytes.extend(frame(true, 0, 0x0, b"lo", true));
            c.send_raw(&bytes);
            (c.read_frame(), c.read_frame())
        });
        assert_eq!(first, (true, 0xA, b"p".to_vec()));
        assert_eq!(second, (true, 0x1, b"hello".to_vec()));
    }

    fn a_deflate_bomb_closes_with_1009_without_inflating_past_the_limit(lp) {
        // 16 MiB of zeros deflate to about 16 KiB: small on the wire, far
        // past the 64 KiB limit once inflated.
        let mut squeezed = Vec::new();
        let own = DirectionParams { window_bits: 15, no_context_takeover: false };
        // Level 9: zeros squeezed hardest, as an attacker would.
        let config = DeflateConfig { compression_level: 9, ..DeflateConfig::default() };
        Compressor::new(&own, &config)
            .compress(&vec![0u8; 16 << 20], &mut squeezed)
            .unwrap();
        assert!(squeezed.len() < LIMIT);
        let code = with_server(&lp, app(), move |port| {
            let mut c = RawClient::open(port, "/deflate", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
            assert!(c.head.to_ascii_lowercase().contains("permessage-deflate"), "{}", c.head);
            c.send_raw(&frame(true, 0b100, 0x2, &squeezed, true));
            c.read_close_code()
        });
        assert_eq!(code, Some(1009));
    }
}
