//! What can go wrong with TLS, named so that a caller can tell a wrong
//! certificate from a wrong host, a slow peer or a bad file.

use std::time::Duration;

use rustls::CertificateError;

/// A TLS failure: in a stream's [`StreamError::Transport`] (downcast it to
/// this), or from building a configuration.
///
/// [`StreamError::Transport`]: crate::iostream::StreamError::Transport
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The server's certificate is for other names than the one asked for.
    #[error("hostname mismatch: {0}")]
    HostnameMismatch(String),
    /// The certificate (or one in its chain) has expired.
    #[error("certificate expired: {0}")]
    Expired(String),
    /// The certificate is not valid yet.
    #[error("certificate not valid yet")]
    NotValidYet,
    /// No trusted root signed the chain: a self-signed certificate, or a
    /// private CA that was not given.
    #[error("certificate issuer unknown (self-signed, or a CA that is not trusted)")]
    UnknownIssuer,
    /// The handshake did not finish in time; the connection was reset.
    #[error("TLS handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer spoke plain HTTP to a TLS port (it was answered with a
    /// plain-text 400).
    #[error("plain HTTP sent to a TLS port")]
    PlainHttp,
    /// Data was written before the handshake finished.
    #[error("the TLS handshake is not complete")]
    HandshakeNotComplete,
    /// A certificate or key file could not be used: the file and why.
    #[error("{file}: {reason}")]
    File {
        /// The file's path.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Anything else rustls refused (a bad record, an alert from the
    /// peer, no common protocol version or ALPN protocol, ...).
    #[error(transparent)]
    Rustls(#[from] RustlsError),
    /// Something else, said in words.
    #[error("{0}")]
    Other(String),
}

/// A rustls error, wrapped so that [`TlsError`] can be `Clone` whatever
/// rustls' error is.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RustlsError(pub rustls::Error);

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> TlsError {
        use rustls::Error::InvalidCertificate as Invalid;
        match e {
            Invalid(CertificateError::NotValidForName)
            | Invalid(CertificateError::NotValidForNameContext { .. }) => {
                TlsError::HostnameMismatch(e.to_string())
            }
            Invalid(CertificateError::Expired)
            | Invalid(CertificateError::ExpiredContext { .. }) => TlsError::Expired(e.to_string()),
            Invalid(CertificateError::NotValidYet)
            | Invalid(CertificateError::NotValidYetContext { .. }) => TlsError::NotValidYet,
            Invalid(CertificateError::UnknownIssuer) => TlsError::UnknownIssuer,
            other => TlsError::Rustls(RustlsError(other)),
        }
    }
}
