//! `echo-client load PORT CONNS SIZE SECONDS`: closed-loop load, each
//! connection sends a SIZE-byte message and waits for its echo; prints
//! messages/s and round-trip p50/p99 (µs).
//! `echo-client idle PORT CONNS SECONDS`: opens CONNS connections, echoes
//! one byte on each (so the server has set them up), holds them.
//!
//! Written on tokio's current_thread runtime (a fixed, efficient client
//! for both servers); it runs on its own CPU.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn load(port: u16, conns: usize, size: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conns {
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.set_nodelay(true).unwrap();
            let msg = vec![b'x'; size];
            let mut buf = vec![0u8; size];
            let mut rtts: Vec<u32> = Vec::with_capacity(1 << 16);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                s.write_all(&msg).await.unwrap();
                s.read_exact(&mut buf).await.unwrap();
                rtts.push(t0.elapsed().as_micros() as u32);
            }
            rtts
        }));
    }
    let t0 = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let took = t0.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "messages/s {:.0} p50_us {} p99_us {} messages {}",
        all.len() as f64 / took,
        pct(0.50),
        pct(0.99),
        all.len()
    );
}

async fn idle(port: u16, conns: usize, secs: u64) {
    let mut held = Vec::with_capacity(conns);
    for _ in 0..conns {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        held.push(s);
    }
    println!("HOLDING {}", held.len());
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n = |i: usize| a.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    match a.get(1).map(String::as_str) {
        Some("load") => rt.block_on(load(n(2) as u16, n(3) as usize, n(4) as usize, n(5))),
        Some("idle") => rt.block_on(idle(n(2) as u16, n(3) as usize, n(4))),
        _ => eprintln!("usage: echo-client load PORT CONNS SIZE SECONDS | idle PORT CONNS SECONDS"),
    }
}
