//! WebSocket test helpers: a raw blocking client that builds frames by
//! hand (to send what no library client would), and serving an
//! application on the current loop for in-loop clients.

use std::io::{Read, Write};
use std::net::TcpStream;

use cyclone::http1::HttpServer;
use cyclone::web::Application;

use super::HANG;

/// A handshake request for `path` with `extra` header lines.
pub fn handshake_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A blocking client speaking raw frames.
pub struct RawClient {
    pub tcp: TcpStream,
    /// The server's 101 head (or refusal).
    pub head: String,
}

impl RawClient {
    /// Connects and sends the handshake for `path`; the head of the
    /// answer is in `head`.
    pub fn open(port: u16, path: &str, extra: &str) -> RawClient {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(HANG)).unwrap();
        tcp.write_all(handshake_request(path, extra).as_bytes())
            .unwrap();
        let head = read_head(&mut tcp);
        RawClient { tcp, head }
    }

    /// Sends a frame: FIN as given, `rsv` in bits 4-6, masked if `mask`.
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8], mask: bool) {
        self.send_raw(&frame(fin, 0, opcode, payload, mask));
    }

    /// Sends bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).unwrap();
    }

    /// A masked, final text frame.
    pub fn send_text(&mut self, text: &str) {
        self.send(true, 0x1, text.as_bytes(), true);
    }

    /// Reads one frame: (FIN, opcode, payload). Panics at EOF.
    pub fn read_frame(&mut self) -> (bool, u8, Vec<u8>) {
        self.try_read_frame()
            .expect("a frame, not the end of the stream")
    }

    /// Reads one frame, `None` at EOF or reset.
    pub fn try_read_frame(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let mut h = [0u8; 2];
        self.tcp.read_exact(&mut h).ok()?;
        assert_eq!(h[1] & 0x80, 0, "a server frame must not be masked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.tcp.read_exact(&mut b).ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.tcp.read_exact(&mut b).ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.tcp.read_exact(&mut payload).ok()?;
        Some((h[0] & 0x80 != 0, h[0] & 0x0f, payload))
    }

    /// Reads frames until a Close and returns its code (None: no code),
    /// skipping data and Pings before it.
    pub fn read_close_code(&mut self) -> Option<u16> {
        loop {
            let (_, opcode, payload) = self.read_frame();
            if opcode == 0x8 {
                return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
            }
        }
    }

    /// Whether the server then ends the TCP connection (EOF or reset)
    /// rather than sending anything more.
    pub fn sees_end(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.tcp.read(&mut b), Ok(0) | Err(_))
    }
}

/// A frame built by hand.
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: bool) -> Vec<u8> {
    let mut f = vec![(if fin { 0x80 } else { 0 }) | (rsv << 4) | opcode];
    let m = if mask { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(m | n as u8),
        n if n <= 0xffff => {
            f.push(m | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(m | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if mask {
        let key = [0x1b, 0x2c, 0x3d, 0x4e];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Reads up to and including the blank line that ends a response head.
pub fn read_head(c: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read_exact(&mut byte).is_err() {
            break;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Serves `app` on the current loop (127.0.0.1, a free port) and returns
/// the server (stop it, or drop the loop) and the port.
pub fn serve(app: Application) -> (HttpServer, u16) {
    let server = app.into_server();
    let port = server.listen(0, Some("127.0.0.1")).unwrap()[0].port();
    (server, port)
}

/// `ws://127.0.0.1:{port}{path}`.
pub fn url(port: u16, path: &str) -> String {
    format!("ws://127.0.0.1:{port}{path}")
}
