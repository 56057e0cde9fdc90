//! Which certificate a server presents: by the name the client asked for
//! (SNI), else the default one.
//!
//! rustls' own `ResolvesServerCertUsingSni` matches names exactly and has
//! nothing for a client that sends no name, as every client connecting to
//! an IP address does (`curl https://127.0.0.1/`): here an exact name
//! wins, then a wildcard one level up (`*.example.com`), then the default.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct SniResolver {
    /// Lower-case names (and `*.`-prefixed wildcards) to certificates.
    names: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// Presents `key` for `name` (exact, or `*.domain`).
    pub(crate) fn add(&mut self, name: &str, key: Arc<CertifiedKey>) {
        self.names.insert(name.to_ascii_lowercase(), key);
    }

    /// Presents `key` when no name matches (or none was sent).
    pub(crate) fn set_default(&mut self, key: Arc<CertifiedKey>) {
        self.default = Some(key);
    }

    pub(crate) fn has_default(&self) -> bool {
        self.default.is_some()
    }

    fn lookup(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = name {
            let name = name.to_ascii_lowercase();
            if let Some(key) = self.names.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = self.names.get(&format!("*.{parent}"))
            {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Arc<CertifiedKey> {
        let cert = super::super::selfsigned::SelfSigned::generate(&[name]).unwrap();
        super::super::keys::certified_key(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
            .unwrap()
    }

    #[test]
    fn an_exact_name_wins_then_a_wildcard_then_the_default() {
        let (exact, wild, default) = (key("a.example"), key("*.example"), key("localhost"));
        let mut r = SniResolver::default();
        r.add("A.example", exact.clone());
        r.add("*.example", wild.clone());
        r.set_default(default.clone());
        assert!(Arc::ptr_eq(&r.lookup(Some("a.EXAMPLE")).unwrap(), &exact));
        assert!(Arc::ptr_eq(&r.lookup(Some("b.example")).unwrap(), &wild));
        assert!(Arc::ptr_eq(
            &r.lookup(Some("x.b.example")).unwrap(),
            &default
        ));
        assert!(Arc::ptr_eq(&r.lookup(None).unwrap(), &default));
    }

    #[test]
    fn without_a_default_an_unknown_name_gets_nothing() {
        let mut r = SniResolver::default();
        r.add("a.example", key("a.example"));
        assert!(r.lookup(Some("b.example")).is_none());
        assert!(r.lookup(None).is_none());
    }
}
