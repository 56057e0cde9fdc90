//! What every step of serving a request works with ([`Io`]: the stream,
//! the pending output, the one timer, the server's shared state), and why
//! a connection stops ([`Stop`]).
//!
//! Responses are appended to one output buffer, so a pipelined batch goes
//! out in one write; between requests the buffer goes back to a per-thread
//! pool, so an idle connection holds none (hyper's `io` role).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use bytes::BytesMut;
use http::{Method, StatusCode, Version};

use super::encode::{Persist, encode_response};
use super::error::RequestError;
use super::message::{OnUpgrade, Response};
use super::service::Shared;
use super::spares::{self, Spares};
use crate::ioloop::Sleep;
use crate::iostream::IOStream;

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

/// Why a connection stops.
pub(crate) enum Stop {
    /// Quietly: the peer left, or stayed idle too long.
    Quiet,
    /// With an error response first.
    Respond(StatusCode, &'static str),
    /// Not at all: the 101 is sent and the connection becomes this
    /// protocol, run by the connection's top level (see `upgrade`).
    Upgrade(OnUpgrade),
}

impl From<RequestError> for Stop {
    fn from(e: RequestError) -> Stop {
        tracing::debug!("bad request: {e}");
        Stop::Respond(e.status(), "")
    }
}

/// A connection's means: what it reads from and writes to, and its limits.
pub(crate) struct Io {
    pub(crate) stream: Rc<IOStream>,
    /// Responses not sent yet (a pipelined batch).
    pub(crate) out: BytesMut,
    /// The server's configuration, handler and shutdown state.
    pub(crate) shared: Rc<Shared>,
    /// One timer for the connection's idle, header, body and write
    /// deadlines, moved forward lazily (`Sleep::within`): no timer-wheel
    /// work per request.
    pub(crate) timer: Sleep,
}

impl Io {
    pub(crate) fn new(stream: IOStream, shared: Rc<Shared>) -> Io {
        Io {
            stream: Rc::new(stream),
            out: BytesMut::new(),
            shared,
            timer: crate::ioloop::sleep_until(crate::ioloop::far_future()),
        }
    }

    /// Sends the pending output. A client that stops reading (a zero
    /// window) must not hold the connection forever: the write has
    /// `write_timeout` to complete.
    pub(crate) async fn flush(&mut self) -> Result<(), Stop> {
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

    /// [`flush`](Self::flush), boxed for the rare callers that must not
    /// carry its state in their own future (`Box::pin(fut).await` inside
    /// an async fn would still reserve room for `fut` there).
    pub(crate) fn flush_boxed(&mut self) -> Pin<Box<dyn Future<Output = Result<(), Stop>> + '_>> {
        Box::pin(self.flush())
    }

    /// Appends `response` to the pending output.
    #[inline]
    pub(crate) fn put_response(
        &mut self,
        response: Response,
        version: Version,
        method: &Method,
        persist: Persist,
    ) {
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

    /// Appends a response that ends the connection, without taking a
    /// spare buffer (the connection is going away).
    pub(crate) fn put_final(&mut self, response: &Response, version: Version, method: &Method) {
        encode_response(
            &mut self.out,
            version,
            method,
            response,
            Persist::Close,
            self.shared.config.server_name.as_bytes(),
        );
    }

    /// An idle connection holds no output buffer: its memory goes to the
    /// thread's spares for whichever connection answers next.
    pub(crate) fn release_output(&mut self) {
        if self.out.capacity() > 0 {
            let mut spare = std::mem::take(&mut self.out);
            spare.clear();
            spares::put(&SPARE_OUT, spare);
        }
    }
}
