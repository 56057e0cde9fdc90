//! Sending a request body: [`BodyWriter`], which a body producer writes
//! through, framing each piece (chunked, or counted against the declared
//! `Content-Length`).

use std::cell::Cell;
use std::io;
use std::rc::{Rc, Weak};

use bytes::Bytes;

use crate::http1::encode::chunk_size_line;
use crate::iostream::IOStream;

/// What a [`Body::producer`](super::Body::producer) writes its body
/// through. Each [`write`](Self::write) resolves once the piece is in the
/// kernel's hands, so a producer that awaits it never holds more than a
/// piece in memory. Once the producer has returned (or its request was
/// cancelled), writes fail: a writer kept past its body can never put
/// bytes on a connection that carries something else.
pub struct BodyWriter {
    stream: Weak<IOStream>,
    /// `None`: chunked; otherwise the bytes still owed.
    left: Option<Rc<Cell<u64>>>,
    open: Rc<Cell<bool>>,
}

/// Closes its writer when dropped: when the producer returns, or when
/// the request is dropped mid-body.
pub(crate) struct WriterGuard(Rc<Cell<bool>>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl BodyWriter {
    /// A writer onto `stream` for a body of `len` bytes (`None`: chunked),
    /// the bytes it still owes, and the guard that closes it.
    pub(crate) fn new(
        stream: &Rc<IOStream>,
        len: Option<u64>,
    ) -> (BodyWriter, Option<Rc<Cell<u64>>>, WriterGuard) {
        let left = len.map(|n| Rc::new(Cell::new(n)));
        let open = Rc::new(Cell::new(true));
        let writer = BodyWriter {
            stream: Rc::downgrade(stream),
            left: left.clone(),
            open: open.clone(),
        };
        (writer, left, WriterGuard(open))
    }

    /// Sends `data` (an empty piece sends nothing).
    pub async fn write(&self, data: impl Into<Bytes>) -> io::Result<()> {
        let data = data.into();
        let stream = match self.stream.upgrade() {
            Some(s) if self.open.get() => s,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the request this body belonged to is over",
                ));
            }
        };
        if data.is_empty() {
            return Ok(());
        }
        match &self.left {
            Some(left) => {
                let n = data.len() as u64;
                if n > left.get() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "the body producer wrote more than its declared length",
                    ));
                }
                left.set(left.get() - n);
                stream.write(data).await?;
            }
            None => {
                let size = chunk_size_line(data.len());
                let crlf = Bytes::from_static(b"\r\n");
                stream.write_chunks([size, data, crlf]).await?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter")
            .field("left", &self.left.as_ref().map(|l| l.get()))
            .field("open", &self.open.get())
            .finish()
    }
}
