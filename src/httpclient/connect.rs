//! Opening a connection for a request: straight to the origin, to a
//! forward proxy, or through a proxy's `CONNECT` tunnel (RFC 9110
//! §9.3.6); then TLS for `https://`. All within `connect_timeout`.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::StatusCode;

use super::config::Proxy;
use super::error::{FetchError, TimeoutKind};
use super::url::Target;
use crate::iostream::IOStream;
use crate::tcpclient::TcpClient;
use crate::tls::TlsClientConfig;

/// The longest answer to `CONNECT` read (a proxy's 200 is a few lines).
const MAX_CONNECT_ANSWER: usize = 16 << 10;

/// A new connection and what opening it took.
pub(crate) struct Opened {
    pub(crate) stream: IOStream,
    pub(crate) connect: Duration,
    pub(crate) tls: Duration,
}

/// Opens a connection for `target` (through `proxy` if given) within
/// `limit`.
pub(crate) async fn open(
    target: &Target<'_>,
    proxy: Option<&Proxy>,
    tls: Option<&TlsClientConfig>,
    limit: Duration,
) -> Result<Opened, FetchError> {
    match crate::ioloop::timeout(limit, open_inner(target, proxy, tls, limit)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::Timeout(TimeoutKind::Connect)),
    }
}

async fn open_inner(
    target: &Target<'_>,
    proxy: Option<&Proxy>,
    tls: Option<&TlsClientConfig>,
    limit: Duration,
) -> Result<Opened, FetchError> {
    let started = Instant::now();
    let stream = match proxy {
        Some(p) => TcpClient::connect(&p.host, p.port, limit).await?,
        None => TcpClient::connect(&target.host, target.port, limit).await?,
    };
    // Requests are written whole: Nagle would only hold back a body
    // written after its head.
    let _ = stream.set_nodelay(true);
    if let (Some(p), true) = (proxy, target.secure) {
        tunnel(&stream, target, p).await?;
    }
    let connect = started.elapsed();
    if !target.secure {
        return Ok(Opened {
            stream,
            connect,
            tls: Duration::ZERO,
        });
    }
    let shared;
    let config = match tls {
        Some(c) => c,
        None => {
            shared = TlsClientConfig::shared_system_roots().map_err(|e| FetchError::Tls {
                host: target.host.to_string(),
                source: crate::iostream::StreamError::Transport(std::sync::Arc::new(e)),
            })?;
            &shared
        }
    };
    let handshake = Instant::now();
    crate::tls::connect(&stream, config, &target.host)
        .await
        .map_err(|source| match crate::tls::tls_error(&source) {
            // The handshake's own limit is a connect timeout to a caller.
            Some(crate::tls::TlsError::HandshakeTimeout(_)) => {
                FetchError::Timeout(TimeoutKind::Connect)
            }
            _ => FetchError::Tls {
                host: target.host.to_string(),
                source,
            },
        })?;
    Ok(Opened {
        stream,
        connect,
        tls: handshake.elapsed(),
    })
}

/// Asks the proxy for a tunnel to the target: any 2xx opens it; the
/// proxy's other answers are refusals (407: credentials wanted).
async fn tunnel(stream: &IOStream, target: &Target<'_>, proxy: &Proxy) -> Result<(), FetchError> {
    let host = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let mut head = BytesMut::with_capacity(128);
    for part in ["CONNECT ", &host, " HTTP/1.1\r\nHost: ", &host, "\r\n"] {
        head.extend_from_slice(part.as_bytes());
    }
    if let Some(auth) = &proxy.auth {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(auth.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream
        .write(head.freeze())
        .await
        .map_err(FetchError::Stream)?;
    let answer = stream
        .read_until(b"\r\n\r\n", Some(MAX_CONNECT_ANSWER))
        .await
        .map_err(|e| match e {
            crate::iostream::StreamError::Unsatisfiable { .. } => {
                FetchError::Malformed("the proxy's answer to CONNECT is too long".into())
            }
            e => FetchError::Stream(e),
        })?;
    let mut slots = [httparse::EMPTY_HEADER; super::decode::MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    match parsed.parse(&answer) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => {
            return Err(FetchError::Malformed(
                "the proxy's answer to CONNECT is not an HTTP response".into(),
            ));
        }
    }
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    if !status.is_success() {
        return Err(FetchError::Proxy { status });
    }
    Ok(())
}
