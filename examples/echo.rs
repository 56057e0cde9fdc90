//! A TCP echo server in a few lines: `cargo run --example echo`, then
//! `nc 127.0.0.1 8889`.

use cyclone::{IOLoop, TcpServer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lp = IOLoop::new()?;
    let server = TcpServer::new(|stream, _peer| async move {
        while let Ok(data) = stream.read_bytes(64 * 1024, true).await {
            if stream.write(data).await.is_err() {
                break;
            }
        }
    });
    println!(
        "echo server on {:?}",
        server.listen(8889, Some("127.0.0.1"))?
    );
    lp.start()?;
    Ok(())
}
