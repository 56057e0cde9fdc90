//! Streaming requests: [`HttpDelegate`], Tornado's message delegate.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

use super::message::{Request, Response};
use super::writer::ResponseWriter;

/// What to do after [`HttpDelegate::headers_received`].
#[derive(Debug)]
pub enum HeadersAction {
    /// Read the body (sending `100 Continue` first if the client waits
    /// for it).
    Continue,
    /// Answer now, without reading the body: no `100 Continue` is sent,
    /// and the connection closes after this response (its unread body
    /// cannot be told apart from a next request).
    Respond(Response),
}

/// Handles one request as it streams in, for bodies too large to hold in
/// memory (uploads, proxies). One delegate is made per request by the
/// factory given to [`HttpServer::with_delegate`](super::HttpServer::with_delegate).
///
/// The server calls, in order: [`headers_received`](Self::headers_received)
/// once; [`data_received`](Self::data_received) for each piece of the body
/// (at most 64 KiB each; the next piece is read only after it returns, so a
/// slow delegate slows the client down instead of buffering); then
/// [`finish`](Self::finish), which answers through a [`ResponseWriter`]. If
/// the client goes away before the body is complete,
/// [`on_connection_close`](Self::on_connection_close) is called instead of
/// `finish`. Limits and timeouts of [`HttpConfig`](super::HttpConfig) apply
/// as for whole-body requests (`decompress_request` does not).
pub trait HttpDelegate {
    /// The head arrived (`req.body` is empty). Decide whether the body is
    /// wanted (an upload too large, or unauthorised, can be refused here
    /// before the client sends it).
    fn headers_received(&mut self, req: &Request) -> HeadersAction;
    /// A piece of the body arrived.
    fn data_received(&mut self, chunk: Bytes);
    /// The whole body arrived: answer. The response ends when the returned
    /// future completes (a writer never finished, or a panic, ends the
    /// connection).
    fn finish(&mut self, writer: ResponseWriter) -> Pin<Box<dyn Future<Output = ()>>>;
    /// The client went away before the body was complete.
    fn on_connection_close(&mut self) {}
}
