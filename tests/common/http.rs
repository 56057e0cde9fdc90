//! A small HTTP/1.1 client for the tests that talk to a server over
//! 127.0.0.1: request bytes, a response parser (from a stream or from a
//! captured byte stream), a keep-alive connection, and helpers that serve
//! an [`Application`] while a client runs on a helper thread.
//!
//! Like the rest of `common`, this module is under `#![allow(dead_code)]`
//! (set in `common/mod.rs`): each test file uses only part of it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use cyclone::IOLoop;
use cyclone::http1::HttpServer;
use cyclone::web::Application;

use super::HANG;

/// One parsed response: status, headers (lower-case names, in order,
/// repeated fields kept), body.
#[derive(Debug, Clone, PartialEq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first field called `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every field called `name` (lower case), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Splits a captured byte stream into responses (bodies by Content-Length;
/// `head` says which requests were HEAD, in order, so their bodies are
/// empty). Fails on trailing bytes that are not a whole response head.
pub fn parse_responses(mut data: &[u8], head: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
        let text = String::from_utf8_lossy(&data[..end]).to_string();
        let mut lines = text.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        data = &data[end + 4..];
        let is_head = head.get(out.len()).copied().unwrap_or(false);
        let len: usize = if is_head || status == 100 || status == 204 || status == 304 {
            0
        } else {
            resp.header("content-length")
                .map_or(0, |v| v.parse().unwrap())
        };
        resp.body = data[..len].to_vec();
        data = &data[len..];
        out.push(resp);
    }
    assert!(
        data.is_empty(),
        "trailing bytes: {:?}",
        String::from_utf8_lossy(data)
    );
    out
}

/// A request's bytes: `Host`, the given fields, and a `Content-Length`
/// when there is a body (or the method usually has one).
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Reads one response from `r`; `head` says the request was HEAD (no body).
/// The body is framed by Content-Length, chunked coding, or the close.
pub fn read_response(r: &mut impl BufRead, head: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    assert!(line.starts_with("HTTP/1."), "not a status line: {line:?}");
    let status: u16 = line[9..12].parse().expect("status code");
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).expect("header line");
        let l = l.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("header colon");
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status < 200 || status == 204 || status == 304 {
        return resp;
    }
    if let Some(n) = resp.header("content-length") {
        let n: usize = n.parse().expect("content-length");
        let mut body = vec![0; n];
        r.read_exact(&mut body).expect("body");
        resp.body = body;
    } else if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).expect("chunk size");
            let size = size.trim().split(';').next().unwrap_or("");
            let n = usize::from_str_radix(size, 16).expect("chunk size hex");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).expect("chunk");
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut resp.body).expect("body to close");
    }
    resp
}

/// A keep-alive client connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(HANG)).unwrap();
        Conn {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.writer
            .write_all(&request(method, target, headers, body))
            .expect("write request");
        read_response(&mut self.reader, method == "HEAD")
    }

    pub fn get(&mut self, target: &str) -> Resp {
        self.send("GET", target, &[], b"")
    }

    pub fn get_with(&mut self, target: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", target, headers, b"")
    }
}

/// What [`with_server`] runs: an HTTP server, or a web application.
pub trait IntoServer {
    fn into_http_server(self) -> HttpServer;
}

impl IntoServer for HttpServer {
    fn into_http_server(self) -> HttpServer {
        self
    }
}

impl IntoServer for Application {
    fn into_http_server(self) -> HttpServer {
        self.into_server()
    }
}

/// Serves `server` on `lp` (port 0 on 127.0.0.1) while `client` runs on a
/// helper thread with the port; returns what `client` returns (a panic
/// in it fails the test with its message).
pub fn with_server<S, T, F>(lp: &IOLoop, server: S, client: F) -> T
where
    S: IntoServer + 'static,
    F: FnOnce(u16) -> T + Send + 'static,
    T: Send + 'static,
{
    let joined = lp
        .run_sync_timeout(
            async move {
                let server = server.into_http_server();
                let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
                let client = std::thread::spawn(move || client(port));
                super::thread_finished(&client).await;
                server.tcp().stop();
                client.join()
            },
            HANG,
        )
        .expect("the exchange did not finish in time");
    joined.unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// One GET over a fresh connection.
pub fn get(lp: &IOLoop, app: Application, target: &str) -> Resp {
    send(lp, app, "GET", target, &[], b"")
}

/// GETs each of `targets`, in order, over one keep-alive connection.
pub fn get_each<S, const N: usize>(lp: &IOLoop, app: Application, targets: [S; N]) -> [Resp; N]
where
    S: Into<String>,
{
    let targets: [String; N] = targets.map(Into::into);
    with_server(lp, app, move |port| {
        let mut c = Conn::open(port);
        targets.map(|t| c.get(&t))
    })
}

/// One request over a fresh connection.
pub fn send(
    lp: &IOLoop,
    app: Application,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let (method, target) = (method.to_string(), target.to_string());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = body.to_vec();
    with_server(lp, app, move |port| {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Conn::open(port).send(&method, &target, &h, &body)
    })
}
