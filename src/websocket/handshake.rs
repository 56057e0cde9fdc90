//! The opening handshake (RFC 6455 §4), both sides, sans-I/O: which
//! requests may become a WebSocket and the headers that say yes
//! (server), the request to send and the checks on the answer (client).
//!
//! The server side decides from a request's method, version and headers;
//! a refusal carries its status (400, or 426 with `Sec-WebSocket-Version:
//! 13` for a version we do not speak, §4.4), never a 101. Extensions
//! (`Sec-WebSocket-Extensions`) are handed on as offered: permessage-deflate
//! decides what to accept.

use base64::Engine;
use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, StatusCode, Version};
use sha1::{Digest, Sha1};

/// The protocol version this implementation speaks (§4.1): the only one
/// RFC 6455 defines.
pub const WEBSOCKET_VERSION: &str = "13";

/// Appended to the client's key before hashing (§1.3): a value no other
/// protocol would produce, so a 101 proves the server read the handshake.
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Key` is 16 random bytes (§4.1), 24 characters of
/// base64.
const KEY_BYTES: usize = 16;

/// Why a request cannot become a WebSocket, with the answer it gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not GET (§4.1).
    #[error("a WebSocket handshake must be a GET")]
    NotGet,
    /// The request is not HTTP/1.1 or later (§4.1).
    #[error("a WebSocket handshake needs HTTP/1.1")]
    OldHttp,
    /// `Upgrade` does not name `websocket`.
    #[error("can \"Upgrade\" only to \"websocket\"")]
    NotWebSocketUpgrade,
    /// `Connection` does not carry the `upgrade` token.
    #[error("\"Connection\" must include \"upgrade\"")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Key` is missing, repeated, or not 16 bytes of base64.
    #[error("\"Sec-WebSocket-Key\" must be 16 bytes in base64")]
    BadKey,
    /// `Sec-WebSocket-Version` is missing or not 13: answered with 426 and
    /// the version we speak (§4.4).
    #[error("unsupported WebSocket version; this server speaks 13")]
    UnsupportedVersion,
}

impl HandshakeError {
    /// The status that refuses the request: 426 for a wrong version, 400
    /// otherwise.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Headers the refusal carries: `Sec-WebSocket-Version: 13` with a 426,
    /// so that the client can retry with a version we speak (§4.4).
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let HandshakeError::UnsupportedVersion = self {
            headers.insert(
                SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(WEBSOCKET_VERSION),
            );
        }
        headers
    }
}

/// A valid handshake request, as the server sees it: what the client
/// offered, waiting for the server's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    key: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
    origin: Option<String>,
}

impl Offer {
    /// Checks a request against §4.2.1: GET, HTTP/1.1 or later, `Upgrade`
    /// naming `websocket`, `Connection` carrying `upgrade` (in any case,
    /// within a token list), one `Sec-WebSocket-Key` of 16 bytes in base64
    /// and `Sec-WebSocket-Version: 13`.
    ///
    /// ```
    /// use cyclone::websocket::Offer;
    /// use http::{HeaderMap, Method, Version};
    ///
    /// let mut h = HeaderMap::new();
    /// h.insert("upgrade", "websocket".parse().unwrap());
    /// h.insert("connection", "keep-alive, Upgrade".parse().unwrap());
    /// h.insert("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap());
    /// h.insert("sec-websocket-version", "13".parse().unwrap());
    /// let offer = Offer::from_request(&Method::GET, Version::HTTP_11, &h).unwrap();
    /// let yes = offer.accept(None, None).unwrap();
    /// assert_eq!(yes["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /// ```
    pub fn from_request(
        method: &Method,
        version: Version,
        headers: &HeaderMap,
    ) -> Result<Offer, HandshakeError> {
        if method != Method::GET {
            return Err(HandshakeError::NotGet);
        }
        if version < Version::HTTP_11 {
            return Err(HandshakeError::OldHttp);
        }
        if !has_token(headers, &UPGRADE, "websocket") {
            return Err(HandshakeError::NotWebSocketUpgrade);
        }
        if !has_token(headers, &CONNECTION, "upgrade") {
            return Err(HandshakeError::NoConnectionUpgrade);
        }
        let key = single(headers, &SEC_WEBSOCKET_KEY).ok_or(HandshakeError::BadKey)?;
        if !is_valid_key(key) {
            return Err(HandshakeError::BadKey);
        }
        if single(headers, &SEC_WEBSOCKET_VERSION) != Some(WEBSOCKET_VERSION) {
            return Err(HandshakeError::UnsupportedVersion);
        }
        Ok(Offer {
            key: key.to_string(),
            protocols: tokens(headers, &SEC_WEBSOCKET_PROTOCOL)
                .map(str::to_string)
                .collect(),
            extensions: values(headers, &SEC_WEBSOCKET_EXTENSIONS)
                .map(str::to_string)
                .collect(),
            origin: single(headers, &http::header::ORIGIN).map(str::to_string),
        })
    }

