//! The `cyclone` command: the demo HTTP server.
//!
//! `GET /` answers "Hello, World!", `POST /echo` echoes the request body,
//! anything else is 404. One loop by default, `--processes N` forked
//! workers, or `--threads N` thread-per-core loops.

use std::process::ExitCode;

use clap::Parser;
use cyclone::http1::{HttpServer, Request, Response};
use cyclone::{Backend, IOLoop};
use http::{Method, StatusCode};

/// How long requests in flight may take to finish after Ctrl-C/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    name = "cyclone",
    version,
    about = "Cyclone demo: an HTTP/1.1 server on the IOLoop"
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

async fn demo(req: Request) -> Response {
    match (req.method.clone(), req.path()) {
        (Method::GET | Method::HEAD, "/") => Response::text("Hello, World!"),
        (Method::POST, "/echo") => Response::new(StatusCode::OK).body(req.body),
        _ => Response::text("404 Not Found\n").status(StatusCode::NOT_FOUND),
    }
}

fn demo_server() -> HttpServer {
    HttpServer::new(demo)
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
        let workers = HttpServer::workers(threads, args.port, &args.address, demo_server)?;
        println!(
            "cyclone HTTP server listening on {} ({threads} threads)",
            urls(workers.addrs())
        );
        wait_for_signal()?;
        return Ok(workers.stop()?);
    }
    let server = demo_server();
    let addrs = server.bind(args.port, Some(&args.address))?;
    if args.processes != 1 {
        println!(
            "cyclone HTTP server listening on {} ({} processes)",
            urls(&addrs),
            args.processes
        );
    }
    let id = server.start(args.processes, 100)?;
    let lp = IOLoop::current();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (l, s) = (lp.clone(), server.clone());
        lp.add_signal_handler(signal, move || {
            tracing::info!(
                "signal {signal}: shutting down (requests in flight get {SHUTDOWN_GRACE:?})"
            );
            let (l, s) = (l.clone(), s.clone());
            drop(l.clone().spawn(async move {
                s.shutdown(SHUTDOWN_GRACE).await;
                l.stop();
            }));
        })?;
    }
    if args.processes == 1 {
        println!(
            "cyclone HTTP server listening on {} ({} poller); Ctrl-C stops it",
            urls(&addrs),
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

fn urls(addrs: &[std::net::SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("http://{a}/"))
        .collect::<Vec<_>>()
        .join(", ")
}
