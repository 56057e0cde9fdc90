//! The `cyclone` command. `cyclone serve` (the default) runs a web server:
//! the demo site, or with `--root DIR` the files of a directory (like
//! `python -m http.server`). One loop by default, `--processes N` forked
//! workers, or `--threads N` thread-per-core loops. `cyclone fetch URL...`
//! is the HTTP client (`fetch.rs`).

mod access_log;
mod demo;
mod fetch;
mod logging;
mod restart;

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;

use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args as ClapArgs, Parser, Subcommand};
use cyclone::http1::HttpServer;
use cyclone::tls::{SelfSigned, TlsConfig, TlsConfigBuilder, TlsError};
use cyclone::{Backend, IOLoop};
use restart::Program;

/// How long requests in flight may take to finish after Ctrl-C/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

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
    /// Fetch URLs with Cyclone's HTTP client and print their bodies (curl-like).
    Fetch(fetch::FetchArgs),
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
    /// Poller backend (default: CYCLONE_POLLER, else the best this machine has).
    #[arg(long, value_parser = poller_names(), ignore_case = true)]
    poller: Option<String>,
    /// Fork this many worker processes sharing the socket (0: one per CPU).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Run this many thread-per-core loops with SO_REUSEPORT (0: one per CPU).
    #[arg(long, conflicts_with = "processes")]
    threads: Option<usize>,
    /// Stop accepting while this many connections are open (per loop);
    /// new ones wait in the kernel's backlog until one closes.
    #[arg(long, value_name = "N")]
    max_connections: Option<usize>,
    /// Expect HAProxy's PROXY protocol header (v1 or v2) before each
    /// connection, as a load balancer sends it: remote addresses (and the
    /// access log) are then the clients', and a connection without a
    /// valid header is closed. Only behind a balancer that sends it.
    #[arg(long)]
    proxy_protocol: bool,
    /// Serve Prometheus metrics at http://ADDRESS:PORT/metrics, on a
    /// listener of their own (keep it off the public network): requests,
    /// durations, connections, bytes, loop turns, one series per worker.
    #[arg(long, value_name = "ADDRESS:PORT")]
    metrics: Option<std::net::SocketAddr>,
    /// Log level: error, warn, info (one access line per request), debug or
    /// trace; RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Where the access lines go: a FILE (appended to), - for stdout, or
    /// off. Written by a thread of their own, a loop turn's lines at once:
    /// a slow terminal or disk never holds up the server (lines it cannot
    /// take are dropped and counted on stderr).
    #[arg(long, value_name = "FILE|-|off", default_value = "-")]
    access_log: access_log::Destination,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With --tls-cert or --tls-self-signed: only these cipher suites, in
    /// this order of preference (comma-separated, IANA names such as
    /// TLS_AES_128_GCM_SHA256).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    tls_ciphers: Vec<String>,
    /// Serve HTTPS with a fresh self-signed certificate for localhost,
    /// 127.0.0.1 and ::1 (for development: clients must be told to trust it).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls_self_signed: bool,
}

/// Every poller `--poller` accepts (whether this machine has it is checked
/// when the server starts, with an error that lists the ones it has).
fn poller_names() -> PossibleValuesParser {
    let names = Backend::ALL.map(|backend| match backend {
        Backend::Uring => PossibleValue::new(backend.name()).alias("io_uring"),
        _ => PossibleValue::new(backend.name()),
    });
    PossibleValuesParser::new(names)
}

