//! Switching protocols (RFC 9110 §7.8, §15.2.2): a handler's 101 hands the
//! connection's stream to another protocol (WebSocket), and HTTP is done
//! with it.

use http::{Method, StatusCode, Version};

use super::encode::Persist;
use super::io::{Io, Stop};
use super::message::{OnUpgrade, Response};

/// Sends `response` (a 101 whose new protocol is `on_upgrade`) after the
/// responses already pending, and hands the protocol back as
/// [`Stop::Upgrade`]: the connection's top level runs it, once the state
/// of serving requests (about 1 KiB) is gone, so an upgraded connection
/// that idles for hours does not keep it. A 101 the client did not ask
/// for, or an upgrade on another status, is a handler's bug: the client
/// gets a 500 and the connection closes, rather than a protocol it cannot
/// expect.
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
    // The new protocol may live for hours: HTTP's output buffer goes back
    // to the pool now rather than idle beside it.
    io.release_output();
    Err(Stop::Upgrade(on_upgrade))
}
