//! The server's side of the opening handshake: which requests may become
//! a WebSocket (§4.2.1), the refusal's status, and the 101's headers.

use http::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{Method, StatusCode, Version};

use super::{WEBSOCKET_VERSION, accept_key, has_token, is_valid_key, single, tokens, values};

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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::websocket::handshake::{SAMPLE_ACCEPT, SAMPLE_KEY, test_headers as request};

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
}
