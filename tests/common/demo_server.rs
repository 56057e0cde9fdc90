//! The demo HTTP/1.1 server the server tests run (`/`, `/echo`, `/panic`,
//! 404 otherwise) and raw-socket exchanges with it: send bytes, with
//! pauses, and take back everything it answers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use cyclone::IOLoop;
use cyclone::http1::{HttpConfig, HttpServer, Request, Response};
use http::{Method, StatusCode};

use super::http::{Resp, parse_responses, with_server};

/// How long a test client waits for the server.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The demo handler: `Hello, World!` at `/` (GET and HEAD), a POST's body
/// echoed at `/echo`, a panic at `/panic`, 404 elsewhere.
pub async fn demo(req: Request) -> Response {
    match (req.method.clone(), req.path()) {
        (Method::GET | Method::HEAD, "/") => Response::text("Hello, World!"),
        (Method::POST, "/echo") => Response::new(StatusCode::OK).body(req.body),
        (_, "/panic") => panic!("handler boom"),
        _ => Response::text("404 Not Found\n").status(StatusCode::NOT_FOUND),
    }
}

/// Runs the demo server on `lp`, sends `chunks` (with pauses) from a client
/// thread, half-closes, and returns everything the server sent back.
pub fn exchange(
    lp: &IOLoop,
    config: HttpConfig,
    chunks: Vec<(Vec<u8>, Duration)>,
    half_close: bool,
) -> Vec<u8> {
    with_server(lp, HttpServer::with_config(config, demo), move |port| {
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(LIMIT)).unwrap();
        for (chunk, pause) in chunks {
            if c.write_all(&chunk).is_err() {
                break;
            }
            std::thread::sleep(pause);
        }
        if half_close {
            let _ = c.shutdown(Shutdown::Write);
        }
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got
    })
}

/// Sends `raw` in one piece, half-closes, and parses every response.
pub fn send(lp: &IOLoop, raw: &str) -> Vec<Resp> {
    let heads: Vec<bool> = raw.match_indices("\r\n\r\n").map(|_| false).collect();
    let got = exchange(
        lp,
        HttpConfig::default(),
        vec![(raw.as_bytes().to_vec(), Duration::ZERO)],
        true,
    );
    parse_responses(&got, &heads)
}
