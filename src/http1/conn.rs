//! One HTTP/1.1 connection: the state machine that reads requests, calls
//! the handler and writes responses, until the connection ends.
//!
//! ```text
//! Idle --data--> Head --parsed--> Body --complete--> Respond
//!   ^                                                   |
//!   +---------- keep-alive (next request) --------------+
//!  any state --error/timeout--> Close (error response first if one is due)
//! ```
//!
//! Pipelining: when the next request is already buffered, the response is
//! left in the output buffer and the next one appended; one write sends
//! them all.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, EXPECT};
use http::{HeaderMap, Method, StatusCode, Version};

use super::delegate::HeadersAction;
use super::encode::{Persist, encode_response};
use super::error::RequestError;
use super::framing::{self, BodyKind};
use super::message::{Request, Response};
use super::parse::parse_head;
use super::server::{App, DelegateFactory, HttpConfig, Shared};
use super::writer::{ResponseWriter, WriterState};
use crate::ioloop::{Sleep, Timeout};
use crate::iostream::{IOStream, StreamError};
use crate::netutil::PeerAddr;

/// Flush pipelined responses once this much output is pending, so a client
/// that pipelines without reading cannot make the server buffer without end.
const MAX_PENDING_OUTPUT: usize = 256 * 1024;

/// The largest piece of a request body handed to a delegate at once (and
/// read at once): big enough for throughput, small enough that a stream of
/// uploads keeps memory flat.
const BODY_PIECE: usize = 64 * 1024;

/// The output buffer's first allocation: 16 small responses (about 150
/// bytes of head each) fit without a reallocation.
const OUT_BATCH_CAPACITY: usize = 4096;

/// Why a connection stops.
enum Stop {
    /// Quietly: the peer left, or stayed idle too long.
    Quiet,
    /// With an error response first.
    Respond(StatusCode, &'static str),
}

impl From<RequestError> for Stop {
    fn from(e: RequestError) -> Stop {
        tracing::debug!("bad request: {e}");
        Stop::Respond(e.status(), "")
    }
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

pub(crate) struct Connection {
    stream: Rc<IOStream>,
    peer: PeerAddr,
    config: Rc<HttpConfig>,
    app: App,
    out: BytesMut,
    shared: Rc<Shared>,
    /// One timer for the connection's idle, header and body deadlines,
    /// moved forward lazily (see `Sleep::reset`): no timer-wheel work per
    /// request.
    timer: Sleep,
}

/// Runs `fut` until it completes or `limit` passes (on the connection's
/// `timer`). `fut` is polled first and the deadline computed only if it
/// has to wait, so a read the buffer already satisfies costs no clock read
/// and no timer work.
async fn within<F: Future>(
    timer: &mut Sleep,
    limit: Duration,
    fut: F,
) -> Result<F::Output, Timeout> {
    let mut fut = std::pin::pin!(fut);
    let mut armed = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if !armed {
            armed = true;
            timer.reset(Instant::now() + limit);
        }
        match Pin::new(&mut *timer).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Timeout)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

impl Connection {
    pub(crate) fn new(
        stream: IOStream,
        peer: PeerAddr,
        config: Rc<HttpConfig>,
        app: App,
        shared: Rc<Shared>,
    ) -> Connection {
        Connection {
            stream: Rc::new(stream),
            peer,
            config,
            app,
            shared,
            out: BytesMut::new(),
            timer: crate::ioloop::sleep_until(far_future()),
        }
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        let data = self.out.split().freeze();
        self.stream.write(data).await.map_err(|_| Stop::Quiet)
    }

    /// Serves requests until the connection ends.
    pub(crate) async fn run(mut self) {
        let stop = loop {
            match self.one_request().await {
                Ok(true) => continue,
                Ok(false) => break Stop::Quiet,
                Err(stop) => break stop,
            }
        };
        if let Stop::Respond(status, why) = stop {
            self.error_response(status, why);
        }
        let _ = self.flush().await;
        self.stream.close();
    }

    fn error_response(&mut self, status: StatusCode, why: &'static str) {
        let body = if why.is_empty() {
            status.canonical_reason().unwrap_or("Error")
        } else {
            why
        };
        let resp = Response::text(format!("{} {body}\n", status.as_u16())).status(status);
        encode_response(
            &mut self.out,
            Version::HTTP_11,
            &Method::GET,
            &resp,
            Persist::Close,
            self.config.server_name.as_bytes(),
        );
    }

