//! A rustls connection as the stream's record layer ([`Transport`]),
//! through rustls' unbuffered API.
//!
//! Why the unbuffered API: the stream already owns a read buffer, a write
//! queue and the loop's readiness and io_uring send logic. The buffered
//! API (`read_tls`/`process_new_packets`/`write_tls`) would keep a second
//! copy of each: records in rustls' own deframer buffer (4 KiB that an
//! idle connection cannot give back), plaintext in its own queue (so the
//! stream could not tell from the fd alone whether data is waiting). Here
//! rustls opens the records the stream holds and seals into bytes the
//! stream queues as they are: nothing is held between records, about
//! 4 KiB less per idle connection (measured: 4.4 KiB against 8.5 KiB of
//! heap after a request). rustls 0.23 still opens each record into a
//! vector of its own, which the stream then copies into its read buffer.

use std::any::Any;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use rustls::client::UnbufferedClientConnection;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{ClientConfig, ServerConfig};

use super::error::TlsError;
use crate::iostream::{Transport, TransportError};

/// TLS records carry at most 16 KiB of data (RFC 8446 §5.1), plus a
/// header, a tag and padding; this bounds what one record adds.
const RECORD_OVERHEAD: usize = 64;
const MAX_FRAGMENT: usize = 16 * 1024;
/// Room first made for an encoded handshake record (see its use).
const FIRST_RECORD_ROOM: usize = 2048;

/// The answer to plain HTTP on a TLS port.
const PLAIN_HTTP_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 45\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: use an https:// URL.\n";

/// The two ends' connections behind one interface: the unbuffered API
/// has the same methods on both, on different types.
enum Conn {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Runs `$body` with `$c` bound to the connection, whichever end it is.
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Server($c) => $body,
            Conn::Client($c) => $body,
        }
    };
}

/// `process_tls_records`, which each end's connection has on its own.
trait Records {
    type Data;
    /// Whether rustls has records queued to hand out.
    fn has_queued(&self) -> bool;
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data>;
}

impl Records for UnbufferedServerConnection {
    type Data = rustls::server::ServerConnectionData;
    fn has_queued(&self) -> bool {
        self.wants_write()
    }
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

impl Records for UnbufferedClientConnection {
    type Data = rustls::client::ClientConnectionData;
    fn has_queued(&self) -> bool {
        self.wants_write()
    }
    fn process<'c, 'i>(
        &'c mut self,
        incoming: &'i mut [u8],
    ) -> UnbufferedStatus<'c, 'i, Self::Data> {
        self.process_tls_records(incoming)
    }
}

/// A TLS session on a stream.
pub(crate) struct Session {
    conn: Conn,
    st: Progress,
}

/// Where the session is, besides rustls' own state.
struct Progress {
    handshaking: bool,
    peer_closed: bool,
    /// Records rustls encoded that are not handed to the stream yet.
    /// Taken whole each time (not split, which would keep the rest of its
    /// allocation here while an idle connection waits).
    pending: BytesMut,
}

impl Session {
    pub(crate) fn server(config: Arc<ServerConfig>) -> Result<Session, TlsError> {
        Ok(Session::new(Conn::Server(UnbufferedServerConnection::new(
            config,
        )?)))
    }

