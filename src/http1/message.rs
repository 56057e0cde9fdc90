//! [`Request`] and [`Response`].

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use super::spares::{self, Spares};
use crate::iostream::{IOStream, StreamWatcher};
use crate::netutil::PeerAddr;

/// The most spare maps kept per thread. A loop needs one between a
/// response's end and the next one's start; the rest bound what a burst
/// of concurrent responses leaves behind.
const SPARE_HEADER_MAPS_MAX: usize = 64;

thread_local! {
    /// Emptied header maps with their memory, for the next request or
    /// response: a map costs two allocations to build, and a server builds
    /// two per request.
    static SPARE_HEADER_MAPS: Spares<HeaderMap> = const { Spares::new(SPARE_HEADER_MAPS_MAX) };
}

/// Maps that grew larger than this many fields are dropped, not kept:
/// an unusual response must not make every later one carry its memory.
const SPARE_HEADER_MAP_CAPACITY_MAX: usize = 32;

/// An empty header map, from the spares when there is one.
pub(crate) fn spare_header_map() -> HeaderMap {
    spares::take(&SPARE_HEADER_MAPS).unwrap_or_default()
}

/// Keeps `map`'s memory for [`spare_header_map`].
pub(crate) fn recycle_header_map(mut map: HeaderMap) {
    // `len` counts repeated fields too (kept in a second array that
    // `capacity` does not show): a map that held many is not kept.
    if map.capacity() == 0
        || map.capacity() > SPARE_HEADER_MAP_CAPACITY_MAX
        || map.len() > SPARE_HEADER_MAP_CAPACITY_MAX
    {
        return;
    }
    map.clear(); // drops the values here, not inside the pool's borrow
    spares::put(&SPARE_HEADER_MAPS, map);
}

/// A request's header fields: a [`HeaderMap`] (it dereferences to one)
/// whose memory goes back to a per-thread pool when the request is done
/// with, for the next request's fields: building a map costs two
/// allocations otherwise, on every request (actix-web pools its request
/// heads the same way).
///
/// ```
/// use cyclone::http1::Headers;
/// use http::{HeaderMap, HeaderValue, header::HOST};
///
/// let mut headers = Headers::from(HeaderMap::new());
/// headers.insert(HOST, HeaderValue::from_static("example.com"));
/// assert_eq!(headers.get(HOST).unwrap(), "example.com");
/// let map: HeaderMap = headers.into_inner();
/// assert_eq!(map.len(), 1);
/// ```
#[derive(Default, Clone, PartialEq)]
pub struct Headers(HeaderMap);

impl Headers {
    /// The map itself, taken out (it is then not recycled).
    pub fn into_inner(mut self) -> HeaderMap {
        std::mem::take(&mut self.0)
    }
}

impl std::ops::Deref for Headers {
    type Target = HeaderMap;
    fn deref(&self) -> &HeaderMap {
        &self.0
    }
}

impl std::ops::DerefMut for Headers {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        &mut self.0
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Headers {
        Headers(map)
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Drop for Headers {
    fn drop(&mut self) {
        recycle_header_map(std::mem::take(&mut self.0));
    }
}

/// An HTTP request, head and (complete) body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields (a [`HeaderMap`] by dereference).
    pub headers: Headers,
    /// The body (empty if there was none).
    pub body: Bytes,
    /// Who sent it: the connection's peer.
    pub remote_addr: PeerAddr,
    /// The client's IP: the peer's, or with `xheaders` the one a trusted
    /// proxy reported (X-Real-Ip / X-Forwarded-For).
    pub remote_ip: Option<IpAddr>,
    /// `"http"`, or with `xheaders` what a proxy reported
    /// (X-Forwarded-Proto / X-Scheme: `"http"` or `"https"`).
    pub protocol: &'static str,
    /// The client connection, for long-polling handlers: `await
    /// req.connection.closed()` completes when the client goes away.
    pub connection: StreamWatcher,
}

impl Request {
    /// The path part of the target.
    #[inline]
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The query string, if any.
    #[inline]
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The Host header (or the target's authority).
    pub fn host(&self) -> Option<&str> {
        self.headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| self.uri.host())
    }

    /// The scheme the client used (see [`Request::protocol`](Self::protocol)
    /// the field).
    pub fn scheme(&self) -> &'static str {
        self.protocol
    }
}

/// An HTTP response: a complete body, or one produced in pieces
/// ([`Response::stream`]). `Content-Length` is set when it is written;
/// `Date`, `Server` and `Connection` too.
#[derive(Debug)]
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// Header fields set by the handler.
    pub headers: HeaderMap,
    /// The body (not sent for HEAD, 1xx, 204 and 304).
    pub body: Bytes,
    /// A body produced in pieces, sent after `body` (normally empty).
    pub stream: Option<BodyStream>,
    /// What the connection becomes after a 101 ([`Response::switching_protocols`]).
    pub(crate) upgrade: Option<OnUpgrade>,
}

/// Takes over an upgraded connection's stream once its 101 is sent.
pub(crate) struct OnUpgrade {
    start: Box<dyn FnOnce(Rc<IOStream>) -> Protocol>,
    /// Told when the server begins a graceful shutdown while the new
    /// protocol runs ([`Response::on_drain`]).
    drain: Option<Rc<dyn Fn()>>,
}

/// The new protocol, running on the upgraded stream.
type Protocol = Pin<Box<dyn Future<Output = ()>>>;

impl OnUpgrade {
    /// Hands `stream` over; the future runs the new protocol.
    pub(crate) fn call(self, stream: Rc<IOStream>) -> Protocol {
        (self.start)(stream)
    }

