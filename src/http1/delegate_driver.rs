//! Driving an [`HttpDelegate`] through one request: the head to
//! `headers_received`, the body in pieces to `data_received` as it
//! arrives, then `finish` with a [`ResponseWriter`] (or
//! `on_connection_close` if the body never completes). Each call into the
//! delegate is user code, so each runs under `catch_unwind`: a panic is a
//! 500, not a silently dropped connection.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use bytes::Bytes;
use http::StatusCode;

use super::decode::{self, Body};
use super::delegate::HeadersAction;
use super::encode::Persist;
use super::io::{Io, Stop};
use super::message::Request;
use super::service::DelegateFactory;
use super::writer::{Progress, ResponseWriter, WriterState};
use crate::ioloop::CatchUnwind;

/// Serves `request` with a delegate from `factory`. `Ok(persist)`:
/// whether the connection may carry another request.
pub(crate) async fn serve_with_delegate(
    io: &mut Io,
    factory: Rc<DelegateFactory>,
    request: Request,
    body: Body,
    persist: Persist,
) -> Result<Persist, Stop> {
    let started = crate::stats::turn_start();
    let shared = io.shared.clone();
    let cfg = &shared.config;
    let site = shared.site;
    let guard = |f: &mut dyn FnMut()| {
        crate::ioloop::running_at(site);
        std::panic::catch_unwind(AssertUnwindSafe(f)).is_ok()
    };
    let mut made = None;
    if !guard(&mut || made = Some(factory())) {
        return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
    }
    let Some(mut delegate) = made else {
        return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
    };
    let mut action = None;
    if !guard(&mut || action = Some(delegate.headers_received(&request))) {
        return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
    }
    if let Some(HeadersAction::Respond(resp)) = action {
        // Answered before reading the body: no 100 Continue, and the
        // unread body means the connection cannot be reused.
        crate::stats::request(Some(&request.method), resp.status.as_u16(), started);
        io.put_final(&resp, request.version, &request.method);
        return Ok(Persist::Close);
    }
    decode::start_body(io, body).await?;
    // The body to `data_received`, piece by piece. A delegate that panics
    // is answered with 500 (further pieces are dropped); a body that will
    // never be complete (client gone, bad framing, timeout) is told to the
    // delegate, whatever the reason. (Inline, not a function of its own:
    // a nested future would enlarge this one, boxed per request, by
    // about 150 bytes.)
    let mut panicked = false;
    let d = &mut delegate;
    let mut deliver = |piece: Bytes| {
        crate::ioloop::running_at(site);
        if !panicked
            && std::panic::catch_unwind(AssertUnwindSafe(|| d.data_received(piece))).is_err()
        {
            panicked = true;
        }
    };
    let stream = io.stream.clone();
    let read = decode::read_in_pieces(&stream, body.kind, cfg.max_body_size, &mut deliver);
    let read = match io.timer.within(cfg.body_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
    };
    if panicked {
        crate::stats::handler_panic(1);
        tracing::error!("delegate panicked in data_received");
        return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
    }
    if let Err(stop) = read {
        delegate.on_connection_close();
        return Err(stop);
    }
    io.flush().await?; // earlier pipelined responses go first
    let state = Rc::new(RefCell::new(WriterState::default()));
    let persist = if shared.draining() {
        Persist::Close
    } else {
        persist
    };
    let writer = ResponseWriter::new(
        io.stream.clone(),
        request.version,
        request.method.clone(),
        persist,
        shared.server_name.clone(),
        state.clone(),
    );
    if let Err(p) = CatchUnwind::new(delegate.finish(writer)).await {
        let msg = crate::ioloop::panic_message_of(&*p);
        crate::stats::handler_panic(1);
        tracing::error!("delegate panicked: {msg}");
    }
    let st = state.borrow();
    if st.progress != Progress::Nothing {
        crate::stats::request(Some(&request.method), st.status, started);
    }
    match st.progress {
        Progress::Nothing => Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, "")),
        // Half a response: only closing is safe.
        Progress::HeadWritten => Err(Stop::Quiet),
        Progress::Finished => Ok(st.persist),
    }
}
