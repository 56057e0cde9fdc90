//! TLS on the loop, with rustls: a stream's record layer (see
//! [`crate::iostream::Transport`]), so that once the handshake is done
//! every read and write of an [`IOStream`] works as over plain TCP, on
//! every poller backend (on io_uring the records go out through the
//! loop's submitted sends like any write).
//!
//! [`StreamError::Truncated`]: crate::StreamError::Truncated
//!
//! - [`TlsConfig`]: a server's certificates (PEM; several by name through
//!   SNI, with a default for clients that send none), ALPN (`http/1.1`
//!   by default: a client offering only protocols we do not serve is
//!   refused), TLS 1.2 and 1.3 only, session tickets, optional client
//!   certificates, and the handshake timeout (10 s).
//! - [`accept`] and [`connect`]: the handshake on a stream, bounded in
//!   time. A peer that stalls, sends garbage or plain HTTP is closed
//!   (plain HTTP first gets a plain-text 400, as nginx answers it); a
//!   close sends `close_notify`, and an EOF without one is
//!   [`StreamError::Truncated`].
//! - [`TlsClientConfig`]: certificate verification against the system's
//!   roots or a given CA; errors name the reason ([`TlsError`]).
//! - [`SelfSigned`]: development certificates.
//!
//! Crypto comes from aws-lc-rs (see `Cargo.toml` for why not ring).
//!
//! ```
//! use cyclone::tls::{self, SelfSigned, TlsClientConfig, TlsConfig};
//! use cyclone::{IOLoop, IOStream};
//!
//! let dev = SelfSigned::generate(&["localhost"]).unwrap();
//! let server = TlsConfig::from_pem(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes()).unwrap();
//! let client = TlsClientConfig::with_ca(dev.cert_pem.as_bytes()).unwrap();
//!
//! let lp = IOLoop::new().unwrap();
//! let reply = lp.run_sync(async move {
//!     let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//!     let (a, b) = (IOStream::new(a).unwrap(), IOStream::new(b).unwrap());
//!     let serve = cyclone::spawn(async move {
//!         tls::accept(&a, &server).await.unwrap();
//!         let line = a.read_until(b"\n", None).await.unwrap();
//!         a.write(line).await.unwrap();
//!     });
//!     tls::connect(&b, &client, "localhost").await.unwrap();
//!     b.write(&b"hello over TLS\n"[..]).await.unwrap();
//!     let reply = b.read_until(b"\n", None).await.unwrap();
//!     serve.await.unwrap();
//!     reply
//! });
//! assert_eq!(&reply[..], b"hello over TLS\n");
//! ```

mod client;
mod config;
mod error;
mod keys;
mod resolver;
mod selfsigned;
pub(crate) mod session;

use std::sync::Arc;

pub use client::TlsClientConfig;
pub use config::{DEFAULT_HANDSHAKE_TIMEOUT, TlsConfig, TlsConfigBuilder};
pub use error::{RustlsError, TlsError};
pub use selfsigned::SelfSigned;

use crate::iostream::{IOStream, StreamError};
use session::Session;

/// What a TLS handshake agreed on: [`info`].
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// TLS 1.2 or 1.3.
    pub protocol_version: Option<rustls::ProtocolVersion>,
    /// The cipher suite.
    pub cipher_suite: Option<rustls::CipherSuite>,
    /// The ALPN protocol, if one was agreed.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The peer's certificate chain (a server sees one only from a client
    /// that sent it: see [`TlsConfigBuilder::client_auth`]).
    pub peer_certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Whether the session was resumed (a ticket) rather than a full
    /// handshake.
    pub resumed: bool,
}

/// What `stream`'s TLS session agreed on; `None` for a plain stream.
pub fn info(stream: &IOStream) -> Option<TlsInfo> {
    stream
        .with_transport(|t| t.as_any().downcast_ref::<Session>().map(Session::info))
        .flatten()
}

/// The server's side of a TLS handshake on `stream` (freshly accepted, or
/// after a STARTTLS-style command, with no read pending). Fails, with the
/// stream closed, if the handshake fails or does not finish within
/// `config.handshake_timeout` (the connection is then reset:
/// [`TlsError::HandshakeTimeout`]).
pub async fn accept(stream: &IOStream, config: &TlsConfig) -> Result<(), StreamError> {
    let session = Session::server(config.server.clone()).map_err(transport_error)?;
    handshake(stream, Box::new(session), config.handshake_timeout).await
}

/// The client's side of a TLS handshake on a connected `stream`, checking
/// that the server's certificate is valid for `server_name` (a DNS name,
/// also sent as SNI, or an IP address).
pub async fn connect(
    stream: &IOStream,
    config: &TlsClientConfig,
    server_name: &str,
) -> Result<(), StreamError> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).map_err(|_| {
        transport_error(TlsError::Other(format!(
            "not a DNS name or IP address: {server_name:?}"
        )))
    })?;
    let session = Session::client(config.client.clone(), name).map_err(transport_error)?;
    handshake(stream, Box::new(session), config.handshake_timeout).await
}

