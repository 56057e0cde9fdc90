//! The TLS record layer's boundary: what Cyclone's driver does with what
//! rustls returns, on arbitrary bytes from a peer arriving in arbitrary
//! pieces, with the calls the stream makes between reads (sealing, which
//! a handshake in progress refuses, and close_notify). It must not panic,
//! must never grow its input, and stops at the first error as the stream
//! does.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, data @ ..] = data else {
        return;
    };
    let mut transport = cyclone::fuzzing::tls_server_transport();
    let (mut incoming, mut plain) = (BytesMut::new(), BytesMut::new());
    if flags & 1 == 1 {
        // Start from a real ClientHello: the rest then meets the
        // server's later handshake states.
        incoming.extend_from_slice(&cyclone::fuzzing::tls_client_hello());
    }
    // Pieces as reads deliver them: split where 0xA5 is.
    for piece in data.split(|&b| b == 0xA5) {
        incoming.extend_from_slice(piece);
        let before = incoming.len();
        let mut send = Vec::new();
        let result = transport.receive(&mut incoming, &mut plain, &mut send);
        assert!(incoming.len() <= before, "the input grew");
        if result.is_err() {
            return;
        }
        let mut out = BytesMut::new();
        if transport.is_handshaking() {
            assert!(transport.seal(&mut incoming, b"x", &mut out).is_err());
        }
        let _ = transport.close_notify(&mut incoming);
    }
});
