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
use std::task::Poll;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, EXPECT};
use http::{HeaderMap, Method, StatusCode, Version};

use super::delegate::HeadersAction;
use super::encode::{Persist, encode_response};
use super::error::RequestError;
use super::framing::{self, BodyKind};
use super::message::{Request, Response};
use super::parse::parse_head;
use super::service::{App, DelegateFactory, Shared};
use super::spares::{self, Spares};
use super::writer::{ResponseWriter, WriterState};
use crate::ioloop::{CatchUnwind, Sleep};
use crate::iostream::{IOStream, StreamError};
use crate::netutil::PeerAddr;

/// Flush pipelined responses once this much output is pending, so a client
/// that pipelines without reading cannot make the server buffer without end.
const MAX_PENDING_OUTPUT: usize = 256 * 1024;

/// How long a lingering close waits for the client to finish sending
/// (nginx's `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(5);
/// The most a lingering close reads and discards before closing anyway.
const LINGER_MAX_BYTES: usize = 1024 * 1024;

/// The largest piece of a request body handed to a delegate at once (and
/// read at once): big enough for throughput, small enough that a stream of
/// uploads keeps memory flat.
const BODY_PIECE: usize = 64 * 1024;

/// The output buffer's first allocation: 16 small responses (about 150
/// bytes of head each) fit without a reallocation.
const OUT_BATCH_CAPACITY: usize = 4096;

/// The most spare output buffers kept per thread: one is enough for a
/// loop answering connections one at a time; the rest absorb bursts.
const SPARE_OUT_MAX: usize = 16;

thread_local! {
    /// Output buffers of connections gone idle, for the next to answer.
    static SPARE_OUT: Spares<BytesMut> = const { Spares::new(SPARE_OUT_MAX) };
}

/// Output batches larger than this are sent with their allocation rather
/// than from a reusable buffer: a big response must not leave a big
/// buffer behind in the pool.
const LARGE_OUTPUT: usize = 64 * 1024;

/// What follows a request's head: its body's framing, and whether the
/// client waits for `100 Continue` before sending it.
#[derive(Clone, Copy)]
struct Body {
    kind: BodyKind,
    send_continue: bool,
}

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
    out: BytesMut,
    /// The server's configuration, handler and shutdown state.
    shared: Rc<Shared>,
    /// One timer for the connection's idle, header, body and write
    /// deadlines, moved forward lazily (`Sleep::within`): no timer-wheel
    /// work per request.
    timer: Sleep,
}

impl Connection {
    pub(crate) fn new(stream: IOStream, peer: PeerAddr, shared: Rc<Shared>) -> Connection {
        Connection {
            stream: Rc::new(stream),
            peer,
            shared,
            out: BytesMut::new(),
            timer: crate::ioloop::sleep_until(crate::ioloop::far_future()),
        }
    }

