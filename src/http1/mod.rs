//! HTTP/1.1 (RFC 9112): [`HttpServer`], the [`Request`] and [`Response`]
//! its handlers see, and [`HttpDelegate`] / [`ResponseWriter`] for bodies
//! streamed either way.
//!
//! One file per concern, as in hyper's `proto/h1`. Lowest first:
//! `parse` (the request head) and `framing` (which body framing a head
//! declares; chunk lines); `encode` (response heads, the Date cache);
//! `io` (a connection's stream, output batch and timer); `decode` (reading
//! a body as its framing says); `request` (a head to a [`Request`]);
//! `streamed` (sending a [`BodyStream`]) and `delegate_driver` (driving an
//! [`HttpDelegate`]); `conn` (the keep-alive/pipelining state machine);
//! `server` on top, with `service` (what answers requests) and `config`
//! below everything that reads them. The internals are private;
//! `cyclone::fuzzing` re-exports what the fuzz targets need.

mod config;
mod conn;
mod decode;
mod decompress;
mod delegate;
mod delegate_driver;
pub(crate) mod encode;
mod error;
pub(crate) mod framing;
mod head_scan;
mod io;
mod message;
pub(crate) mod parse;
mod request;
mod server;
mod service;
mod spares;
mod streamed;
mod upgrade;
mod writer;
mod xheaders;

pub use config::HttpConfig;
pub use delegate::{HeadersAction, HttpDelegate};
pub use error::RequestError;
pub use message::{BodyStream, Headers, Request, Response};
pub use server::{HttpServer, IDLE_LAME_DUCK};
pub use writer::ResponseWriter;
