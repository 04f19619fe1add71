//! Counter idle time: how long a counter stood free while tickets of its
//! services were waiting (API.md "Statistics", per counter; the field
//! `idle_while_waiting_s` is an addition).
//!
//! The ticket scripts keep two facts and put them into every
//! `ticket-called` event (no extra round trip):
//!
//! - `counter_free_ms` (F): when the counter last became free — its previous
//!   ticket ended (served, no-show, transferred away, closed at the day
//!   close), or a call found nothing waiting. A call that itself finishes
//!   the counter's ticket has F = the call.
//! - `waiting_since_ms` (W): since when at least one of the counter's
//!   services has had a ticket waiting without a break, just before the
//!   call (the earliest start of a still-running non-empty stretch of one of
//!   its queues; a transferred ticket starts a stretch when it arrives).
//!
//! A call at T adds `idle = T − max(F, W)` (never negative): the stretch
//! that ends with this call during which the counter was free and a ticket
//! of its services waited. A counter that did nothing for longer than
//! [`OPEN_COUNTER_WINDOW_MS`] while free counts as closed (the estimate uses
//! the same window): the call that ends such a silence opens it and adds 0,
//! as does a call with no F (the counter's first ever). A recall changes
//! nothing (the counter is not free). Idle time is counted in the business
//! day(s) it lies in, split at local midnights.
//!
//! Pure: no I/O, no clock.

use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;

use super::estimate::OPEN_COUNTER_WINDOW_MS;
use super::stats::{day_and_hour, hour_start};
use super::ticket::day_date;

/// The idle time one call ends, in ms.
pub fn idle_ms(call_ms: i64, free_ms: Option<i64>, waiting_since_ms: Option<i64>) -> i64 {
    let (Some(free), Some(waiting)) = (free_ms, waiting_since_ms) else {
        return 0;
    };
    if call_ms - free > OPEN_COUNTER_WINDOW_MS {
        return 0;
    }
    (call_ms - free.max(waiting)).max(0)
}

/// [`idle_ms`] split over the business days of `tz` it lies in, as
/// (day number, ms), earliest first; empty when there is none.
pub fn idle_by_day(
    tz: Tz,
    call_ms: i64,
    free_ms: Option<i64>,
    waiting_since_ms: Option<i64>,
) -> Vec<(i64, i64)> {
    let idle = idle_ms(call_ms, free_ms, waiting_since_ms);
    let mut parts = Vec::new();
    let mut from = call_ms - idle;
    while from < call_ms {
        let (day, _) = day_and_hour(tz, from);
        let until = day_start(tz, day_date(day + 1)).map_or(call_ms, |next| next.min(call_ms));
        // A day start at or before `from` would not move on: take the rest.
        let until = if until <= from { call_ms } else { until };
        parts.push((day, until - from));
        from = until;
    }
    parts
}