/// `println!` that never panics: a server whose standard output was
/// closed (a pipe its reader left, as after a restart's handover) goes
/// on serving instead of dying on its next line.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Exit code for a bad argument, as clap uses for its own parse errors.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Fetch(a)) => return fetch::run(a),
        None => cli.serve,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log_level));
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("cyclone: invalid --log-level {:?}: {e}", args.log_level);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = access_log::open(&args.access_log) {
        eprintln!("cyclone: --access-log {}: {e}", args.access_log);
        return ExitCode::from(EXIT_USAGE);
    }
    logging::init(filter, &args.access_log);
    let result = run(args);
    access_log::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cyclone: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Why `cyclone` stopped: each start-up error names its subject (the
/// option and its value, the `address:port`) and, where one is likely,
/// the fix.
#[derive(Debug)]
enum Failure {
    /// `--root` does not name a directory that can be served (exit 2).
    Root { path: PathBuf, source: io::Error },
    /// `--poller` or `CYCLONE_POLLER` names no poller this machine has (exit 2).
    Poller {
        from: String,
        source: cyclone::Error,
    },
    /// `--address` is neither an IP address nor a host name that resolves (exit 2).
    Address { address: String, source: io::Error },
    /// The listening socket could not be made: the port is taken, the
    /// address is not this machine's, privileges are missing (exit 1).
    Listen { addr: String, source: io::Error },
    /// `--tls-cert`/`--tls-key` cannot be used: the file and why (exit 2).
    Tls(String),
    /// Sockets passed by systemd (`LISTEN_FDS`) that cannot be served, or
    /// with an option that cannot use them (exit 2).
    Passed(String),
    /// Anything after the server started (exit 1).
    Run(Box<dyn std::error::Error>),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Root { .. }
            | Failure::Poller { .. }
            | Failure::Address { .. }
            | Failure::Tls(_)
            | Failure::Passed(_) => EXIT_USAGE,
            Failure::Listen { .. } | Failure::Run(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Root { path, source } => {
                let path = path.display();
                match source.kind() {
                    io::ErrorKind::NotFound => write!(
                        f,
                        "--root {path}: no such directory; give the path of an existing directory to serve"
                    ),
                    io::ErrorKind::NotADirectory => write!(
                        f,
                        "--root {path}: not a directory; give the directory that holds the files to serve"
                    ),
                    io::ErrorKind::PermissionDenied => write!(
                        f,
                        "--root {path}: permission denied; this user cannot read that directory"
                    ),
                    _ => write!(f, "--root {path}: {source}"),
                }
            }
            Failure::Tls(message) | Failure::Passed(message) => write!(f, "{message}"),
            Failure::Poller { from, source } => {
                let here: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
                write!(f, "{from}: {source}; available here: {}", here.join(", "))
            }
            Failure::Listen { addr, source } => {
                write!(f, "cannot listen on {addr}: {source}")?;
                match source.kind() {
                    io::ErrorKind::AddrInUse => write!(
                        f,
                        "; is another server running? choose another port with --port"
                    ),
                    io::ErrorKind::PermissionDenied => write!(
                        f,
                        "; ports below 1024 need root or CAP_NET_BIND_SERVICE: choose another with --port"
                    ),
                    io::ErrorKind::AddrNotAvailable => write!(
                        f,
                        "; that is not an address of this machine: choose one with --address (127.0.0.1, 0.0.0.0, ::1)"
                    ),
                    _ => Ok(()),
                }
            }
            Failure::Address { address, source } => write!(
                f,
                "--address {address:?}: {source}; give an IP address (127.0.0.1, 0.0.0.0, ::1) or a host name that resolves"
            ),
            Failure::Run(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Run(e.into())
    }
}

impl From<cyclone::Error> for Failure {
    fn from(e: cyclone::Error) -> Failure {
        Failure::Run(e.into())
    }
}

/// `address:port` as a user would type it (`[::1]:8888` for IPv6).
fn address_port(address: &str, port: u16) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{address}:{port}"),
    }
}

/// What every listener of `cyclone serve` is told about its connections.
#[derive(Clone, Copy)]
struct Intake {
    max_connections: Option<usize>,
    proxy_protocol: bool,
}

/// The site, or why `--root` cannot be served.
fn site(root: Option<&PathBuf>) -> Result<cyclone::web::Application, Failure> {
    demo::site(root).map_err(|source| Failure::Root {
        path: root.cloned().unwrap_or_default(),
        source,
    })
}

fn demo_server(
    root: Option<&PathBuf>,
    tls: Option<TlsConfig>,
    intake: Intake,
) -> Result<HttpServer, Failure> {
    let site = site(root)?;
    let server = match tls {
        Some(tls) => site.tls(tls),
        None => site,
    }
    .into_server();
    server.tcp().set_max_connections(intake.max_connections);
    server.tcp().set_proxy_protocol(intake.proxy_protocol);
    Ok(server)
}

