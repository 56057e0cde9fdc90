//! tokio-tungstenite on tokio's current_thread runtime: a WebSocket echo
//! server. Every text or binary message comes back with its own opcode;
//! tungstenite answers pings and closes by itself. Any path.
//!
//!   ws_tungstenite PORT
//!
//! tungstenite's default configuration (its read buffer size, message
//! limits), as a user who does not tune it gets.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

async fn echo(stream: TcpStream) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            return;
        }
        // Pings are answered by tungstenite (with the next write or
        // flush), pongs need nothing.
        if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
            return;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::task::spawn(echo(stream));
    }
}