/// The instant (ms) a local date begins: its midnight, or the first hour
/// that exists when a daylight-saving change skips midnight.
fn day_start(tz: Tz, date: NaiveDate) -> Option<i64> {
    (0..3)
        .find_map(|hour| hour_start(tz, date, hour))
        .map(|t| t.timestamp_millis())
        .or_else(|| {
            hour_start(tz, date - Duration::days(1), 0).map(|t| t.timestamp_millis() + 86_400_000)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .expect("valid local time")
            .timestamp_millis()
    }

    /// (what happened, F, W, call, expected idle).
    type Case = (&'static str, Option<i64>, Option<i64>, i64, i64);

    /// Crafted timelines.
    #[test]
    fn crafted_timelines() {
        let t = at(Tz::UTC, 2026, 3, 10, 10, 0);
        let table: [Case; 8] = [
            // Free since 10:00, a ticket waits since 10:05, called 10:12.
            (
                "free first, then a ticket",
                Some(t),
                Some(t + 5 * MIN),
                t + 12 * MIN,
                7 * MIN,
            ),
            // Tickets wait since 9:50, the counter ends its last at 10:00.
            (
                "tickets first, then free",
                Some(t),
                Some(t - 10 * MIN),
                t + 3 * MIN,
                3 * MIN,
            ),
            // The call finishes the counter's ticket itself: F = the call.
            ("busy until the call", Some(t), Some(t - 10 * MIN), t, 0),
            // A counter's first call ever.
            ("never free before", None, Some(t - 10 * MIN), t, 0),
            // Closed over lunch (silent 31 min while free): reopened by the call.
            (
                "closed and reopened",
                Some(t),
                Some(t + MIN),
                t + 31 * MIN,
                0,
            ),
            // Silent exactly the window: still open.
            (
                "open through the window",
                Some(t),
                Some(t + 10 * MIN),
                t + 30 * MIN,
                20 * MIN,
            ),
            // A store upgraded from before the queues' stretches were kept.
            ("stretch unknown", Some(t), None, t + 5 * MIN, 0),
            // Clock skew between nodes: never negative.
            (
                "waiting after the call",
                Some(t),
                Some(t + 2 * MIN),
                t + MIN,
                0,
            ),
        ];
        for (what, free, waiting, call, expected) in table {
            assert_eq!(idle_ms(call, free, waiting), expected, "{what}");
        }
    }

    #[test]
    fn idle_across_a_local_midnight_is_split_between_the_days() {
        let tz: Tz = "America/New_York".parse().expect("zone");
        let midnight = at(tz, 2026, 3, 11, 0, 0);
        let (day_before, _) = day_and_hour(tz, midnight - 1);
        let parts = idle_by_day(
            tz,
            midnight + 5 * MIN,
            Some(midnight - 20 * MIN),
            Some(midnight - 15 * MIN),
        );
        assert_eq!(
            parts,
            vec![(day_before, 15 * MIN), (day_before + 1, 5 * MIN)]
        );
        // Inside one day: one part.
        assert_eq!(
            idle_by_day(tz, midnight + 9 * MIN, Some(midnight), Some(midnight + MIN)),
            vec![(day_before + 1, 8 * MIN)]
        );
        assert!(idle_by_day(tz, midnight, Some(midnight), Some(midnight)).is_empty());
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_still_splits() {
        // Santiago skips 00:00–01:00 on 2026-09-06.
        let tz: Tz = "America/Santiago".parse().expect("zone");
        let start = at(tz, 2026, 9, 5, 23, 50);
        let parts = idle_by_day(tz, start + 25 * MIN, Some(start), Some(start));
        assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), 25 * MIN);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[1].0, parts[0].0 + 1);
        let day_of_start = day_and_hour(tz, start).0;
        assert_eq!(parts[0], (day_of_start, 10 * MIN));
    }

    proptest! {
        /// The split parts add up to the idle time, lie in consecutive
        /// days, each in the day its instants belong to; the idle time
        /// never exceeds the open window nor the time since F or W.
        #[test]
        fn parts_add_up(call in 1_600_000_000_000i64..1_900_000_000_000,
                        free_before in 0i64..3_600_000, waiting_before in -3_600_000i64..3_600_000,
                        zone in prop::sample::select(vec!["Europe/Lisbon", "Pacific/Chatham", "UTC", "America/St_Johns"])) {
            let tz: Tz = zone.parse().expect("zone");
            let (free, waiting) = (call - free_before, call - waiting_before);
            let idle = idle_ms(call, Some(free), Some(waiting));
            prop_assert!(idle <= OPEN_COUNTER_WINDOW_MS);
            prop_assert!(idle <= free_before.max(0) && idle <= waiting_before.max(0));
            let parts = idle_by_day(tz, call, Some(free), Some(waiting));
            prop_assert_eq!(parts.iter().map(|p| p.1).sum::<i64>(), idle);
            let mut from = call - idle;
            for (i, (day, ms)) in parts.iter().enumerate() {
                prop_assert!(*ms > 0);
                prop_assert_eq!(day_and_hour(tz, from).0, *day);
                prop_assert_eq!(day_and_hour(tz, from + ms - 1).0, *day);
                if i > 0 { prop_assert_eq!(parts[i - 1].0 + 1, *day); }
                from += ms;
            }
        }
    }
}
