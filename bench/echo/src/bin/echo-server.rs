//! `echo-server cyclone|tokio PORT`: the same TCP echo server on both
//! runtimes, single-threaded. Prints "READY" once listening.

use std::time::Duration;

fn cyclone_server(port: u16) {
    use cyclone::{IOLoop, TcpServer};
    let lp = IOLoop::new().unwrap();
    let server = TcpServer::new(|stream, _| async move {
        let _ = stream.set_nodelay(true);
        // Whatever arrived, up to 64 KiB, straight back.
        while let Ok(data) = stream.read_bytes(64 * 1024, true).await {
            if stream.write(data).await.is_err() {
                break;
            }
        }
    });
    server.listen(port, Some("127.0.0.1")).unwrap();
    println!("READY");
    lp.start().unwrap();
}

fn tokio_server(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        println!("READY");
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            // tokio's own echo example: a 1 KiB buffer per connection.
            tokio::spawn(async move {
                let mut buf = vec![0; 1024];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let _ = Duration::ZERO;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(9000);
    match args.get(1).map(String::as_str) {
        Some("cyclone") => cyclone_server(port),
        Some("tokio") => tokio_server(port),
        _ => eprintln!("usage: echo-server cyclone|tokio PORT"),
    }
}
