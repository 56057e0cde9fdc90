//! One HTTP/1.1 connection: the state machine that reads requests, calls
//! the handler and writes responses, until the connection ends.
//!
//! ```text
//! KeepAlive --data--> Head --parsed--> Body --complete--> Respond
//!   ^                                                        |
//!   +------------- keep-alive (next request) ----------------+
//!  any state --error/timeout--> Closed (error response first if one is due)
//! ```
//!
//! Between requests the state is a [`Reading`]; within one, the steps of
//! `one_request` (head, [`start_request`], the body through
//! [`decode`](super::decode), the handler, the response). A delegate's
//! request goes to [`serve_with_delegate`], a streamed response to
//! [`send_streamed`].
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
use http::{Method, StatusCode, Version};

use super::decode::{self, BODY_PIECE};
use super::delegate_driver::serve_with_delegate;
use super::encode::Persist;
use super::error::RequestError;
use super::framing::BodyKind;
use super::head_scan::HeadScan;
use super::io::{Io, Stop};
use super::message::{OnUpgrade, Response};
use super::request::{Started, start_request};
use super::service::{App, Shared};
use super::streamed::send_streamed;
use super::upgrade;
use crate::ioloop::CatchUnwind;
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

/// Where a connection is between requests (hyper's reader state; the
/// states within one request are the steps of `one_request`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// Nothing buffered: waiting for the next request's first bytes.
    KeepAlive,
    /// The next request's first bytes are buffered: serve it.
    Head,
    /// No more requests: the connection ends without an error response.
    Closed,
}

pub(crate) struct Connection {
    io: Io,
    peer: PeerAddr,
}

impl Connection {
    pub(crate) fn new(stream: IOStream, peer: PeerAddr, shared: Rc<Shared>) -> Connection {
        Connection {
            io: Io::new(stream, shared),
            peer,
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
            // Counted open until it ends or becomes another protocol.
            let open = crate::stats::OpenHttp::new();
            // Boxed, and the config cloned only here: the handshake's
            // state would otherwise widen every connection's future (idle
            // plain connections included) for the whole of its life.
            if let Some(tls) = this.io.shared.config.tls.clone()
                && let Err(e) = Box::pin(crate::tls::accept(&this.io.stream, &tls)).await
            {
                tracing::debug!("{}: TLS handshake failed: {e}", this.peer);
                return;
            }
            let mut reading = if this.io.stream.buffered() == 0 {
                Reading::KeepAlive
            } else {
                Reading::Head
            };
            // No request served yet: see `wait_for_request`.
            let mut fresh = true;
            let stop = loop {
                let next = match reading {
                    Reading::KeepAlive => this.wait_for_request(fresh).await,
                    Reading::Head => {
                        fresh = false;
                        this.serve_buffered_boxed().await
                    }
                    Reading::Closed => break Stop::Quiet,
                };
                reading = match next {
                    Ok(r) => r,
                    Err(stop) => break stop,
                };
            };
            let stop = match stop {
                Stop::Upgrade(on_upgrade) => {
                    drop(open);
                    // Boxed: its state would otherwise widen every
                    // connection's future, idle ones included.
                    let shared = this.io.shared.clone();
                    Box::pin(run_upgraded(shared, on_upgrade, this.io.stream.clone())).await;
                    Stop::Quiet
                }
                stop => stop,
            };
            this.end_boxed(stop).await;
        }
    }

    // Boxed in plain functions: `Box::pin(fut).await` inside the async
    // fn would still reserve room for `fut` in the caller's state.

