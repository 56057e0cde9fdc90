//! Internals of the HTTP/1.1 layer for the fuzz targets (`fuzz/`) and the
//! micro-benchmarks (`benches/micro.rs`), which live outside the crate and
//! can only reach what is public.
//!
//! **Not API.** Hidden from the documentation, outside any compatibility
//! promise: anything here may change or go away in any release. Nothing
//! in the library uses this module (the architecture check ranks it above
//! every layer it re-exports).

pub use crate::http1::encode::{HeadFraming, Persist, encode_head, encode_response, has_body};
pub use crate::http1::framing::{BodyKind, body_kind, is_field_line, parse_chunk_size};
pub use crate::http1::parse::{RequestHead, Seen, parse_head};

/// A TLS server session (rustls, through Cyclone's driver) as a stream's
/// record layer, for the `tls_records` fuzz target. Its certificate is
/// made once per process.
pub fn tls_server_transport() -> Box<dyn crate::iostream::Transport> {
    static CONFIG: std::sync::OnceLock<crate::tls::TlsConfig> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let dev = crate::tls::SelfSigned::generate(&["localhost"]).expect("a certificate");
        crate::tls::TlsConfig::from_pem(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes())
            .expect("a configuration")
    });
    Box::new(crate::tls::session::Session::server(config.server.clone()).expect("a session"))
}

/// A real ClientHello (rustls' own client, for "localhost"), for the
/// `tls_records` fuzz target to start from: past it the server's
/// handshake states are reached, which random bytes almost never are.
pub fn tls_client_hello() -> Vec<u8> {
    static HELLO: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    HELLO
        .get_or_init(|| {
            let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
            let mut client =
                rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("a client");
            let mut hello = Vec::new();
            client.write_tls(&mut hello).expect("a hello");
            hello
        })
        .clone()
}

/// The HTTP client's response decoder run over `data` twice: whole, and
/// handed over in pieces of `piece` bytes (1 to 64). Panics if the two
/// disagree (status, body, trailers, the end, or the error), if body
/// bytes come before a head, or if more body than the limit is accepted:
/// the decoder's answer must not depend on how the bytes arrived.
pub fn response_decoder_agrees_with_itself(data: &[u8], piece: usize, head_request: bool) {
    let whole = decode_response(data, data.len().max(1), head_request);
    let pieces = decode_response(data, piece.clamp(1, 64), head_request);
    assert_eq!(whole, pieces, "decoded whole and in pieces of {piece}");
}

/// What a decode gave: the status, body, trailers and whether it ended,
/// or the error's text.
type Decoded = Result<(Option<u16>, Vec<u8>, Vec<(String, Vec<u8>)>, bool), String>;

fn decode_response(data: &[u8], piece: usize, head_request: bool) -> Decoded {
    use crate::httpclient::decode::{Decoder, Event};
    /// Small limits, so that the fuzzer reaches them.
    const MAX_HEAD: usize = 2048;
    const MAX_BODY: usize = 4096;
    let mut d = Decoder::new(head_request, MAX_HEAD, MAX_BODY);
    let mut buf = bytes::BytesMut::new();
    let (mut status, mut body) = (None, Vec::new());
    let mut rest = data;
    loop {
        loop {
            if d.is_done() {
                let trailers = d
                    .trailers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect();
                return Ok((status, body, trailers, true));
            }
            match d.decode(&mut buf) {
                Ok(Some(Event::Head(h))) => status = Some(h.status.as_u16()),
                Ok(Some(Event::Data(b))) => {
                    assert!(status.is_some(), "body bytes before a head");
                    body.extend_from_slice(&b);
                    assert!(body.len() <= MAX_BODY, "more body than the limit");
                }
                Ok(Some(Event::Continue | Event::End)) => {}
                Ok(None) => break,
                Err(e) => return Err(format!("{e:?}")),
            }
        }
        if rest.is_empty() {
            return match d.at_eof() {
                Ok(()) => Ok((status, body, Vec::new(), true)),
                Err(e) => Err(e.to_string()),
            };
        }
        let n = piece.min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}
