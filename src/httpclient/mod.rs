//! An asynchronous HTTP/1.1 client on the loop, Tornado's
//! `AsyncHTTPClient` with what its default client lacks: a keep-alive
//! pool and proxies.
//!
//! [`HttpClient::fetch`] takes a [`Request`] (or an [`http::Request`], or
//! a URL) and returns a [`Response`] with the body, the URL after
//! redirects and a [`Timing`]; [`FetchError`] says why there is none.
//!
//! ```
//! use cyclone::httpclient::{HttpClient, Request};
//! use cyclone::http1::{HttpServer, Response as ServerResponse};
//!
//! let lp = cyclone::IOLoop::new().unwrap();
//! let body = lp.run_sync(async {
//!     let server = HttpServer::new(|req| async move {
//!         ServerResponse::text(format!("you asked for {}", req.uri.path()))
//!     });
//!     let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
//!     let client = HttpClient::new();
//!     let response = client
//!         .fetch(Request::get(&format!("http://127.0.0.1:{port}/hello")))
//!         .await
//!         .unwrap();
//!     assert_eq!(response.status, 200);
//!     response.body
//! });
//! assert_eq!(&body[..], b"you asked for /hello");
//! ```
//!
//! What it does, and what it follows:
//! - **Pool**: keep-alive connections per origin, `max_connections_per_host`
//!   of them, idle ones closed after `idle_timeout`; `max_clients`
//!   requests at once, the rest queued FIFO (the wait counts against the
//!   request's timeout). A pooled connection the server closed is noticed
//!   before use where it can be (always for a request that may not be
//!   repeated), and an idempotent request (RFC 9110 §9.2.2) that fails
//!   on a pooled connection before any byte of a response is sent once
//!   more on a new one. Nothing else is ever sent twice.
//! - **Redirects** (RFC 9110 §15.4): up to `max_redirects` (5); 301 and
//!   302 turn a POST into a GET, 303 anything but HEAD, 307 and 308 keep
//!   method and body; `Authorization`, `Cookie` and `Proxy-Authorization`
//!   stay behind when a redirect leaves the origin; a relative `Location`
//!   is resolved per RFC 3986 §5.2.
//! - **Bodies** (RFC 9112 §6): Content-Length, chunked (extensions
//!   ignored, trailers in [`Response::trailers`]), until close; none for
//!   HEAD, 204 and 304; interim 1xx skipped; gzip and deflate decoded
//!   within `max_body_size`; a download streamed to a callback
//!   ([`Request::on_chunk`]); an upload from a producer
//!   ([`Body::producer`]), chunked unless its length is given;
//!   `Expect: 100-continue` ([`Request::expect_continue`]).
//! - **Strict**: a response framed two ways, with two lengths, an invalid
//!   chunk or a head past `max_header_size` is an error naming what was
//!   wrong, and the connection is closed; nothing a server sends makes
//!   the client panic, wait past its timeout or hold more than its limits.
//! - **Proxies**: `http://` through a forward proxy, `https://` through
//!   a `CONNECT` tunnel, with Basic credentials ([`Proxy`]).
//!
//! Files, lowest first: `url` (targets, RFC 3986 resolution), `error`,
//! `config`, `request`/`upload`/`response` (the types), `encode` (a
//! request head), `decode` (a response, sans I/O), `decompress`,
//! `exchange` (one request on one connection), `pool`, `connect`,
//! `redirect`, and `client` on top.

mod client;
mod config;
mod connect;
pub(crate) mod decode;
mod decompress;
mod encode;
mod error;
mod exchange;
mod pool;
mod redirect;
mod request;
mod response;
mod upload;
pub(crate) mod url;

pub use client::{ClientStats, HttpClient};
pub use config::{ClientConfig, Proxy};
pub use error::{FetchError, TimeoutKind};
pub use request::{Body, Request};
pub use response::{HttpStatusError, Response, Timing};
pub use upload::BodyWriter;
