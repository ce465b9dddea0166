//! Load generator for `scripts/bench-console.sh`: CLIENTS signed-in browsers (one session
//! cookie, one connection each) load console pages from a server for SECONDS, each client
//! going round the PATHS in turn; throughput and latency percentiles are printed as one JSON
//! line.
//!
//! Usage: console_load URL COOKIE PATH[,PATH...] CLIENTS SECONDS

// Counts and microseconds here are far below 2^52: f64 holds them exactly.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[path = "common/load.rs"]
mod load;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 6,
        "usage: console_load URL COOKIE PATH[,PATH...] CLIENTS SECONDS"
    );
    let pages: Vec<String> = args[3]
        .split(',')
        .map(|p| format!("{}{p}", args[1]))
        .collect();
    let cookie = args[2].clone();
    let clients: usize = args[4].parse().expect("CLIENTS is a number");
    let seconds: u64 = args[5].parse().expect("SECONDS is a number");
    let turn = Arc::new(AtomicUsize::new(0));
    let summary = load::run(clients, seconds, move |http, _| {
        let page = &pages[turn.fetch_add(1, Ordering::Relaxed) % pages.len()];
        http.get(page).header("cookie", &cookie)
    })
    .await;
    println!("{summary}");
}