    /// Sends the pending output. A client that stops reading (a zero
    /// window) must not hold the connection forever: the write has
    /// `write_timeout` to complete.
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        // A large batch (a big body copied in) goes whole, leaving no view
        // behind: the spare-buffer pool must not keep big allocations.
        let data = if self.out.len() > LARGE_OUTPUT {
            std::mem::take(&mut self.out).freeze()
        } else {
            self.out.split().freeze()
        };
        let stream = self.stream.clone();
        match self
            .timer
            .within(self.shared.config.write_timeout, stream.write(data))
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Stop::Quiet),
        }
    }

    /// Serves requests until the connection ends.
    ///
    /// Between requests the connection waits in a small future: the state
    /// of serving requests is large (816 bytes in a release build), so it
    /// is boxed and exists only while requests are being served, one
    /// allocation per wake-up whatever the number of pipelined requests it
    /// finds. An idle keep-alive connection then costs about as much as an
    /// idle stream.
    ///
    /// Not an `async fn`: the compiler would keep the moved-in `self` twice
    /// in the future (the argument, then its local copy; rust-lang/rust
    /// #62958), about 170 bytes more per connection. A block that uses its
    /// captured `this` in place keeps one.
    pub(crate) fn run(self) -> impl Future<Output = ()> {
        let mut this = self;
        async move {
            let stop = loop {
                if this.stream.buffered() == 0 {
                    match this.wait_for_request().await {
                        Ok(true) => {}
                        Ok(false) => break Stop::Quiet,
                        Err(stop) => break stop,
                    }
                }
                match this.serve_buffered_boxed().await {
                    Ok(true) => continue,
                    Ok(false) => break Stop::Quiet,
                    Err(stop) => break stop,
                }
            };
            this.end_boxed(stop).await;
        }
    }

    // Boxed in plain functions: `Box::pin(fut).await` inside the async
    // fn would still reserve room for `fut` in the caller's state.

    fn serve_buffered_boxed(&mut self) -> Pin<Box<dyn Future<Output = Result<bool, Stop>> + '_>> {
        Box::pin(self.serve_buffered())
    }

    fn flush_boxed(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Stop>> + '_>> {
        Box::pin(self.flush())
    }

    fn end_boxed(&mut self, stop: Stop) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(self.end(stop))
    }

    /// Answers every request already buffered (a pipelined batch).
    /// `Ok(true)`: keep the connection.
    async fn serve_buffered(&mut self) -> Result<bool, Stop> {
        loop {
            if !self.one_request().await? {
                return Ok(false);
            }
            if self.stream.buffered() == 0 {
                return Ok(true);
            }
        }
    }

    /// The connection's end: the error response due, if any, what is
    /// pending, a lingering close when the client may still be sending.
    async fn end(&mut self, stop: Stop) {
        let linger = matches!(stop, Stop::Respond(..));
        if let Stop::Respond(status, why) = stop {
            self.error_response(status, why);
        }
        // A client that has not taken what was already written (a write
        // timed out) reads nothing more: no lingering for it.
        let flushed = self.flush().await.is_ok() && !self.stream.writing();
        if flushed && (linger || self.stream.buffered() > 0) {
            self.linger().await;
        }
        self.stream.close();
    }

    /// Lingering close (RFC 9112 §9.6): after a response that ends the
    /// connection while the client may still be sending (an error, a
    /// refused body, `Connection: close` with requests behind it), shut
    /// down the sending side and read and discard for a while, so that
    /// closing with unread data does not make the kernel send a reset that
    /// destroys the response before the client reads it.
    async fn linger(&mut self) {
        if self.stream.shutdown_write().is_err() {
            return;
        }
        let stream = self.stream.clone();
        let drain = async {
            let mut discarded = 0;
            while discarded < LINGER_MAX_BYTES {
                match stream.read_bytes(BODY_PIECE, true).await {
                    Ok(b) => discarded += b.len(),
                    Err(_) => return, // EOF: the client saw everything
                }
            }
        };
        let _ = self.timer.within(LINGER_TIME, drain).await;
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
            self.shared.config.server_name.as_bytes(),
        );
    }

    /// Reads and answers one request. `Ok(true)`: keep going.
    ///
    /// The common case runs straight through without waiting: the next
    /// head is already buffered (a pipelined batch, or the read that woke
    /// an idle connection), the request has no body and the handler
    /// answers at once. Only the waits are `await`s, so that path builds
    /// no read future and no timer.
    async fn one_request(&mut self) -> Result<bool, Stop> {
        // Scoped so that the request's storage ends before the handler's
        // await and the response's before the flush's: the compiler keeps
        // room in the future for every local whose scope spans an await.
        let (call, method, version, keep_alive) = {
            let max_head = self.shared.config.max_header_size;
            let head = match self.stream.try_read_until_buffered(b"\r\n\r\n", max_head) {
                Some(Ok(head)) => head,
                Some(Err(e)) => return Err(head_error(e)),
                // Boxed: a head arriving in pieces is rare, and its wait's
                // state would enlarge every request's.
                None => Box::pin(self.read_head()).await?,
            };
            let (mut request, body, keep_alive) = self.start_request(head)?;
            let handler = match &self.shared.app {
                App::Delegate(factory) => {
                    let factory = factory.clone();
                    // Boxed: the streaming path's state would otherwise
                    // make every request's future larger.
                    return Box::pin(self.delegate_request(factory, request, body, keep_alive))
                        .await;
                }
                App::Simple(handler) => handler.clone(),
            };
            if body.kind != BodyKind::Empty {
                // Boxed, as the streamed answer below: rare paths whose
                // state would otherwise enlarge every connection's future,
                // idle ones included.
                request.body = Box::pin(self.read_body(body)).await?;
            }
            if self.shared.config.decompress_request {
                // Bodiless requests too: their Content-Encoding is checked
                // (and removed) as for any other.
                let max = self.shared.config.max_body_size;
                let body = std::mem::take(&mut request.body);
                request.body = super::decompress::gunzip_request(&mut request.headers, body, max)?;
            }
            let method = request.method.clone();
            let version = request.version;
            // The handler's synchronous part runs under catch_unwind here,
            // its future under CatchUnwind below: a panic in either is a
            // 500. (The boxed future is two words: nothing large is moved
            // again.)
            let call = std::panic::catch_unwind(AssertUnwindSafe(|| handler(request)))
                .map(CatchUnwind::new);
            (call, method, version, keep_alive)
        };
        let answered = match call {
            Ok(mut call) => match poll_once(Pin::new(&mut call)).await {
                Some(r) => r,
                None => {
                    // The handler has to wait: send earlier pipelined
                    // responses now rather than after it.
                    self.flush_boxed().await?;
                    call.await
                }
            },
            Err(p) => Err(p),
        };
        // A shutdown may have begun while the handler ran.
        let keep_alive = keep_alive && !self.shared.draining();
        {
            let response = match answered {
                Ok(r) => r,
                Err(p) => {
                    let msg = crate::ioloop::panic_message_of(&*p);
                    tracing::error!("handler panicked: {msg}");
                    Response::text("500 Internal Server Error\n")
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                }
            };
            if response.stream.is_some() {
                return Box::pin(self.send_streamed(response, version, method, keep_alive)).await;
            }
            self.put_response(response, version, &method, keep_alive);
        }
        if !keep_alive {
            return Ok(false);
        }
        // Pipelined requests waiting: answer them into the same buffer.
        if self.stream.buffered() == 0 || self.out.len() >= MAX_PENDING_OUTPUT {
            self.flush().await?;
        }
        Ok(true)
    }

    /// Between requests: sends what is pending and waits for the next
    /// request's first bytes. `Ok(false)`: the connection is done (closed,
    /// idle too long, or the server is shutting down).
    async fn wait_for_request(&mut self) -> Result<bool, Stop> {
        if !self.out.is_empty() {
            // Rarely anything left (requests end with a flush): boxed, so
            // the write's state is not part of every idle connection's.
            self.flush_boxed().await?;
        }
        // An idle connection holds no output buffer: its memory goes to
        // the thread's spares for whichever connection answers next.
        if self.out.capacity() > 0 {
            let mut spare = std::mem::take(&mut self.out);
            spare.clear();
            spares::put(&SPARE_OUT, spare);
        }
        if self.shared.draining() {
            return Ok(false);
        }
        // Idle: the server may close it at once on shutdown.
        let key = self.shared.idle.borrow_mut().insert(self.stream.closer());
        let idle = self.shared.config.idle_connection_timeout;
        let stream = self.stream.clone();
        let waited = self.timer.within(idle, stream.wait_for_data()).await;
        let _ = self.shared.idle.borrow_mut().try_remove(key);
        Ok(matches!(waited, Ok(Ok(_))))
    }

    /// The rest of a head that has not all arrived: pending responses go
    /// first (a finished response must not wait for the client's next
    /// request), then the whole head must arrive within `header_timeout`.
    async fn read_head(&mut self) -> Result<Bytes, Stop> {
        self.flush().await?;
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let stream = self.stream.clone();
        let head_read = stream.try_read_until(b"\r\n\r\n", cfg.max_header_size);
        match self.timer.within(cfg.header_timeout, head_read).await {
            Ok(Ok(head)) => Ok(head),
            Ok(Err(e)) => Err(head_error(e)),
            Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        }
    }

    /// Parses `head` into a [`Request`] (body still unread), what follows
    /// it, and whether the connection may persist after it.
    fn start_request(&self, head: Bytes) -> Result<(Request, Body, bool), Stop> {
        let cfg = &self.shared.config;
        let head = parse_head(head, cfg.max_headers)?;
        let seen = head.seen;
        let kind = if seen.transfer_encoding || seen.content_length {
            framing::body_kind(&head.headers)?
        } else {
            BodyKind::Empty
        };
        // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message is faulty
        // framing; whatever follows on the connection cannot be trusted.
        let te_on_1_0 = head.version == Version::HTTP_10 && seen.transfer_encoding;
        let persists = if seen.connection {
            wants_keep_alive(head.version, &head.headers)
        } else {
            head.version == Version::HTTP_11 // RFC 9112 §9.3's defaults
        };
        let keep_alive = !cfg.no_keep_alive && !te_on_1_0 && !self.shared.draining() && persists;
        let body = Body {
            kind,
            send_continue: seen.expect
                && kind != BodyKind::Empty
                && head.version == Version::HTTP_11
                && expects_continue(&head.headers),
        };
        let peer_ip = match &self.peer {
            PeerAddr::Inet(a) => Some(a.ip()),
            PeerAddr::Unix(_) => None,
        };
        let (remote_ip, protocol) = if cfg.xheaders {
            super::xheaders::apply(&head.headers, peer_ip, &cfg.trusted_downstream)
        } else {
            (peer_ip, "http")
        };
        let request = Request {
            method: head.method,
            uri: head.uri,
            version: head.version,
            headers: head.headers.into(),
            body: Bytes::new(),
            remote_addr: self.peer.clone(),
            remote_ip,
            protocol,
            connection: self.stream.watcher(),
        };
        Ok((request, body, keep_alive))
    }

    /// Appends `response` to the pending output.
    fn put_response(
        &mut self,
        response: Response,
        version: Version,
        method: &Method,
        keep_alive: bool,
    ) {
        let persist = if keep_alive {
            Persist::KeepAlive
        } else {
            Persist::Close
        };
        if self.out.capacity() == 0
            && let Some(spare) = spares::take(&SPARE_OUT)
        {
            self.out = spare;
        }
        if self.out.capacity() - self.out.len() < OUT_BATCH_CAPACITY / 8 {
            // Room for a pipelined batch of small responses at once, instead
            // of growing (and copying) by doubling; once the last batch was
            // sent, BytesMut reuses its allocation.
            self.out.reserve(OUT_BATCH_CAPACITY);
        }
        encode_response(
            &mut self.out,
            version,
            method,
            &response,
            persist,
            self.shared.config.server_name.as_bytes(),
        );
        super::message::recycle_header_map(response.headers);
    }

    /// Sends a response whose body comes in pieces ([`BodyStream`]): one
    /// piece in memory at a time, each written (with `write_timeout`)
    /// before the next is made. `Ok(true)`: the connection may go on.
    async fn send_streamed(
        &mut self,
        mut response: Response,
        version: Version,
        method: Method,
        keep_alive: bool,
    ) -> Result<bool, Stop> {
        self.flush().await?; // earlier pipelined responses go first
        let Some(mut body) = response.stream.take() else {
            return Ok(keep_alive);
        };
        let state = Rc::new(std::cell::RefCell::new(WriterState::default()));
        let mut writer = ResponseWriter::new(
            self.stream.clone(),
            version,
            method.clone(),
            keep_alive,
            self.shared.server_name.clone(),
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
        let limit = self.shared.config.write_timeout;
        let sends_body = super::encode::has_body(&method, response.status);
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
                    return Err(Stop::Quiet); // a short body: only closing is honest
                }
            };
            match self.timer.within(limit, writer.write(piece)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Err(Stop::Quiet),
            }
        }
        match self.timer.within(limit, writer.finish()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return Err(Stop::Quiet),
        }
        super::message::recycle_header_map(response.headers);
        let keep_alive = state.borrow().keep_alive;
        Ok(keep_alive)
    }

    async fn read_body(&mut self, body: Body) -> Result<Bytes, Stop> {
        self.prepare_body(body).await?;
        let shared = self.shared.clone();
        let cfg = &shared.config;
        let stream = self.stream.clone();
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
        match self.timer.within(cfg.body_timeout, read).await {
            Ok(r) => r,
            Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        }
    }

    /// Before any of the body is read: refuse a Content-Length over the
    /// limit (413 without reading it), and send `100 Continue` if the
    /// client waits for it.
    async fn prepare_body(&mut self, body: Body) -> Result<(), Stop> {
        if let BodyKind::Length(n) = body.kind
            && n > self.shared.config.max_body_size as u64
        {
            return Err(RequestError::BodyTooLarge.into());
        }
        if body.send_continue {
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
        body: Body,
        keep_alive: bool,
    ) -> Result<bool, Stop> {
        let shared = self.shared.clone();
        let cfg = &shared.config;
        // The delegate's synchronous methods run under catch_unwind too: a
        // panic there is a 500, not a silently dropped connection.
        let guard = |f: &mut dyn FnMut()| std::panic::catch_unwind(AssertUnwindSafe(f)).is_ok();
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
        self.prepare_body(body).await?;
        let stream = self.stream.clone();
        let mut panicked = false;
        let d = &mut delegate;
        let mut deliver = |piece: Bytes| {
            if !panicked
                && std::panic::catch_unwind(AssertUnwindSafe(|| d.data_received(piece))).is_err()
            {
                panicked = true; // further pieces are dropped; answered with 500 below
            }
        };
        let read = async {
            match body.kind {
                BodyKind::Empty => Ok(()),
                BodyKind::Length(n) => read_pieces(&stream, n, &mut deliver).await,
                BodyKind::Chunked => read_chunked(&stream, cfg.max_body_size, &mut deliver).await,
            }
        };
        let read = self.timer.within(cfg.body_timeout, read).await;
        let failed = match read {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        };
        if panicked {
            tracing::error!("delegate panicked in data_received");
            return Err(Stop::Respond(StatusCode::INTERNAL_SERVER_ERROR, ""));
        }
        if let Some(stop) = failed {
            // The body will never be complete: the delegate hears of it
            // whatever the reason (client gone, bad framing, timeout).
            delegate.on_connection_close();
            return Err(stop);
        }
        self.flush().await?; // earlier pipelined responses go first
        let state = Rc::new(std::cell::RefCell::new(WriterState::default()));
        let keep_alive = keep_alive && !self.shared.draining();
        let writer = ResponseWriter::new(
            self.stream.clone(),
            request.version,
            request.method.clone(),
            keep_alive,
            shared.server_name.clone(),
            state.clone(),
        );
        if let Err(p) = CatchUnwind::new(delegate.finish(writer)).await {
            let msg = crate::ioloop::panic_message_of(&*p);
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

/// What a failed head read means: too large (431), or the client left.
fn head_error(e: StreamError) -> Stop {
    match e {
        StreamError::Unsatisfiable { .. } => RequestError::HeadTooLarge.into(),
        _ => Stop::Quiet,
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

/// Polls `fut` once: its output, or `None` if it is pending (its waker is
/// registered, so awaiting it afterwards loses nothing).
async fn poll_once<F: Future + Unpin>(mut fut: F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut fut).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}
