//! `cyclone fetch`: the HTTP client from the command line, as Tornado's
//! `python -m tornado.httpclient URL` and with curl's options. Several
//! URLs are fetched one after another on one client, so keep-alive
//! connections are reused; each body goes to stdout in order.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use cyclone::httpclient::{ClientConfig, FetchError, HttpClient, Proxy, Request, Response};
use cyclone::tls::TlsClientConfig;
use http::Method;

/// `cyclone fetch`'s options (curl's names where curl has the option).
#[derive(ClapArgs, Debug)]
#[command(
    after_help = "Exit status: 0 for every completed response, whatever its status; \
otherwise curl's code for the first failure: 3 bad URL, 6 cannot resolve, \
7 cannot connect, 8 malformed response, 18 body shorter than its Content-Length, \
28 timeout, 35 TLS, 47 too many redirects, 52 no response, 56 connection failed, \
63 response too large, 1 anything else."
)]
pub struct FetchArgs {
    /// The method (default GET, or POST with --data).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// Send DATA as the body (`@FILE` reads a file), as a form unless
    /// --header sets Content-Type.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Option<String>,
    /// Add a request header (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Print the status line and headers before the body, as `curl -i`.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// Follow at most N redirects (0: print the redirect itself).
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_redirects: usize,
    /// Give up on a URL after this many seconds (default 20).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Neither ask for nor decode gzip: print the body as it came.
    #[arg(long)]
    no_decompress: bool,
    /// Go through this HTTP proxy (`http://[user:password@]host:port`).
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Trust the CA certificates in this PEM file (not the system's).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The URLs, fetched in order.
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
}

/// Why a URL was not fetched: the message and curl's exit code for it.
struct Failed(String, u8);

/// Runs `cyclone fetch`.
pub fn run(args: FetchArgs) -> ExitCode {
    let (config, requests) = match prepare(&args) {
        Ok(ready) => ready,
        Err(Failed(message, code)) => {
            eprintln!("cyclone fetch: {message}");
            return ExitCode::from(code);
        }
    };
    let lp = match cyclone::IOLoop::new() {
        Ok(lp) => lp,
        Err(e) => {
            eprintln!("cyclone fetch: cannot start the loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let include = args.include;
    let code = lp.run_sync(async move {
        let client = HttpClient::with_config(config);
        let mut code = 0;
        for (url, request) in requests {
            match client.fetch(request).await {
                Ok(response) => {
                    if let Err(e) = print(&response, include) {
                        eprintln!("cyclone fetch: stdout: {e}");
                        return 23; // curl's "write error"
                    }
                }
                Err(e) => {
                    eprintln!("cyclone fetch: {url}: {e}");
                    if code == 0 {
                        code = exit_code(&e);
                    }
                }
            }
        }
        code
    });
    ExitCode::from(code)
}

/// The client's settings and one request per URL, or why not.
fn prepare(args: &FetchArgs) -> Result<(ClientConfig, Vec<(String, Request)>), Failed> {
    let usage = |m: String| Failed(m, 2);
    let mut config = ClientConfig {
        max_clients: 1,
        max_redirects: args.max_redirects,
        decompress: !args.no_decompress,
        ..ClientConfig::default()
    };
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            return Err(usage(format!(
                "--timeout {t}: give a positive number of seconds"
            )));
        }
        config.request_timeout = Duration::try_from_secs_f64(t)
            .map_err(|_| usage(format!("--timeout {t}: too large")))?;
        config.connect_timeout = config.connect_timeout.min(config.request_timeout);
    }
    if let Some(p) = &args.proxy {
        config.proxy = Some(Proxy::parse(p).map_err(|why| usage(format!("--proxy {p}: {why}")))?);
    }
    if let Some(file) = &args.cacert {
        let pem =
            std::fs::read(file).map_err(|e| usage(format!("--cacert {}: {e}", file.display())))?;
        config.tls = Some(
            TlsClientConfig::with_ca(&pem)
                .map_err(|e| usage(format!("--cacert {}: {e}", file.display())))?,
        );
    }
    let body = match &args.data {
        Some(d) => Some(match d.strip_prefix('@') {
            Some(path) => std::fs::read(path).map_err(|e| usage(format!("--data @{path}: {e}")))?,
            None => d.clone().into_bytes(),
        }),
        None => None,
    };
    let method = match &args.method {
        Some(m) => {
            Method::from_bytes(m.as_bytes()).map_err(|_| usage(format!("-X {m}: not a method")))?
        }
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let mut requests = Vec::new();
    for url in &args.urls {
        let mut request = Request::new(method.clone(), url);
        let mut typed = false;
        for h in &args.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| usage(format!("-H {h:?}: write it as 'Name: value'")))?;
            typed |= name.trim().eq_ignore_ascii_case("content-type");
            request = request.header(name.trim(), value.trim());
        }
        if let Some(body) = &body {
            if !typed {
                request = request.header("content-type", "application/x-www-form-urlencoded");
            }
            request = request.body(body.clone());
        }
        requests.push((url.clone(), request));
    }
    Ok((config, requests))
}

/// Writes the response (head first with `-i`) to stdout.
fn print(r: &Response, include: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    if include {
        let reason = r.status.canonical_reason().unwrap_or("");
        write!(out, "{:?} {} {reason}\r\n", r.version, r.status.as_u16())?;
        for (name, value) in &r.headers {
            out.write_all(name.as_str().as_bytes())?;
            out.write_all(b": ")?;
            out.write_all(value.as_bytes())?;
            out.write_all(b"\r\n")?;
        }
        out.write_all(b"\r\n")?;
    }
    out.write_all(&r.body)?;
    out.flush()
}

/// curl's exit codes, so scripts written for curl read ours.
fn exit_code(e: &FetchError) -> u8 {
    match e {
        FetchError::Resolve { .. } => 6,
        FetchError::Connect { .. } => 7,
        FetchError::Malformed(_) => 8,
        FetchError::NoResponse => 52,
        FetchError::TooLarge { .. } => 63,
        FetchError::Stream(_) | FetchError::Proxy { .. } => 56,
        FetchError::ShortBody { .. } => 18,
        FetchError::Timeout(_) => 28,
        FetchError::Tls { .. } => 35,
        FetchError::TooManyRedirects { .. } => 47,
        FetchError::InvalidUrl { .. } => 3,
        _ => 1,
    }
}
