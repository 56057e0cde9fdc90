//! The server's side of an upgrade on the HTTP layer: a handshake request
//! answered with a 101 that runs a session on the connection, or with the
//! refusal the handshake's error calls for. The web layer's
//! `WebSocketHandler` is built on this; an application on the bare HTTP
//! server can use it directly.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use http::header::HeaderMap;
use http::{Method, Version};

use super::close_code::CloseCode;
use super::connection::open;
use super::frame::Role;
use super::handshake::{AcceptError, HandshakeError, Offer};
use super::negotiation::negotiate_deflate;
use super::options::WebSocketOptions;
use super::reader::Reader;
use super::socket::WebSocket;
use crate::http1::Response;

/// Answers a WebSocket handshake request with a 101 whose connection runs
/// `session`, or with the refusal its error calls for (400, or 426 with
/// `Sec-WebSocket-Version: 13`). `choose_protocol` picks one of the
/// client's subprotocols (or none); `options` sets the limits, and with
/// `compression` set, a client's permessage-deflate offer is accepted.
///
/// ```
/// use cyclone::http1::{HttpServer, Response};
/// use cyclone::websocket::{self, Event, WebSocketOptions};
///
/// let server = HttpServer::new(|req| async move {
///     websocket::upgrade(&req.method, req.version, &req.headers, |_| None,
///         WebSocketOptions::default(), |ws, mut reader| async move {
///             while let Event::Message(m) = reader.next().await {
///                 let _ = ws.write_message(m).await; // echo
///             }
///         })
/// });
/// ```
pub fn upgrade<F, Fut>(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    choose_protocol: impl FnOnce(&[String]) -> Option<String>,
    options: WebSocketOptions,
    session: F,
) -> Response
where
    F: FnOnce(WebSocket, Reader) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    match Offer::from_request(method, version, headers) {
        Err(e) => refusal(&e),
        Ok(offer) => {
            let choice = choose_protocol(offer.protocols());
            respond(&offer, choice, options, session)
        }
    }
}

/// The answer to a valid `offer`: the 101 running `session`, with the
/// application's `choice` of subprotocol. A choice the client did not
/// offer is the application's bug: it is logged and the connection goes
/// on without a subprotocol (§4.2.2 forbids sending it). A 101 that cannot
/// be made at all is a 500. For checks of its own between the offer and
/// the answer (an origin, a cookie), an application calls
/// [`Offer::from_request`], then this.
pub fn respond<F, Fut>(
    offer: &Offer,
    choice: Option<String>,
    options: WebSocketOptions,
    session: F,
) -> Response
where
    F: FnOnce(WebSocket, Reader) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let protocol = choice.filter(|p| {
        let offered = offer.protocols().contains(p);
        if !offered {
            tracing::error!(
                "the application chose subprotocol {p:?}, which the client did not offer"
            );
        }
        offered
    });
    accept(offer, protocol, options, session).unwrap_or_else(|e| {
        tracing::error!("websocket handshake not accepted: {e}");
        Response::text("500 Internal Server Error\n")
            .status(http::StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// The 101 accepting `offer` with `protocol` (which must be one the client
/// offered), permessage-deflate if `options.compression` is set and the
/// client offered it, and `session` running on the connection.
pub fn accept<F, Fut>(
    offer: &Offer,
    protocol: Option<String>,
    options: WebSocketOptions,
    session: F,
) -> Result<Response, AcceptError>
where
    F: FnOnce(WebSocket, Reader) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let negotiated = options.compression.as_ref().and_then(|config| {
        negotiate_deflate(offer.extensions().iter().map(String::as_str), config)
    });
    let (agreement, extensions) = match negotiated {
        Some((a, e)) => (Some(a), Some(e)),
        None => (None, None),
    };
    let headers = offer.accept(protocol.as_deref(), extensions.as_deref())?;
    // The open socket, for the server's drain to close with 1001.
    let opened: Rc<RefCell<Option<WebSocket>>> = Rc::default();
    let for_drain = opened.clone();
    let response = Response::switching_protocols(headers, move |stream| {
        let (ws, reader) = open(stream, Role::Server, agreement, protocol, &options);
        *opened.borrow_mut() = Some(ws.clone());
        session(ws, reader)
    });
    Ok(response.on_drain(move || {
        // RFC 6455 §7.4.1: 1001, "a server going down". The client
        // reconnects, to the server's new process if it is restarting.
        if let Some(ws) = for_drain.borrow_mut().take() {
            drop(crate::ioloop::IOLoop::current().spawn(async move {
                let _ = ws.close(CloseCode::GOING_AWAY, "server going down").await;
            }));
        }
    }))
}

/// The answer to a request that is not a valid handshake.
pub fn refusal(e: &HandshakeError) -> Response {
    let mut response = Response::text(format!("{e}\n")).status(e.status());
    response.headers.extend(e.headers());
    response
}
