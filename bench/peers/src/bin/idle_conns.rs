//! Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET on each
//! and reads its response (so the server has served and gone idle on all
//! of them), prints "ready", then holds them until stdin closes. With
//! CAFILE, over TLS (rustls, trusting CAFILE, as "localhost").
//!
//!   idle_conns PORT N [PATH [CAFILE]]

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A connection held open: plain, or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn stream(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A TLS client configuration trusting the certificates in `ca`.
fn tls_config(ca: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CAFILE") {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("PORT");
    let n: usize = args.next().and_then(|p| p.parse().ok()).expect("N");
    let path = args.next().unwrap_or_else(|| "/".to_string());
    let tls = args.next().map(|ca| tls_config(&ca));
    let host = if tls.is_some() { "localhost" } else { "127.0.0.1" };
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut conns = Vec::with_capacity(n);
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut c = match &tls {
            None => Conn::Plain(tcp),
            Some(config) => {
                let name = ServerName::try_from("localhost").expect("a name");
                let conn = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(std::io::Error::other)?;
                Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))
            }
        };
        c.stream().write_all(req.as_bytes())?;
        // One read holds the small response whole.
        if c.stream().read(&mut buf)? == 0 {
            return Err(std::io::Error::other("server closed a connection"));
        }
        conns.push(c);
    }
    println!("ready");
    std::io::stdout().flush()?;
    // Hold until stdin closes (the harness closes it).
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line)? > 0 {}
    drop(conns);
    Ok(())
}
