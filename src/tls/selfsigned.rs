//! Development certificates: a self-signed one for `cyclone serve
//! --tls-self-signed` and for tests (never for production: nothing
//! vouches for it, so clients must be told to trust it).

use sha2::{Digest, Sha256};

use super::error::TlsError;

/// A self-signed certificate and its key, in PEM.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// SHA-256 of the certificate's DER, as `openssl x509 -fingerprint
    /// -sha256` prints it (`AB:CD:...`), for a user to check what a
    /// browser or `curl -v` shows.
    pub fingerprint: String,
}

impl SelfSigned {
    /// An ECDSA P-256 certificate for `names` (DNS names or IP addresses,
    /// e.g. `["localhost", "127.0.0.1", "::1"]`).
    ///
    /// ```
    /// let c = cyclone::tls::SelfSigned::generate(&["localhost"]).unwrap();
    /// assert!(c.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    /// assert_eq!(c.fingerprint.len(), 32 * 3 - 1);
    /// ```
    pub fn generate(names: &[&str]) -> Result<SelfSigned, TlsError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Other(format!("cannot make a certificate: {e}")))?;
        let digest = Sha256::digest(certified.cert.der());
        let fingerprint = digest
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":");
        Ok(SelfSigned {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
            fingerprint,
        })
    }
}
