//! [`WebSocketHandler`]: Tornado's `WebSocketHandler`, routed with
//! [`Application::websocket`](super::Application::websocket). One handler
//! instance per connection; its hooks run on the loop, one at a time.

use http::StatusCode;
use http::header::HOST;

use super::request::Request;
use crate::http1::Response;
use crate::websocket::{
    self, CloseCode, CloseInfo, DeflateConfig, Event, Message, Offer, Reader, WebSocket,
    WebSocketOptions,
};

/// A WebSocket endpoint in Tornado's shape: a fresh handler per
/// connection, [`open`](Self::open) once the handshake is done, then
/// [`on_message`](Self::on_message) for each message, and
/// [`on_close`](Self::on_close) at the end.
///
/// `on_message` is async and the next message is not read until it
/// returns: a slow handler slows its peer down (TCP's own flow control)
/// instead of queueing messages without bound. Send with the
/// [`WebSocket`] handle each hook gets (keep a clone to send later, or
/// [`WebSocket::remote`] for other threads).
///
/// ```
/// use cyclone::web::{Application, WebSocketHandler};
/// use cyclone::websocket::{Message, WebSocket};
///
/// #[derive(Default)]
/// struct Echo;
///
/// impl WebSocketHandler for Echo {
///     async fn on_message(&mut self, ws: &WebSocket, message: Message) {
///         // Awaiting the write: a peer that reads slowly slows us down.
///         let _ = ws.write_message(message).await;
///     }
/// }
///
/// let app = Application::new().websocket("/ws/echo", Echo::default);
/// ```
#[allow(async_fn_in_trait)] // handlers run on one loop: no Send bound wanted
pub trait WebSocketHandler: 'static {
    /// Whether to accept a cross-origin connection: browsers send the
    /// page's origin, and a page from elsewhere must not use the user's
    /// cookies on this server. The default allows only an `Origin` whose
    /// host (and port) is the request's `Host`; a request without
    /// `Origin` (not from a browser) is always allowed. Refused: 403.
    fn check_origin(&self, origin: &str, req: &Request) -> bool {
        let host = req.headers.get(HOST).and_then(|h| h.to_str().ok());
        same_origin(origin, host)
    }

    /// Picks one of the subprotocols the client offered (in its order of
    /// preference), or none (the default). A choice the client did not
    /// offer is never sent: it is logged and the connection goes on
    /// without a subprotocol.
    fn select_subprotocol(&self, _offered: &[String]) -> Option<String> {
        None
    }

    /// permessage-deflate: `Some` accepts a client's offer with this
    /// configuration. Off by default, as in Tornado: compression costs
    /// CPU per message and memory per connection (a window and tables
    /// for each direction).
    fn compression_options(&self) -> Option<DeflateConfig> {
        None
    }

    /// The connection's limits and timers (message size, write buffer,
    /// keepalive pings, close timeout); the compression field is taken
    /// from [`compression_options`](Self::compression_options).
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default()
    }

    /// The connection is open. `req` is the handshake request (its path
    /// arguments, cookies and headers); keep what you need of it.
    async fn open(&mut self, _ws: &WebSocket, _req: &Request) {}

    /// A text or binary message arrived.
    async fn on_message(&mut self, ws: &WebSocket, message: Message);

    /// A Ping arrived (a Pong has already been sent back).
    fn on_ping(&mut self, _ws: &WebSocket, _payload: &[u8]) {}

    /// A Pong arrived.
    fn on_pong(&mut self, _ws: &WebSocket, _payload: &[u8]) {}

    /// The connection closed: `info` has the peer's close code and
    /// reason (1005 if its Close had none, 1006 if it sent none).
    fn on_close(&mut self, _info: &CloseInfo) {}
}

/// Whether `origin`'s host and port are those of `host` (the request's
/// `Host`).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else {
        return false;
    };
    let Ok(uri) = origin.parse::<http::Uri>() else {
        return false; // "null" (a sandboxed page, a file) and garbage
    };
    let Some(authority) = uri.authority() else {
        return false;
    };
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return false,
    };
    let (host_name, host_port) = match host.parse::<http::uri::Authority>() {
        Ok(a) => (a.host().to_string(), a.port_u16()),
        Err(_) => return false,
    };
    authority.host().eq_ignore_ascii_case(&host_name)
        && authority.port_u16().unwrap_or(default_port) == host_port.unwrap_or(default_port)
}