    /// What to tell the new protocol when the server drains, if anything.
    pub(crate) fn drain(&self) -> Option<Rc<dyn Fn()>> {
        self.drain.clone()
    }
}

impl std::fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnUpgrade")
    }
}

/// A response body produced piece by piece and sent as it is produced,
/// each piece once the previous one is in the kernel's hands: a large
/// file costs one piece of memory, not its size.
///
/// The pieces come from an iterator run on the loop's thread, so each
/// must be quick to make (a read of a file the page cache holds, as
/// Tornado's and nginx's static file serving do).
///
/// ```
/// use bytes::Bytes;
/// use cyclone::http1::{BodyStream, Response};
///
/// let pieces = (0..3).map(|i| Ok(Bytes::from(format!("piece {i}\n"))));
/// let resp = Response::new(http::StatusCode::OK).stream(BodyStream::new(Some(24), pieces));
/// assert_eq!(resp.stream.as_ref().unwrap().content_length(), Some(24));
/// ```
pub struct BodyStream {
    len: Option<u64>,
    pieces: Box<dyn Iterator<Item = std::io::Result<Bytes>>>,
}

impl BodyStream {
    /// A body of `len` bytes in all (`None`: not known, so sent chunked on
    /// HTTP/1.1 and until the connection closes on HTTP/1.0), made of the
    /// pieces `pieces` yields. An error ends the response early and closes
    /// the connection (the client sees a short body).
    pub fn new(
        len: Option<u64>,
        pieces: impl Iterator<Item = std::io::Result<Bytes>> + 'static,
    ) -> BodyStream {
        BodyStream {
            len,
            pieces: Box::new(pieces),
        }
    }

    /// The whole body's length, if known.
    pub fn content_length(&self) -> Option<u64> {
        self.len
    }

    /// The next piece.
    pub(crate) fn next_piece(&mut self) -> Option<std::io::Result<Bytes>> {
        self.pieces.next()
    }
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyStream")
            .field("len", &self.len)
            .finish()
    }
}

impl Response {
    /// An empty response with `status`.
    #[inline]
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: spare_header_map(),
            body: Bytes::new(),
            stream: None,
            upgrade: None,
        }
    }

    /// `101 Switching Protocols`, handing the connection over: once the
    /// 101 (with `headers`, which name the new protocol in `Upgrade`; the
    /// server adds `Connection: Upgrade`) is sent, no HTTP parsing touches the stream
    /// again and `on_upgrade` gets it, with whatever the client sent after
    /// its request still in its buffer. The connection ends when the
    /// returned future does.
    ///
    /// Only for a request that asked to upgrade (HTTP/1.1, an `Upgrade`
    /// header, `upgrade` in `Connection`): to any other the server answers
    /// 500 instead, since a client that did not ask would go on reading
    /// HTTP from a stream that speaks something else.
    ///
    /// ```
    /// use cyclone::http1::Response;
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("upgrade", "echo".parse().unwrap());
    /// let resp = Response::switching_protocols(headers, |stream| async move {
    ///     while let Ok(data) = stream.read_bytes(4096, true).await {
    ///         if stream.write(data).await.is_err() {
    ///             break;
    ///         }
    ///     }
    /// });
    /// assert_eq!(resp.status, http::StatusCode::SWITCHING_PROTOCOLS);
    /// ```
    pub fn switching_protocols<F, Fut>(headers: HeaderMap, on_upgrade: F) -> Response
    where
        F: FnOnce(Rc<IOStream>) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let mut response = Response::new(StatusCode::SWITCHING_PROTOCOLS);
        response.headers = headers;
        response.upgrade = Some(OnUpgrade {
            start: Box::new(move |stream| Box::pin(on_upgrade(stream))),
            drain: None,
        });
        response
    }

    /// For a [`switching_protocols`](Self::switching_protocols) response:
    /// `on_drain` runs if the server begins a graceful shutdown (a
    /// restart's drain) while the new protocol runs, or at once if it
    /// began before. A WebSocket sends its Close 1001 (going away) then,
    /// so that its client reconnects at once, to the new process, instead
    /// of being cut at the end of the grace. Ignored on other responses.
    pub fn on_drain(mut self, on_drain: impl Fn() + 'static) -> Response {
        if let Some(upgrade) = &mut self.upgrade {
            upgrade.drain = Some(Rc::new(on_drain));
        }
        self
    }

    /// `200 OK` with a `text/plain; charset=utf-8` body.
    #[inline]
    pub fn text(body: impl Into<Bytes>) -> Response {
        // Built in place rather than through the builder: each builder
        // step moves the whole response.
        let mut headers = spare_header_map();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        Response {
            status: StatusCode::OK,
            headers,
            body: body.into(),
            stream: None,
            upgrade: None,
        }
    }

    /// Sets the body.
    #[inline]
    pub fn body(mut self, body: impl Into<Bytes>) -> Response {
        self.body = body.into();
        self
    }

    /// Sends the body in pieces (see [`BodyStream`]); `body` stays empty.
    pub fn stream(mut self, stream: BodyStream) -> Response {
        self.stream = Some(stream);
        self
    }

    /// Sets the status.
    #[inline]
    pub fn status(mut self, status: StatusCode) -> Response {
        self.status = status;
        self
    }

    /// Adds a header field.
    #[inline]
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Response {
        self.headers.append(name, value);
        self
    }
}

impl Default for Response {
    fn default() -> Response {
        Response::new(StatusCode::OK)
    }
}
