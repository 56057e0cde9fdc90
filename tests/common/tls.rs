//! TLS test helpers: certificates made for the test (rcgen; nothing with
//! a private key is checked in), and a blocking client that is not ours
//! (rustls' buffered API over a std `TcpStream`) for servers on the loop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use cyclone::tls::{SelfSigned, TlsConfig};

use super::demo_server::LIMIT;

/// A development certificate for localhost and 127.0.0.1.
pub fn dev_cert() -> SelfSigned {
    SelfSigned::generate(&["localhost", "127.0.0.1"]).expect("a certificate")
}

/// A server configuration presenting `cert`.
pub fn server_config(cert: &SelfSigned) -> TlsConfig {
    TlsConfig::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).expect("config")
}

/// rustls' own client configuration trusting `ca_pem`, offering `alpn`.
pub fn rustls_client(ca_pem: &str, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to 127.0.0.1:`port` by a client that is not ours.
pub type Client = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to `port` as `name` and completes the handshake.
pub fn connect(port: u16, config: Arc<rustls::ClientConfig>, name: &str) -> Client {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut client = rustls::StreamOwned::new(conn, tcp);
    while client.conn.is_handshaking() {
        client
            .conn
            .complete_io(&mut client.sock)
            .expect("handshake");
    }
    client
}

/// One HTTP/1.1 GET over `client` (closing after it); the whole
/// response.
pub fn get(client: &mut Client, path: &str) -> String {
    write!(
        client,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    client.flush().unwrap();
    let mut out = Vec::new();
    // A server that closes cleanly sends close_notify: read_to_end ends
    // without an UnexpectedEof.
    client
        .read_to_end(&mut out)
        .expect("a response then close_notify");
    String::from_utf8(out).unwrap()
}
