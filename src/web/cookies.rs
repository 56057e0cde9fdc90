//! Cookies: parsing `Cookie`, building `Set-Cookie` (RFC 6265), and
//! signed values (HMAC-SHA256 with the application's `cookie_secret`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::url::encode_path_part;

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Also on top-level navigations from other sites.
    Lax,
    /// On every request (needs `Secure` in current browsers).
    None,
}

/// A cookie to set, with its attributes; see
/// [`Response::set_cookie`](crate::http1::Response::set_cookie).
///
/// ```
/// use cyclone::web::{Cookie, SameSite};
/// let c = Cookie::new("session", "abc").path("/").http_only().same_site(SameSite::Lax);
/// assert_eq!(c.to_header(), "session=abc; Path=/; HttpOnly; SameSite=Lax");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    name: String,
    value: String,
    path: Option<String>,
    domain: Option<String>,
    max_age: Option<i64>,
    expires: Option<SystemTime>,
    secure: bool,
    http_only: bool,
    same_site: Option<SameSite>,
}

impl Cookie {
    /// A cookie `name=value`. The value is sent as is: it must not
    /// contain `;`, `,`, whitespace or `"` (RFC 6265 §4.1.1; a response
    /// given such a cookie becomes a 500, see [`Cookie::invalid`]);
    /// signed values and [`Cookie::encoded`] ones never do.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            path: None,
            domain: None,
            max_age: None,
            expires: None,
            secure: false,
            http_only: false,
            same_site: None,
        }
    }

    /// A cookie whose value may hold any text: it is percent-encoded, and
    /// [`Request::cookie`](super::Request::cookie) decodes it.
    pub fn encoded(name: impl Into<String>, value: &str) -> Cookie {
        Cookie::new(name, encode_path_part(value))
    }

    /// `Path`.
    pub fn path(mut self, path: impl Into<String>) -> Cookie {
        self.path = Some(path.into());
        self
    }

    /// `Domain`.
    pub fn domain(mut self, domain: impl Into<String>) -> Cookie {
        self.domain = Some(domain.into());
        self
    }

    /// `Max-Age` in seconds (0 or less: delete at once).
    pub fn max_age(mut self, seconds: i64) -> Cookie {
        self.max_age = Some(seconds);
        self
    }

    /// `Expires`.
    pub fn expires(mut self, at: SystemTime) -> Cookie {
        self.expires = Some(at);
        self
    }

    /// `Secure`: sent over HTTPS only.
    pub fn secure(mut self) -> Cookie {
        self.secure = true;
        self
    }

    /// `HttpOnly`: hidden from scripts.
    pub fn http_only(mut self) -> Cookie {
        self.http_only = true;
        self
    }

    /// `SameSite`.
    pub fn same_site(mut self, same_site: SameSite) -> Cookie {
        self.same_site = Some(same_site);
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as sent.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The same cookie with another value.
    pub fn with_value(mut self, value: impl Into<String>) -> Cookie {
        self.value = value.into();
        self
    }

    /// Why this cookie cannot be sent as is, if it cannot: a name that is
    /// not a token, a value outside RFC 6265's cookie-octets, or a path or
    /// domain with `;` or control characters (each would let text inject
    /// attributes of its own).
    pub fn invalid(&self) -> Option<&'static str> {
        let token = |c: u8| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&c);
        let octet =
            |c: u8| matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e);
        let attr = |s: &str| s.bytes().all(|c| c != b';' && !c.is_ascii_control());
        if self.name.is_empty() || !self.name.bytes().all(token) {
            return Some("cookie name is not a token");
        }
        let v = self.value.as_bytes();
        let v = match v {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        if !v.iter().copied().all(octet) {
            return Some("cookie value has characters a cookie cannot carry (use Cookie::encoded)");
        }
        if !self.path.as_deref().is_none_or(attr) || !self.domain.as_deref().is_none_or(attr) {
            return Some("cookie path or domain has ';' or control characters");
        }
        None
    }

    /// The `Set-Cookie` field value.
    pub fn to_header(&self) -> String {
        let mut s = format!("{}={}", self.name, self.value);
        if let Some(p) = &self.path {
            s.push_str("; Path=");
            s.push_str(p);
        }
        if let Some(d) = &self.domain {
            s.push_str("; Domain=");
            s.push_str(d);
        }
        if let Some(m) = self.max_age {
            s.push_str(&format!("; Max-Age={m}"));
        }
        if let Some(e) = self.expires {
            s.push_str("; Expires=");
            s.push_str(&httpdate::fmt_http_date(e));
        }
        if self.secure {
            s.push_str("; Secure");
        }
        if self.http_only {
            s.push_str("; HttpOnly");
        }
        if let Some(ss) = self.same_site {
            s.push_str(match ss {
                SameSite::Strict => "; SameSite=Strict",
                SameSite::Lax => "; SameSite=Lax",
                SameSite::None => "; SameSite=None",
            });
        }
        s
    }
}

