//! The demo site `cyclone serve` runs without `--root`: a home page,
//! `/hello`, `/echo`, the bundled `public/` files, and two WebSockets (an
//! echo and a chat room).

use std::path::PathBuf;

use cyclone::http1::Response;
use cyclone::web::{
    Application, HttpError, Request, RequestHandler, StaticFileHandler, WebSocketHandler,
};
use cyclone::websocket::{
    self, CloseCode, CloseInfo, DeflateConfig, Message, WebSocket, WebSocketOptions,
};
use http::Method;

/// The demo site's static files, bundled with the source.
/// The demo site's files (`public/`), compiled in, so that the binary
/// serves the whole demo wherever it is installed or run from. A test
/// below holds this list to the folder.
static PUBLIC: &[(&str, &[u8])] = &[
    ("chat.html", include_bytes!("../../../public/chat.html")),
    ("index.html", include_bytes!("../../../public/index.html")),
    ("robots.txt", include_bytes!("../../../public/robots.txt")),
    ("style.css", include_bytes!("../../../public/style.css")),
];

const HOME: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cyclone</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<h1>Cyclone</h1>
<p>A Tornado-style web server on its own event loop, in Rust.</p>
<ul>
<li><a href="/hello">/hello</a>: plain text</li>
<li><code>curl -d 'some text' http://HOST/echo</code>: echoes the body back</li>
<li><a href="/static/">/static/</a>: files from the bundled <code>public/</code> folder</li>
<li><a href="/chat">/chat</a>: a chat room over a WebSocket (open it in two tabs)</li>
<li><code>ws://HOST/ws/echo</code>: a WebSocket echo (permessage-deflate if offered)</li>
</ul>
<form method="post" action="/echo"><input name="say" value="hello"> <button>POST to /echo</button></form>
</body>
</html>
"#;

/// `POST /echo`: the body back, with its content type.
struct Echo;

impl RequestHandler for Echo {
    const METHODS: &'static [Method] = &[Method::POST];

    async fn post(&mut self, req: Request) -> Result<Response, HttpError> {
        let mut resp = Response::bytes(req.body.clone());
        if let Some(ct) = req.headers.get(http::header::CONTENT_TYPE) {
            resp.headers.insert(http::header::CONTENT_TYPE, ct.clone());
        }
        Ok(resp)
    }
}

/// `/ws/echo`: every message back, unchanged, with its own opcode.
struct WsEcho;

impl WebSocketHandler for WsEcho {
    fn compression_options(&self) -> Option<DeflateConfig> {
        // No compression state per connection (DeflateConfig::stateless):
        // an echo server's messages have nothing in common to remember.
        Some(DeflateConfig::stateless())
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        // Awaited: a client that does not read its echoes is not sent
        // more than the socket takes (and is cut off at the buffer limit).
        let _ = ws.write_message(message).await;
    }
}

/// The largest chat message: a line of chat, not a file transfer.
const CHAT_MAX_MESSAGE: usize = 64 << 10;

thread_local! {
    /// The chat room of this thread's loop: its open connections. (With
    /// `--threads` or `--processes`, each loop has a room of its own.)
    static ROOM: std::cell::RefCell<slab::Slab<WebSocket>> =
        const { std::cell::RefCell::new(slab::Slab::new()) };
}

/// `/ws/chat`: every text message to everyone in the room, unchanged
/// (the page sends `{"name": .., "text": ..}` and shows what it gets).
#[derive(Default)]
struct Chat {
    seat: Option<usize>,
}

impl WebSocketHandler for Chat {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default().max_message_size(CHAT_MAX_MESSAGE)
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        self.seat = Some(ROOM.with(|r| r.borrow_mut().insert(ws.clone())));
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        if let Message::Text(_) = message {
            ROOM.with(|r| websocket::broadcast(r.borrow().iter().map(|(_, ws)| ws), &message));
        } else {
            // The room speaks text (RFC 6455 §7.4.1: 1003 is for data an
            // endpoint cannot accept).
            let _ = ws
                .close(CloseCode::UNSUPPORTED, "the chat takes text messages")
                .await;
        }
    }

    fn on_close(&mut self, _info: &CloseInfo) {
        if let Some(seat) = self.seat.take() {
            ROOM.with(|r| r.borrow_mut().try_remove(seat));
        }
    }
}

/// The site `cyclone serve` runs; fails if `root` cannot be served.
pub(crate) fn site(root: Option<&PathBuf>) -> std::io::Result<Application> {
    if let Some(dir) = root {
        let files = StaticFileHandler::new(dir)?.listing(true);
        return Ok(Application::new().static_files("/", files));
    }
    let mut app = Application::new()
        .route("/", |req: Request| async move {
            let host = req.host().unwrap_or("127.0.0.1:8888").to_string();
            Response::html(HOME.replace("HOST", &cyclone::web::html_escape(&host)))
        })
        .route("/hello", |_req: Request| async {
            Response::text("Hello, World!")
        })
        .handler("/echo", || Echo)
        .route("/chat", |_req: Request| async {
            Response::html(&include_bytes!("../../../public/chat.html")[..])
        })
        .websocket("/ws/echo", || WsEcho)
        .websocket("/ws/chat", Chat::default);
    app = app.static_files("/static/", StaticFileHandler::embedded(PUBLIC));
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::PUBLIC;

    #[test]
    fn every_file_of_the_demo_folder_is_compiled_in() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/public");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = PUBLIC.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "public/ and PUBLIC in src/bin/cyclone/main.rs differ"
        );
    }
}