    fn serve_buffered_boxed(
        &mut self,
    ) -> Pin<Box<dyn Future<Output = Result<Reading, Stop>> + '_>> {
        Box::pin(self.serve_buffered())
    }

    fn end_boxed(&mut self, stop: Stop) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(self.end(stop))
    }

    /// Answers every request already buffered (a pipelined batch).
    async fn serve_buffered(&mut self) -> Result<Reading, Stop> {
        loop {
            if self.one_request().await? == Persist::Close {
                return Ok(Reading::Closed);
            }
            if self.io.stream.buffered() == 0 {
                return Ok(Reading::KeepAlive);
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
        let flushed = self.io.flush().await.is_ok() && !self.io.stream.writing();
        if flushed && (linger || self.io.stream.buffered() > 0) {
            self.linger().await;
        }
        self.io.stream.close();
    }

    /// Lingering close (RFC 9112 §9.6): after a response that ends the
    /// connection while the client may still be sending (an error, a
    /// refused body, `Connection: close` with requests behind it), shut
    /// down the sending side and read and discard for a while, so that
    /// closing with unread data does not make the kernel send a reset that
    /// destroys the response before the client reads it.
    async fn linger(&mut self) {
        if self.io.stream.shutdown_write().is_err() {
            return;
        }
        let stream = self.io.stream.clone();
        let drain = async {
            let mut discarded = 0;
            while discarded < LINGER_MAX_BYTES {
                match stream.read_bytes(BODY_PIECE, true).await {
                    Ok(b) => discarded += b.len(),
                    Err(_) => return, // EOF: the client saw everything
                }
            }
        };
        let _ = self.io.timer.within(LINGER_TIME, drain).await;
    }

    fn error_response(&mut self, status: StatusCode, why: &'static str) {
        let body = if why.is_empty() {
            status.canonical_reason().unwrap_or("Error")
        } else {
            why
        };
        let resp = Response::text(format!("{} {body}\n", status.as_u16())).status(status);
        crate::stats::request(None, status.as_u16(), None);
        self.io.put_final(&resp, Version::HTTP_11, &Method::GET);
    }

    /// Reads and answers one request; says whether the connection
    /// persists after it.
    ///
    /// The common case runs straight through without waiting: the next
    /// head is already buffered (a pipelined batch, or the read that woke
    /// an idle connection), the request has no body and the handler
    /// answers at once. Only the waits are `await`s, so that path builds
    /// no read future and no timer.
    async fn one_request(&mut self) -> Result<Persist, Stop> {
        // Scoped so that the request's storage ends before the handler's
        // await and the response's before the flush's: the compiler keeps
        // room in the future for every local whose scope spans an await.
        let (call, method, version, persist, upgrade_asked, started) = {
            let max_head = self.io.shared.config.max_header_size;
            let head = match self
                .io
                .stream
                .try_read_until_buffered(b"\r\n\r\n", max_head)
            {
                Some(Ok(head)) => head,
                Some(Err(e)) => return Err(head_error(e)),
                // Boxed: a head arriving in pieces is rare, and its wait's
                // state would enlarge every request's.
                None => Box::pin(self.read_head()).await?,
            };
            let started = crate::stats::turn_start();
            let Started {
                mut request,
                body,
                persist,
                upgrade,
            } = start_request(&self.io, &self.peer, head)?;
            let handler = match &self.io.shared.app {
                App::Delegate(factory) => {
                    let factory = factory.clone();
                    // Boxed: the streaming path's state would otherwise
                    // make every request's future larger.
                    return Box::pin(serve_with_delegate(
                        &mut self.io,
                        factory,
                        request,
                        body,
                        persist,
                    ))
                    .await;
                }
                App::Simple(handler) => handler.clone(),
            };
            if body.kind != BodyKind::Empty {
                // Boxed, as the streamed answer below: rare paths whose
                // state would otherwise enlarge every connection's future,
                // idle ones included.
                request.body = Box::pin(decode::read_whole(&mut self.io, body)).await?;
            }
            if self.io.shared.config.decompress_request {
                // Bodiless requests too: their Content-Encoding is checked
                // (and removed) as for any other.
                let max = self.io.shared.config.max_body_size;
                let body = std::mem::take(&mut request.body);
                request.body = super::decompress::gunzip_request(&mut request.headers, body, max)?;
            }
            let method = request.method.clone();
            let version = request.version;
            // The handler's synchronous part runs under catch_unwind here,
            // its future under CatchUnwind below: a panic in either is a
            // 500. (The boxed future is two words: nothing large is moved
            // again.)
            let site = self.io.shared.site;
            crate::ioloop::running_at(site);
            let call = std::panic::catch_unwind(AssertUnwindSafe(|| handler(request)))
                .map(|fut| CatchUnwind::at(site, fut));
            (call, method, version, persist, upgrade, started)
        };
        let answered = match call {
            Ok(mut call) => match poll_once(Pin::new(&mut call)).await {
                Some(r) => r,
                None => {
                    // The handler has to wait: send earlier pipelined
                    // responses now rather than after it.
                    self.io.flush_boxed().await?;
                    call.await
                }
            },
            Err(p) => Err(p),
        };
        // A shutdown may have begun while the handler ran.
        let persist = if self.io.shared.draining() {
            Persist::Close
        } else {
            persist
        };
        {
            let mut response = match answered {
                Ok(r) => r,
                Err(p) => {
                    let msg = crate::ioloop::panic_message_of(&*p);
                    tracing::error!("handler panicked: {msg}");
                    crate::stats::handler_panic(1);
                    Response::text("500 Internal Server Error\n")
                        .status(StatusCode::INTERNAL_SERVER_ERROR)
                }
            };
            crate::stats::request(Some(&method), response.status.as_u16(), started);
            if let Some(on_upgrade) = response.upgrade.take() {
                // Boxed: rare. The new protocol runs at the top level
                // (`Stop::Upgrade`), not in this future.
                return Box::pin(upgrade::switch(
                    &mut self.io,
                    response,
                    on_upgrade,
                    version,
                    method,
                    upgrade_asked,
                ))
                .await;
            }
            if response.stream.is_some() {
                return Box::pin(send_streamed(
                    &mut self.io,
                    response,
                    version,
                    method,
                    persist,
                ))
                .await;
            }
            self.io.put_response(response, version, &method, persist);
        }
        if persist == Persist::Close {
            return Ok(Persist::Close);
        }
        // Pipelined requests waiting: answer them into the same buffer.
        if self.io.stream.buffered() == 0 || self.io.out.len() >= MAX_PENDING_OUTPUT {
            self.io.flush().await?;
        }
        Ok(Persist::KeepAlive)
    }

    /// Between requests: sends what is pending and waits for the next
    /// request's first bytes. `Ok(Reading::Closed)`: the connection is done
    /// (closed, idle too long, or the server is shutting down).
    ///
    /// A `fresh` connection (none of its requests served yet) is not idle:
    /// its client connected to send a request, which may be on its way. A
    /// shutdown therefore closes it only at its deadline, not at once like
    /// an idle keep-alive connection, whose client knows to retry (RFC 9112
    /// §9.3.1). During a restart's handover this is what keeps a request
    /// sent just as the old process stops from being lost.
    async fn wait_for_request(&mut self, fresh: bool) -> Result<Reading, Stop> {
        if !self.io.out.is_empty() {
            // Rarely anything left (requests end with a flush): boxed, so
            // the write's state is not part of every idle connection's.
            self.io.flush_boxed().await?;
        }
        self.io.release_output();
        if self.io.shared.draining() && !fresh {
            return Ok(Reading::Closed);
        }
        // Idle: the server may close it at once on shutdown.
        let key = (!fresh).then(|| {
            self.io
                .shared
                .idle
                .borrow_mut()
                .insert(self.io.stream.closer())
        });
        let idle = self.io.shared.config.idle_connection_timeout;
        let stream = self.io.stream.clone();
        let waited = self.io.timer.within(idle, stream.wait_for_data()).await;
        if let Some(key) = key {
            let _ = self.io.shared.idle.borrow_mut().try_remove(key);
        }
        Ok(match waited {
            Ok(Ok(_)) => Reading::Head,
            _ => Reading::Closed,
        })
    }

    /// The rest of a head that has not all arrived: pending responses go
    /// first (a finished response must not wait for the client's next
    /// request), then the whole head must arrive within `header_timeout`.
    ///
    /// What has arrived is scanned as it lands ([`HeadScan`]): a head whose
    /// blank line is a bare LF, or bytes that cannot begin a request, are
    /// answered at once, not when the header timeout runs out.
    async fn read_head(&mut self) -> Result<Bytes, Stop> {
        self.io.flush().await?;
        let shared = self.io.shared.clone();
        let cfg = &shared.config;
        let stream = self.io.stream.clone();
        let mut scan = HeadScan::new(cfg.max_header_size);
        let head_read =
            stream.read_with(|buf: &mut BytesMut| scan.decode(buf).map_err(HeadRead::Refused));
        match self.io.timer.within(cfg.header_timeout, head_read).await {
            Ok(Ok(head)) => Ok(head),
            Ok(Err(HeadRead::Refused(e))) => Err(e.into()),
            Ok(Err(HeadRead::Stream(e))) => Err(head_error(e)),
            Err(_) => Err(Stop::Respond(StatusCode::REQUEST_TIMEOUT, "")),
        }
    }
}

/// Why a head that arrived in pieces was not read.
enum HeadRead {
    /// Its bytes are refused.
    Refused(RequestError),
    /// The stream failed or closed.
    Stream(StreamError),
}

impl From<StreamError> for HeadRead {
    fn from(e: StreamError) -> HeadRead {
        HeadRead::Stream(e)
    }
}

/// What a failed head read means: too large (431), or the client left.
fn head_error(e: StreamError) -> Stop {
    match e {
        StreamError::Unsatisfiable { .. } => RequestError::HeadTooLarge.into(),
        _ => Stop::Quiet,
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

/// Runs the protocol a connection was upgraded to, telling it when the
/// server drains ([`Response::on_drain`](super::Response::on_drain)).
/// Bytes the client sent after its request stay in the stream's buffer
/// for the new protocol to read first.
async fn run_upgraded(shared: Rc<Shared>, on_upgrade: OnUpgrade, stream: Rc<IOStream>) {
    let drain = on_upgrade.drain();
    let protocol = on_upgrade.call(stream);
    let key = drain.map(|tell| {
        if shared.draining() {
            tell(); // the shutdown began during the handshake
        }
        shared.upgraded.borrow_mut().insert(tell)
    });
    protocol.await;
    if let Some(key) = key {
        let _ = shared.upgraded.borrow_mut().try_remove(key);
    }
}
