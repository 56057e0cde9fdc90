//! A TLS client's settings: whom to trust, and what to offer.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use super::config::DEFAULT_HANDSHAKE_TIMEOUT;
use super::error::TlsError;
use super::keys::{certified_key, provider};

/// A TLS client's settings: the roots that certificates must chain to
/// (the system's, or a CA of one's own), ALPN, and the handshake
/// timeout. Certificates are always verified, names included.
#[derive(Clone)]
pub struct TlsClientConfig {
    pub(crate) client: Arc<ClientConfig>,
    /// See [`DEFAULT_HANDSHAKE_TIMEOUT`].
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

impl TlsClientConfig {
    /// Trusts the system's root certificates (as OpenSSL finds them:
    /// `SSL_CERT_FILE`, `SSL_CERT_DIR`, then the distribution's bundle).
    /// Fails if there are none usable.
    pub fn system_roots() -> Result<TlsClientConfig, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            let why = found
                .errors
                .first()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            return Err(TlsError::Other(format!(
                "no usable system root certificates{why} (set SSL_CERT_FILE, or use TlsClientConfig::with_ca)"
            )));
        }
        TlsClientConfig::with_roots(roots)
    }

    /// [`system_roots`](Self::system_roots), loaded once per thread
    /// (reading and parsing the bundle takes milliseconds, on the loop)
    /// and then shared with its session cache, so a second connection to
    /// a server resumes. What `wss://` and `https://` use when given no
    /// configuration.
    pub fn shared_system_roots() -> Result<TlsClientConfig, TlsError> {
        thread_local! {
            static SYSTEM_ROOTS: std::cell::OnceCell<TlsClientConfig> =
                const { std::cell::OnceCell::new() };
        }
        SYSTEM_ROOTS.with(|cell| {
            if let Some(config) = cell.get() {
                return Ok(config.clone());
            }
            let config = TlsClientConfig::system_roots()?;
            Ok(cell.get_or_init(|| config).clone())
        })
    }

    /// Trusts only the CA certificates in `ca_pem` (a private CA, or a
    /// development certificate itself).
    pub fn with_ca(ca_pem: &[u8]) -> Result<TlsClientConfig, TlsError> {
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Other(format!("CA: not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(TlsError::Other("CA: no certificate in it".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| TlsError::Other(format!("CA: {e}")))?;
        }
        TlsClientConfig::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> Result<TlsClientConfig, TlsError> {
        let client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::from)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClientConfig {
            client: Arc::new(client),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Presents this certificate chain (PEM, leaf first) and key when a
    /// server asks for one (see [`TlsConfigBuilder::client_auth`]).
    ///
    /// [`TlsConfigBuilder::client_auth`]: super::TlsConfigBuilder::client_auth
    pub fn client_certificate(
        mut self,
        cert_chain: &[u8],
        key: &[u8],
    ) -> Result<TlsClientConfig, TlsError> {
        let certified = certified_key(cert_chain, key)?;
        let client = Arc::make_mut(&mut self.client);
        client.client_auth_cert_resolver = Arc::new(Identity(certified));
        Ok(self)
    }

    /// Offers these ALPN protocols, in preference order.
    pub fn alpn(mut self, protocols: &[&str]) -> TlsClientConfig {
        let client = Arc::make_mut(&mut self.client);
        client.alpn_protocols = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }
}

/// The one identity a client has, offered whatever the server hints.
#[derive(Debug)]
struct Identity(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Identity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
