//! Bounds on what unauthenticated callers can cost: failed authentications per client address
//! (a brute-force or flood is answered 429 for the rest of the minute) and log lines about them
//! (a few per window, then one line with the count), so that nobody without a valid token can
//! fill the disk or drown the log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; past this the oldest windows are forgotten.
const MAX_ADDRESSES: usize = 100_000;

pub(crate) struct FailureLimiter {
    per_minute: u32,
    counts: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, u32)>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `addr` used up its failures for this minute (then it is not even checked).
    pub(crate) fn blocked(&self, addr: Option<IpAddr>) -> bool {
        let Some(addr) = addr else { return false };
        if self.per_minute == 0 {
            return false;
        }
        self.lock()
            .get(&addr)
            .is_some_and(|(start, n)| start.elapsed() < WINDOW && *n >= self.per_minute)
    }

    /// Counts a failed authentication from `addr`.
    pub(crate) fn failed(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        if self.per_minute == 0 {
            return;
        }
        let mut counts = self.lock();
        if counts.len() >= MAX_ADDRESSES {
            counts.retain(|_, (start, _)| start.elapsed() < WINDOW);
        }
        let entry = counts.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// Lets `PER_WINDOW` lines through per 10 seconds and counts the rest.
pub(crate) struct LogLimiter {
    state: Mutex<(Instant, u32, u64)>,
}

impl LogLimiter {
    const PER_WINDOW: u32 = 10;
    const WINDOW: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new((Instant::now(), 0, 0)),
        }
    }

    /// Whether a line may be written now, and how many were held back since the last one
    /// that was (to be said in it).
    pub(crate) fn admit(&self) -> Option<u64> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, written, held) = &mut *state;
        if start.elapsed() >= Self::WINDOW {
            *start = Instant::now();
            *written = 0;
        }
        if *written < Self::PER_WINDOW {
            *written += 1;
            Some(std::mem::take(held))
        } else {
            *held += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let limiter = FailureLimiter::new(3);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        for _ in 0..3 {
            assert!(!limiter.blocked(Some(a)));
            limiter.failed(Some(a));
        }
        assert!(limiter.blocked(Some(a)));
        assert!(!limiter.blocked(Some(b)));
        assert!(!FailureLimiter::new(0).blocked(Some(a)));
    }

    #[test]
    fn the_log_admits_a_few_lines_then_counts() {
        let log = LogLimiter::new();
        for _ in 0..LogLimiter::PER_WINDOW {
            assert_eq!(log.admit(), Some(0));
        }
        assert_eq!(log.admit(), None);
        assert_eq!(log.admit(), None);
    }
}