// By hand rather than the `cookie` crate: this lenient split is all the
// server reads, and Set-Cookie needs the validation `invalid` does anyway.
/// Every `name=value` pair of the `Cookie` fields, in order. Pairs
/// without `=` are skipped; surrounding double quotes are removed.
pub(crate) fn parse_cookie_header<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for header in values {
        for pair in header.split(';') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

fn mac(secret: &[u8], name: &str, payload: &str) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key");
    // The name is signed too: a value signed for one cookie is refused
    // under another name.
    mac.update(name.as_bytes());
    mac.update(b"|");
    mac.update(payload.as_bytes());
    mac
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `value` signed for cookie `name`: `base64(value)|timestamp|signature`,
/// the signature an HMAC-SHA256 over the name, the encoded value and the
/// time, with `secret`. Only characters a cookie value allows.
pub fn sign_value(secret: &[u8], name: &str, value: &[u8]) -> String {
    sign_value_at(secret, name, value, unix_now())
}

fn sign_value_at(secret: &[u8], name: &str, value: &[u8], now: u64) -> String {
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value);
    let payload = format!("{encoded}|{now}");
    let sig = mac(secret, name, &payload).finalize().into_bytes();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    format!("{payload}|{sig}")
}

/// The value inside `signed` if its signature is right for `name` and
/// `secret` and it was signed less than `max_age` ago (and not in the
/// future beyond a minute of clock skew); otherwise `None`.
pub fn verify_value(secret: &[u8], name: &str, signed: &str, max_age: Duration) -> Option<Vec<u8>> {
    verify_value_at(secret, name, signed, max_age, unix_now())
}

fn verify_value_at(
    secret: &[u8],
    name: &str,
    signed: &str,
    max_age: Duration,
    now: u64,
) -> Option<Vec<u8>> {
    let (payload, sig) = signed.rsplit_once('|')?;
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .ok()?;
    // verify_slice compares in constant time.
    mac(secret, name, payload).verify_slice(&sig).ok()?;
    let (encoded, ts) = payload.split_once('|')?;
    let ts: u64 = ts.parse().ok()?;
    /// Clocks of a server farm may differ a little.
    const SKEW: u64 = 60;
    if ts > now + SKEW || now.saturating_sub(ts) > max_age.as_secs() {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_signed_value_verifies_and_returns_the_value() {
        let s = sign_value_at(b"secret", "user", b"alice", 1_000);
        assert_eq!(
            verify_value_at(b"secret", "user", &s, DAY, 1_000),
            Some(b"alice".to_vec())
        );
    }

    #[test]
    fn a_tampered_value_is_refused() {
        let s = sign_value_at(b"secret", "user", b"alice", 1_000);
        let forged = s.replacen(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("alice"),
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("admin"),
            1,
        );
        assert_eq!(
            verify_value_at(b"secret", "user", &forged, DAY, 1_000),
            None
        );
    }

    #[test]
    fn a_value_signed_with_another_secret_or_name_is_refused() {
        let s = sign_value_at(b"secret", "user", b"alice", 1_000);
        assert_eq!(verify_value_at(b"other", "user", &s, DAY, 1_000), None);
        assert_eq!(verify_value_at(b"secret", "admin", &s, DAY, 1_000), None);
    }

    #[test]
    fn an_expired_value_is_refused() {
        let s = sign_value_at(b"secret", "user", b"alice", 1_000);
        assert_eq!(
            verify_value_at(b"secret", "user", &s, DAY, 1_000 + 86_401),
            None
        );
    }

    #[test]
    fn cookie_headers_parse_into_pairs() {
        let got = parse_cookie_header(["a=1; b=\"two\"", "c=3;bad; =x"].into_iter());
        let want: Vec<(String, String)> = [("a", "1"), ("b", "two"), ("c", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let c = Cookie::new("n", "v")
            .path("/p")
            .domain("example.com")
            .max_age(60)
            .expires(UNIX_EPOCH + Duration::from_secs(784_111_777))
            .secure()
            .http_only()
            .same_site(SameSite::Strict);
        assert_eq!(
            c.to_header(),
            "n=v; Path=/p; Domain=example.com; Max-Age=60; \
             Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; SameSite=Strict"
        );
    }
}
