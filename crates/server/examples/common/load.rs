//! The load loop both load generators share: CLIENTS tasks, each with its own connection,
//! send the request `make` builds until the time is up; the answer is a JSON summary with
//! requests/s and latency percentiles (each answer read to its end) (successful requests only; the rest count as errors).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

pub(crate) async fn run<F>(clients: usize, seconds: u64, make: F) -> Value
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let make = make.clone();
        tasks.spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                let t0 = Instant::now();
                // The whole answer, read: a page is served when its last byte is.
                let ok = match make(&http, client).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                    _ => false,
                };
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
    json!({
        "clients": clients,
        "requests": all.len(),
        "errors": errors,
        "requests_per_second": all.len() as f64 / seconds as f64,
        "p50_ms": percentile(&all, 50.0),
        "p95_ms": percentile(&all, 95.0),
        "p99_ms": percentile(&all, 99.0),
        "max_ms": all.last().copied().unwrap_or(0) as f64 / 1000.0,
    })
}
