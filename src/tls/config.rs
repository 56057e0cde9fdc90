//! Server and client TLS settings: certificates from PEM, SNI, ALPN, the
//! protocol versions, session tickets and client certificates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::error::TlsError;
use super::keys::{certified_key, parse_chain, parse_key, provider};
use super::resolver::SniResolver;

/// How long a handshake may take before the connection is reset: a
/// client on a slow mobile link needs a few round trips, nothing
/// legitimate needs more (nginx leaves it to `client_header_timeout`,
/// 60 s; Tornado to its one-hour idle timeout).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TLS 1.3 and 1.2, nothing older.
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server's TLS settings, cheap to clone (the rustls configuration is
/// shared, and so are its session-ticket keys).
///
/// ```
/// use cyclone::tls::{SelfSigned, TlsConfig};
///
/// let dev = SelfSigned::generate(&["localhost"]).unwrap();
/// let tls = TlsConfig::from_pem(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes()).unwrap();
/// assert_eq!(tls.alpn_protocols(), [b"http/1.1".to_vec()]);
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    pub(crate) server: Arc<ServerConfig>,
    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// One certificate chain and its key, in PEM (the chain leaf first;
    /// the key PKCS#8, PKCS#1 RSA or SEC1 EC), for HTTP/1.1.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<TlsConfig, TlsError> {
        TlsConfig::builder().certificate(cert_chain, key)?.build()
    }

    /// [`from_pem`](Self::from_pem) from files; errors name the file.
    pub fn from_pem_files(
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<TlsConfig, TlsError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let chain = read(cert_chain)?;
        let key_pem = read(key)?;
        let certs = parse_chain(&chain).map_err(|reason| file_error(cert_chain, reason))?;
        let key_der = parse_key(&key_pem).map_err(|reason| file_error(key, reason))?;
        let certified = CertifiedKey::from_der(certs, key_der, &provider())
            .map_err(|e| file_error(key, format!("does not match the certificate: {e}")))?;
        TlsConfig::builder().certified(Arc::new(certified)).build()
    }

    /// Settings beyond one certificate: several by name (SNI), other
    /// ALPN protocols, client certificates, no session tickets.
    pub fn builder() -> TlsConfigBuilder {
        TlsConfigBuilder {
            resolver: SniResolver::default(),
            alpn: vec![b"http/1.1".to_vec()],
            client_ca: None,
            tickets: true,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// The protocols offered through ALPN, in preference order.
    pub fn alpn_protocols(&self) -> &[Vec<u8>] {
        &self.server.alpn_protocols
    }
}

/// Builds a [`TlsConfig`]: see [`TlsConfig::builder`].
pub struct TlsConfigBuilder {
    resolver: SniResolver,
    alpn: Vec<Vec<u8>>,
    client_ca: Option<(RootCertStore, bool)>,
    tickets: bool,
    handshake_timeout: Duration,
}

impl TlsConfigBuilder {
    /// The certificate for clients whose name matches no other (or who
    /// send none): the first one given, unless
    /// [`default_certificate`](Self::default_certificate) says otherwise.
    pub fn certificate(self, cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        Ok(self.certified(certified_key(cert_chain, key)?))
    }

    fn certified(mut self, key: Arc<CertifiedKey>) -> Self {
        if !self.resolver.has_default() {
            self.resolver.set_default(key);
        }
        self
    }

    /// Makes this certificate the default (see
    /// [`certificate`](Self::certificate)).
    pub fn default_certificate(mut self, cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        self.resolver.set_default(certified_key(cert_chain, key)?);
        Ok(self)
    }

    /// A certificate for clients asking for `name` through SNI: a DNS
    /// name, or a wildcard one level deep (`*.example.com`).
    pub fn certificate_for(
        mut self,
        name: &str,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<Self, TlsError> {
        self.resolver.add(name, certified_key(cert_chain, key)?);
        Ok(self)
    }

    /// The ALPN protocols to accept, in preference order (default
    /// `http/1.1`). A client that offers none of them is refused
    /// (`no_application_protocol`), so a server never speaks a protocol
    /// it does not serve; a client that uses no ALPN is accepted.
    pub fn alpn(mut self, protocols: &[&str]) -> Self {
        self.alpn = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Asks clients for a certificate signed by one of the CAs in
    /// `ca_pem`; with `required`, a client without one is refused, else
    /// it is let in (and its handler sees no certificate).
    pub fn client_auth(mut self, ca_pem: &[u8], required: bool) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in parse_chain(ca_pem).map_err(TlsError::Other)? {
            roots
                .add(cert)
                .map_err(|e| TlsError::Other(format!("client CA: {e}")))?;
        }
        self.client_ca = Some((roots, required));
        Ok(self)
    }

    /// Whether to resume sessions with tickets (default: yes; a ticket key
    /// made at start-up and rotated every 6 hours by rustls).
    pub fn session_tickets(mut self, on: bool) -> Self {
        self.tickets = on;
        self
    }

    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The configuration; fails without any certificate.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        if !self.resolver.has_default() {
            return Err(TlsError::Other(
                "a TLS server needs a certificate: none was given".into(),
            ));
        }
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(TlsError::from)?;
        let builder = match self.client_ca {
            None => builder.with_no_client_auth(),
            Some((roots, required)) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsError::Other(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(self.resolver));
        server.alpn_protocols = self.alpn;
        if self.tickets {
            server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::from)?;
        } else {
            server.send_tls13_tickets = 0;
        }
        Ok(TlsConfig {
            server: Arc::new(server),
            handshake_timeout: self.handshake_timeout,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(path, e.to_string()))
}

fn file_error(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::File {
        file: path.display().to_string(),
        reason: reason.into(),
    }
}
