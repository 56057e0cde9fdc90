//! The `cyclone` command. `cyclone serve` (the default) runs a web server:
//! the demo site, or with `--root DIR` the files of a directory (like
//! `python -m http.server`). One loop by default, `--processes N` forked
//! workers, or `--threads N` thread-per-core loops.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args as ClapArgs, Parser, Subcommand};
use cyclone::http1::{HttpServer, Response};
use cyclone::web::{Application, HttpError, Request, RequestHandler, StaticFileHandler};
use cyclone::{Backend, IOLoop};
use http::Method;

/// How long requests in flight may take to finish after Ctrl-C/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The demo site's static files, bundled with the source.
const PUBLIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/public");

#[derive(Parser, Debug)]
#[command(
    name = "cyclone",
    version,
    about = "Cyclone: a Tornado-style web server on its own event loop",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the demo site, or a directory with --root (the default command).
    Serve(Args),
}

#[derive(ClapArgs, Debug)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Serve the files of this directory (with listings) instead of the demo site.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Poller backend: epoll, poll or select (default: CYCLONE_POLLER, else the best).
    #[arg(long)]
    poller: Option<String>,
    /// Fork this many worker processes sharing the socket (0: one per CPU).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Run this many thread-per-core loops with SO_REUSEPORT (0: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// Log level: error, warn, info (one access line per request), debug or
    /// trace; RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        None => cli.serve,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level));
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cyclone: invalid --log-level {:?}: {e}", args.log_level);
            return ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cyclone: {e}");
            ExitCode::FAILURE
        }
    }
}

const HOME: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cyclone</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<h1>Cyclone</h1>
<p>A Tornado-style web server on its own event loop, in Rust.</p>
<ul>
<li><a href="/hello">/hello</a>: plain text</li>
<li><code>curl -d 'some text' http://HOST/echo</code>: echoes the body back</li>
<li><a href="/static/">/static/</a>: files from the bundled <code>public/</code> folder</li>
</ul>
<form method="post" action="/echo"><input name="say" value="hello"> <button>POST to /echo</button></form>
</body>
</html>
"#;

/// `POST /echo`: the body back, with its content type.
struct Echo;

impl RequestHandler for Echo {
    const METHODS: &'static [Method] = &[Method::POST];

    async fn post(&mut self, req: Request) -> Result<Response, HttpError> {
        let mut resp = Response::bytes(req.body.clone());
        if let Some(ct) = req.headers.get(http::header::CONTENT_TYPE) {
            resp.headers.insert(http::header::CONTENT_TYPE, ct.clone());
        }
        Ok(resp)
    }
}

/// The site `cyclone serve` runs.
fn site(root: Option<&PathBuf>) -> Result<Application, std::io::Error> {
    if let Some(dir) = root {
        let files = StaticFileHandler::new(dir)?.listing(true);
        return Ok(Application::new().static_files("/", files));
    }
    let mut app = Application::new()
        .route("/", |req: Request| async move {
            let host = req.host().unwrap_or("127.0.0.1:8888").to_string();
            Response::html(HOME.replace("HOST", &cyclone::web::html_escape(&host)))
        })
        .route("/hello", |_req: Request| async {
            Response::text("Hello, World!")
        })
        .handler("/echo", || Echo);
    match StaticFileHandler::new(PUBLIC_DIR) {
        Ok(files) => app = app.static_files("/static/", files),
        Err(e) => tracing::warn!("no demo static files ({PUBLIC_DIR}: {e})"),
    }
    Ok(app)
}

fn demo_server(root: Option<&PathBuf>) -> Result<HttpServer, std::io::Error> {
    Ok(site(root)?.into_server())
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
        site(args.root.as_ref())?; // a bad --root fails here, not in every worker
        let root = args.root.clone();
        let workers = HttpServer::workers(threads, args.port, &args.address, move || {
            demo_server(root.as_ref()).expect("checked above")
        })?;
        println!(
            "cyclone HTTP server listening on {} ({threads} threads)",
            urls(workers.addrs())
        );
        wait_for_signal()?;
        return Ok(workers.stop()?);
    }
    let server = demo_server(args.root.as_ref())?;
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