    /// The subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The raw `Sec-WebSocket-Extensions` values the client sent, one per
    /// header line, for an extension (permessage-deflate) to negotiate.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// The `Origin` the browser sent, if any (for `check_origin`).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The headers of the 101 that accepts the offer: `Upgrade`,
    /// `Connection`, `Sec-WebSocket-Accept`, and the chosen subprotocol and
    /// extensions. A subprotocol the client did not offer is refused
    /// (§4.2.2: the server must pick one of the client's, or none).
    pub fn accept(
        &self,
        protocol: Option<&str>,
        extensions: Option<&str>,
    ) -> Result<HeaderMap, AcceptError> {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        let accept = accept_key(&self.key);
        headers.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
        );
        if let Some(p) = protocol {
            if !self.protocols.iter().any(|o| o == p) {
                return Err(AcceptError::UnofferedProtocol(p.to_string()));
            }
            // An offered protocol came from a header value, so it is one.
            let value = HeaderValue::from_str(p)
                .map_err(|_| AcceptError::UnofferedProtocol(p.to_string()))?;
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
        if let Some(e) = extensions {
            let value =
                HeaderValue::from_str(e).map_err(|_| AcceptError::BadExtensions(e.to_string()))?;
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, value);
        }
        Ok(headers)
    }
}

/// A 101 the server must not send: its own choices are at fault, so they
/// are refused rather than sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// A subprotocol the client never offered (§4.2.2).
    #[error("subprotocol {0:?} was not offered by the client")]
    UnofferedProtocol(String),
    /// An extensions answer that is not a valid header value.
    #[error("{0:?} is not a valid Sec-WebSocket-Extensions value")]
    BadExtensions(String),
}

/// `Sec-WebSocket-Accept` for a client's key (§4.2.2): base64 of the SHA-1
/// of the key and the protocol's GUID.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The client's side: the headers its request carries, and the checks on
/// the server's answer (§4.1, §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHandshake {
    key: String,
    protocols: Vec<String>,
    extensions: Option<String>,
}

/// Why a client refuses the server's answer to its handshake (§4.1: the
/// client then fails the WebSocket connection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientHandshakeError {
    /// The answer is not 101 Switching Protocols.
    #[error("the server answered {0} instead of 101 Switching Protocols")]
    NotSwitching(StatusCode),
    /// `Upgrade` or `Connection` does not name the upgrade to websocket.
    #[error("the server's 101 does not upgrade to websocket")]
    NotWebSocketUpgrade,
    /// `Sec-WebSocket-Accept` is missing or does not match our key.
    #[error("the server's Sec-WebSocket-Accept does not match our key")]
    BadAccept,
    /// The server chose a subprotocol we did not offer.
    #[error("the server chose subprotocol {0:?}, which we did not offer")]
    UnofferedProtocol(String),
    /// The server named extensions although we offered none.
    #[error("the server named extensions we did not offer")]
    UnofferedExtension,
}

/// What the server accepted: the subprotocol, and the extensions' header
/// value for the extension that offered them to check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The subprotocol the server chose, one we offered.
    pub protocol: Option<String>,
    /// The server's `Sec-WebSocket-Extensions`, if any.
    pub extensions: Option<String>,
}

impl ClientHandshake {
    /// A handshake with `nonce` as its key: 16 bytes that must be random
    /// (from the OS generator; the caller supplies them, as the codec's
    /// masking keys, so that this module stays deterministic to test).
    pub fn new(nonce: [u8; KEY_BYTES]) -> ClientHandshake {
        ClientHandshake {
            key: base64::engine::general_purpose::STANDARD.encode(nonce),
            protocols: Vec::new(),
            extensions: None,
        }
    }

