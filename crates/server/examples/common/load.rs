//! The load loop the load generators share: CLIENTS tasks, each with its own connection,
//! send the request `make` builds until the time is up; the answer is a JSON summary with
//! requests/s and latency percentiles (each answer read to its end; successful requests only,
//! the rest count as errors). `run` sends as fast as answers come (a closed loop: it finds the
//! most the server does); `run_paced` sends at a set rate, as users do, to see the latency a
//! busy but not saturated server gives.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

/// Sends one request and reads the whole answer: a page is served when its last byte is.
async fn answered(request: reqwest::RequestBuilder) -> bool {
    match request.send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

type Tally = (Vec<u64>, u64);

async fn summary(mut tasks: tokio::task::JoinSet<Tally>, clients: usize, seconds: u64) -> Value {
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

pub(crate) async fn run<F>(clients: usize, seconds: u64, make: F) -> Value
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    drive(clients, seconds, None, make).await
}

/// The clients send `rate` requests per second together, each on its own schedule, spread
/// evenly. A request held back because the client's previous one was still waiting counts its
/// latency from when it was due, so a slow answer cannot hide the ones queued behind it
/// (no coordinated omission); otherwise from when it left (the timer's lateness is not the
/// server's).
#[allow(dead_code)]
pub(crate) async fn run_paced<F>(clients: usize, seconds: u64, rate: f64, make: F) -> Value
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    drive(clients, seconds, Some(rate), make).await
}

async fn drive<F>(clients: usize, seconds: u64, rate: Option<f64>, make: F) -> Value
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let every = rate.map(|rate| Duration::from_secs_f64(clients as f64 / rate));
    let mut tasks = tokio::task::JoinSet::new();
    for client_no in 0..clients {
        let make = make.clone();
        tasks.spawn(async move {
            let http = client();
            let (mut latencies, mut errors) = (Vec::new(), 0u64);
            let mut due =
                every.map(|every| start + every.mul_f64(client_no as f64 / clients as f64));
            loop {
                let t0 = match due {
                    None if tokio::time::Instant::now() >= deadline => break,
                    None => Instant::now(),
                    Some(due) if due >= deadline => break,
                    Some(due) => {
                        let held_back = tokio::time::Instant::now() > due;
                        tokio::time::sleep_until(due).await;
                        if held_back {
                            due.into_std()
                        } else {
                            Instant::now()
                        }
                    }
                };
                if answered(make(&http, client_no)).await {
                    latencies.push(t0.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                if let (Some(due), Some(every)) = (due.as_mut(), every) {
                    *due += every;
                }
            }
            (latencies, errors)
        });
    }
    summary(tasks, clients, seconds).await
}
