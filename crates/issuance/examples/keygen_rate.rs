//! The machine's bare RSA key generation rate on all cores: the bound bulk minting is judged
//! against in `scripts/bench-issuance.sh`. Usage: `keygen_rate COUNT [BITS] [THREADS]`;
//! prints `keys_per_second=<rate>`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let bits: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2048);
    let threads: usize = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    openssl::rsa::Rsa::generate(bits).expect("key generation");
                }
            });
        }
    });
    let seconds = start.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = count as f64 / seconds;
    println!(
        "keys_per_second={rate:.2} count={count} bits={bits} threads={threads} seconds={seconds:.2}"
    );
}
