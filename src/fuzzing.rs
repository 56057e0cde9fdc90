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
