//! Load generator for `scripts/bench-revocation.sh`: CLIENTS concurrent clients POST the OCSP
//! requests of REQUESTS (base64 DER, one per line, taken in turn) to URL/ocsp for SECONDS;
//! throughput and latency percentiles are printed as one JSON line. An answer counts when it
//! is an HTTP 200; the script checks with `openssl ocsp` beforehand that the requests get
//! signed answers.
//!
//! Usage: ocsp_load URL REQUESTS CLIENTS SECONDS

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;

#[path = "common/load.rs"]
mod load;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 5,
        "usage: ocsp_load URL REQUESTS CLIENTS SECONDS"
    );
    let url = format!("{}/ocsp", args[1].trim_end_matches('/'));
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        std::fs::read_to_string(&args[2])
            .expect("REQUESTS can be read")
            .lines()
            .map(|line| {
                base64::engine::general_purpose::STANDARD
                    .decode(line.trim())
                    .expect("base64")
            })
            .collect(),
    );
    assert!(!requests.is_empty(), "no requests in {}", args[2]);
    let clients: usize = args[3].parse().expect("CLIENTS is a number");
    let seconds: u64 = args[4].parse().expect("SECONDS is a number");
    let next = Arc::new(AtomicUsize::new(0));
    let summary = load::run(clients, seconds, move |http, _| {
        let i = next.fetch_add(1, Ordering::Relaxed) % requests.len();
        http.post(&url)
            .header("content-type", "application/ocsp-request")
            .body(requests[i].clone())
    })
    .await;
    println!("{summary}");
}
