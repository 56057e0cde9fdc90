//! The `cyclone` command: for now a TCP echo server.
//!
//! Until the HTTP server lands this is the demo: a [`TcpServer`] whose
//! delegate echoes what it reads, on one loop (or `--processes N` forked
//! workers, or `--threads N` thread-per-core loops).

use std::process::ExitCode;

use clap::Parser;
use cyclone::{Backend, IOLoop, TcpServer};

/// The most one read asks for: the echo answers whatever arrived so far.
const ECHO_CHUNK: usize = 64 * 1024;

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
    /// Fork this many worker processes sharing the socket (0: one per CPU).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Run this many thread-per-core loops with SO_REUSEPORT (0: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
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

fn echo_server() -> TcpServer {
    TcpServer::new(|stream, _peer| async move {
        let _ = stream.set_nodelay(true);
        while let Ok(data) = stream.read_bytes(ECHO_CHUNK, true).await {
            if stream.write(data).await.is_err() {
                break;
            }
        }
    })
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(name) = &args.poller {
        name.parse::<Backend>()?; // a clear error before anything starts
        // Workers and forked children build their loops from the variable.
        // SAFETY: set before any thread exists (checked by fork_processes).
        unsafe { std::env::set_var(cyclone::ioloop::poller::POLLER_ENV, name) };
    }
    Backend::from_env()?;
    if let Some(threads) = args.threads {
        let workers = TcpServer::workers(threads, args.port, &args.address, echo_server)?;
        println!(
            "cyclone echo server listening on {:?} ({threads} threads)",
            workers.addrs()
        );
        wait_for_signal()?;
        return Ok(workers.stop()?);
    }
    let server = echo_server();
    let addrs = server.bind(
        args.port,
        Some(&args.address),
        cyclone::netutil::DEFAULT_BACKLOG,
        false,
    )?;
    if args.processes != 1 {
        println!(
            "cyclone echo server listening on {addrs:?} ({} processes)",
            args.processes
        );
    }
    let id = server.start(args.processes, 100)?;
    let lp = IOLoop::current();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (l, s) = (lp.clone(), server.clone());
        lp.add_signal_handler(signal, move || {
            tracing::info!("signal {signal}: shutting down");
            s.stop();
            l.stop();
        })?;
    }
    if args.processes == 1 {
        println!(
            "cyclone echo server listening on {addrs:?} ({} poller); Ctrl-C stops it",
            lp.backend()
        );
    } else {
        tracing::info!("worker {id} started");
    }
    lp.start()?;
    lp.close()?;
    Ok(())
}

/// Blocks the main thread until SIGINT or SIGTERM (thread-per-core mode).
fn wait_for_signal() -> Result<(), Box<dyn std::error::Error>> {
    let lp = IOLoop::new()?;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let l = lp.clone();
        lp.add_signal_handler(signal, move || l.stop())?;
    }
    lp.start()?;
    lp.close()?;
    Ok(())
}
