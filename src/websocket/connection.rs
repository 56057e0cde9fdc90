//! An open connection's two halves, built from what the handshake agreed.

use std::rc::Rc;

use super::decoder::Decoder;
use super::deflate::{Compressor, Decompressor};
use super::encoder::Encoder;
use super::frame::Role;
use super::negotiation::DeflateAgreement;
use super::options::WebSocketOptions;
use super::reader::Reader;
use super::socket::WebSocket;
use crate::iostream::IOStream;

/// The sending and receiving halves of a connection on `stream` (whose
/// buffer may already hold the peer's first frames), as `role`, with
/// permessage-deflate if it was agreed.
pub(crate) fn open(
    stream: Rc<IOStream>,
    role: Role,
    deflate: Option<DeflateAgreement>,
    protocol: Option<String>,
    options: &WebSocketOptions,
) -> (WebSocket, Reader) {
    let mut encoder = Encoder::new(role);
    let mut decoder = Decoder::new(role, options.max_message_size);
    if let (Some(agreement), Some(config)) = (deflate, &options.compression) {
        encoder = encoder.with_deflate(Compressor::new(&agreement.own, config));
        decoder = decoder.with_deflate(Decompressor::new(&agreement.peer));
    }
    let ws = WebSocket::new(
        stream,
        encoder,
        protocol,
        options.max_write_buffer_size,
        options.close_timeout,
        options.write_timeout,
    );
    let ping = options.ping_interval.zip(options.ping_timeout_or_default());
    let reader = Reader::new(ws.clone(), decoder, ping);
    (ws, reader)
}
