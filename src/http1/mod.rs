//! HTTP/1.1 (RFC 9112): [`HttpServer`], the [`Request`] and [`Response`]
//! its handlers see, and [`HttpDelegate`] / [`ResponseWriter`] for bodies
//! streamed either way.
//!
//! One file per concern, as in hyper's `proto/h1`: `parse` (the request
//! head), `framing` (body framing and chunked coding), `encode` (response
//! heads), `conn` (the connection state machine), `server`. The internals
//! are private; `cyclone::fuzzing` re-exports what the fuzz targets need.

mod config;
mod conn;
mod decode;
mod decompress;
mod delegate;
mod delegate_driver;
pub(crate) mod encode;
mod error;
// Public only for tests/http_robustness.rs, which names
// `cyclone::http1::{framing, parse}`; `cyclone::fuzzing` is the way in.
#[doc(hidden)]
pub mod framing;
mod io;
mod message;
#[doc(hidden)]
pub mod parse;
mod request;
mod server;
mod service;
mod spares;
mod streamed;
mod writer;
mod xheaders;

pub use config::HttpConfig;
pub use delegate::{HeadersAction, HttpDelegate};
pub use error::RequestError;
pub use message::{BodyStream, Headers, Request, Response};
pub use server::HttpServer;
pub use writer::ResponseWriter;