    pub(crate) fn client(
        config: Arc<ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Result<Session, TlsError> {
        Ok(Session::new(Conn::Client(UnbufferedClientConnection::new(
            config, name,
        )?)))
    }

    fn new(conn: Conn) -> Session {
        Session {
            conn,
            st: Progress {
                handshaking: true,
                peer_closed: false,
                pending: BytesMut::new(),
            },
        }
    }

    fn drive(
        &mut self,
        incoming: &mut BytesMut,
        plain: &mut BytesMut,
        send: &mut Vec<Bytes>,
        seal: Option<&[u8]>,
    ) -> Result<bool, TlsError> {
        with_conn!(&mut self.conn, c => drive(c, &mut self.st, incoming, plain, send, seal))
    }

    /// What the handshake agreed on.
    pub(crate) fn info(&self) -> super::TlsInfo {
        with_conn!(&self.conn, c => super::TlsInfo {
            protocol_version: c.protocol_version(),
            cipher_suite: c.negotiated_cipher_suite().map(|s| s.suite()),
            alpn_protocol: c.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: c
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            resumed: c.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        })
    }
}

/// Drives rustls over `incoming` until it needs more of it (or, with
/// `seal`, until it may encrypt `seal`'s data, which it then does into
/// `pending`; `Ok(true)` once it did). Opened data goes to `plain`, whole
/// records to `send`.
fn drive<C: Records>(
    conn: &mut C,
    st: &mut Progress,
    incoming: &mut BytesMut,
    plain: &mut BytesMut,
    send: &mut Vec<Bytes>,
    seal: Option<&[u8]>,
) -> Result<bool, TlsError> {
    loop {
        let UnbufferedStatus { mut discard, state } = conn.process(&mut incoming[..]);
        let state = match state {
            Ok(state) => state,
            Err(e) => {
                incoming.advance(discard);
                return Err(e.into());
            }
        };
        let mut stop = false;
        let mut sealed = false;
        match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    let record = record?;
                    discard += record.discard;
                    plain.extend_from_slice(record.payload);
                }
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                encode_into(&mut st.pending, |out| encode.encode(out))
            }
            ConnectionState::TransmitTlsData(transmit) => {
                if !st.pending.is_empty() {
                    send.push(std::mem::take(&mut st.pending).freeze());
                }
                transmit.done();
            }
            ConnectionState::WriteTraffic(mut traffic) => {
                st.handshaking = false;
                if let Some(data) = seal {
                    encrypt_into(&mut st.pending, data, |plain, out| {
                        traffic.encrypt(plain, out)
                    })?;
                    sealed = true;
                }
                stop = true;
            }
            ConnectionState::PeerClosed => st.peer_closed = true,
            // Blocked: more records are needed. Closed: both sides
            // said close_notify. Early data is never enabled.
            _ => stop = true,
        }
        incoming.advance(discard);
        if stop {
            return Ok(sealed);
        }
    }
}

/// Appends the handshake record `encode` writes to `pending`, with the
/// room it needs.
fn encode_into(
    pending: &mut BytesMut,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
) {
    loop {
        let at = pending.len();
        // A handshake record is rarely over 2 KiB (a certificate chain);
        // a larger one says so and gets its size next try.
        let room = pending.capacity().saturating_sub(at).max(FIRST_RECORD_ROOM);
        pending.resize(at + room, 0);
        match encode(&mut pending[at..]) {
            Ok(n) => {
                pending.truncate(at + n);
                return;
            }
            Err(EncodeError::InsufficientSize(e)) => {
                pending.truncate(at);
                pending.reserve(e.required_size);
            }
            Err(EncodeError::AlreadyEncoded) => {
                pending.truncate(at);
                return;
            }
        }
    }
}

/// After an error, the records rustls queued, into `pending`: the alert
/// saying why, and whatever must precede it (a TLS 1.3 server's alert
/// about ALPN is encrypted, so its ServerHello goes first). A turn hands
/// out a queued record before it reads input; none is made once the
/// queue is empty, because the input that failed would be read again and
/// rustls must not be made to send a second fatal alert.
fn take_alert<C: Records>(conn: &mut C, pending: &mut BytesMut, incoming: &mut BytesMut) {
    // Only while records are queued: each turn then hands one out before
    // it would read input.
    while conn.has_queued() {
        let status = conn.process(&mut incoming[..]);
        let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state else {
            break;
        };
        encode_into(pending, |out| encode.encode(out));
    }
}

