//! HTTP/1.1 (RFC 9112): request parsing and framing, the connection state
//! machine, and [`HttpServer`].
//!
//! One file per concern, as in hyper's `proto/h1`: [`parse`] (the request
//! head), [`framing`] (body framing and chunked coding), [`encode`]
//! (response heads), `conn` (the connection state machine), [`server`].

mod config;
mod conn;
pub mod decompress;
pub mod delegate;
pub mod encode;
mod error;
pub mod framing;
mod message;
pub mod parse;
pub mod server;
mod service;
mod spares;
pub mod writer;
pub mod xheaders;

pub use config::HttpConfig;
pub use delegate::{HeadersAction, HttpDelegate};
pub use error::RequestError;
pub use message::{BodyStream, Headers, Request, Response};
pub use server::HttpServer;
pub use writer::ResponseWriter;
