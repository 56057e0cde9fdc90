//! Sending a [`Response`] whose body is a [`BodyStream`](super::BodyStream):
//! one piece in memory at a time, each written (with `write_timeout`)
//! before the next is made.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use http::{Method, Version};

use super::encode::{Persist, has_body};
use super::io::{Io, Stop};
use super::message::Response;
use super::writer::{ResponseWriter, WriterState};

/// Sends `response` through a [`ResponseWriter`], after the responses
/// already pending. `Ok(persist)`: whether the connection may go on.
pub(crate) async fn send_streamed(
    io: &mut Io,
    mut response: Response,
    version: Version,
    method: Method,
    persist: Persist,
) -> Result<Persist, Stop> {
    io.flush().await?; // earlier pipelined responses go first
    let Some(mut body) = response.stream.take() else {
        return Ok(persist);
    };
    let state = Rc::new(RefCell::new(WriterState::default()));
    let mut writer = ResponseWriter::new(
        io.stream.clone(),
        version,
        method.clone(),
        persist,
        io.shared.server_name.clone(),
        state.clone(),
    );
    let len = body
        .content_length()
        .map(|n| n.saturating_add(response.body.len() as u64));
    if writer
        .write_head(response.status, &response.headers, len)
        .is_err()
    {
        return Err(Stop::Quiet);
    }
    let limit = io.shared.config.write_timeout;
    let sends_body = has_body(&method, response.status);
    let mut next = (!response.body.is_empty()).then(|| Ok(std::mem::take(&mut response.body)));
    loop {
        let piece = match next.take() {
            Some(p) => Some(p),
            // The pieces are user code: a panic ends the response
            // (and the connection), logged, like a failed read.
            None if sends_body => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| body.next_piece())) {
                    Ok(p) => p,
                    Err(p) => Some(Err(std::io::Error::other(
                        crate::ioloop::panic_message_of(&*p).to_string(),
                    ))),
                }
            }
            None => None,
        };
        let piece = match piece {
            None => break,
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::warn!("response body failed after the head was sent: {e}");
                // A short body: only closing is honest, and over TLS
                // without close_notify, so the client sees a cut.
                io.stream.abort();
                return Err(Stop::Quiet);
            }
        };
        match io.timer.within(limit, writer.write(piece)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(Stop::Quiet),
        }
    }
    match io.timer.within(limit, writer.finish()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => return Err(Stop::Quiet),
    }
    super::message::recycle_header_map(response.headers);
    let persist = state.borrow().persist;
    Ok(persist)
}
