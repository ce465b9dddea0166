//! Failpoints for crash tests: `MAILPKI_FAILPOINT=NAME:N` aborts the process the Nth time the
//! named point is reached, as a power cut would. Unset, it costs one environment read.

use std::sync::atomic::{AtomicU64, Ordering};

static HITS: AtomicU64 = AtomicU64::new(0);

/// Aborts here if the failpoint `name` is armed and this is its Nth hit.
pub(crate) fn hit(name: &str) {
    let Ok(spec) = std::env::var("MAILPKI_FAILPOINT") else {
        return;
    };
    let Some((armed, count)) = spec.split_once(':') else {
        return;
    };
    if armed != name {
        return;
    }
    let Ok(count) = count.parse::<u64>() else {
        return;
    };
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 == count {
        std::process::abort();
    }
}
