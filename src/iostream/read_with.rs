//! [`IOStream::read_with`]: a protocol's decoder run on the stream's own
//! buffer, so framed protocols (WebSocket) take their frames where the
//! bytes landed instead of copying them into a buffer of their own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;

use super::read::Target;
use super::{IOStream, StreamError};

/// The future returned by [`IOStream::read_with`].
#[must_use = "futures do nothing unless awaited"]
pub struct ReadWith<'a, F> {
    stream: &'a IOStream,
    decode: F,
    /// How many buffered bytes the decoder needs before it is worth
    /// calling again: one more than it last left unconsumed.
    need: usize,
    refused: bool,
    done: bool,
}

impl<F, T, E> Future for ReadWith<'_, F>
where
    F: FnMut(&mut BytesMut) -> Result<Option<T>, E> + Unpin,
    E: From<StreamError>,
{
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.refused {
            return Poll::Ready(Err(StreamError::ReadPending.into()));
        }
        let this = &mut *self;
        let inner = &this.stream.inner;
        loop {
            let target = Target::Bytes {
                n: this.need,
                partial: false,
            };
            let out = match inner.poll_target(cx, &target) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => Err(E::from(e)),
                Poll::Ready(Ok(_)) => {
                    let mut st = inner.st.borrow_mut();
                    match (this.decode)(&mut st.rbuf) {
                        Ok(None) => {
                            this.need = st.rbuf.len() + 1;
                            continue;
                        }
                        Ok(Some(v)) => Ok(v),
                        Err(e) => Err(e),
                    }
                }
            };
            inner.finish_read();
            this.done = true;
            inner.update_interest();
            return Poll::Ready(out);
        }
    }
}

impl<F> Drop for ReadWith<'_, F> {
    fn drop(&mut self) {
        if !self.refused && !self.done {
            self.stream.inner.finish_read();
            self.stream.inner.update_interest();
        }
    }
}

impl IOStream {
    /// Reads through `decode`, a protocol's decoder, which is handed the
    /// stream's buffer itself whenever new bytes have arrived: it takes
    /// from the front what it uses (it may take some and still answer
    /// `Ok(None)`, a frame header say) and returns `Ok(Some(_))` once it
    /// has a result. No bytes are copied on the way and a decoder that
    /// keeps its payloads as views of the buffer keeps them without a
    /// copy. A stream error ends the read with that error converted.
    ///
    /// The buffer is bounded by `max_buffer_size`, as for every read.
    ///
    /// ```
    /// use std::os::unix::net::UnixStream;
    /// use bytes::{Buf, BytesMut};
    /// use cyclone::{IOLoop, IOStream, StreamError};
    ///
    /// // A length-prefixed record: one length byte, then the data.
    /// fn record(buf: &mut BytesMut) -> Result<Option<Vec<u8>>, StreamError> {
    ///     match buf.first() {
    ///         Some(&n) if buf.len() > n as usize => {
    ///             buf.advance(1);
    ///             Ok(Some(buf.split_to(n as usize).to_vec()))
    ///         }
    ///         _ => Ok(None),
    ///     }
    /// }
    ///
    /// let lp = IOLoop::new().unwrap();
    /// let got = lp.run_sync(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let (a, b) = (IOStream::new(a).unwrap(), IOStream::new(b).unwrap());
    ///     a.write(&b"\x05hello\x02"[..]).await.unwrap();
    ///     b.read_with(record).await.unwrap()
    /// });
    /// assert_eq!(got, b"hello");
    /// ```
    pub fn read_with<F, T, E>(&self, decode: F) -> ReadWith<'_, F>
    where
        F: FnMut(&mut BytesMut) -> Result<Option<T>, E> + Unpin,
        E: From<StreamError>,
    {
        let refused = !self.begin_read();
        ReadWith {
            stream: self,
            decode,
            need: 1,
            refused,
            done: false,
        }
    }
}
