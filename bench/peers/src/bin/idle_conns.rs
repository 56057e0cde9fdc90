//! Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET on each
//! and reads its response (so the server has served and gone idle on all
//! of them), prints "ready", then holds them until stdin closes.
//!
//!   idle_conns PORT N [PATH]

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).expect("PORT");
    let n: usize = args.next().and_then(|p| p.parse().ok()).expect("N");
    let path = args.next().unwrap_or_else(|| "/".to_string());
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    let mut conns = Vec::with_capacity(n);
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        let mut c = TcpStream::connect(("127.0.0.1", port))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.write_all(req.as_bytes())?;
        // One read holds the small response whole.
        let got = c.read(&mut buf)?;
        if got == 0 {
            return Err(std::io::Error::other("server closed a connection"));
        }
        conns.push(c);
    }
    println!("ready");
    std::io::stdout().flush()?;
    // Hold until stdin closes (the harness closes it).
    let mut line = String::new();
    while std::io::stdin().lock().read_line(&mut line)? > 0 {}
    drop(conns);
    Ok(())
}
