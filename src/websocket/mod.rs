//! WebSocket (RFC 6455, with RFC 7692's permessage-deflate): the codec,
//! connections on the loop, and the client.
//!
//! Sans-I/O, in the manner of h11: bytes in, messages out, no socket, loop
//! or timer inside, so every rule is tested with plain byte strings. The
//! pieces, lowest first:
//!
//! - [`apply_mask`]: masking and unmasking in place, a word at a time, in
//!   pieces as a payload arrives (§5.3).
//! - [`FrameHeader`], [`decode_header`], [`encode_header`]: the base
//!   framing (§5.2), strict about reserved opcodes and bits, control frame
//!   limits, masking by [`Role`] and minimal length encodings.
//! - [`Utf8Validator`]: text checked as it arrives, across frames (§8.1).
//! - [`CloseCode`], [`CloseFrame`], [`parse_close_payload`],
//!   [`encode_close_payload`]: the close handshake's payload (§5.5.1, §7.4).
//! - [`Decoder`]: the receiving state machine. Reassembles fragmented
//!   messages, delivers control frames at once, enforces
//!   `max_message_size` from headers before buffering, and stops reading
//!   after a Close or a [`ProtocolError`] (whose
//!   [`close_code`](ProtocolError::close_code) is 1002, 1007 or 1009).
//! - [`Encoder`]: messages to frames, masked with caller-supplied keys for
//!   a client, optionally split into frames of a maximum size.
//! - [`Offer`], [`ClientHandshake`]: the opening handshake (§4), which
//!   requests may upgrade (a refusal is 400, or 426 for a wrong version,
//!   never a 101) and the checks a client makes on the answer.
//! - permessage-deflate (RFC 7692): [`parse_extensions`] reads a
//!   `Sec-WebSocket-Extensions` value; [`negotiate_deflate`] (server),
//!   [`offer_deflate`] and [`accept_deflate_response`] (client) turn a
//!   [`DeflateConfig`] into a [`DeflateAgreement`]; a [`Compressor`] and a
//!   [`Decompressor`] built from it go into [`Encoder::with_deflate`] and
//!   [`Decoder::with_deflate`]. Off unless the application asks for it.
//!
//! A client sends a masked text frame; the server decodes it:
//!
//! ```
//! use bytes::BytesMut;
//! use cyclone::websocket::{Decoder, Encoder, Message, Role, DEFAULT_MAX_MESSAGE_SIZE};
//!
//! // The client masks every frame; the key must be random in real use.
//! let mut wire = BytesMut::new();
//! let hello = Message::Text("Hello".into());
//! Encoder::new(Role::Client)
//!     .encode_message(&mut wire, &hello, || Some([0x37, 0xfa, 0x21, 0x3d]))
//!     .unwrap();
//! assert_eq!(&wire[..2], &[0x81, 0x85]); // FIN + Text, MASK + length 5
//!
//! let mut server = Decoder::new(Role::Server, DEFAULT_MAX_MESSAGE_SIZE);
//! assert_eq!(server.decode(&mut wire), Ok(Some(hello)));
//! assert_eq!(server.decode(&mut wire), Ok(None)); // wait for more bytes
//! ```
//!
//! With permessage-deflate: the client offers, the server agrees, and
//! each end builds its codec from its side of the agreement:
//!
//! ```
//! use bytes::BytesMut;
//! use cyclone::websocket::{
//!     accept_deflate_response, negotiate_deflate, offer_deflate, Compressor, Decoder,
//!     Decompressor, DeflateConfig, Encoder, Message, Role, DEFAULT_MAX_MESSAGE_SIZE,
//! };
//!
//! let config = DeflateConfig::default();
//! let offer = offer_deflate(&config); // the client's Sec-WebSocket-Extensions
//! let (server_side, response) = negotiate_deflate([offer.as_str()], &config).unwrap();
//! let client_side = accept_deflate_response(&response, &config).unwrap();
//!
//! let mut server = Encoder::new(Role::Server)
//!     .with_deflate(Compressor::new(&server_side.own, &config));
//! let mut client = Decoder::new(Role::Client, DEFAULT_MAX_MESSAGE_SIZE)
//!     .with_deflate(Decompressor::new(&client_side.peer));
//!
//! let mut wire = BytesMut::new();
//! let hello = Message::Text("Hello".into());
//! server.encode_message(&mut wire, &hello, || None).unwrap();
//! // FIN + RSV1 ("compressed") + Text; RFC 7692 §7.2.3.1's 7 bytes.
//! assert_eq!(&wire[..], &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
//! assert_eq!(client.decode(&mut wire), Ok(Some(hello)));
//! ```
//!
//! On the loop, a connection has two halves. [`WebSocket`] sends: a cheap
//! `Clone` handle whose writes are encoded and queued at once (messages
//! never interleave) and whose futures resolve when the kernel has the
//! bytes; a peer that stops reading is cut off at
//! [`WebSocketOptions::max_write_buffer_size`]. [`Reader`] receives:
//! Pings answered, keepalive pings sent and timed, the close handshake
//! carried through (with [`WebSocketOptions::close_timeout`]), and every
//! protocol error answered with its close code before the connection is
//! dropped. [`RemoteWebSocket`] writes from other threads through the
//! loop; [`broadcast`] sends one message to many connections, encoded
//! once. [`upgrade`] answers an HTTP request with the 101 that starts a
//! session (the web layer's `WebSocketHandler` is built on it), and
//! [`websocket_connect`] is the client.
//!
//! An echo server on the bare HTTP server, and a client talking to it:
//!
//! ```
//! use cyclone::http1::HttpServer;
//! use cyclone::websocket::{self, websocket_connect, ConnectOptions, Event, Message};
//!
//! let reply = cyclone::run_sync(async {
//!     let server = HttpServer::new(|req| async move {
//!         let options = websocket::WebSocketOptions::default();
//!         websocket::upgrade(&req.method, req.version, &req.headers, |_| None, options,
//!             |ws, mut reader| async move {
//!                 loop {
//!                     match reader.next().await {
//!                         Event::Message(m) => drop(ws.write_message(m).await),
//!                         Event::Closed(_) => break,
//!                         Event::Ping(_) | Event::Pong(_) => {} // answered already
//!                     }
//!                 }
//!             })
//!     });
//!     let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
//!     let url = format!("ws://127.0.0.1:{port}/");
//!     let mut conn = websocket_connect(&url, ConnectOptions::default()).await.unwrap();
//!     conn.write_message("anyone there?").await.unwrap();
//!     conn.read_message().await
//! });
//! assert_eq!(reply, Some(Message::Text("anyone there?".into())));
//! ```