fn intake(args: &Args) -> Intake {
    Intake {
        max_connections: args.max_connections,
        proxy_protocol: args.proxy_protocol,
    }
}

/// Checks `--poller` and `CYCLONE_POLLER` before anything starts.
fn choose_poller(poller: Option<&str>) -> Result<(), Failure> {
    if let Some(name) = poller {
        name.parse::<Backend>().map_err(|source| Failure::Poller {
            from: format!("--poller {name}"),
            source,
        })?;
        // Workers and forked children build their loops from the variable.
        // SAFETY: set before any thread exists (checked by fork_processes).
        unsafe { std::env::set_var(cyclone::ioloop::POLLER_ENV, name) };
    }
    Backend::from_env().map_err(|source| Failure::Poller {
        from: format!(
            "{}={}",
            cyclone::ioloop::POLLER_ENV,
            std::env::var(cyclone::ioloop::POLLER_ENV).unwrap_or_default()
        ),
        source,
    })?;
    Ok(())
}

/// Checks that `--address` resolves, so that a typo is a bad argument
/// rather than a failure to listen.
fn check_address(address: &str, port: u16) -> Result<(), Failure> {
    if address.is_empty() {
        return Ok(()); // every interface
    }
    match std::net::ToSocketAddrs::to_socket_addrs(&(address, port)) {
        Ok(_) => Ok(()),
        Err(source) => Err(Failure::Address {
            address: address.to_string(),
            source,
        }),
    }
}

/// The HTTPS settings the arguments ask for, if any; a self-signed
/// certificate is written where a client can be pointed at it.
fn tls_config(args: &Args) -> Result<Option<TlsConfig>, Failure> {
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let builder = TlsConfig::builder().certificate_files(cert, key);
        let config = builder.and_then(|b| ciphers(b, &args.tls_ciphers).build());
        let config = config.map_err(|e| match e {
            TlsError::File { file, reason } => {
                let flag = if Path::new(&file) == cert.as_path() {
                    "--tls-cert"
                } else {
                    "--tls-key"
                };
                Failure::Tls(format!("{flag} {file}: {reason}"))
            }
            other => Failure::Tls(format!("--tls-cert/--tls-key/--tls-ciphers: {other}")),
        })?;
        return Ok(Some(config));
    }
    if !args.tls_self_signed {
        return Ok(None);
    }
    let names = ["localhost", "127.0.0.1", "::1"];
    let dev = SelfSigned::generate(&names).map_err(|e| Failure::Tls(e.to_string()))?;
    let config = TlsConfig::builder()
        .certificate(dev.cert_pem.as_bytes(), dev.key_pem.as_bytes())
        .and_then(|b| ciphers(b, &args.tls_ciphers).build())
        .map_err(|e| Failure::Tls(format!("--tls-ciphers/--tls-self-signed: {e}")))?;
    let dir = std::env::temp_dir().join(format!("cyclone-self-signed-{}", std::process::id()));
    let cert = dir.join("cert.pem");
    let written = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&cert, &dev.cert_pem));
    if let Err(e) = written {
        return Err(Failure::Tls(format!(
            "cannot write {}: {e}",
            cert.display()
        )));
    }
    say!(
        "self-signed certificate for {} (SHA-256 Fingerprint={}) written to {}: trust it with curl --cacert {}",
        names.join(", "),
        dev.fingerprint,
        cert.display(),
        cert.display()
    );
    Ok(Some(config))
}

