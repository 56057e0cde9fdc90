//! Sending a request body: [`BodyWriter`], which a body producer writes
//! through, framing each piece (chunked, or counted against the declared
//! `Content-Length`).

use std::cell::Cell;
use std::io;
use std::rc::Rc;

use bytes::Bytes;

use crate::iostream::IOStream;

/// What a [`Body::producer`](super::Body::producer) writes its body
/// through. Each [`write`](Self::write) resolves once the piece is in the
/// kernel's hands, so a producer that awaits it never holds more than a
/// piece in memory.
pub struct BodyWriter {
    stream: Rc<IOStream>,
    /// `None`: chunked; otherwise the bytes still owed.
    left: Option<Rc<Cell<u64>>>,
}

impl BodyWriter {
    pub(crate) fn new(
        stream: Rc<IOStream>,
        len: Option<u64>,
    ) -> (BodyWriter, Option<Rc<Cell<u64>>>) {
        let left = len.map(|n| Rc::new(Cell::new(n)));
        (
            BodyWriter {
                stream,
                left: left.clone(),
            },
            left,
        )
    }

    /// Sends `data` (an empty piece sends nothing).
    pub async fn write(&self, data: impl Into<Bytes>) -> io::Result<()> {
        let data = data.into();
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
                self.stream.write(data).await?;
            }
            None => {
                let size = Bytes::from(format!("{:x}\r\n", data.len()));
                let crlf = Bytes::from_static(b"\r\n");
                self.stream.write_chunks([size, data, crlf]).await?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Debug for BodyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyWriter")
            .field("left", &self.left.as_ref().map(|l| l.get()))
            .finish()
    }
}
