//! Switching protocols (RFC 9110 §7.8, §15.2.2): a handler's 101 hands the
//! connection's stream to another protocol (WebSocket), and HTTP is done
//! with it.

use http::{Method, StatusCode, Version};

use super::encode::Persist;
use super::io::{Io, Stop};
use super::message::{OnUpgrade, Response};

/// Sends `response` (a 101 whose new protocol is `on_upgrade`) after the responses
/// already pending, then runs the new protocol on the stream until it
/// ends. A 101 the client did not ask for, or an upgrade on another
/// status, is a handler's bug: the client gets a 500 and the connection
/// closes, rather than a protocol it cannot expect.
pub(crate) async fn switch(
    io: &mut Io,
    response: Response,
    on_upgrade: OnUpgrade,
    version: Version,
    method: Method,
    asked: bool,
) -> Result<Persist, Stop> {
    if !asked || response.status != StatusCode::SWITCHING_PROTOCOLS {
        tracing::error!(
            "handler answered {} with a protocol switch the request did not ask for",
            response.status
        );
        let refusal =
            Response::text("500 Internal Server Error\n").status(StatusCode::INTERNAL_SERVER_ERROR);
        io.put_response(refusal, version, &method, Persist::Close);
        return Ok(Persist::Close);
    }
    // Keep-alive: the 101's own `Connection: upgrade` is the only one.
    io.put_response(response, version, &method, Persist::KeepAlive);
    io.flush().await?;
    // Bytes the client sent after its request stay in the stream's buffer
    // for the new protocol to read first.
    on_upgrade.call(io.stream.clone()).await;
    Ok(Persist::Close)
}