/// `--tls-ciphers`, if given.
fn ciphers(builder: TlsConfigBuilder, names: &[String]) -> TlsConfigBuilder {
    if names.is_empty() {
        return builder;
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    builder.cipher_suites(&names)
}

fn run(args: Args) -> Result<(), Failure> {
    // Before anything else: what a SIGHUP restarts, and how this process
    // reports that it serves (to the old one of a restart, or systemd).
    let program = Program::this()?;
    let notifier = cyclone::handover::notifier();
    choose_poller(args.poller.as_deref())?;
    check_address(&args.address, args.port)?;
    let tls = tls_config(&args)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listen_error = |source| Failure::Listen {
        addr: address_port(&args.address, args.port),
        source,
    };
    // Sockets passed by systemd (a .socket unit owns the port), or by the
    // old process of a restart, stand in for --address/--port (and the
    // one named "metrics" for --metrics's).
    let passed = cyclone::socket_activation::named_listeners()
        .map_err(|e| Failure::Passed(format!("socket activation: {e}")))?;
    let (metrics_passed, passed): (Vec<_>, Vec<_>) = passed
        .into_iter()
        .partition(|(name, _)| name == METRICS_SOCKET);
    let passed: Vec<std::net::TcpListener> = passed.into_iter().map(|(_, l)| l).collect();
    let metrics = match args.metrics {
        None => None,
        Some(addr) => {
            let workers = match (args.threads, args.processes) {
                (Some(0), _) | (None, 0) => cyclone::process::cpu_count(),
                (Some(n), _) | (None, n) => n,
            };
            cyclone::stats::enable(workers);
            Some(metrics_server(addr, metrics_passed)?)
        }
    };
    let (metrics, metrics_at) = match metrics {
        Some((server, at)) => (Some(server), Some(at)),
        None => (None, None),
    };
    // Said after the server's own address (the first line, which scripts read).
    let say_metrics = || {
        if let Some(at) = &metrics_at {
            say!("metrics at {at}");
        }
    };
    if let Some(threads) = args.threads {
        site(args.root.as_ref())?; // a bad --root fails here, not in every worker
        let root = args.root.clone();
        let workers_tls = tls.clone();
        let intake = intake(&args);
        let make =
            move || demo_server(root.as_ref(), workers_tls.clone(), intake).expect("checked above");
        let workers = if passed.is_empty() {
            HttpServer::workers(threads, args.port, &args.address, make).map_err(listen_error)?
        } else {
            HttpServer::workers_adopting(threads, passed, make)?
        };
        say!(
            "cyclone HTTP server listening on {} ({threads} threads)",
            urls(scheme, workers.addrs())
        );
        say_metrics();
        notifier.ready(std::process::id());
        wait_for_signal(&workers, metrics.as_ref(), program)?;
        return Ok(workers.shutdown(SHUTDOWN_GRACE)?);
    }
    let server = demo_server(args.root.as_ref(), tls, intake(&args))?;
    let addrs = if passed.is_empty() {
        server
            .bind(args.port, Some(&args.address))
            .map_err(listen_error)?
    } else {
        server.adopt(passed)?
    };
    if args.processes != 1 {
        say!(
            "cyclone HTTP server listening on {} ({} processes)",
            urls(scheme, &addrs),
            args.processes
        );
        say_metrics();
        // The supervisor restarts: every worker of the new one reports.
        let fds = handed_over(server.tcp().listening_fds(), metrics.as_ref());
        let workers = match args.processes {
            0 => cyclone::process::cpu_count(),
            n => n,
        };
        let program = program.clone();
        cyclone::process::on_hangup(move || Program::handed_over(program.hand_over(&fds, workers)));
    }
    let id = server.start(args.processes, 100)?;
    if let Some(m) = &metrics {
        m.start(1, 0)?; // in this worker, on the sockets bound before forking
    }
    let lp = IOLoop::current();
    // SIGINT/SIGTERM, and a SIGHUP whose new process serves: drain, end.
    let retire = drain_and_stop(server.clone(), metrics.clone());
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let retire = retire.clone();
        lp.add_signal_handler(signal, move || {
            tracing::info!(
                "signal {signal}: shutting down (requests in flight get {SHUTDOWN_GRACE:?})"
            );
            retire();
        })?;
    }
    if args.processes == 1 {
        let (s, m) = (server.clone(), metrics.clone());
        let fds = move || handed_over(s.tcp().listening_fds(), m.as_ref());
        restart::on_hangup(&lp, fds, 1, program, retire)?;
        say!(
            "cyclone HTTP server listening on {} ({} poller); Ctrl-C stops it",
            urls(scheme, &addrs),
            lp.backend()
        );
        say_metrics();
        restart::report_ready_on(&lp, notifier, std::process::id());
    } else {
        tracing::info!("worker {id} started");
        // SAFETY: getppid cannot fail; the parent is the supervisor.
        let supervisor = unsafe { libc::getppid() } as u32;
        restart::report_ready_on(&lp, notifier, supervisor);
    }
    lp.start()?;
    lp.close()?;
    Ok(())
}

