//! Load generator for `scripts/bench-server.sh`: CLIENTS concurrent clients read one object's
//! attributes from the given servers (round robin, one connection each) for SECONDS, then the
//! throughput and latency percentiles are printed as one JSON line.
//!
//! Usage: attributes_load URL[,URL...] TOKEN OBJECT_ID CLIENTS SECONDS

// Counts and microseconds here are far below 2^52: f64 holds them exactly.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

#[path = "common/load.rs"]
mod load;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 6,
        "usage: attributes_load URL[,URL...] TOKEN OBJECT_ID CLIENTS SECONDS"
    );
    let object = &args[3];
    let urls: Vec<String> = args[1]
        .split(',')
        .map(|u| format!("{u}/v1/objects/{object}/attributes"))
        .collect();
    let auth = format!("Bearer {}", args[2]);
    let clients: usize = args[4].parse().expect("CLIENTS is a number");
    let seconds: u64 = args[5].parse().expect("SECONDS is a number");
    let summary = load::run(clients, seconds, move |http, client| {
        http.get(&urls[client % urls.len()])
            .header("authorization", &auth)
    })
    .await;
    println!("{summary}");
}
