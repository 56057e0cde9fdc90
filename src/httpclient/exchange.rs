//! One request and its response on one connection: the head and body go
//! out (after `100 Continue` when asked), the response comes back through
//! the [`Decoder`], its body kept, streamed or discarded and decoded from
//! gzip/deflate on the way. Whether the connection can carry another
//! request, and whether a failure may be retried, is said with the result.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderName, HeaderValue};

use super::decode::{DecodeError, Decoder, Event, Head};
use super::decompress::Inflater;
use super::error::FetchError;
use super::request::{Body, Kind, OnChunk};
use super::upload::BodyWriter;
use crate::http1::encode::CHUNKED_END;
use crate::iostream::{IOStream, StreamError};

/// How long a request with `Expect: 100-continue` waits for the server's
/// word before sending its body anyway (RFC 9110 §10.1.1: not
/// indefinitely; curl waits one second).
const EXPECT_WAIT: Duration = Duration::from_secs(1);

/// What goes out.
pub(crate) struct Outgoing {
    pub(crate) head: Bytes,
    pub(crate) body: Body,
    pub(crate) expect_continue: bool,
    pub(crate) head_request: bool,
}

/// What to do with a response's body, decided when its head arrives.
pub(crate) enum Keep<'a> {
    /// Keep it in the response (decoded if `decompress`).
    Body { decompress: bool },
    /// Hand it to the callback as it arrives (decoded if `decompress`).
    Stream {
        decompress: bool,
        on_chunk: &'a mut OnChunk,
    },
    /// Read it and drop it (a redirect being followed).
    Discard,
}

/// The limits a response is read within.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_head: usize,
    pub(crate) max_body: usize,
}

/// A complete response.
pub(crate) struct Received {
    pub(crate) head: Head,
    pub(crate) body: Bytes,
    pub(crate) trailers: HeaderMap,
    pub(crate) first_byte: Instant,
    /// When the body ended.
    pub(crate) end: Instant,
    /// The connection may carry another request.
    pub(crate) reusable: bool,
}

/// A failed exchange; `retryable` when nothing of a response arrived
/// and the connection failed (which on a reused connection is most
/// likely the server's close of an idle connection, RFC 9112 §9.3.1).
pub(crate) struct Failure {
    pub(crate) error: FetchError,
    pub(crate) retryable: bool,
}

fn fail(error: FetchError) -> Failure {
    Failure {
        error,
        retryable: false,
    }
}