    /// Reads and answers one request. `Ok(true)`: keep going.
    async fn one_request(&mut self) -> Result<bool, Stop> {
        let cfg = self.config.clone();
        // Idle: nothing buffered; send what is pending and wait.
        if self.stream.buffered() == 0 {
            self.flush().await?;
            if self.shared.draining.get() {
                return Ok(false);
            }
            // Idle: the server may close it at once on shutdown.
            let key = self.shared.idle.borrow_mut().insert(self.stream.closer());
            let idle = cfg.idle_connection_timeout;
            let waited = within(&mut self.timer, idle, self.stream.wait_for_data()).await;
            let _ = self.shared.idle.borrow_mut().try_remove(key);
            match waited {
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Ok(false),
            }
        }
        // Head: the whole head must arrive within header_timeout.
        let head_read = self.stream.try_read_until(b"\r\n\r\n", cfg.max_header_size);
        let head = match within(&mut self.timer, cfg.header_timeout, head_read).await {
            Ok(Ok(h)) => h,
            Ok(Err(StreamError::Unsatisfiable { .. })) => {
                return Err(RequestError::HeadTooLarge.into());
            }
            Ok(Err(_)) => return Ok(false),
            Err(_) => return Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        };
        let head = parse_head(head, cfg.max_headers)?;
        let kind = framing::body_kind(&head.headers)?;
        let keep_alive = !cfg.no_keep_alive
            && !self.shared.draining.get()
            && wants_keep_alive(head.version, &head.headers);
        let peer_ip = match &self.peer {
            PeerAddr::Inet(a) => Some(a.ip()),
            PeerAddr::Unix(_) => None,
        };
        let (remote_ip, protocol) = if cfg.xheaders {
            super::xheaders::apply(&head.headers, peer_ip, &cfg.trusted_downstream)
        } else {
            (peer_ip, "http")
        };
        let mut request = Request {
            method: head.method,
            uri: head.uri,
            version: head.version,
            headers: head.headers,
            body: Bytes::new(),
            remote_addr: self.peer.clone(),
            remote_ip,
            protocol,
            connection: self.stream.watcher(),
        };
        let handler = match &self.app {
            App::Delegate(factory) => {
                let factory = factory.clone();
                return self
                    .delegate_request(factory, request, kind, keep_alive)
                    .await;
            }
            App::Simple(handler) => handler.clone(),
        };
        let body = self
            .read_body(&request.headers, request.version, kind)
            .await?;
        request.body = if cfg.decompress_request {
            super::decompress::gunzip_request(&mut request.headers, body, cfg.max_body_size)?
        } else {
            body
        };
        let method = request.method.clone();
        let version = request.version;
        let response = match (CatchUnwind {
            inner: handler(request),
        })
        .await
        {
            Ok(r) => r,
            Err(msg) => {
                tracing::error!("handler panicked: {msg}");
                Response::text("500 Internal Server Error\n")
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
        // A shutdown may have begun while the handler ran.
        let keep_alive = keep_alive && !self.shared.draining.get();
        let persist = if keep_alive {
            Persist::KeepAlive
        } else {
            Persist::Close
        };
        if self.out.capacity() - self.out.len() < OUT_BATCH_CAPACITY / 8 {
            // Room for a pipelined batch of small responses at once, instead
            // of growing (and copying) by doubling; once the last batch was
            // sent, BytesMut reuses its allocation.
            self.out.reserve(OUT_BATCH_CAPACITY);
        }
        encode_response(
            &mut self.out,
            version,
            &method,
            &response,
            persist,
            cfg.server_name.as_bytes(),
        );
        if !keep_alive {
            return Ok(false);
        }
        // Pipelined requests waiting: answer them into the same buffer.
        if self.stream.buffered() == 0 || self.out.len() >= MAX_PENDING_OUTPUT {
            self.flush().await?;
        }
        Ok(true)
    }

    async fn read_body(
        &mut self,
        headers: &HeaderMap,
        version: Version,
        kind: BodyKind,
    ) -> Result<Bytes, Stop> {
        self.prepare_body(headers, version, kind).await?;
        let cfg = self.config.clone();
        let stream = self.stream.clone();
        let read = async {
            match kind {
                BodyKind::Empty => Ok(Bytes::new()),
                BodyKind::Length(n) => stream
                    .read_bytes(n as usize, false)
                    .await
                    .map_err(|_| Stop::Quiet),
                BodyKind::Chunked => {
                    let mut body = BytesMut::new();
                    read_chunked(&stream, cfg.max_body_size, |piece| {
                        body.extend_from_slice(&piece)
                    })
                    .await?;
                    Ok(body.freeze())
                }
            }
        };
        match within(&mut self.timer, cfg.body_timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        }
    }

    /// Before any of the body is read: refuse a Content-Length over the
    /// limit (413 without reading it), and send `100 Continue` if the
    /// client waits for it.
    async fn prepare_body(
        &mut self,
        headers: &HeaderMap,
        version: Version,
        kind: BodyKind,
    ) -> Result<(), Stop> {
        if let BodyKind::Length(n) = kind
            && n > self.config.max_body_size as u64
        {
            return Err(RequestError::BodyTooLarge.into());
        }
        if kind != BodyKind::Empty && version == Version::HTTP_11 && expects_continue(headers) {
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            self.flush().await?;
        }
        Ok(())
    }

    /// A request for an [`HttpDelegate`]: the body is handed over in
    /// pieces as it arrives, then the delegate answers with a writer.
    async fn delegate_request(
        &mut self,
        factory: Rc<DelegateFactory>,
        request: Request,
        kind: BodyKind,
        keep_alive: bool,
    ) -> Result<bool, Stop> {
        let cfg = self.config.clone();
        let mut delegate = factory();
        if let HeadersAction::Respond(resp) = delegate.headers_received(&request) {
            // Answered before reading the body: no 100 Continue, and the
            // unread body means the connection cannot be reused.
            encode_response(
                &mut self.out,
                request.version,
                &request.method,
                &resp,
                Persist::Close,
                cfg.server_name.as_bytes(),
            );
            return Ok(false);
        }
        self.prepare_body(&request.headers, request.version, kind)
            .await?;
        let stream = self.stream.clone();
        let d = &mut delegate;
        let read = async {
            match kind {
                BodyKind::Empty => Ok(()),
                BodyKind::Length(n) => {
                    let mut left = n;
                    while left > 0 {
                        let want = left.min(BODY_PIECE as u64) as usize;
                        let piece = stream
                            .read_bytes(want, true)
                            .await
                            .map_err(|_| Stop::Quiet)?;
                        left -= piece.len() as u64;
                        d.data_received(piece);
                    }
                    Ok(())
                }
                BodyKind::Chunked => {
                    read_chunked(&stream, cfg.max_body_size, |piece| d.data_received(piece)).await
                }
            }
        };
        match within(&mut self.timer, cfg.body_timeout, read).await {
            Ok(Ok(())) => {}
            Ok(Err(Stop::Quiet)) => {
                delegate.on_connection_close();
                return Err(Stop::Quiet);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        }
        self.flush().await?; // earlier pipelined responses go first
        let state = Rc::new(std::cell::RefCell::new(WriterState::default()));
        let keep_alive = keep_alive && !self.shared.draining.get();
        let writer = ResponseWriter::new(
            self.stream.clone(),
            request.version,
            request.method.clone(),
            keep_alive,
            Rc::from(cfg.server_name.as_str()),
            state.clone(),
        );
        if let Err(msg) = (CatchUnwind {
            inner: delegate.finish(writer),
        })
        .await
        {
            tracing::error!("delegate panicked: {msg}");
        }
        let st = state.borrow();
        if !st.head_written {
            return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
        }
        if !st.finished {
            return Err(Stop::Quiet); // half a response: only closing is safe
        }
        Ok(st.keep_alive)
    }
}

/// RFC 9112 §7.1: chunks, the last chunk, trailers (read, bounded,
/// discarded). The data goes to `sink` in pieces of at most
/// [`BODY_PIECE`] bytes, as it arrives.
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
        let mut left = size;
        while left > 0 {
            let want = left.min(BODY_PIECE as u64) as usize;
            let piece = stream
                .read_bytes(want, true)
                .await
                .map_err(|_| Stop::Quiet)?;
            left -= piece.len() as u64;
            sink(piece);
        }
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
        trailers += line.len() + 2;
        if trailers > framing::MAX_TRAILERS {
            return Err(RequestError::Chunked("trailers too large").into());
        }
    }
}

/// One CRLF-terminated line, without the CRLF; a bare LF or an over-long
/// line is an error.
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

/// A deadline no connection reaches (about 34 years): the timer's resting
/// value.
fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(1 << 30)
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

pin_project_lite::pin_project! {
    /// Turns a panic in the handler's future into an error value, so the
    /// client gets a 500 and the connection and server carry on.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(crate::ioloop::panic_message_of(&*p).to_string())),
        }
    }
}
