//! hyper 1.x on tokio's current_thread runtime: `GET *` -> "Hello, World!".
//!
//!   hyper_hello PORT [--pipeline-flush]
//!
//! `--pipeline-flush` turns on hyper's option that gathers the responses
//! to pipelined requests into fewer writes.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

async fn hello(_req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"Hello, World!")));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let pipeline_flush = args.any(|a| a == "--pipeline-flush");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(async move {
            let _ = http1::Builder::new()
                .pipeline_flush(pipeline_flush)
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}
