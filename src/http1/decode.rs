//! Reading a request body off the stream as its framing says (hyper's
//! `decode` role): a Content-Length body (RFC 9112 §6.2, §6.3 rule 6) or
//! a chunked one (§7.1), within `max_body_size` and `body_timeout`, after
//! `100 Continue` when the client waits for it (RFC 9110 §10.1.1).
//! Which framing a head declares is [`framing`](super::framing)'s to say.

use bytes::{Bytes, BytesMut};
use http::StatusCode;

use super::error::RequestError;
use super::framing::{self, BodyKind};
use super::io::{Io, Stop};
use crate::iostream::{IOStream, StreamError};

/// The largest piece of a request body handed to a delegate at once (and
/// read at once): big enough for throughput, small enough that a stream of
/// uploads keeps memory flat.
pub(crate) const BODY_PIECE: usize = 64 * 1024;

/// What follows a request's head: its body's framing, and whether the
/// client waits for `100 Continue` before sending it.
#[derive(Clone, Copy)]
pub(crate) struct Body {
    pub(crate) kind: BodyKind,
    pub(crate) send_continue: bool,
}

/// Before any of the body is read: refuse a Content-Length over the
/// limit (413 without reading it), and send `100 Continue` if the client
/// waits for it.
pub(crate) async fn start_body(io: &mut Io, body: Body) -> Result<(), Stop> {
    if let BodyKind::Length(n) = body.kind
        && n > io.shared.config.max_body_size as u64
    {
        return Err(RequestError::BodyTooLarge.into());
    }
    if body.send_continue {
        io.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        io.flush().await?;
    }
    Ok(())
}

/// The whole body, in one buffer (a handler's request): started with
/// [`start_body`], read within `body_timeout` (408 after it).
pub(crate) async fn read_whole(io: &mut Io, body: Body) -> Result<Bytes, Stop> {
    start_body(io, body).await?;
    let shared = io.shared.clone();
    let cfg = &shared.config;
    let stream = io.stream.clone();
    let read = async {
        match body.kind {
            BodyKind::Empty => Ok(Bytes::new()),
            BodyKind::Length(n) => stream
                .read_bytes(n as usize, false)
                .await
                .map_err(|_| Stop::Quiet),
            BodyKind::Chunked => {
                let mut whole = BytesMut::new();
                read_chunked(&stream, cfg.max_body_size, |piece| {
                    whole.extend_from_slice(&piece)
                })
                .await?;
                Ok(whole.freeze())
            }
        }
    };
    match io.timer.within(cfg.body_timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
    }
}

/// The body handed to `sink` in pieces of at most [`BODY_PIECE`] bytes as
/// they arrive (a delegate's request), `max` bytes at most. The caller has
/// called [`start_body`] and bounds this with `body_timeout` on its own
/// timer (a wrapper here would nest one more future in the caller's).
pub(crate) async fn read_in_pieces(
    stream: &IOStream,
    kind: BodyKind,
    max: usize,
    mut sink: impl FnMut(Bytes),
) -> Result<(), Stop> {
    match kind {
        BodyKind::Empty => Ok(()),
        BodyKind::Length(n) => read_pieces(stream, n, &mut sink).await,
        BodyKind::Chunked => read_chunked(stream, max, &mut sink).await,
    }
}

/// Reads exactly `n` bytes into `sink`, in pieces of at most
/// [`BODY_PIECE`] bytes, as they arrive.
async fn read_pieces(stream: &IOStream, n: u64, sink: &mut impl FnMut(Bytes)) -> Result<(), Stop> {
    let mut left = n;
    while left > 0 {
        let want = left.min(BODY_PIECE as u64) as usize;
        let piece = stream
            .read_bytes(want, true)
            .await
            .map_err(|_| Stop::Quiet)?;
        left -= piece.len() as u64;
        sink(piece);
    }
    Ok(())
}

/// RFC 9112 §7.1: chunks, the last chunk, trailers (§7.1.2: read,
/// bounded, discarded). The data goes to `sink` in pieces of at most
/// [`BODY_PIECE`] bytes, as it arrives; more than `max` bytes of data in
/// all is 413.
async fn read_chunked(
    stream: &IOStream,
    max: usize,
    mut sink: impl FnMut(Bytes),
) -> Result<(), Stop> {
    let mut total: u64 = 0;
    loop {
        let line = read_line(stream, framing::MAX_CHUNK_LINE).await?;
        let size = framing::parse_chunk_size(&line)?;
        if size == 0 {
            break;
        }
        total = total.saturating_add(size);
        if total > max as u64 {
            return Err(RequestError::BodyTooLarge.into());
        }
        read_pieces(stream, size, &mut sink).await?;
        let crlf = stream.read_bytes(2, false).await.map_err(|_| Stop::Quiet)?;
        if &crlf[..] != b"\r\n" {
            return Err(RequestError::Chunked("chunk data not followed by CRLF").into());
        }
    }
    let mut trailers = 0;
    loop {
        let line = read_line(stream, framing::MAX_TRAILERS).await?;
        if line.is_empty() {
            return Ok(());
        }
        if !framing::is_field_line(&line) {
            return Err(RequestError::Chunked("a trailer line is not a header field").into());
        }
        trailers += line.len() + 2;
        if trailers > framing::MAX_TRAILERS {
            return Err(RequestError::Chunked("trailers too large").into());
        }
    }
}

/// One CRLF-terminated line, without the CRLF; a bare LF or an over-long
/// line is an error (RFC 9112 §7.1 frames chunk lines with CRLF; a bare
/// LF accepted here would read a body two ways, as in the head).
async fn read_line(stream: &IOStream, max: usize) -> Result<Bytes, Stop> {
    match stream.try_read_until(b"\n", max).await {
        Ok(mut line) => {
            if line.len() < 2 || line[line.len() - 2] != b'\r' {
                return Err(RequestError::Chunked("line not ended by CRLF").into());
            }
            line.truncate(line.len() - 2);
            Ok(line)
        }
        Err(StreamError::Unsatisfiable { .. }) => {
            Err(RequestError::Chunked("line too long").into())
        }
        Err(_) => Err(Stop::Quiet),
    }
}
