//! [`ResponseWriter`]: a response written in pieces, flow-controlled.

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};

use super::encode::{CHUNKED_END, HeadFraming, Persist, chunk_size_line, encode_head, has_body};
use crate::iostream::{IOStream, StreamError};

/// How far a response written through a [`ResponseWriter`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// No head written: the connection may still answer with an error.
    Nothing,
    /// The head is written, the response not finished: only closing the
    /// connection tells the client the response is cut short.
    HeadWritten,
    /// The whole response went out.
    Finished,
}

/// What the connection needs to know after the writer is done with.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub(crate) progress: Progress,
    /// Whether the connection may carry another request after this
    /// response.
    pub(crate) persist: Persist,
    /// The status written (for the metrics), once the head is.
    pub(crate) status: u16,
}

impl Default for WriterState {
    fn default() -> WriterState {
        WriterState {
            progress: Progress::Nothing,
            persist: Persist::Close,
            status: 0,
        }
    }
}

/// How the body being written is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body may be sent (HEAD, 204, 304, 1xx).
    NoBody,
    /// This many bytes are still owed.
    Length(u64),
    Chunked,
    /// The body ends when the connection closes (HTTP/1.0, no length).
    UntilClose,
}

/// Writes one response in pieces: [`write_head`](Self::write_head), any
/// number of [`write`](Self::write)s (each resolves once its bytes are
/// handed to the kernel: awaiting them is the flow control), then
/// [`finish`](Self::finish).
///
/// Without a known length, an HTTP/1.1 response is sent chunked and an
/// HTTP/1.0 one ends by closing the connection.
pub struct ResponseWriter {
    stream: Rc<IOStream>,
    version: Version,
    method: Method,
    persist: Persist,
    server_name: Rc<str>,
    framing: Option<Framing>,
    /// A head not yet sent: it goes out with the first piece of body.
    pending: BytesMut,
    state: Rc<RefCell<WriterState>>,
}

fn protocol_error(msg: &str) -> StreamError {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg.to_string()).into()
}

impl ResponseWriter {
    pub(crate) fn new(
        stream: Rc<IOStream>,
        version: Version,
        method: Method,
        persist: Persist,
        server_name: Rc<str>,
        state: Rc<RefCell<WriterState>>,
    ) -> ResponseWriter {
        state.borrow_mut().persist = persist;
        ResponseWriter {
            stream,
            version,
            method,
            persist,
            server_name,
            framing: None,
            pending: BytesMut::new(),
            state,
        }
    }

    /// Starts the response. `content_length` `None` means "not known":
    /// chunked on HTTP/1.1, until-close on HTTP/1.0. Framing and Connection
    /// headers in `headers` are replaced by the server's. Calling it twice
    /// is an error.
    pub fn write_head(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
        content_length: Option<u64>,
    ) -> Result<(), StreamError> {
        if self.framing.is_some() {
            return Err(protocol_error("write_head called twice"));
        }
        let body = has_body(&self.method, status);
        let (framing, head) = match (body, content_length, self.version) {
            (false, Some(n), _) if self.method == Method::HEAD => {
                (Framing::NoBody, HeadFraming::Length(n))
            }
            (false, _, _) => (Framing::NoBody, HeadFraming::None),
            (true, Some(n), _) => (Framing::Length(n), HeadFraming::Length(n)),
            (true, None, Version::HTTP_11) => (Framing::Chunked, HeadFraming::Chunked),
            (true, None, _) => {
                self.persist = Persist::Close;
                (Framing::UntilClose, HeadFraming::None)
            }
        };
        encode_head(
            &mut self.pending,
            self.version,
            status,
            headers,
            head,
            self.persist,
            self.server_name.as_bytes(),
        );
        self.framing = Some(framing);
        let mut st = self.state.borrow_mut();
        st.progress = Progress::HeadWritten;
        st.status = status.as_u16();
        st.persist = self.persist;
        Ok(())
    }

    /// Sends a piece of the body; resolves once it is handed to the kernel.
    /// With a Content-Length, writing more than was announced is an error.
    pub async fn write(&mut self, chunk: impl Into<Bytes>) -> Result<(), StreamError> {
        let chunk = chunk.into();
        let framing = self
            .framing
            .ok_or_else(|| protocol_error("write before write_head"))?;
        let head = self.pending.split().freeze();
        let pieces: Vec<Bytes> = match framing {
            Framing::NoBody => vec![head],
            Framing::Length(left) => {
                if chunk.len() as u64 > left {
                    return Err(protocol_error("body longer than its Content-Length"));
                }
                self.framing = Some(Framing::Length(left - chunk.len() as u64));
                vec![head, chunk]
            }
            Framing::UntilClose => vec![head, chunk],
            Framing::Chunked if chunk.is_empty() => vec![head],
            Framing::Chunked => {
                let size = chunk_size_line(chunk.len());
                vec![head, size, chunk, Bytes::from_static(b"\r\n")]
            }
        };
        self.stream.write_chunks(pieces).await
    }

    /// Ends the response (the last chunk for chunked bodies). Finishing a
    /// Content-Length response short of its length is an error (the
    /// connection is then closed: the client could not tell).
    pub async fn finish(mut self) -> Result<(), StreamError> {
        let framing = self
            .framing
            .ok_or_else(|| protocol_error("finish before write_head"))?;
        let head = self.pending.split().freeze();
        let tail = match framing {
            Framing::Chunked => Bytes::from_static(CHUNKED_END),
            Framing::Length(left) if left > 0 => {
                self.state.borrow_mut().persist = Persist::Close;
                return Err(protocol_error("body shorter than its Content-Length"));
            }
            _ => Bytes::new(),
        };
        self.stream.write_chunks([head, tail]).await?;
        self.state.borrow_mut().progress = Progress::Finished;
        Ok(())
    }
}
