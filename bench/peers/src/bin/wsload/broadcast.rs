//! The broadcast load: N connections to a chat endpoint, then one more
//! sends a 100-byte text message; the time until every one of the N has
//! it, and the server's CPU time to deliver it. Repeated for a few rounds.

use std::time::{Duration, Instant};

use crate::conn::WsConn;
use crate::frame::OP_TEXT;
use crate::handshake;
use crate::rng::{text, Rng};
use crate::sys::{self, Epoll, EDGE, READABLE, WRITABLE};

pub struct Options {
    pub port: u16,
    pub path: String,
    pub receivers: usize,
    pub rounds: usize,
    pub server_pid: Option<u32>,
}

/// The message's size: a chat line.
const SIZE: usize = 100;
/// A round that has not reached everyone in this long has failed.
const ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// Quiet time before the first round (the server settles after 10,000
/// handshakes) and between rounds (one round's stragglers are not the
/// next round's).
const PAUSE: Duration = Duration::from_millis(300);

pub fn run(o: &Options) -> Result<(), String> {
    let mut rng = Rng::from_clock(1);
    let mut conns = Vec::with_capacity(o.receivers + 1);
    // The last connection is the sender; it receives its own message too.
    for i in 0..=o.receivers {
        let opened = handshake::open(o.port, &o.path, false, &mut rng).map_err(|e| format!("connection {i}: {e}"))?;
        conns.push(WsConn::new(opened, SIZE, i as u64).map_err(|e| e.to_string())?);
    }
    let mut epoll = Epoll::new().map_err(|e| e.to_string())?;
    for (i, c) in conns.iter().enumerate() {
        epoll.add(c.fd(), i as u64, READABLE | WRITABLE | EDGE).map_err(|e| e.to_string())?;
    }
    eprintln!("wsload: {} connections open on {}", conns.len(), o.path);
    std::thread::sleep(PAUSE);

    let mut times = Vec::new();
    let mut cpus = Vec::new();
    for round in 0..o.rounds {
        // Each round's text differs, and says which round it is.
        let mut msg = format!("round {round} ").into_bytes();
        msg.extend(text(&mut rng, SIZE - msg.len()));
        let (took, cpu) = one_round(&mut conns, &mut epoll, &msg, o.server_pid)?;
        eprintln!("wsload: round {round}: {:.2} ms, server CPU {}", ms(took), cpu.map_or("n/a".into(), |c| format!("{:.2} ms", ms(c))));
        times.push(took);
        cpus.extend(cpu);
        std::thread::sleep(PAUSE);
    }
    let n = o.receivers as f64;
    let cpu = median(&mut cpus);
    println!(
        "receivers={} rounds={} broadcast_ms={:.2} server_cpu_ms={} deliveries_per_server_cpu_s={}",
        o.receivers,
        o.rounds,
        median(&mut times).map_or(0.0, ms),
        cpu.map_or("n/a".into(), |c| format!("{:.2}", ms(c))),
        cpu.filter(|c| !c.is_zero()).map_or("n/a".into(), |c| format!("{:.0}", n / c.as_secs_f64())),
    );
    Ok(())
}

/// Sends `msg` on the last connection and waits until every connection,
/// the sender included, has it. Returns the time until the last receiver
/// had it, and the server's CPU time over the round.
fn one_round(conns: &mut [WsConn], epoll: &mut Epoll, msg: &[u8], pid: Option<u32>) -> Result<(Duration, Option<Duration>), String> {
    let mut got = vec![false; conns.len()];
    let mut missing = conns.len();
    let receivers = conns.len() - 1;
    let mut last_receiver = Duration::ZERO;
    let cpu0 = pid.and_then(sys::schedstat_ns);
    let t0 = Instant::now();
    let sender = conns.len() - 1;
    if !conns[sender].send(OP_TEXT, msg)? {
        return Err("the broadcast message did not fit the socket buffer".into());
    }
    while missing > 0 {
        if t0.elapsed() > ROUND_TIMEOUT {
            return Err(format!("{missing} of {} connections never got the message", conns.len()));
        }
        let n = epoll.wait(Duration::from_millis(100)).map_err(|e| e.to_string())?;
        for k in 0..n {
            let i = epoll.event(k).0 as usize;
            let c = &mut conns[i];
            if !c.fill()? {
                continue;
            }
            while let Some(m) = c.next_message()? {
                if m.opcode != OP_TEXT || m.payload != msg {
                    return Err(format!("connection {i} got another message ({} bytes)", m.payload.len()));
                }
                if got[i] {
                    return Err(format!("connection {i} got the message twice"));
                }
                got[i] = true;
                missing -= 1;
                if i < receivers {
                    last_receiver = t0.elapsed();
                }
            }
            c.flush()?;
        }
    }
    let cpu = cpu0.zip(pid.and_then(sys::schedstat_ns)).map(|(a, b)| Duration::from_nanos(b - a));
    Ok((last_receiver, cpu))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &mut [Duration]) -> Option<Duration> {
    v.sort();
    v.get(v.len().saturating_sub(1) / 2).copied()
}
