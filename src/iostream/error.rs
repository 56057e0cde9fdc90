//! The stream layer's error type.

use std::io;
use std::sync::Arc;

/// Why a stream operation failed, or why the stream closed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The stream is closed; the inner error says why, when it was not a
    /// normal close (the peer's EOF, or [`IOStream::close`]).
    ///
    /// [`IOStream::close`]: super::IOStream::close
    #[error("stream closed{}", match .0 { Some(e) => format!(": {e}"), None => String::new() })]
    Closed(Option<Box<StreamError>>),
    /// The read buffer reached `max_buffer_size`, or a write would pass
    /// `max_write_buffer_size`.
    #[error("stream buffer full")]
    BufferFull,
    /// `read_until`/`read_until_regex` found no delimiter within `max_bytes`.
    #[error("delimiter not found within {max_bytes} bytes")]
    Unsatisfiable {
        /// The limit that was passed.
        max_bytes: usize,
    },
    /// Another read is still outstanding on this stream.
    #[error("a read is already pending on this stream")]
    ReadPending,
    /// A system call failed.
    #[error(transparent)]
    Io(Arc<io::Error>),
    /// The stream's record layer (TLS) refused what the peer sent, or
    /// could not finish its handshake; the inner error says why (for TLS,
    /// a `cyclone::tls::TlsError`, which it can be downcast to).
    #[error("{0}")]
    Transport(Arc<dyn std::error::Error + Send + Sync>),
    /// The peer closed the connection without first closing its record
    /// layer (no TLS `close_notify`): data may have been cut off by an
    /// attacker. A disconnect for keep-alive purposes, but a read until
    /// close fails with it.
    #[error("the peer closed without close_notify: the data may be truncated")]
    Truncated,
    /// The peer closed before the record layer's handshake finished (a
    /// health check that only connects, a client giving up): a
    /// disconnect, with no data lost.
    #[error("the peer closed during the handshake")]
    ClosedInHandshake,
}

impl StreamError {
    /// Whether this is an I/O error a peer causes by going away (reset,
    /// broken pipe, timed out): a normal close, not worth an error log.
    pub fn is_disconnect(&self) -> bool {
        match self {
            StreamError::Io(e) => is_disconnect(e),
            StreamError::Truncated | StreamError::ClosedInHandshake => true,
            StreamError::Closed(Some(inner)) => inner.is_disconnect(),
            _ => false,
        }
    }
}

pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNRESET | libc::EPIPE | libc::ETIMEDOUT | libc::ECONNABORTED | libc::ENOTCONN
        )
    )
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> StreamError {
        StreamError::Io(Arc::new(e))
    }
}

impl From<StreamError> for io::Error {
    fn from(e: StreamError) -> io::Error {
        match e {
            StreamError::Io(inner) => io::Error::new(inner.kind(), StreamError::Io(inner)),
            StreamError::Closed(_) => io::Error::new(io::ErrorKind::BrokenPipe, e),
            other => io::Error::other(other),
        }
    }
}
