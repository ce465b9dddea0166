//! Certificates counted by state and by days left, in one index-only pass over the store
//! ([`CountBy::StateAndExpiry`]): what the console's overview and `/metrics` both show.
//!
//! A pass reads every certificate's index entry (about 50 ms for 100,000 on SQLite), so
//! counts are kept per reader for `[server] counts_refresh_seconds` (15 by default) and
//! computed by one task at a time: eight people opening the overview at once cost one pass,
//! and `/metrics` reads counts a background task keeps fresh instead of making a scrape wait
//! for the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailpki_store::{Actor, CountBy, ObjectFilter, ObjectType, State, Store};

pub(crate) const DAY: i64 = 86_400;

/// Readers whose counts are kept at most.
const KEPT: usize = 1000;

/// The certificates one reader sees (or all of them), counted at `from`.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// When the counts were taken (Unix seconds).
    pub(crate) from: i64,
    pub(crate) by_state: BTreeMap<String, i64>,
    /// Active certificates by whole days left from `from` (`-1`: expired).
    pub(crate) active_by_day: BTreeMap<i64, i64>,
}

impl Census {
    /// Counts as `actor` sees them, or every certificate without one.
    pub(crate) fn take(
        store: &Store,
        actor: Option<&Actor>,
        from: i64,
    ) -> mailpki_store::Result<Self> {
        let certificates = ObjectFilter {
            object_type: Some(ObjectType::Certificate),
            ..ObjectFilter::default()
        };
        let by = CountBy::StateAndExpiry { from, width: DAY };
        let rows = match actor {
            Some(actor) => store.count_by(actor, &certificates, by)?,
            None => store.count_all(&certificates, by)?,
        };
        let mut census = Self {
            from,
            ..Self::default()
        };
        for (key, count) in rows {
            let Some((state, day)) = key.rsplit_once(' ') else {
                continue;
            };
            *census.by_state.entry(state.to_owned()).or_default() += count;
            if state == State::Active.as_str()
                && let Ok(day) = day.parse::<i64>()
            {
                *census.active_by_day.entry(day).or_default() += count;
            }
        }
        Ok(census)
    }

    /// Active certificates with between `from_day` (inclusive) and `to_day` (exclusive) days
    /// left.
    pub(crate) fn active_between(&self, from_day: i64, to_day: i64) -> i64 {
        self.active_by_day
            .range(from_day..to_day)
            .map(|(_, n)| n)
            .sum()
    }
}

/// Counts by reader, with when they were taken.
type Kept = HashMap<Option<String>, (Instant, Arc<Census>)>;

/// Counts per reader (`None`: every certificate, for `/metrics`), each kept for `fresh`.
#[derive(Default)]
pub(crate) struct Cache {
    fresh: Duration,
    kept: Mutex<Kept>,
    /// One pass at a time: those who wait find the counts fresh when their turn comes.
    pass: tokio::sync::Mutex<()>,
}

impl Cache {
    pub(crate) fn new(fresh: Duration) -> Self {
        Self {
            fresh,
            ..Self::default()
        }
    }

    fn fresh(&self, reader: Option<&String>) -> Option<Arc<Census>> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.get(&reader.cloned())
            .filter(|(at, _)| at.elapsed() < self.fresh)
            .map(|(_, census)| Arc::clone(census))
    }

    /// The reader's counts, taken again when older than `fresh`.
    pub(crate) async fn get(
        &self,
        store: &Arc<Store>,
        actor: Option<&Actor>,
    ) -> Result<Arc<Census>, crate::error::ApiError> {
        let reader = actor.map(|a| a.as_str().to_owned());
        if let Some(census) = self.fresh(reader.as_ref()) {
            return Ok(census);
        }
        let _pass = self.pass.lock().await;
        if let Some(census) = self.fresh(reader.as_ref()) {
            return Ok(census);
        }
        let from = time::OffsetDateTime::now_utc().unix_timestamp();
        let who = actor.cloned();
        let store = Arc::clone(store);
        let taken = tokio::task::spawn_blocking(move || Census::take(&store, who.as_ref(), from))
            .await
            .map_err(|_| crate::error::ApiError::internal())?;
        let census = Arc::new(
            taken.map_err(|e| crate::error::ApiError::from(mailpki_kms::KmsError::from(e)))?,
        );
        let mut kept = self
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() >= KEPT {
            kept.retain(|_, (at, _)| at.elapsed() < self.fresh);
        }
        if kept.len() < KEPT {
            kept.insert(reader, (Instant::now(), Arc::clone(&census)));
        }
        Ok(census)
    }
}

/// Keeps the counts of every certificate fresh for `/metrics`, for as long as the server runs
/// (the task ends with the runtime). Counts that are never reused need no keeping.
pub(crate) fn keep_fresh(cache: Arc<Cache>, store: Arc<Store>) {
    if cache.fresh < Duration::from_secs(2) {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(e) = cache.get(&store, None).await {
                tracing::warn!(error = %e.message, "counting certificates for /metrics failed");
            }
            tokio::time::sleep(cache.fresh.saturating_sub(Duration::from_secs(1))).await;
        }
    });
}
