//! The key service's calls and refusals per minute over the last hour, in this instance's
//! memory: what the console's key-service page shows.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Minutes kept.
const MINUTES: usize = 60;

/// One minute's counts: its start (Unix seconds), calls allowed, calls refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Minute {
    pub(crate) start: i64,
    pub(crate) allowed: u64,
    pub(crate) refused: u64,
}

#[derive(Default)]
pub(crate) struct Activity(Mutex<VecDeque<Minute>>);

impl Activity {
    pub(crate) fn record(&self, allowed: bool) {
        self.record_at(time::OffsetDateTime::now_utc().unix_timestamp(), allowed);
    }

    fn record_at(&self, now: i64, allowed: bool) {
        let start = now - now.rem_euclid(60);
        let mut minutes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if minutes.back().is_none_or(|m| m.start != start) {
            minutes.push_back(Minute {
                start,
                ..Minute::default()
            });
            while minutes.len() > MINUTES {
                minutes.pop_front();
            }
        }
        if let Some(minute) = minutes.back_mut() {
            if allowed {
                minute.allowed += 1;
            } else {
                minute.refused += 1;
            }
        }
    }

    /// The minutes of the last hour that saw a call, newest first.
    pub(crate) fn last_hour(&self) -> Vec<Minute> {
        let since = time::OffsetDateTime::now_utc().unix_timestamp() - 3600;
        let minutes = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        minutes
            .iter()
            .rev()
            .filter(|m| m.start > since)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_per_minute_and_an_hour_is_kept() {
        let activity = Activity::default();
        activity.record_at(120, true);
        activity.record_at(150, false);
        activity.record_at(179, true);
        activity.record_at(180, true);
        let minutes: Vec<Minute> = activity.0.lock().unwrap().iter().copied().collect();
        assert_eq!(
            minutes,
            vec![
                Minute {
                    start: 120,
                    allowed: 2,
                    refused: 1
                },
                Minute {
                    start: 180,
                    allowed: 1,
                    refused: 0
                },
            ]
        );
        for m in 0..100 {
            activity.record_at(240 + m * 60, true);
        }
        assert_eq!(activity.0.lock().unwrap().len(), 60);
    }
}