/// Answers one handshake request for a route of `H`s.
pub(crate) async fn handshake<H: WebSocketHandler>(handler: H, req: Request) -> Response {
    let offer = match Offer::from_request(&req.method, req.version, &req.headers) {
        Ok(offer) => offer,
        Err(e) => return websocket::refusal(&e),
    };
    if let Some(origin) = offer.origin()
        && !handler.check_origin(origin, &req)
    {
        return Response::text("403 Forbidden: cross-origin WebSocket refused\n")
            .status(StatusCode::FORBIDDEN);
    }
    let choice = handler.select_subprotocol(offer.protocols());
    let mut options = handler.options();
    options.compression = handler.compression_options();
    websocket::respond(&offer, choice, options, move |ws, reader| {
        run(handler, req, ws, reader)
    })
}

/// One connection: its handler and both halves, captured once by the
/// session's future and borrowed by every step of it (moving them into
/// an `async fn` would store them twice: rust-lang/rust#62958).
struct Session<H> {
    handler: H,
    ws: WebSocket,
    reader: Reader,
}

/// One connection's life: `open`, the messages, `on_close`. A panic in a
/// hook closes the connection with 1011 and is logged; the server goes on.
fn run<H: WebSocketHandler>(
    handler: H,
    req: Request,
    ws: WebSocket,
    reader: Reader,
) -> impl std::future::Future<Output = ()> {
    let mut s = Session {
        handler,
        ws,
        reader,
    };
    // Boxed as well: a future keeps what it captures for its whole life.
    let req = Box::new(req);
    async move {
        let _open = crate::stats::OpenWebSocket::new();
        let opened = crate::ioloop::CatchUnwind::new(async {
            // Boxed: the request is not kept for the connection's life.
            Box::pin(s.handler.open(&s.ws, &req)).await;
        })
        .await;
        drop(req);
        let session = match opened {
            Ok(()) => crate::ioloop::CatchUnwind::new(serve(&mut s)).await,
            Err(panic) => Err(panic),
        };
        if let Err(panic) = session {
            crate::stats::handler_panic(1);
            tracing::error!(
                "websocket handler panicked: {}",
                crate::ioloop::panic_message_of(&*panic)
            );
            let _ = Box::pin(s.ws.close(CloseCode::INTERNAL, "internal error")).await;
        }
    }
}

/// Delivers events to the handler until the connection closes.
async fn serve<H: WebSocketHandler>(s: &mut Session<H>) {
    loop {
        match s.reader.next().await {
            Event::Message(m) => s.handler.on_message(&s.ws, m).await,
            Event::Ping(p) => s.handler.on_ping(&s.ws, &p),
            Event::Pong(p) => s.handler.on_pong(&s.ws, &p),
            Event::Closed(info) => return s.handler.on_close(&info),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str) -> Option<&str> {
        Some(h)
    }

    #[test]
    fn an_origin_on_the_same_host_and_port_is_allowed() {
        assert!(same_origin(
            "http://example.com:8888",
            host("example.com:8888")
        ));
    }

    #[test]
    fn an_origin_host_differing_only_in_case_is_allowed() {
        assert!(same_origin("http://Example.COM", host("example.com")));
    }

    #[test]
    fn an_origin_on_another_host_is_refused() {
        assert!(!same_origin("http://evil.example", host("example.com")));
    }

    #[test]
    fn an_origin_on_another_port_is_refused() {
        assert!(!same_origin(
            "http://example.com:9999",
            host("example.com:8888")
        ));
    }

    #[test]
    fn the_null_origin_is_refused() {
        assert!(!same_origin("null", host("example.com")));
    }

    #[test]
    fn the_default_port_of_the_origin_scheme_matches_a_bare_host() {
        assert!(same_origin("http://example.com:80", host("example.com")));
    }
}
