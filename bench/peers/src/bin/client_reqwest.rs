//! reqwest as its users set it up, as a load generator: one `Client` on
//! tokio's current_thread runtime, each request's whole body read
//! (`.bytes()`). Arguments, method and report: `src/client_load.rs`.
//!
//! ```text
//! client_reqwest URL CONCURRENCY SECONDS
//! ```

#[path = "../client_load.rs"]
mod client_load;

use reqwest::Client;

fn main() {
    let args = client_load::args();
    let url: reqwest::Url = args.url.parse().unwrap_or_else(|e| panic!("URL: {e}"));
    let concurrency = args.concurrency;
    client_load::run(
        &args,
        || {
            Client::builder()
                // Every task's connection stays pooled between its requests.
                .pool_max_idle_per_host(concurrency)
                // Straight to the server, as Cyclone's client goes: an
                // HTTP_PROXY in the environment must not reroute the measure.
                .no_proxy()
                .build()
                .unwrap_or_else(|e| panic!("reqwest client: {e}"))
        },
        |client| {
            let (client, url) = (client.clone(), url.clone());
            move || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    match client.get(url).send().await {
                        Ok(resp) => {
                            let success = resp.status().is_success();
                            resp.bytes().await.is_ok() && success
                        }
                        Err(_) => false,
                    }
                }
            }
        },
    );
}
