//! The HTTP layer alone, no web framework: `cargo run --release --example
//! hello [PORT]` answers every request with "Hello, World!" (port 8890 by
//! default). `bench/run.sh` measures it beside `cyclone serve`, to show
//! what the web layer (routing, ETag, access log) costs per request.

use cyclone::IOLoop;
use cyclone::http1::{HttpServer, Response};

/// Clear of `cyclone serve`'s 8888 and the echo example's 8889.
const DEFAULT_PORT: u16 = 8890;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|e| format!("bad port {p:?}: {e}"))?,
        None => DEFAULT_PORT,
    };
    let lp = IOLoop::new()?;
    let server = HttpServer::new(|_req| async { Response::text("Hello, World!") });
    let addrs = server.listen(port, Some("127.0.0.1"))?;
    println!("hello on http://{}/", addrs[0]);
    lp.start()?;
    Ok(())
}
