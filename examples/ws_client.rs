//! A WebSocket client on the command line: each line of stdin is sent as
//! a text message and each reply printed as a line, one reply per line
//! sent; then the connection is closed with 1000.
//!
//! ```text
//! cargo run --release &                      # the demo server
//! echo hello | cargo run --example ws_client -- ws://127.0.0.1:8888/ws/echo
//! cargo run --example ws_client -- ws://127.0.0.1:8888/ws/echo --compress < lines.txt
//! ```

use std::io::{BufRead, Write};
use std::process::ExitCode;

use cyclone::websocket::{CloseCode, ConnectOptions, DeflateConfig, Message, websocket_connect};

fn main() -> ExitCode {
    let mut url = None;
    let mut compress = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--compress" => compress = true,
            _ if url.is_none() => url = Some(arg),
            _ => return usage(),
        }
    }
    let Some(url) = url else {
        return usage();
    };
    // Lines are read up front: stdin is blocking, the loop is not.
    let lines: Vec<String> = match std::io::stdin().lock().lines().collect() {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("ws_client: cannot read stdin: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut options = ConnectOptions::default();
    if compress {
        options = options.compression(DeflateConfig::default());
    }
    let result = cyclone::run_sync(async move {
        let mut conn = websocket_connect(&url, options)
            .await
            .map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        for line in lines {
            conn.write_message(line).await.map_err(|e| e.to_string())?;
            match conn.read_message().await {
                Some(Message::Text(reply)) => {
                    writeln!(out, "{reply}").map_err(|e| e.to_string())?;
                }
                Some(other) => return Err(format!("unexpected reply {other:?}")),
                None => {
                    return Err(match conn.close_info() {
                        Some(i) => format!("the server closed with {} {:?}", i.code.0, i.reason),
                        None => "the connection closed".to_string(),
                    });
                }
            }
        }
        out.flush().map_err(|e| e.to_string())?;
        let info = conn
            .close(CloseCode::NORMAL, "done")
            .await
            .map_err(|e| e.to_string())?;
        if info.code != CloseCode::NORMAL {
            return Err(format!(
                "the server closed with {} {:?}",
                info.code.0, info.reason
            ));
        }
        Ok::<(), String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: ws_client ws://HOST:PORT/PATH [--compress]  (lines on stdin)");
    ExitCode::from(2)
}
