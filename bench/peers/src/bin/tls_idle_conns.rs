//! Opens N TLS keep-alive connections to 127.0.0.1:PORT (trusting the CA
//! in CAFILE, as "localhost"), sends one GET on each and reads its
//! response, prints "ready", then holds them until stdin closes: the TLS
//! twin of idle_conns, for bench/tls.sh's RSS per idle TLS connection.
//!
//!   tls_idle_conns PORT N PATH CAFILE

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("PORT");
    let n: usize = args.next().and_then(|p| p.parse().ok()).expect("N");
    let path = args.next().expect("PATH");
    let ca = args.next().expect("CAFILE");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).expect("CAFILE") {
        roots.add(cert.expect("a certificate")).expect("a root");
    }
    let config = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut conns = Vec::with_capacity(n);
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let name = ServerName::try_from("localhost").expect("a name");
        let conn = rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(req.as_bytes())?;
        // One read holds the small response whole.
        if tls.read(&mut buf)? == 0 {
            return Err(std::io::Error::other("server closed a connection"));
        }
        conns.push(tls);
    }
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line)? > 0 {}
    drop(conns);
    Ok(())
}
