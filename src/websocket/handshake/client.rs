//! The client's side of the opening handshake: the request's headers and
//! the checks on the server's answer (§4.1).

use base64::Engine;
use http::StatusCode;
use http::header::{
    CONNECTION, HeaderMap, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_EXTENSIONS,
    SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION, UPGRADE,
};

use super::{KEY_BYTES, WEBSOCKET_VERSION, accept_key, has_token, single, values};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::websocket::handshake::server::Offer;
    use crate::websocket::handshake::{SAMPLE_ACCEPT, SAMPLE_KEY, test_headers as request};
    use http::{Method, Version};

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
