//! may_minihttp with one worker: `GET *` -> "Hello, World!".
//!
//!   may_hello PORT

use std::io;

use may_minihttp::{HttpServer, HttpService, Request, Response};

#[derive(Clone)]
struct Hello;

impl HttpService for Hello {
    fn call(&mut self, _req: Request, res: &mut Response) -> io::Result<()> {
        res.header("Content-Type: text/plain; charset=utf-8");
        res.body("Hello, World!");
        Ok(())
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    may::config().set_workers(1);
    let server = HttpServer(Hello)
        .start(("127.0.0.1", port))
        .expect("listen");
    server.join().expect("server thread");
}
