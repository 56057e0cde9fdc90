//! A chat room over WebSocket: `cargo run --example ws_chat`, then open
//! http://127.0.0.1:8891/ in two browser tabs. Every text message is sent
//! to everyone in the room with one `broadcast`, encoded once.
//!
//! From a terminal, with the client example:
//!
//! ```text
//! echo '{"name":"cli","text":"hi"}' | cargo run --example ws_client -- ws://127.0.0.1:8891/ws/chat
//! ```

use std::cell::RefCell;
use std::time::Duration;

use cyclone::http1::Response;
use cyclone::web::{Application, Request, WebSocketHandler};
use cyclone::websocket::{self, CloseCode, CloseInfo, Message, WebSocket, WebSocketOptions};

thread_local! {
    /// Who is in the room: the loop is single-threaded, so a thread-local
    /// needs no lock. A slab gives each member a seat to leave by.
    static ROOM: RefCell<slab::Slab<WebSocket>> = const { RefCell::new(slab::Slab::new()) };
}

#[derive(Default)]
struct Member {
    seat: Option<usize>,
}

impl WebSocketHandler for Member {
    fn options(&self) -> WebSocketOptions {
        WebSocketOptions::default()
            // A chat line, not a file: 64 KiB is plenty.
            .max_message_size(64 << 10)
            // Notice vanished peers (a laptop closed without a goodbye).
            .ping_interval(Duration::from_secs(30))
    }

    async fn open(&mut self, ws: &WebSocket, _req: &Request) {
        self.seat = Some(ROOM.with(|r| r.borrow_mut().insert(ws.clone())));
    }

    async fn on_message(&mut self, ws: &WebSocket, message: Message) {
        match message {
            Message::Text(_) => {
                let sent = ROOM
                    .with(|r| websocket::broadcast(r.borrow().iter().map(|(_, ws)| ws), &message));
                tracing::debug!("message sent to {sent} members");
            }
            _ => {
                let _ = ws.close(CloseCode::UNSUPPORTED, "text only").await;
            }
        }
    }

    fn on_close(&mut self, info: &CloseInfo) {
        tracing::debug!("member left: {} {}", info.code.0, info.reason);
        if let Some(seat) = self.seat.take() {
            ROOM.with(|r| r.borrow_mut().try_remove(seat));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let app = Application::new()
        .route("/", |_req: Request| async {
            Response::html(&include_bytes!("../public/chat.html")[..])
        })
        .websocket("/ws/chat", Member::default);
    // Kept: dropping the server would stop it.
    let server = app.into_server();
    server.listen(8891, Some("127.0.0.1"))?;
    println!("chat on http://127.0.0.1:8891/ (open it in two tabs)");
    cyclone::IOLoop::current().start()?;
    Ok(())
}
