//! Server and client TLS settings: certificates from PEM, SNI, ALPN, the
//! protocol versions, session tickets and client certificates.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

use super::error::TlsError;
use super::keys::{Part, certified_key, load_certified, parse_chain, provider};
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
        TlsConfig::builder()
            .certificate_files(cert_chain, key)?
            .build()
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
            cipher_suites: None,
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
    cipher_suites: Option<Vec<String>>,
}

impl TlsConfigBuilder {
    /// The certificate for clients whose name matches no other (or who
    /// send none): the first one given, unless
    /// [`default_certificate`](Self::default_certificate) says otherwise.
    pub fn certificate(self, cert_chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        Ok(self.certified(certified_key(cert_chain, key)?))
    }

    /// [`certificate`](Self::certificate) from files; errors name the
    /// file ([`TlsError::File`]).
    pub fn certificate_files(
        self,
        cert_chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (cert_chain, key) = (cert_chain.as_ref(), key.as_ref());
        let certified =
            load_certified(&read(cert_chain)?, &read(key)?).map_err(|(part, why)| {
                let file = match part {
                    Part::Chain => cert_chain,
                    Part::Key => key,
                };
                file_error(file, why)
            })?;
        Ok(self.certified(certified))
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

    /// Whether clients may resume sessions (default: yes, with tickets: a
    /// key made at start-up and rotated every 6 hours by rustls; TLS 1.2
    /// clients also by session ID, from a cache of 256). Off: every
    /// handshake is a full one.
    pub fn session_tickets(mut self, on: bool) -> Self {
        self.tickets = on;
        self
    }

    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Only these cipher suites, in this order of preference (the
    /// server's order then wins over the client's). Names as IANA writes
    /// them (`TLS_AES_128_GCM_SHA256`,
    /// `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`) or as rustls does
    /// (`TLS13_AES_128_GCM_SHA256`); [`build`](Self::build) fails on a
    /// name it does not know. Default: rustls' safe suites, the client's
    /// preference first.
    pub fn cipher_suites(mut self, names: &[&str]) -> Self {
        self.cipher_suites = Some(names.iter().map(|n| n.to_string()).collect());
        self
    }

    /// The configuration; fails without any certificate.
    pub fn build(self) -> Result<TlsConfig, TlsError> {
        if !self.resolver.has_default() {
            return Err(TlsError::Other(
                "a TLS server needs a certificate: none was given".into(),
            ));
        }
        let mut provider = provider();
        if let Some(names) = &self.cipher_suites {
            let all = provider.cipher_suites.clone();
            let mut chosen = Vec::new();
            for name in names {
                let found = all.iter().find(|s| suite_name_matches(s.suite(), name));
                match found {
                    Some(suite) => chosen.push(*suite),
                    None => {
                        return Err(TlsError::Other(format!("unknown cipher suite {name:?}")));
                    }
                }
            }
            Arc::make_mut(&mut provider).cipher_suites = chosen;
        }
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
        // A chosen order is the server's to keep.
        server.ignore_client_order = self.cipher_suites.is_some();
        if self.tickets {
            server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::from)?;
        } else {
            // No resumption at all: no tickets, and no TLS 1.2 session IDs.
            server.send_tls13_tickets = 0;
            server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        }
        Ok(TlsConfig {
            server: Arc::new(server),
            handshake_timeout: self.handshake_timeout,
        })
    }
}

/// Whether `suite` is called `name`, in rustls' spelling or IANA's (whose
/// TLS 1.3 names start `TLS_` where rustls' start `TLS13_`).
fn suite_name_matches(suite: rustls::CipherSuite, name: &str) -> bool {
    let ours = format!("{suite:?}");
    let iana = ours.replacen("TLS13_", "TLS_", 1);
    name.eq_ignore_ascii_case(&ours) || name.eq_ignore_ascii_case(&iana)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> TlsConfigBuilder {
        let dev = super::super::SelfSigned::generate(&["localhost"]).unwrap();
        TlsConfig::builder()
            .certificate(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes())
            .unwrap()
    }

    #[test]
    fn an_unknown_cipher_suite_is_refused_by_name() {
        let e = builder()
            .cipher_suites(&["TLS_RC4_FOREVER"])
            .build()
            .unwrap_err();
        assert_eq!(e.to_string(), "unknown cipher suite \"TLS_RC4_FOREVER\"");
    }

    #[test]
    fn cipher_suites_are_kept_in_the_order_given_and_the_server_decides() {
        let config = builder()
            .cipher_suites(&[
                "tls_aes_128_gcm_sha256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ])
            .build()
            .unwrap();
        let suites: Vec<_> = config
            .server
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(
            suites,
            [
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256,
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            ]
        );
        assert!(config.server.ignore_client_order);
    }

    #[test]
    fn a_builder_without_a_certificate_is_refused() {
        assert!(TlsConfig::builder().build().is_err());
    }
}
