//! [`HttpClient`]: fetches on the loop, through the pool, following
//! redirects, within the timeouts, retrying once what is safe to retry.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use http::header::LOCATION;
use http::{HeaderMap, Method, Uri};

use super::config::ClientConfig;
use super::connect;
use super::decode::Head;
use super::encode::{self, HeadParts};
use super::error::{FetchError, TimeoutKind};
use super::exchange::{self, Keep, Limits, Outgoing, Received};
use super::pool::{Key, Lease, Pool};
use super::redirect;
use super::request::{Body, OnChunk, Request};
use super::response::{Response, Timing};
use super::url::Target;

/// An asynchronous HTTP/1.1 client on the current loop, with a
/// keep-alive pool. Cheap to clone (clones share the pool and limits);
/// one per loop is the intended use, as Tornado's `AsyncHTTPClient`.
///
/// ```no_run
/// use cyclone::httpclient::{HttpClient, Request};
///
/// cyclone::run_sync(async {
///     let client = HttpClient::new();
///     let response = client.fetch("http://127.0.0.1:8888/").await.unwrap();
///     println!("{} {:?}", response.status, response.text());
///     let posted = client
///         .fetch(Request::post("http://127.0.0.1:8888/items", "name=cyclone"))
///         .await
///         .unwrap();
///     assert!(posted.status.is_success());
/// });
/// ```
#[derive(Clone)]
pub struct HttpClient {
    inner: Rc<Inner>,
}

struct Inner {
    config: ClientConfig,
    pool: Rc<Pool>,
}

/// What a client has done, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Fetches started.
    pub requests: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Requests sent on a pooled connection.
    pub connections_reused: u64,
    /// Requests sent again after a pooled connection failed before any
    /// response.
    pub retries: u64,
    /// Connections idle in the pool now.
    pub idle: usize,
    /// Connections open now (idle, in use or opening).
    pub open: usize,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient::new()
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The methods RFC 9110 §9.2.2 calls idempotent: sent twice, they do
/// what once does, so a request that met a closing connection may go
/// again.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

impl HttpClient {
    /// A client with the default [`ClientConfig`].
    pub fn new() -> HttpClient {
        HttpClient::with_config(ClientConfig::default())
    }

    /// A client with `config`.
    pub fn with_config(config: ClientConfig) -> HttpClient {
        let pool = Pool::new(
            config.max_clients,
            config.max_connections_per_host,
            config.idle_timeout,
        );
        HttpClient {
            inner: Rc::new(Inner {
                config,
                pool: Rc::new(pool),
            }),
        }
    }

    /// The client's configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Counters and the pool's state.
    pub fn stats(&self) -> ClientStats {
        let s = &self.inner.pool.stats;
        let (idle, open) = self.inner.pool.counts();
        ClientStats {
            requests: s.requests.get(),
            connections_opened: s.opened.get(),
            connections_reused: s.reused.get(),
            retries: s.retried.get(),
            idle,
            open,
        }
    }

    /// Closes the idle connections (Tornado's `close()`); requests in
    /// flight finish, and later requests open new connections.
    pub fn close_idle(&self) {
        self.inner.pool.close_idle();
    }

    /// A GET of `url`.
    pub async fn get(&self, url: &str) -> Result<Response, FetchError> {
        self.fetch(Request::get(url)).await
    }