    /// Offers these subprotocols, most preferred first.
    pub fn protocols<I, S>(mut self, protocols: I) -> ClientHandshake
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Offers extensions (a `Sec-WebSocket-Extensions` value).
    pub fn extensions(mut self, offer: impl Into<String>) -> ClientHandshake {
        self.extensions = Some(offer.into());
        self
    }

    /// The key this handshake sends.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The headers the request carries besides `Host` (the connection's
    /// business): `Upgrade`, `Connection`, the key, the version, and the
    /// offers. Fails if a subprotocol or extension offer is not a valid
    /// header value.
    pub fn request_headers(&self) -> Result<HeaderMap, http::header::InvalidHeaderValue> {
        let mut headers = HeaderMap::new();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(SEC_WEBSOCKET_KEY, HeaderValue::from_str(&self.key)?);
        headers.insert(
            SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static(WEBSOCKET_VERSION),
        );
        if !self.protocols.is_empty() {
            headers.insert(
                SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(&self.protocols.join(", "))?,
            );
        }
        if let Some(e) = &self.extensions {
            headers.insert(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(e)?);
        }
        Ok(headers)
    }

    /// Checks the server's answer (§4.1, the client's requirements).
    pub fn check_response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<Accepted, ClientHandshakeError> {
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientHandshakeError::NotSwitching(status));
        }
        if !has_token(headers, &UPGRADE, "websocket") || !has_token(headers, &CONNECTION, "upgrade")
        {
            return Err(ClientHandshakeError::NotWebSocketUpgrade);
        }
        if single(headers, &SEC_WEBSOCKET_ACCEPT) != Some(accept_key(&self.key).as_str()) {
            return Err(ClientHandshakeError::BadAccept);
        }
        let protocol = match single(headers, &SEC_WEBSOCKET_PROTOCOL) {
            None => None,
            Some(p) if self.protocols.iter().any(|o| o == p) => Some(p.to_string()),
            Some(p) => return Err(ClientHandshakeError::UnofferedProtocol(p.to_string())),
        };
        let named: Vec<&str> = values(headers, &SEC_WEBSOCKET_EXTENSIONS).collect();
        if !named.is_empty() && self.extensions.is_none() {
            return Err(ClientHandshakeError::UnofferedExtension);
        }
        Ok(Accepted {
            protocol,
            extensions: (!named.is_empty()).then(|| named.join(", ")),
        })
    }
}

/// The header's value if it appears exactly once and is text.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return None;
    }
    first.to_str().ok().map(str::trim)
}

/// Every text value of a header, trimmed, empty ones left out.
fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The comma-separated tokens of every value of a header (RFC 9110 §5.6.1
/// lists), trimmed.
fn tokens<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    values(headers, name)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whether a header's token list holds `token`, in any case. For
/// `Upgrade`, a protocol's version suffix (`websocket/13`) is ignored.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| {
        let t = t.split('/').next().unwrap_or(t);
        t.eq_ignore_ascii_case(token)
    })
}