/// A close_notify record, if the connection is at a point to send one.
fn close_notify<C: Records>(conn: &mut C, incoming: &mut BytesMut) -> Option<Bytes> {
    let mut out = BytesMut::new();
    let status = conn.process(&mut incoming[..]);
    if let Ok(ConnectionState::WriteTraffic(mut traffic)) = status.state {
        encrypt_into(&mut out, &[], |_, buf| traffic.queue_close_notify(buf)).ok()?;
        return Some(out.freeze());
    }
    None
}

/// Encrypts `data` into `out` through `encrypt`, growing `out` to what
/// rustls says it needs.
fn encrypt_into(
    out: &mut BytesMut,
    data: &[u8],
    mut encrypt: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
) -> Result<(), TlsError> {
    let at = out.len();
    let mut need = data.len() + (data.len() / MAX_FRAGMENT + 1) * RECORD_OVERHEAD;
    loop {
        out.resize(at + need, 0);
        match encrypt(data, &mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(e)) => need = e.required_size,
            Err(e) => {
                out.truncate(at);
                return Err(TlsError::Other(e.to_string()));
            }
        }
    }
}

impl Transport for Session {
    fn receive(
        &mut self,
        incoming: &mut BytesMut,
        plain: &mut BytesMut,
        send: &mut Vec<Bytes>,
    ) -> Result<(), TransportError> {
        if self.st.handshaking
            && matches!(self.conn, Conn::Server(_))
            && incoming.first().is_some_and(u8::is_ascii_uppercase)
        {
            // A TLS record starts with its type (20 to 24); a letter is
            // an HTTP method: a client that forgot https. Say so in its
            // own language, as nginx does, then close.
            send.push(Bytes::from_static(PLAIN_HTTP_REPLY));
            return Err(Arc::new(TlsError::PlainHttp));
        }
        match self.drive(incoming, plain, send, None) {
            Ok(_) => Ok(()),
            Err(e) => {
                // rustls queued an alert saying why: send it before the
                // stream closes.
                let pending = &mut self.st.pending;
                with_conn!(&mut self.conn, c => take_alert(c, pending, incoming));
                if !self.st.pending.is_empty() {
                    send.push(std::mem::take(&mut self.st.pending).freeze());
                }
                Err(Arc::new(e))
            }
        }
    }

    fn seal(
        &mut self,
        incoming: &mut BytesMut,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), TransportError> {
        if self.st.handshaking {
            return Err(Arc::new(TlsError::HandshakeNotComplete));
        }
        let mut send = Vec::new();
        // `receive` left no whole record in `incoming`, so nothing opens
        // here; rustls still wants to see what it left there.
        let mut plain = BytesMut::new();
        let sealed = self
            .drive(incoming, &mut plain, &mut send, Some(data))
            .map_err(|e| Arc::new(e) as TransportError)?;
        debug_assert!(plain.is_empty());
        // Records rustls had waiting (a session ticket, a key update) go
        // first, then the data.
        for record in send {
            out.extend_from_slice(&record);
        }
        out.extend_from_slice(&std::mem::take(&mut self.st.pending));
        if sealed {
            Ok(())
        } else {
            Err(Arc::new(TlsError::HandshakeNotComplete))
        }
    }

    fn start(&mut self, send: &mut Vec<Bytes>) -> Result<(), TransportError> {
        // A client's hello comes out of the first turn; a server's turn
        // finds nothing to do until the hello arrives.
        let result = self.drive(&mut BytesMut::new(), &mut BytesMut::new(), send, None);
        if !self.st.pending.is_empty() {
            send.push(std::mem::take(&mut self.st.pending).freeze());
        }
        result
            .map(|_| ())
            .map_err(|e| Arc::new(e) as TransportError)
    }

    fn close_notify(&mut self, incoming: &mut BytesMut) -> Option<Bytes> {
        with_conn!(&mut self.conn, c => close_notify(c, incoming))
    }

    fn is_handshaking(&self) -> bool {
        self.st.handshaking
    }

    fn peer_closed(&self) -> bool {
        self.st.peer_closed
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
