//! Servers that say exactly the bytes a test scripts, for the HTTP
//! client's tests: each accepted connection runs the script on a thread
//! of its own (one that never answers does not hold up the next), and
//! the server counts what it accepted. A plain forward/CONNECT proxy
//! too, relaying bytes, that records the request heads it saw.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;

/// A scripted server on 127.0.0.1; dropping it stops accepting.
pub struct Scripted {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Serves `script(connection, index)` for each connection (index from 0).
pub fn scripted<F>(script: F) -> Scripted
where
    F: Fn(TcpStream, usize) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (a, s, script) = (accepted.clone(), stop.clone(), Arc::new(script));
    thread::spawn(move || {
        for conn in listener.incoming() {
            if s.load(Ordering::SeqCst) {
                return;
            }
            let Ok(conn) = conn else { continue };
            let index = a.fetch_add(1, Ordering::SeqCst);
            let script = script.clone();
            thread::spawn(move || script(conn, index));
        }
    });
    Scripted {
        port,
        accepted,
        stop,
    }
}

/// A server that accepts and never answers: each connection is held
/// open, silent, until the returned sender is dropped.
pub fn silent() -> (Scripted, mpsc::Sender<()>) {
    let (hold, wait) = mpsc::channel::<()>();
    let wait = Mutex::new(wait);
    let server = scripted(move |conn, _| {
        let _ = wait.lock().unwrap().recv();
        drop(conn);
    });
    (server, hold)
}

/// One request read off a connection: the head (lines without CRLF)
/// and a Content-Length body. `None` at EOF.
pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let len = header(&lines, "content-length").map_or(0, |v| v.parse().unwrap_or(0));
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((lines, body))
}

/// The value of field `name` (case-insensitive) in a head's lines.
pub fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    lines.iter().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A server answering every request on a connection with `response`
/// (keep-alive), recording each request line.
pub fn answering(response: &'static [u8]) -> (Scripted, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = scripted(move |conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut conn = conn;
        while let Some((head, _)) = read_request(&mut reader) {
            s.lock().unwrap().push(head[0].clone());
            if conn.write_all(response).is_err() {
                return;
            }
        }
    });
    (server, seen)
}

/// A forward proxy (absolute-form requests, relayed to the origin) and
/// `CONNECT` tunnel, recording the heads it was sent. Each connection
/// carries one request (or one tunnel) and is then closed.
pub fn proxy() -> (Scripted, Arc<Mutex<Vec<Vec<String>>>>) {
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    let server = scripted(move |conn, _| {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let Some((head, body)) = read_request(&mut reader) else {
            return;
        };
        h.lock().unwrap().push(head.clone());
        let mut parts = head[0].split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let mut client = conn;
        if method == "CONNECT" {
            let Ok(origin) = TcpStream::connect(target) else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            relay(reader, client, origin);
            return;
        }
        // Absolute form: http://host:port/path -> origin-form to host:port.
        let rest = target.strip_prefix("http://").unwrap_or(target);
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let Ok(mut origin) = TcpStream::connect(authority) else {
            return;
        };
        let mut out = format!("{method} {path} HTTP/1.1\r\n");
        for line in &head[1..] {
            if !line.to_ascii_lowercase().starts_with("proxy-authorization") {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("Connection: close\r\n\r\n");
        let _ = origin.write_all(out.as_bytes());
        let _ = origin.write_all(&body);
        let mut answer = Vec::new();
        let _ = origin.read_to_end(&mut answer);
        let _ = client.write_all(&answer);
        let _ = client.shutdown(Shutdown::Both);
    });
    (server, heads)
}

/// Copies bytes both ways until either side closes.
fn relay(reader: BufReader<TcpStream>, client: TcpStream, origin: TcpStream) {
    let buffered = reader.buffer().to_vec();
    let (mut c_read, mut c_write) = (reader.into_inner(), client);
    let (mut o_read, mut o_write) = (origin.try_clone().unwrap(), origin);
    let _ = o_write.write_all(&buffered);
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c_read, &mut o_write);
        let _ = o_write.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut o_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
}
