//! What to fetch: [`Request`] (method, URL, headers, body and per-request
//! options) and its [`Body`].

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};

use super::upload::BodyWriter;

type Produce = Box<dyn FnOnce(BodyWriter) -> Pin<Box<dyn Future<Output = io::Result<()>>>>>;

/// A request's body: none, bytes (sent with a `Content-Length`), or a
/// producer writing it piece by piece (Tornado's `body_producer`).
///
/// ```
/// use cyclone::httpclient::Body;
///
/// let empty = Body::empty();
/// let text: Body = "name=value".into();
/// // 1 MiB made as it is sent, chunked since no length is given.
/// let made = Body::producer(None, |writer| async move {
///     for _ in 0..16 {
///         writer.write(vec![b'x'; 64 << 10]).await?;
///     }
///     Ok(())
/// });
/// # let _ = (empty, text, made);
/// ```
pub struct Body(pub(crate) Kind);

pub(crate) enum Kind {
    Empty,
    Full(Bytes),
    Producer { len: Option<u64>, produce: Produce },
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body(Kind::Empty)
    }

    /// A body written by `produce` through a [`BodyWriter`], as it wants
    /// (a file read piece by piece, data made on the fly). With `len`
    /// known it is sent with that `Content-Length` (writing more or less
    /// is an error); without, chunked. The writer's `write` waits while
    /// the connection's send buffer is full, so memory stays flat.
    ///
    /// A produced body is sent once: it is not retried, and a redirect
    /// that would send it again (307, 308, or 301/302 of a method other
    /// than POST) is not followed: the redirect is the response.
    pub fn producer<F, Fut>(len: Option<u64>, produce: F) -> Body
    where
        F: FnOnce(BodyWriter) -> Fut + 'static,
        Fut: Future<Output = io::Result<()>> + 'static,
    {
        Body(Kind::Producer {
            len,
            produce: Box::new(move |w| Box::pin(produce(w))),
        })
    }

    /// The body's length, if known.
    pub fn len(&self) -> Option<u64> {
        match &self.0 {
            Kind::Empty => Some(0),
            Kind::Full(b) => Some(b.len() as u64),
            Kind::Producer { len, .. } => *len,
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Whether the body can be sent again (a retry, a 307 redirect).
    pub(crate) fn replayable(&self) -> bool {
        !matches!(self.0, Kind::Producer { .. })
    }

    /// A copy for a second sending (`None` for a producer).
    pub(crate) fn try_clone(&self) -> Option<Body> {
        match &self.0 {
            Kind::Empty => Some(Body::empty()),
            Kind::Full(b) => Some(Body(Kind::Full(b.clone()))),
            Kind::Producer { .. } => None,
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Empty => f.write_str("Body::empty()"),
            Kind::Full(b) => write!(f, "Body({} bytes)", b.len()),
            Kind::Producer { len, .. } => write!(f, "Body::producer({len:?})"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        if b.is_empty() {
            Body::empty()
        } else {
            Body(Kind::Full(b))
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Bytes::from(v).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Bytes::from(s).into()
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Bytes::from_static(s).into()
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

/// Receives a streamed response's body, piece by piece.
pub(crate) type OnChunk = Box<dyn FnMut(Bytes)>;

/// What a request overrides of its client's [`ClientConfig`](super::ClientConfig).
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_redirects: Option<usize>,
    pub(crate) decompress: Option<bool>,
    pub(crate) max_body_size: Option<usize>,
    pub(crate) on_chunk: Option<OnChunk>,
}

/// A request: method, URL, headers and [`Body`], plus options that
/// override the client's for this request. Build one with
/// [`Request::get`], [`Request::new`] or from an [`http::Request`].
///
/// `Host` (unless given here), `Content-Length`/`Transfer-Encoding` and
/// (when the response is decoded) `Accept-Encoding` are set by the
/// client; headers given here are sent as given, after them. A `Host`
/// given here is dropped when a redirect leaves the origin.
///
/// ```
/// use std::time::Duration;
/// use cyclone::httpclient::Request;
/// use http::Method;
///
/// let req = Request::new(Method::POST, "http://127.0.0.1:8888/items")
///     .header("content-type", "application/json")
///     .body(r#"{"name": "cyclone"}"#)
///     .timeout(Duration::from_secs(5));
/// # let _ = req;
/// let from_http: Request = http::Request::get("http://127.0.0.1:8888/").body(()).unwrap().into();
/// # let _ = from_http;
/// ```
pub struct Request {
    pub(crate) method: Method,
    pub(crate) url: Result<Uri, (String, &'static str)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    pub(crate) options: Options,
    /// The first invalid header given, reported when fetched.
    pub(crate) invalid: Option<String>,
}

impl Request {
    /// A request for `method` on `url` (`http://` or `https://`).
    pub fn new(method: Method, url: &str) -> Request {
        Request {
            method,
            url: url.parse().map_err(|_| (url.to_string(), "not a URL")),
            headers: HeaderMap::new(),
            body: Body::empty(),
            options: Options::default(),
            invalid: None,
        }
    }

    /// A GET of `url`.
    pub fn get(url: &str) -> Request {
        Request::new(Method::GET, url)
    }

    /// A POST of `body` to `url`.
    pub fn post(url: &str, body: impl Into<Body>) -> Request {
        Request::new(Method::POST, url).body(body)
    }

    /// Adds a header (appended: a name may repeat). An invalid name or
    /// value fails the fetch with [`FetchError::InvalidRequest`](super::FetchError::InvalidRequest).
    pub fn header<K, V>(mut self, name: K, value: V) -> Request
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        match (name.try_into(), value.try_into()) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            (Err(_), _) => {
                self.invalid
                    .get_or_insert_with(|| "invalid header name".to_string());
            }
            (_, Err(_)) => {
                self.invalid
                    .get_or_insert_with(|| "invalid header value".to_string());
            }
        }
        self
    }

    /// The headers, to change in place.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Body>) -> Request {
        self.body = body.into();
        self
    }

    /// Bounds the whole fetch, the queue and redirects included
    /// (the client's `request_timeout` otherwise).
    pub fn timeout(mut self, limit: Duration) -> Request {
        self.options.request_timeout = Some(limit);
        self
    }

    /// Bounds resolving, connecting and the TLS handshake (the client's
    /// `connect_timeout` otherwise).
    pub fn connect_timeout(mut self, limit: Duration) -> Request {
        self.options.connect_timeout = Some(limit);
        self
    }

    /// Follows at most `n` redirects (0: none; the 3xx is the response).
    pub fn max_redirects(mut self, n: usize) -> Request {
        self.options.max_redirects = Some(n);
        self
    }

    /// Whether to ask for and decode gzip/deflate bodies.
    pub fn decompress(mut self, on: bool) -> Request {
        self.options.decompress = Some(on);
        self
    }

    /// The largest body accepted (after decoding).
    pub fn max_body_size(mut self, bytes: usize) -> Request {
        self.options.max_body_size = Some(bytes);
        self
    }

    /// Hands the final response's body to `on_chunk` as it arrives
    /// (decoded), instead of keeping it in [`Response::body`](super::Response::body),
    /// which stays empty: a large download is held one piece at a time,
    /// not whole. `max_body_size` still bounds it (raise it for large
    /// downloads). The callback cannot pause the download; it sees the
    /// body of whatever status the final response has.
    pub fn on_chunk(mut self, on_chunk: impl FnMut(Bytes) + 'static) -> Request {
        self.options.on_chunk = Some(Box::new(on_chunk));
        self
    }

    /// Sends `Expect: 100-continue` and the body only once the server
    /// says `100 Continue` (or after a second without an answer, as curl
    /// does); a final answer instead means the body is never sent.
    pub fn expect_continue(self) -> Request {
        self.header(
            http::header::EXPECT,
            HeaderValue::from_static("100-continue"),
        )
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The URL, if it parsed.
    pub fn url(&self) -> Option<&Uri> {
        self.url.as_ref().ok()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

impl<B: Into<Body>> From<http::Request<B>> for Request {
    fn from(req: http::Request<B>) -> Request {
        let (parts, body) = req.into_parts();
        Request {
            method: parts.method,
            url: Ok(parts.uri),
            headers: parts.headers,
            body: body.into(),
            options: Options::default(),
            invalid: None,
        }
    }
}

impl From<&str> for Request {
    fn from(url: &str) -> Request {
        Request::get(url)
    }
}

impl From<&String> for Request {
    fn from(url: &String) -> Request {
        Request::get(url)
    }
}

impl From<String> for Request {
    fn from(url: String) -> Request {
        Request::get(&url)
    }
}

impl From<Uri> for Request {
    fn from(url: Uri) -> Request {
        Request {
            method: Method::GET,
            url: Ok(url),
            headers: HeaderMap::new(),
            body: Body::empty(),
            options: Options::default(),
            invalid: None,
        }
    }
}