/// Which end of a TLS handshake a stream takes: see [`StartTls`].
#[derive(Debug, Clone, Copy)]
pub enum TlsSide<'a> {
    /// The server's, presenting `config`'s certificates.
    Server(&'a TlsConfig),
    /// The client's, checking the server's certificate for `server_name`.
    Client {
        /// Whom to trust.
        config: &'a TlsClientConfig,
        /// The server's DNS name (also sent as SNI) or IP address.
        server_name: &'a str,
    },
}

/// Tornado's `IOStream.start_tls`: a stream already in use (a plain-text
/// protocol that switches, STARTTLS) runs a TLS handshake and from then
/// on reads and writes through TLS. The same as [`accept`] or
/// [`connect`]: no read may be pending, and bytes already buffered are
/// taken as the peer's first records.
///
/// ```no_run
/// use cyclone::tls::{StartTls, TlsConfig, TlsSide};
/// # async fn f(stream: cyclone::IOStream, config: TlsConfig) -> Result<(), cyclone::StreamError> {
/// stream.read_until(b"STARTTLS\r\n", Some(64)).await?;
/// stream.write(&b"220 go ahead\r\n"[..]).await?;
/// stream.start_tls(TlsSide::Server(&config)).await?;
/// # Ok(()) }
/// ```
pub trait StartTls {
    /// Runs the handshake as `side`; see the trait's docs.
    fn start_tls<'a>(
        &'a self,
        side: TlsSide<'a>,
    ) -> impl std::future::Future<Output = Result<(), StreamError>> + 'a;
}

impl StartTls for IOStream {
    async fn start_tls<'a>(&'a self, side: TlsSide<'a>) -> Result<(), StreamError> {
        match side {
            TlsSide::Server(config) => accept(self, config).await,
            TlsSide::Client {
                config,
                server_name,
            } => connect(self, config, server_name).await,
        }
    }
}

async fn handshake(
    stream: &IOStream,
    session: Box<Session>,
    limit: std::time::Duration,
) -> Result<(), StreamError> {
    let result = match crate::ioloop::timeout(limit, stream.start_transport(session)).await {
        Ok(result) => result,
        Err(_) => {
            stream.reset();
            Err(transport_error(TlsError::HandshakeTimeout(limit)))
        }
    };
    STATS.with(|stats| {
        let mut s = stats.get();
        match &result {
            Ok(()) => s.completed += 1,
            Err(e) if matches!(tls_error(e), Some(TlsError::HandshakeTimeout(_))) => {
                s.timed_out += 1
            }
            Err(e) if closed_in_handshake(e) => s.abandoned += 1,
            Err(_) => s.failed += 1,
        }
        stats.set(s);
    });
    result
}

/// How this thread's TLS handshakes ended (each loop runs on its own
/// thread, so this is one loop's count): see [`handshake_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandshakeStats {
    /// Finished.
    pub completed: u64,
    /// Refused or broken off: a bad or foreign record, plain HTTP, a
    /// certificate the other side would not accept, a close midway.
    pub failed: u64,
    /// Cut off at the handshake timeout (the connection reset).
    pub timed_out: u64,
    /// Closed by the peer before it finished (a health check that only
    /// connects, a client giving up).
    pub abandoned: u64,
}

thread_local! {
    static STATS: std::cell::Cell<HandshakeStats> =
        const {
            std::cell::Cell::new(HandshakeStats {
                completed: 0,
                failed: 0,
                timed_out: 0,
                abandoned: 0,
            })
        };
}

/// The handshakes [`accept`] and [`connect`] ran on this thread so far,
/// by how they ended: for a server's metrics (a rising `timed_out` is
/// clients stalling, or an attack holding connections).
pub fn handshake_stats() -> HandshakeStats {
    STATS.with(std::cell::Cell::get)
}

fn transport_error(e: TlsError) -> StreamError {
    StreamError::Transport(Arc::new(e))
}

/// Whether `e` says the peer closed before the handshake finished.
fn closed_in_handshake(e: &StreamError) -> bool {
    match e {
        StreamError::ClosedInHandshake => true,
        StreamError::Closed(Some(inner)) => closed_in_handshake(inner),
        _ => false,
    }
}

/// The [`TlsError`] behind a stream error, if TLS is why it failed.
pub fn tls_error(e: &StreamError) -> Option<&TlsError> {
    match e {
        StreamError::Transport(inner) => inner.downcast_ref::<TlsError>(),
        StreamError::Closed(Some(inner)) => tls_error(inner),
        _ => None,
    }
}
