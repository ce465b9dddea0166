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

use std::time::{Duration, Instant};

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() == 6,
        "usage: attributes_load URL[,URL...] TOKEN OBJECT_ID CLIENTS SECONDS"
    );
    let urls: Vec<String> = args[1].split(',').map(str::to_owned).collect();
    let token = args[2].clone();
    let object = args[3].clone();
    let clients: usize = args[4].parse().expect("CLIENTS is a number");
    let seconds: u64 = args[5].parse().expect("SECONDS is a number");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let url = format!("{}/v1/objects/{object}/attributes", urls[c % urls.len()]);
        let auth = format!("Bearer {token}");
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let ok = http
                    .get(&url)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    latencies.push(t0.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        let (latencies, e) = done.unwrap();
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    println!(
        "{}",
        serde_json::json!({
            "clients": clients,
            "requests": all.len(),
            "errors": errors,
            "requests_per_second": all.len() as f64 / seconds as f64,
            "p50_ms": percentile(&all, 50.0) as f64 / 1000.0,
            "p99_ms": percentile(&all, 99.0) as f64 / 1000.0,
            "max_ms": all.last().copied().unwrap_or(0) as f64 / 1000.0,
        })
    );
}
