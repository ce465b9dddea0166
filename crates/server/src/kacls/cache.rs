//! A bounded cache of values by SHA-256, each for a limited time: opened keys by their
//! wrapped form, users by their authentication token.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values with their expiry time, and the order they came in.
pub(super) type Entries<V> = (HashMap<[u8; 32], (V, Instant)>, VecDeque<[u8; 32]>);

/// Values by a SHA-256, each for a bounded time, at most `capacity` of them: opened keys by
/// their wrapped form, users by their authentication token.
pub(super) struct TimedCache<V> {
    pub(super) ttl: Duration,
    pub(super) capacity: usize,
    pub(super) inner: Mutex<Entries<V>>,
}

impl<V: Clone> TimedCache<V> {
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    pub(super) fn get(&self, id: &[u8; 32]) -> Option<V> {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match inner.0.get(id) {
            Some((value, until)) if Instant::now() < *until => Some(value.clone()),
            Some(_) => {
                inner.0.remove(id);
                None
            }
            None => None,
        }
    }

    /// Drops every expired entry (an opened key's memory is cleared as it goes), so that a
    /// key is not kept past its time when no request comes to push it out.
    pub(super) fn sweep(&self) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (map, order) = &mut *inner;
        map.retain(|_, (_, until)| *until > now);
        order.retain(|id| map.contains_key(id));
    }

    pub(super) fn insert(&self, id: [u8; 32], value: V, ttl: Duration) {
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, order) = &mut *inner;
        // Oldest first out; entries already expired or replaced leave stale IDs behind, which
        // are skipped here.
        while map.len() >= self.capacity {
            let Some(old) = order.pop_front() else { break };
            map.remove(&old);
        }
        if map.insert(id, (value, Instant::now() + ttl)).is_none() {
            order.push_back(id);
        }
    }
}
