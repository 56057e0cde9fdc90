//! From a request head's bytes to a [`Request`] (body still unread): the
//! head parsed, the body's framing decided, whether the connection may
//! persist after it, whether the client waits for `100 Continue`, and who
//! the client is.

use bytes::Bytes;
use http::header::{CONNECTION, EXPECT, UPGRADE};
use http::{HeaderMap, Version};

use super::decode::Body;
use super::encode::Persist;
use super::framing::{self, BodyKind};
use super::io::{Io, Stop};
use super::message::Request;
use super::parse::parse_head;
use crate::netutil::PeerAddr;

/// A request as its head announces it.
pub(crate) struct Started {
    /// The request, its body empty.
    pub(crate) request: Request,
    /// How its body follows the head.
    pub(crate) body: Body,
    /// Whether the connection may carry another request after this one.
    pub(crate) persist: Persist,
    /// Whether the client asked to switch protocols (RFC 9110 §7.8):
    /// HTTP/1.1, an `Upgrade` header and `upgrade` in `Connection`. Only
    /// then may a handler's 101 take the connection over.
    pub(crate) upgrade: bool,
}

/// Parses `head` into a [`Request`] and what follows it.
pub(crate) fn start_request(io: &Io, peer: &PeerAddr, head: Bytes) -> Result<Started, Stop> {
    let cfg = &io.shared.config;
    let head = parse_head(head, cfg.max_headers)?;
    let seen = head.seen;
    let kind = if seen.transfer_encoding || seen.content_length {
        framing::body_kind(&head.headers)?
    } else {
        BodyKind::Empty
    };
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
    // framing; whatever follows on the connection cannot be trusted.
    let te_on_1_0 = head.version == Version::HTTP_10 && seen.transfer_encoding;
    let persists = if seen.connection {
        wants_keep_alive(head.version, &head.headers)
    } else {
        head.version == Version::HTTP_11 // RFC 9112 §9.3's defaults
    };
    let persist = if !cfg.no_keep_alive && !te_on_1_0 && !io.shared.draining() && persists {
        Persist::KeepAlive
    } else {
        Persist::Close
    };
    let upgrade = seen.connection
        && head.version == Version::HTTP_11
        && head.headers.contains_key(UPGRADE)
        && connection_has(&head.headers, "upgrade");
    let body = Body {
        kind,
        send_continue: seen.expect
            && kind != BodyKind::Empty
            && head.version == Version::HTTP_11
            && expects_continue(&head.headers),
    };
    let peer_ip = match peer {
        PeerAddr::Inet(a) => Some(a.ip()),
        PeerAddr::Unix(_) => None,
    };
    let scheme = if io.stream.is_tls() { "https" } else { "http" };
    let (remote_ip, protocol) = if cfg.xheaders {
        super::xheaders::apply(&head.headers, peer_ip, &cfg.trusted_downstream, scheme)
    } else {
        (peer_ip, scheme)
    };
    let request = Request {
        method: head.method,
        uri: head.uri,
        version: head.version,
        headers: head.headers.into(),
        body: Bytes::new(),
        remote_addr: peer.clone(),
        remote_ip,
        protocol,
        connection: io.stream.watcher(),
    };
    Ok(Started {
        request,
        body,
        persist,
        upgrade,
    })
}

/// Whether `headers` list `token` in the Connection header.
fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
/// "keep-alive".
fn wants_keep_alive(version: Version, headers: &HeaderMap) -> bool {
    match version {
        Version::HTTP_11 => !connection_has(headers, "close"),
        _ => connection_has(headers, "keep-alive"),
    }
}

/// RFC 9110 §10.1.1: the client waits for `100 Continue` before sending
/// the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: Fields) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    type Fields = &'static [(&'static str, &'static str)];

    #[test]
    fn persistence_follows_rfc_9112_section_9_3() {
        let cases: &[(Version, Fields, bool)] = &[
            (Version::HTTP_11, &[], true),
            (Version::HTTP_11, &[("connection", "Close")], false),
            (Version::HTTP_11, &[("connection", "te, close")], false),
            (Version::HTTP_11, &[("connection", "keep-alive")], true),
            (Version::HTTP_10, &[], false),
            (Version::HTTP_10, &[("connection", "Keep-Alive")], true),
            (
                Version::HTTP_10,
                &[("connection", "x"), ("connection", "keep-alive")],
                true,
            ),
        ];
        for (version, h, want) in cases {
            assert_eq!(
                wants_keep_alive(*version, &headers(h)),
                *want,
                "{version:?} {h:?}"
            );
        }
    }

    #[test]
    fn only_100_continue_is_waited_for() {
        assert!(expects_continue(&headers(&[("expect", "100-Continue ")])));
        assert!(!expects_continue(&headers(&[("expect", "200-ok")])));
        assert!(!expects_continue(&headers(&[])));
    }
}