/// 24 characters of padded base64 decoding to exactly 16 bytes.
fn is_valid_key(key: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .is_ok_and(|bytes| bytes.len() == KEY_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's sample key and its accept value (§1.3).
    const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    fn valid() -> Vec<(&'static str, &'static str)> {
        vec![
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-key", SAMPLE_KEY),
            ("sec-websocket-version", "13"),
        ]
    }

    fn with(change: (&'static str, Option<&'static str>)) -> HeaderMap {
        let mut pairs: Vec<_> = valid()
            .into_iter()
            .filter(|(n, _)| *n != change.0)
            .collect();
        if let Some(v) = change.1 {
            pairs.push((change.0, v));
        }
        request(&pairs)
    }

    fn check(headers: &HeaderMap) -> Result<Offer, HandshakeError> {
        Offer::from_request(&Method::GET, Version::HTTP_11, headers)
    }

    #[test]
    fn the_accept_key_of_the_rfc_sample_matches_section_1_3() {
        assert_eq!(accept_key(SAMPLE_KEY), SAMPLE_ACCEPT);
    }

    #[test]
    fn a_valid_request_is_an_offer_and_its_101_carries_the_accept_key() {
        let offer = check(&request(&valid())).unwrap();
        let h = offer.accept(None, None).unwrap();
        assert_eq!(h[UPGRADE], "websocket");
        assert_eq!(h[CONNECTION], "Upgrade");
        assert_eq!(h[SEC_WEBSOCKET_ACCEPT], SAMPLE_ACCEPT);
        assert!(!h.contains_key(SEC_WEBSOCKET_PROTOCOL));
    }

    #[test]
    fn only_get_may_upgrade() {
        let e = Offer::from_request(&Method::POST, Version::HTTP_11, &request(&valid()));
        assert_eq!(e, Err(HandshakeError::NotGet));
        assert_eq!(HandshakeError::NotGet.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn http_1_0_may_not_upgrade() {
        let e = Offer::from_request(&Method::GET, Version::HTTP_10, &request(&valid()));
        assert_eq!(e, Err(HandshakeError::OldHttp));
    }

    #[test]
    fn connection_upgrade_is_found_in_any_case_within_a_token_list() {
        for value in [
            "upgrade",
            "UPGRADE",
            "keep-alive, Upgrade",
            "keep-alive,upgrade , x",
        ] {
            assert!(check(&with(("connection", Some(value)))).is_ok(), "{value}");
        }
        for value in ["keep-alive", "upgraded", "close"] {
            let e = check(&with(("connection", Some(value))));
            assert_eq!(e, Err(HandshakeError::NoConnectionUpgrade), "{value}");
        }
        let e = check(&with(("connection", None)));
        assert_eq!(e, Err(HandshakeError::NoConnectionUpgrade));
    }

    #[test]
    fn upgrade_must_name_websocket_in_any_case() {
        for value in ["websocket", "WebSocket", "h2c, websocket", "websocket/13"] {
            assert!(check(&with(("upgrade", Some(value)))).is_ok(), "{value}");
        }
        for value in ["h2c", "websockets", ""] {
            let e = check(&with(("upgrade", Some(value))));
            assert_eq!(e, Err(HandshakeError::NotWebSocketUpgrade), "{value:?}");
        }
        let e = check(&with(("upgrade", None)));
        assert_eq!(e, Err(HandshakeError::NotWebSocketUpgrade));
    }

    #[test]
    fn the_key_must_be_16_bytes_of_base64_sent_once() {
        for bad in [
            "",
            "not base64!",
            "dGhlIHNhbXBsZQ==",
            "dGhlIHNhbXBsZSBub25jZSEh",
        ] {
            let e = check(&with(("sec-websocket-key", Some(bad))));
            assert_eq!(e, Err(HandshakeError::BadKey), "{bad:?}");
        }
        assert_eq!(
            check(&with(("sec-websocket-key", None))),
            Err(HandshakeError::BadKey)
        );
        let mut twice = request(&valid());
        twice.append(SEC_WEBSOCKET_KEY, HeaderValue::from_static(SAMPLE_KEY));
        assert_eq!(check(&twice), Err(HandshakeError::BadKey));
    }

    #[test]
    fn a_version_other_than_13_is_426_with_the_version_we_speak() {
        for version in [Some("8"), Some("14"), None] {
            let e = check(&with(("sec-websocket-version", version))).unwrap_err();
            assert_eq!(e, HandshakeError::UnsupportedVersion);
            assert_eq!(e.status(), StatusCode::UPGRADE_REQUIRED);
            assert_eq!(e.headers()[SEC_WEBSOCKET_VERSION], "13");
        }
    }

    #[test]
    fn other_refusals_are_400_without_a_version_header() {
        let e = HandshakeError::BadKey;
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.headers().is_empty());
    }

    #[test]
    fn offered_subprotocols_are_read_from_every_header_line_in_order() {
        let mut pairs = valid();
        pairs.push(("sec-websocket-protocol", "chat, superchat"));
        pairs.push(("sec-websocket-protocol", "v2.chat"));
        let offer = check(&request(&pairs)).unwrap();
        assert_eq!(offer.protocols(), ["chat", "superchat", "v2.chat"]);
    }

    #[test]
    fn the_server_may_choose_only_an_offered_subprotocol() {
        let mut pairs = valid();
        pairs.push(("sec-websocket-protocol", "chat"));
        let offer = check(&request(&pairs)).unwrap();
        let h = offer.accept(Some("chat"), None).unwrap();
        assert_eq!(h[SEC_WEBSOCKET_PROTOCOL], "chat");
        assert_eq!(
            offer.accept(Some("superchat"), None),
            Err(AcceptError::UnofferedProtocol("superchat".into()))
        );
    }

    #[test]
    fn extension_offers_and_origin_are_handed_on_as_sent() {
        let mut pairs = valid();
        pairs.push((
            "sec-websocket-extensions",
            "permessage-deflate; client_max_window_bits",
        ));
        pairs.push(("origin", "http://example.com"));
        let offer = check(&request(&pairs)).unwrap();
        assert_eq!(
            offer.extensions(),
            ["permessage-deflate; client_max_window_bits"]
        );
        assert_eq!(offer.origin(), Some("http://example.com"));
        let h = offer.accept(None, Some("permessage-deflate")).unwrap();
        assert_eq!(h[SEC_WEBSOCKET_EXTENSIONS], "permessage-deflate");
    }

    fn client() -> ClientHandshake {
        // The RFC's sample nonce, "the sample nonce".
        ClientHandshake::new(*b"the sample nonce")
    }

    fn answer(extra: &[(&str, &str)]) -> HeaderMap {
        let mut pairs = vec![
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", SAMPLE_ACCEPT),
        ];
        pairs.extend_from_slice(extra);
        request(&pairs)
    }

    #[test]
    fn the_client_request_carries_its_key_and_version_13() {
        let c = client().protocols(["chat", "superchat"]);
        assert_eq!(c.key(), SAMPLE_KEY);
        let h = c.request_headers().unwrap();
        assert_eq!(h[SEC_WEBSOCKET_KEY], SAMPLE_KEY);
        assert_eq!(h[SEC_WEBSOCKET_VERSION], "13");
        assert_eq!(h[SEC_WEBSOCKET_PROTOCOL], "chat, superchat");
        // What it sends, a server accepts.
        assert!(Offer::from_request(&Method::GET, Version::HTTP_11, &h).is_ok());
    }

    #[test]
    fn the_client_accepts_a_101_with_the_matching_accept_key() {
        let got = client().check_response(StatusCode::SWITCHING_PROTOCOLS, &answer(&[]));
        assert_eq!(got, Ok(Accepted::default()));
    }

    #[test]
    fn the_client_refuses_anything_but_101() {
        let got = client().check_response(StatusCode::OK, &answer(&[]));
        assert_eq!(got, Err(ClientHandshakeError::NotSwitching(StatusCode::OK)));
    }

    #[test]
    fn the_client_refuses_a_wrong_accept_key() {
        let mut h = answer(&[]);
        h.insert(
            SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_static("AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        );
        let got = client().check_response(StatusCode::SWITCHING_PROTOCOLS, &h);
        assert_eq!(got, Err(ClientHandshakeError::BadAccept));
    }

    #[test]
    fn the_client_refuses_a_101_that_does_not_upgrade_to_websocket() {
        let mut h = answer(&[]);
        h.insert(UPGRADE, HeaderValue::from_static("h2c"));
        let got = client().check_response(StatusCode::SWITCHING_PROTOCOLS, &h);
        assert_eq!(got, Err(ClientHandshakeError::NotWebSocketUpgrade));
    }

    #[test]
    fn the_client_refuses_an_unoffered_subprotocol_or_extension() {
        let c = client().protocols(["chat"]);
        let got = c.check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &answer(&[("sec-websocket-protocol", "chat")]),
        );
        assert_eq!(got.unwrap().protocol.as_deref(), Some("chat"));
        let got = c.check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &answer(&[("sec-websocket-protocol", "superchat")]),
        );
        assert_eq!(
            got,
            Err(ClientHandshakeError::UnofferedProtocol("superchat".into()))
        );
        let got = c.check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &answer(&[("sec-websocket-extensions", "permessage-deflate")]),
        );
        assert_eq!(got, Err(ClientHandshakeError::UnofferedExtension));
    }

    #[test]
    fn the_client_hands_on_the_extensions_it_offered_for_checking() {
        let c = client().extensions("permessage-deflate");
        let got = c.check_response(
            StatusCode::SWITCHING_PROTOCOLS,
            &answer(&[(
                "sec-websocket-extensions",
                "permessage-deflate; server_no_context_takeover",
            )]),
        );
        assert_eq!(
            got.unwrap().extensions.as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }
}
