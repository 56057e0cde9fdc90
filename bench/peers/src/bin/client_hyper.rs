//! hyper's pooled client as its users set it up, as a load generator:
//! `hyper_util::client::legacy::Client` with an `HttpConnector` on tokio's
//! current_thread runtime, each request's whole body read. Arguments,
//! method and report: `src/client_load.rs`.
//!
//! ```text
//! client_hyper URL CONCURRENCY SECONDS
//! ```

#[path = "../client_load.rs"]
mod client_load;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

fn main() {
    let args = client_load::args();
    let url: Uri = args.url.parse().unwrap_or_else(|e| panic!("URL: {e}"));
    let concurrency = args.concurrency;
    client_load::run(
        &args,
        || {
            let mut connector = HttpConnector::new();
            // As Cyclone's and reqwest's clients do: a request is one
            // small write, not worth Nagle's wait.
            connector.set_nodelay(true);
            Client::builder(TokioExecutor::new())
                // Every task's connection stays pooled between its requests.
                .pool_max_idle_per_host(concurrency)
                .build::<_, Empty<Bytes>>(connector)
        },
        |client| {
            let (client, url) = (client.clone(), url.clone());
            move || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    match client.get(url).await {
                        Ok(resp) => {
                            let success = resp.status().is_success();
                            // The whole body, as a user reading the answer would.
                            resp.into_body().collect().await.is_ok() && success
                        }
                        Err(_) => false,
                    }
                }
            }
        },
    );
}
