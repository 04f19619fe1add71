//! The end of a branch's business day.
//!
//! At the branch's local `close_time`, tickets issued before that moment and
//! still waiting or called are closed. [`due_close`] says which business day
//! is due to be closed at an instant and the cutoff instant; the leader runs
//! the close for a day at most once (a marker in the branch's keys, written
//! in the same script), so the rule only has to be monotonic.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses `HH:MM` or `HH:MM:SS`.
pub fn parse_close_time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .ok()
}

/// The most recent close that is due at `now`: the local date whose close
/// moment has passed, as a day number (days since 1970-01-01), and the
/// close moment itself (tickets issued before it are closed).
pub fn due_close(now: DateTime<Utc>, tz: Tz, close_time: NaiveTime) -> (i64, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let cutoff_today = close_moment(tz, today, close_time);
    let date = if now >= cutoff_today {
        today
    } else {
        today.checked_sub_days(Days::new(1)).unwrap_or(today)
    };
    (day_number(date), close_moment(tz, date, close_time))
}

fn day_number(date: NaiveDate) -> i64 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days()
}

/// The UTC instant of `time` on local `date`. A time skipped by a daylight
/// saving change falls to the first valid instant after it; a repeated one
/// takes the earlier.
fn close_moment(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let mut local = date.and_time(time);
    for _ in 0..4 {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(30),
        }
    }
    Utc.from_utc_datetime(&local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> NaiveTime {
        parse_close_time(text).expect("time")
    }

    #[test]
    fn parses_both_forms() {
        assert_eq!(t("18:30"), NaiveTime::from_hms_opt(18, 30, 0).unwrap());
        assert_eq!(t("18:30:15"), NaiveTime::from_hms_opt(18, 30, 15).unwrap());
        for bad in ["25:00", "18", "", "6pm", "18:60"] {
            assert!(parse_close_time(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn before_and_after_the_close_time_in_a_non_utc_zone() {
        let tz: Tz = "America/Sao_Paulo".parse().expect("zone"); // UTC-3
                                                                 // 2026-03-10 20:59 UTC = 17:59 local: the 18:00 close of the 10th is not due yet.
        let before = Utc.with_ymd_and_hms(2026, 3, 10, 20, 59, 0).unwrap();
        let (day, cutoff) = due_close(before, tz, t("18:00"));
        assert_eq!(
            crate::domain::ticket::day_date(day).to_string(),
            "2026-03-09"
        );
        assert_eq!(cutoff, Utc.with_ymd_and_hms(2026, 3, 9, 21, 0, 0).unwrap());
        let after = Utc.with_ymd_and_hms(2026, 3, 10, 21, 0, 0).unwrap();
        let (day, cutoff) = due_close(after, tz, t("18:00"));
        assert_eq!(
            crate::domain::ticket::day_date(day).to_string(),
            "2026-03-10"
        );
        assert_eq!(cutoff, after);
    }

    #[test]
    fn midnight_close_closes_yesterday_at_local_midnight() {
        let tz: Tz = "Asia/Tokyo".parse().expect("zone"); // UTC+9
        let now = Utc.with_ymd_and_hms(2026, 3, 9, 16, 0, 0).unwrap(); // 01:00 on the 10th
        let (day, cutoff) = due_close(now, tz, t("00:00"));
        assert_eq!(
            crate::domain::ticket::day_date(day).to_string(),
            "2026-03-10"
        );
        assert_eq!(cutoff, Utc.with_ymd_and_hms(2026, 3, 9, 15, 0, 0).unwrap());
    }

    #[test]
    fn a_close_time_skipped_by_daylight_saving_still_happens() {
        let tz: Tz = "Europe/Lisbon".parse().expect("zone");
        // 2026-03-29: clocks go from 01:00 to 02:00; 01:30 does not exist.
        let now = Utc.with_ymd_and_hms(2026, 3, 29, 12, 0, 0).unwrap();
        let (_, cutoff) = due_close(now, tz, t("01:30"));
        assert_eq!(cutoff, Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap());
    }

    #[test]
    fn due_day_never_goes_backwards() {
        let tz: Tz = "Europe/Lisbon".parse().expect("zone");
        let start = Utc.with_ymd_and_hms(2026, 3, 27, 0, 0, 0).unwrap();
        let mut last = i64::MIN;
        for minutes in (0..(5 * 24 * 60)).step_by(7) {
            let (day, cutoff) =
                due_close(start + chrono::Duration::minutes(minutes), tz, t("01:30"));
            assert!(day >= last);
            assert!(cutoff <= start + chrono::Duration::minutes(minutes));
            last = day;
        }
    }
}
