//! The expiry timeline: certificates expiring per week for the next 52 weeks, drawn on the
//! server as SVG (no script, no inline style: presentation attributes only, which the
//! console's Content-Security-Policy allows). Each bar links to the certificates it counts.

use time::OffsetDateTime;

pub(crate) const WEEKS: i64 = 52;
pub(crate) const WEEK: i64 = 7 * 86_400;
const WIDTH: i64 = 960;
const HEIGHT: i64 = 200;
const LEFT: i64 = 40;
const BOTTOM: i64 = 24;

pub(crate) struct Bar {
    pub(crate) x: i64,
    pub(crate) y: i64,
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) count: i64,
    /// The week's first day, `YYYY-MM-DD`.
    pub(crate) label: String,
    /// The certificates listing this bar stands for.
    pub(crate) href: String,
}

pub(crate) struct Tick {
    pub(crate) x: i64,
    pub(crate) label: String,
}

pub(crate) struct Chart {
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) base: i64,
    pub(crate) left: i64,
    pub(crate) bars: Vec<Bar>,
    pub(crate) months: Vec<Tick>,
    pub(crate) max: i64,
    pub(crate) total: i64,
}

fn day(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date().to_string())
        .unwrap_or_default()
}

/// The chart for `counts` (bucket number as text, count), weeks from `from` (Unix seconds).
pub(crate) fn expiry(from: i64, counts: &[(String, i64)], listing: &str) -> Chart {
    let mut weeks = [0i64; WEEKS as usize];
    for (bucket, count) in counts {
        if let Ok(b) = bucket.parse::<usize>()
            && let Some(slot) = weeks.get_mut(b)
        {
            *slot += count;
        }
    }
    let max = weeks.iter().copied().max().unwrap_or(0);
    let plot = HEIGHT - BOTTOM - 8;
    let step = (WIDTH - LEFT) / WEEKS;
    let bars = weeks
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let start = from + i as i64 * WEEK;
            let height = if max == 0 {
                0
            } else {
                // A week with any certificate shows at least a sliver.
                (count * plot / max).max(i64::from(count > 0) * 2)
            };
            Bar {
                x: LEFT + i as i64 * step,
                y: HEIGHT - BOTTOM - height,
                width: step - 2,
                height,
                count,
                label: day(start),
                href: format!(
                    "{listing}?state=Active&expires_after={start}&expires_before={}",
                    start + WEEK
                ),
            }
        })
        .collect();
    let mut months = Vec::new();
    let mut last = String::new();
    for i in 0..WEEKS {
        let label = day(from + i * WEEK);
        let month = label.get(..7).unwrap_or_default().to_owned();
        if month != last {
            if !last.is_empty() {
                months.push(Tick {
                    x: LEFT + i * step,
                    label: month.clone(),
                });
            }
            last = month;
        }
    }
    Chart {
        width: WIDTH,
        height: HEIGHT,
        base: HEIGHT - BOTTOM,
        left: LEFT,
        bars,
        months,
        max,
        total: weeks.iter().sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_scaled_to_the_busiest_week_and_link_to_their_certificates() {
        let from = 1_767_225_600; // 2026-01-01
        let chart = expiry(
            from,
            &[("0".into(), 10), ("3".into(), 5), ("99".into(), 7)],
            "/console/certificates",
        );
        assert_eq!(chart.bars.len(), 52);
        assert_eq!(chart.max, 10);
        assert_eq!(chart.total, 15, "a bucket past the year is not drawn");
        assert_eq!(chart.bars[0].height, 2 * chart.bars[3].height);
        assert_eq!(chart.bars[1].height, 0);
        assert!(chart.bars[3].href.ends_with(&format!(
            "expires_after={}&expires_before={}",
            from + 3 * WEEK,
            from + 4 * WEEK
        )));
        assert_eq!(chart.bars[0].label, "2026-01-01");
        assert_eq!(
            chart.months.first().map(|m| m.label.as_str()),
            Some("2026-02")
        );
    }
}