/// Blocks the main thread until SIGINT or SIGTERM, or a SIGHUP restart
/// whose new process serves (thread-per-core mode); the caller then
/// drains the workers.
fn wait_for_signal(
    workers: &cyclone::workers::Workers,
    metrics: Option<&HttpServer>,
    program: Program,
) -> Result<(), Failure> {
    let lp = IOLoop::new()?;
    if let Some(m) = metrics {
        m.start(1, 0)?; // the metrics are served by this thread's loop
    }
    let (l, m) = (lp.clone(), metrics.cloned());
    let retire: Rc<dyn Fn()> = Rc::new(move || {
        stop_metrics(m.as_ref());
        l.stop() // the caller drains the workers
    });
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let retire = retire.clone();
        lp.add_signal_handler(signal, move || {
            tracing::info!(
                "signal {signal}: shutting down (requests in flight get {SHUTDOWN_GRACE:?})"
            );
            retire();
        })?;
    }
    let fds = handed_over(workers.listening_fds(), metrics);
    restart::on_hangup(&lp, move || fds.clone(), 1, program, retire)?;
    lp.start()?;
    lp.close()?;
    Ok(())
}

/// Stops serving the metrics as a drain begins: during a restart the
/// new process answers every scrape, and two processes' counters never
/// alternate (which `rate()` would read as resets).
fn stop_metrics(metrics: Option<&HttpServer>) {
    if let Some(m) = metrics {
        m.tcp().stop();
    }
}

/// The names of the sockets a restart hands over (`LISTEN_FDNAMES`).
const HTTP_SOCKET: &str = "http";
const METRICS_SOCKET: &str = "metrics";

/// The listening sockets a restart hands over, named: the site's
/// (`http_fds`) and the metrics'.
fn handed_over(http_fds: Vec<RawFd>, metrics: Option<&HttpServer>) -> Vec<(RawFd, &'static str)> {
    let mut fds: Vec<_> = http_fds.into_iter().map(|fd| (fd, HTTP_SOCKET)).collect();
    if let Some(m) = metrics {
        fds.extend(
            m.tcp()
                .listening_fds()
                .into_iter()
                .map(|fd| (fd, METRICS_SOCKET)),
        );
    }
    fds
}

/// A server's retirement, on SIGINT/SIGTERM or once a restart's new
/// process serves: stop the metrics, drain within the grace, end the loop
/// (and the process).
fn drain_and_stop(server: HttpServer, metrics: Option<HttpServer>) -> Rc<dyn Fn()> {
    Rc::new(move || {
        stop_metrics(metrics.as_ref());
        let lp = IOLoop::current();
        let (l, s) = (lp.clone(), server.clone());
        drop(lp.spawn(async move {
            s.shutdown(SHUTDOWN_GRACE).await;
            l.stop();
        }));
    })
}

/// The `--metrics` server: Prometheus text at /metrics, on `addr` (or the
/// socket a restart passed for it), bound now so that forked workers
/// share it.
fn metrics_server(
    addr: std::net::SocketAddr,
    passed: Vec<(String, std::net::TcpListener)>,
) -> Result<(HttpServer, String), Failure> {
    let server = cyclone::web::Application::new()
        .metrics("/metrics")
        .into_server();
    let listeners = if passed.is_empty() {
        let l = std::net::TcpListener::bind(addr).map_err(|source| Failure::Listen {
            addr: format!("{addr} (--metrics)"),
            source,
        })?;
        l.set_nonblocking(true)?;
        vec![l]
    } else {
        passed.into_iter().map(|(_, l)| l).collect()
    };
    let bound = server.adopt(listeners)?;
    let at: Vec<String> = bound
        .iter()
        .map(|a| format!("http://{a}/metrics"))
        .collect();
    Ok((server, at.join(", ")))
}

fn urls(scheme: &str, addrs: &[std::net::SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| format!("{scheme}://{a}/"))
        .collect::<Vec<_>>()
        .join(", ")
}