mod broadcast;
mod client;
mod close;
mod close_code;
mod connection;
mod decoder;
#[cfg(test)]
mod decoder_tests;
mod deflate;
#[cfg(test)]
mod deflate_codec;
mod encoder;
mod error;
mod extension;
mod frame;
mod handshake;
mod keys;
mod mask;
mod message;
mod negotiation;
#[cfg(test)]
mod negotiation_matrix;
mod options;
mod quick;
#[cfg(test)]
mod quick_roundtrip;
#[cfg(test)]
mod random_input;
mod reader;
mod remote;
#[cfg(test)]
mod roundtrip;
mod server;
mod socket;
#[cfg(test)]
mod test_support;
mod utf8;

pub use broadcast::broadcast;
pub use client::{ConnectError, ConnectOptions, WebSocketConnection, websocket_connect};
pub use close::{CloseFrame, MAX_CLOSE_REASON, encode_close_payload, parse_close_payload};
pub use close_code::CloseCode;
pub use decoder::{DEFAULT_MAX_MESSAGE_SIZE, Decoder};
pub use deflate::{Compressor, DEFLATE_TAIL, Decompressor};
pub use encoder::Encoder;
pub use error::{EncodeError, ProtocolError};
pub use extension::{Extension, ExtensionSyntaxError, parse_extensions};
pub use frame::{
    FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, Role, decode_header, encode_header,
};
pub use handshake::{
    AcceptError, Accepted, ClientHandshake, ClientHandshakeError, HandshakeError, Offer,
    WEBSOCKET_VERSION, accept_key,
};
pub use mask::apply_mask;
pub use message::Message;
pub use negotiation::{
    DeflateAgreement, DeflateConfig, DirectionParams, MAX_WINDOW_BITS, MIN_COMPRESS_WINDOW_BITS,
    MIN_WINDOW_BITS, NegotiationError, PERMESSAGE_DEFLATE, accept_deflate_response,
    negotiate_deflate, offer_deflate,
};
pub use options::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_MAX_WRITE_BUFFER_SIZE, DEFAULT_WRITE_TIMEOUT, WebSocketOptions,
};
pub use reader::{CloseInfo, Event, Reader};
pub use remote::{LoopGone, RemoteWebSocket};
pub use server::{accept, refusal, respond, upgrade};
pub use socket::{Flush, SendError, WebSocket};
pub use utf8::{Utf8Error, Utf8Validator};