/// Sends `out` on `stream` and reads the response.
pub(crate) async fn exchange<'a>(
    stream: &Rc<IOStream>,
    out: Outgoing,
    limits: Limits,
    choose: impl FnOnce(&Head) -> Keep<'a>,
) -> Result<Received, Failure> {
    let mut choose = Some(choose);
    let mut dec = Decoder::new(out.head_request, limits.max_head, limits.max_body);
    let mut sent_whole = true;
    let mut early = None;
    if out.expect_continue && !out.body.is_empty() {
        send(stream, out.head, Body::empty()).await?;
        let waited = crate::ioloop::timeout(EXPECT_WAIT, stream.read_with(|b| dec.decode(b))).await;
        match waited {
            // No word in time, or a go-ahead: the body follows.
            Err(_) | Ok(Ok(Event::Continue)) => send_body(stream, out.body).await?,
            Ok(Ok(event @ Event::Head(_))) => {
                // A final answer first: the body is never sent, so the
                // connection cannot carry another request.
                sent_whole = false;
                early = Some(event);
            }
            // The decoder gives data only after a head.
            Ok(Ok(Event::Data(_) | Event::End)) => {
                return Err(fail(FetchError::Malformed("a body before its head".into())));
            }
            Ok(Err(e)) => return Err(read_failure(e, &mut dec)),
        }
    } else {
        send(stream, out.head, out.body).await?;
    }

    let mut head = None;
    let mut keep = Keep::Discard;
    let mut inflater = None;
    let mut decompress = false;
    let mut body = Collect::default();
    let mut first_byte = None;
    loop {
        let event = match early.take() {
            Some(e) => e,
            None if dec.is_done() => break,
            None => match stream.read_with(|b| dec.decode(b)).await {
                Ok(e) => e,
                Err(DecodeError::Stream(e)) if is_clean_close(&e) && dec.has_head() => {
                    dec.at_eof().map_err(fail)?;
                    break;
                }
                Err(e) => return Err(read_failure(e, &mut dec)),
            },
        };
        match event {
            Event::Continue | Event::End => {}
            Event::Head(h) => {
                first_byte = Some(Instant::now());
                keep = match choose.take() {
                    Some(choose) => choose(&h),
                    None => Keep::Discard,
                };
                decompress = matches!(
                    keep,
                    Keep::Body { decompress: true }
                        | Keep::Stream {
                            decompress: true,
                            ..
                        }
                );
                head = Some(h);
            }
            Event::Data(piece) => {
                // Made at the first byte of a body, not at the head: a
                // HEAD, 204 or 304 names the coding of a body it lacks.
                if decompress
                    && inflater.is_none()
                    && let Some(h) = &head
                {
                    inflater = Inflater::for_headers(&h.headers, limits.max_body);
                    decompress = inflater.is_some();
                }
                let piece = match &mut inflater {
                    Some(inf) => inf.push(&piece).map_err(fail)?,
                    None => piece,
                };
                deliver(&mut keep, &mut body, piece);
            }
        }
    }
    let Some(mut head) = head else {
        return Err(fail(FetchError::NoResponse));
    };
    if let Some(inf) = &mut inflater {
        let rest = inf.finish().map_err(fail)?;
        deliver(&mut keep, &mut body, rest);
        if let Some(coding) = head.headers.remove(CONTENT_ENCODING) {
            head.headers.insert(
                HeaderName::from_static("x-consumed-content-encoding"),
                coding,
            );
        }
        head.headers.remove(CONTENT_LENGTH);
    }
    let body = body.finish();
    if inflater.is_some() && matches!(keep, Keep::Body { .. }) {
        head.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    let end = Instant::now();
    Ok(Received {
        head,
        body,
        trailers: std::mem::take(&mut dec.trailers),
        first_byte: first_byte.unwrap_or(end),
        end,
        reusable: sent_whole && dec.keep_alive && dec.is_done(),
    })
}

fn deliver(keep: &mut Keep<'_>, body: &mut Collect, piece: Bytes) {
    if piece.is_empty() {
        return;
    }
    match keep {
        Keep::Body { .. } => body.push(piece),
        Keep::Stream { on_chunk, .. } => on_chunk(piece),
        Keep::Discard => {}
    }
}

/// The EOF of a peer that closed normally (with `close_notify` on TLS).
fn is_clean_close(e: &StreamError) -> bool {
    matches!(e, StreamError::Closed(None))
}

fn read_failure(e: DecodeError, dec: &mut Decoder) -> Failure {
    match e {
        DecodeError::Bad(error) => fail(error),
        DecodeError::Stream(e) if is_clean_close(&e) => {
            let error = match dec.at_eof() {
                Ok(()) => FetchError::NoResponse,
                Err(error) => error,
            };
            let retryable = matches!(error, FetchError::NoResponse);
            Failure { error, retryable }
        }
        // A reset or broken pipe before any answer: the server went away
        // (on a pooled connection, most likely its idle close). Anything
        // else (a TLS alert, an unreachable host) says itself.
        DecodeError::Stream(e) if !dec.received_any && e.is_disconnect() => Failure {
            retryable: true,
            error: FetchError::NoResponse,
        },
        DecodeError::Stream(e) => fail(FetchError::Stream(e)),
    }
}

/// Writes the head and a body that is all there (one `writev`), or runs
/// a producer after the head.
async fn send(stream: &Rc<IOStream>, head: Bytes, body: Body) -> Result<(), Failure> {
    let written = match body.0 {
        Kind::Empty => stream.write(head).await,
        Kind::Full(b) => stream.write_chunks([head, b]).await,
        Kind::Producer { .. } => {
            stream.write(head).await.map_err(write_failure)?;
            return send_body(stream, body).await;
        }
    };
    written.map_err(write_failure)
}

/// Writes the body alone (after `100 Continue`).
async fn send_body(stream: &Rc<IOStream>, body: Body) -> Result<(), Failure> {
    match body.0 {
        Kind::Empty => Ok(()),
        Kind::Full(b) => stream.write(b).await.map_err(write_failure),
        Kind::Producer { len, produce } => {
            let (writer, left, guard) = BodyWriter::new(stream, len);
            let produced = produce(writer).await;
            drop(guard);
            produced.map_err(|e| fail(FetchError::Upload(e)))?;
            match left {
                Some(left) if left.get() > 0 => Err(fail(FetchError::Upload(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!(
                        "the body producer wrote {} bytes less than its declared length",
                        left.get()
                    ),
                )))),
                Some(_) => Ok(()),
                None => stream
                    .write(Bytes::from_static(CHUNKED_END))
                    .await
                    .map_err(write_failure),
            }
        }
    }
}

/// A write that failed before any answer: the connection is gone.
fn write_failure(e: StreamError) -> Failure {
    Failure {
        retryable: e.is_disconnect() || matches!(e, StreamError::Closed(_)),
        error: FetchError::Stream(e),
    }
}

/// A body kept whole: a body that arrives in one piece stays that piece
/// (a view of the read buffer), with no copy.
#[derive(Default)]
struct Collect {
    first: Option<Bytes>,
    rest: Option<BytesMut>,
}

impl Collect {
    fn push(&mut self, piece: Bytes) {
        match (&mut self.first, &mut self.rest) {
            (None, _) => self.first = Some(piece),
            (Some(_), Some(rest)) => rest.extend_from_slice(&piece),
            (Some(first), None) => {
                let mut rest = BytesMut::with_capacity(first.len() + piece.len());
                rest.extend_from_slice(first);
                rest.extend_from_slice(&piece);
                self.rest = Some(rest);
            }
        }
    }

    fn finish(self) -> Bytes {
        match (self.first, self.rest) {
            (_, Some(rest)) => rest.freeze(),
            (Some(first), None) => first,
            (None, None) => Bytes::new(),
        }
    }
}
