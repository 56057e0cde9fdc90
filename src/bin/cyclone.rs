//! The `cyclone` command: for now a TCP echo server on the IOLoop.
//!
//! Until the HTTP server lands this is the demo: it shows the Tornado model
//! end to end (an accept handler on the listening fd, one handler per
//! connection) with nothing but the loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::rc::Rc;

use clap::Parser;
use cyclone::{Backend, IOLoop, Interest, Ready};

/// Connections accepted per readiness event before going back to the loop,
/// so a flood of connects cannot starve the connections already open.
const ACCEPTS_PER_WAKEUP: usize = 128;

/// Per-connection read size: one page-sized chunk is plenty for an echo.
const READ_CHUNK: usize = 4096;

/// Stop reading from a client whose echoes it does not read back once this
/// much is queued for it (memory stays bounded per connection).
const MAX_PENDING: usize = 1 << 20;

#[derive(Parser, Debug)]
#[command(
    name = "cyclone",
    version,
    about = "Cyclone demo: a TCP echo server on the IOLoop"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Poller backend: epoll, poll or select (default: CYCLONE_POLLER, else the best).
    #[arg(long)]
    poller: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cyclone: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut builder = IOLoop::builder();
    if let Some(name) = &args.poller {
        builder = builder.backend(name.parse::<Backend>()?);
    }
    let lp = builder.build()?;
    let listener = TcpListener::bind((args.address.as_str(), args.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;

    let l = lp.clone();
    let fd = listener.as_raw_fd();
    lp.add_handler(fd, Interest::READ, move |_, _| accept_ready(&l, &listener))?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let l = lp.clone();
        lp.add_signal_handler(signal, move || {
            tracing::info!("signal {signal}: shutting down");
            l.stop();
        })?;
    }
    println!(
        "cyclone echo server listening on {addr} ({} poller); Ctrl-C stops it",
        lp.backend()
    );
    lp.start()?;
    lp.close()?;
    Ok(())
}

fn accept_ready(lp: &IOLoop, listener: &TcpListener) {
    for _ in 0..ACCEPTS_PER_WAKEUP {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = serve(lp, stream) {
                    tracing::warn!("cannot serve {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: log and let the next turn retry.
                tracing::warn!("accept failed: {e}");
                return;
            }
        }
    }
}

struct Conn {
    stream: TcpStream,
    pending: VecDeque<u8>,
}

fn serve(lp: &IOLoop, stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    let fd = stream.as_raw_fd();
    let conn = Rc::new(RefCell::new(Conn {
        stream,
        pending: VecDeque::new(),
    }));
    let l = lp.clone();
    lp.add_handler(fd, Interest::READ, move |fd, ready| {
        let keep = on_ready(&mut conn.borrow_mut(), ready);
        match keep {
            Ok(interest) => {
                let _ = l.update_handler(fd, interest);
            }
            Err(_) => {
                l.remove_handler(fd); // drops `conn`, closing the socket
            }
        }
    })
    .map_err(io::Error::other)
}

/// Handles one readiness event; returns the interest to keep, or an error
/// when the connection is done.
fn on_ready(c: &mut Conn, ready: Ready) -> io::Result<Interest> {
    if ready.is_readable() || ready.is_hup() || ready.is_error() {
        let mut buf = [0u8; READ_CHUNK];
        match c.stream.read(&mut buf) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => c.pending.extend(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    while !c.pending.is_empty() {
        let (front, _) = c.pending.as_slices();
        match c.stream.write(front) {
            Ok(n) => drop(c.pending.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(
        match (c.pending.is_empty(), c.pending.len() >= MAX_PENDING) {
            (true, _) => Interest::READ,
            (false, false) => Interest::BOTH,
            (false, true) => Interest::WRITE,
        },
    )
}
