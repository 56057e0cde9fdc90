//! Certificates and keys from PEM, and the crypto provider they are
//! used with.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::error::TlsError;

/// The crypto provider every configuration here uses: aws-lc-rs.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Which input a certificate could not be loaded from.
pub(crate) enum Part {
    Chain,
    Key,
}

/// A certificate chain and its key, checked to belong together; on
/// failure, which of the two is at fault and why.
pub(crate) fn load_certified(
    cert_chain: &[u8],
    key: &[u8],
) -> Result<Arc<CertifiedKey>, (Part, String)> {
    let certs = parse_chain(cert_chain).map_err(|why| (Part::Chain, why))?;
    let key = parse_key(key).map_err(|why| (Part::Key, why))?;
    let certified = CertifiedKey::from_der(certs, key, &provider())
        .map_err(|e| (Part::Key, format!("does not match the certificate: {e}")))?;
    Ok(Arc::new(certified))
}

/// [`load_certified`], its failure said in words.
pub(crate) fn certified_key(cert_chain: &[u8], key: &[u8]) -> Result<Arc<CertifiedKey>, TlsError> {
    load_certified(cert_chain, key).map_err(|(part, why)| match part {
        Part::Chain => TlsError::Other(why),
        Part::Key => TlsError::Other(format!("the key {why}")),
    })
}

pub(crate) fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

pub(crate) fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no private key in it (expected PKCS#8, RSA or EC PRIVATE KEY)".to_string()
        }
        other => format!("not a PEM private key: {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its PKCS#8 key for `alg`, in PEM.
    fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn rsa_and_ecdsa_keys_load_with_their_certificates() {
        for alg in [
            &rcgen::PKCS_RSA_SHA256,
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let (cert, key) = pair(alg);
            certified_key(cert.as_bytes(), key.as_bytes())
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let (cert, _) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other_key) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let e = certified_key(cert.as_bytes(), other_key.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn pem_without_the_expected_item_says_what_was_expected() {
        assert!(
            parse_chain(b"hello")
                .unwrap_err()
                .contains("BEGIN CERTIFICATE")
        );
        assert!(
            parse_key(b"hello")
                .unwrap_err()
                .contains("PKCS#8, RSA or EC")
        );
    }
}