    /// Fetches `request` (a [`Request`], an [`http::Request`], or a URL
    /// to GET) and returns the response, after redirects. Any status is a
    /// response; [`FetchError`] says why there is none.
    pub async fn fetch(&self, request: impl Into<Request>) -> Result<Response, FetchError> {
        let request = request.into();
        let started = Instant::now();
        let limit = request
            .options
            .request_timeout
            .unwrap_or(self.inner.config.request_timeout);
        let queued = Cell::new(true);
        let run = self.run(request, started, &queued);
        match crate::ioloop::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) if queued.get() => Err(FetchError::Timeout(TimeoutKind::Queue)),
            Err(_) => Err(FetchError::Timeout(TimeoutKind::Request)),
        }
    }

    async fn run(
        &self,
        request: Request,
        started: Instant,
        queued: &Cell<bool>,
    ) -> Result<Response, FetchError> {
        if let Some(why) = request.invalid {
            return Err(FetchError::InvalidRequest(why));
        }
        let mut uri = request
            .url
            .map_err(|(url, reason)| FetchError::InvalidUrl { url, reason })?;
        // Checked before the queue: a bad URL fails at once.
        parse_target(&uri)?;
        let config = &self.inner.config;
        let options = request.options;
        let mut on_chunk = options.on_chunk;
        let mut hop = Hop {
            method: request.method,
            headers: request.headers,
            body: request.body,
            settings: Settings {
                decompress: options.decompress.unwrap_or(config.decompress),
                limits: Limits {
                    max_head: config.max_header_size,
                    max_body: options.max_body_size.unwrap_or(config.max_body_size),
                },
                connect_timeout: options.connect_timeout.unwrap_or(config.connect_timeout),
            },
        };
        let max_redirects = options.max_redirects.unwrap_or(config.max_redirects);
        let pool = &self.inner.pool;
        pool.stats.requests.set(pool.stats.requests.get() + 1);
        let mut timing = Timing::default();
        let _slot = match pool.try_slot() {
            Some(slot) => slot,
            None => {
                let slot = pool.slot().await;
                timing.queue = started.elapsed();
                slot
            }
        };
        queued.set(false);
        loop {
            let target = parse_target(&uri)?;
            // A body sent again by a redirect that keeps it; a produced
            // body cannot be, so such a redirect is the response.
            let again = hop.body.try_clone();
            let method = hop.method.clone();
            let follows = |h: &Head| {
                max_redirects > 0
                    && redirect::is_redirect(h.status)
                    && h.headers.contains_key(LOCATION)
                    && (again.is_some() || redirect::drops_body(h.status, &method))
            };
            let (got, reused) = self
                .send(
                    &target,
                    &mut hop,
                    &mut on_chunk,
                    &follows,
                    &mut timing,
                    queued,
                )
                .await?;
            if !follows(&got.head) {
                timing.first_byte = got.first_byte.saturating_duration_since(started);
                timing.total = got.end.saturating_duration_since(started);
                timing.reused = reused;
                return Ok(Response {
                    status: got.head.status,
                    version: got.head.version,
                    headers: got.head.headers,
                    body: got.body,
                    trailers: got.trailers,
                    url: uri,
                    timing,
                });
            }
            let Some(location) = got.head.headers.get(LOCATION) else {
                return Err(FetchError::Malformed("a redirect without Location".into()));
            };
            let next = redirect::next(got.head.status, &hop.method, &uri, location)?;
            if timing.redirects as usize >= max_redirects {
                return Err(FetchError::TooManyRedirects {
                    max: max_redirects,
                    location: next.uri.to_string(),
                });
            }
            redirect::strip(
                &mut hop.headers,
                next.keeps_body,
                &target,
                &parse_target(&next.uri)?,
            );
            hop.body = match again {
                Some(body) if next.keeps_body => body,
                _ => Body::empty(),
            };
            hop.method = next.method;
            timing.redirects += 1;
            uri = next.uri;
        }
    }

    /// One request on a pooled or new connection, sent once more on a
    /// fresh connection if a pooled one failed before any response and
    /// the request is safe to repeat. The body is taken from `hop`.
    async fn send(
        &self,
        target: &Target<'_>,
        hop: &mut Hop,
        on_chunk: &mut Option<OnChunk>,
        follows: &dyn Fn(&Head) -> bool,
        timing: &mut Timing,
        queued: &Cell<bool>,
    ) -> Result<(Received, bool), FetchError> {
        let config = &self.inner.config;
        let pool = &self.inner.pool;
        let proxy = config.proxy.as_ref();
        let forward = proxy.is_some() && !target.secure;
        let key = match (proxy, forward) {
            (Some(p), true) => Key {
                secure: false,
                host: &p.host,
                port: p.port,
                forward_proxy: true,
            },
            _ => Key {
                secure: target.secure,
                host: &target.host,
                port: target.port,
                forward_proxy: false,
            },
        };
        let may_retry = idempotent(&hop.method) && hop.body.replayable();
        let mut fresh = false;
        loop {
            queued.set(true);
            let lease = pool.checkout(&key, fresh, &mut timing.queue).await;
            queued.set(false);
            let conn = match lease {
                Lease::Idle(c) => c,
                Lease::Open(permit) => {
                    let opened = connect::open(
                        target,
                        proxy,
                        config.tls.as_ref(),
                        hop.settings.connect_timeout,
                    )
                    .await?;
                    timing.connect += opened.connect;
                    timing.tls += opened.tls;
                    permit.fulfil(opened.stream)
                }
            };
            let reused = conn.conn().reused;
            let spare = if may_retry && reused {
                hop.body.try_clone()
            } else {
                None
            };
            let body = std::mem::take(&mut hop.body);
            let head = encode::head(&HeadParts {
                method: &hop.method,
                target,
                headers: &hop.headers,
                body_len: body.len(),
                forward_proxy: forward.then(|| proxy.and_then(|p| p.auth.as_ref())),
                accept_gzip: hop.settings.decompress,
                user_agent: config.user_agent.as_ref(),
            });
            let expect_continue = hop
                .headers
                .get(http::header::EXPECT)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            let out = Outgoing {
                head,
                body,
                expect_continue,
                head_request: hop.method == Method::HEAD,
            };
            let decompress = hop.settings.decompress;
            let sink = on_chunk.as_mut();
            let choose = move |h: &Head| match sink {
                _ if follows(h) => Keep::Discard,
                Some(on_chunk) => Keep::Stream {
                    decompress,
                    on_chunk,
                },
                None => Keep::Body { decompress },
            };
            let stream = conn.conn().stream.clone();
            match exchange::exchange(&stream, out, hop.settings.limits, choose).await {
                Ok(got) => {
                    conn.release(got.reusable, got.end);
                    return Ok((got, reused));
                }
                Err(failure) => {
                    conn.release(false, Instant::now());
                    match spare {
                        Some(body) if failure.retryable => {
                            pool.stats.retried.set(pool.stats.retried.get() + 1);
                            hop.body = body;
                            fresh = true;
                        }
                        _ => return Err(failure.error),
                    }
                }
            }
        }
    }
}

/// What a request is, hop by hop of its redirects.
struct Hop {
    method: Method,
    headers: HeaderMap,
    body: Body,
    settings: Settings,
}

struct Settings {
    decompress: bool,
    limits: Limits,
    connect_timeout: Duration,
}

fn parse_target(uri: &Uri) -> Result<Target<'_>, FetchError> {
    Target::parse(uri).map_err(|reason| FetchError::InvalidUrl {
        url: uri.to_string(),
        reason,
    })
}
