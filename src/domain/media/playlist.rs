//! Media player profiles: which library files a screen plays, in what
//! order and for how long, and the windows (dates, weekdays, times of day)
//! in which each item plays. Part of a branch's configuration document;
//! validated here, so it never holds a path `MediaPath` would refuse.
//! Pure: the instant a window is checked against is passed in.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MediaPath;

/// Most items one playlist may have.
pub const MAX_PLAYLIST_ITEMS: usize = 500;
const MAX_DURATION_S: u32 = 86_400;
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When a playlist item plays; every part is optional and they all apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First day it plays (inclusive), in the branch's time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2026-03-01")]
    pub from: Option<NaiveDate>,
    /// Last day it plays (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2026-05-31")]
    pub until: Option<NaiveDate>,
    /// Days of the week (`mon` … `sun`); empty means every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    /// Local time of day it starts (HH:MM or HH:MM:SS), inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "08:00")]
    pub from_time: Option<String>,
    /// Local time of day it stops, exclusive; before `from_time` means the
    /// window runs over midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "12:00")]
    pub until_time: Option<String>,
}

impl Window {
    fn problems(&self, at: usize, problems: &mut Vec<String>) {
        if let (Some(from), Some(until)) = (self.from, self.until) {
            if from > until {
                problems.push(format!("playlist[{at}].window: from is after until"));
            }
        }
        for day in &self.weekdays {
            if !WEEKDAYS.contains(&day.as_str()) {
                problems.push(format!(
                    "playlist[{at}].window.weekdays: {day:?} is not one of mon … sun"
                ));
            }
        }
        for (name, time) in [
            ("from_time", &self.from_time),
            ("until_time", &self.until_time),
        ] {
            if let Some(t) = time {
                if crate::domain::close::parse_close_time(t).is_none() {
                    problems.push(format!(
                        "playlist[{at}].window.{name}: {t:?} is not a time such as 08:30"
                    ));
                }
            }
        }
    }

    /// Whether the window is open at local instant `at`.
    pub fn contains(&self, at: NaiveDateTime) -> bool {
        let date = at.date();
        if self.from.is_some_and(|from| date < from) || self.until.is_some_and(|u| date > u) {
            return false;
        }
        if !self.weekdays.is_empty() {
            let today = WEEKDAYS[date.weekday().num_days_from_monday() as usize];
            if !self.weekdays.iter().any(|d| d == today) {
                return false;
            }
        }
        let parse = |t: &Option<String>| {
            t.as_deref()
                .and_then(crate::domain::close::parse_close_time)
        };
        let time = at.time();
        match (parse(&self.from_time), parse(&self.until_time)) {
            (None, None) => true,
            (Some(start), None) => time >= start,
            (None, Some(end)) => time < end,
            (Some(start), Some(end)) if start <= end => time >= start && time < end,
            // Over midnight: 22:00–02:00.
            (Some(start), Some(end)) => time >= start || time < end,
        }
    }
}

/// One entry of a player's playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaylistItem {
    /// A path in the media library.
    #[schema(example = "ads/spring.png")]
    pub media: String,
    /// How long it shows (videos: at most this long).
    pub duration_s: u32,
    /// When it plays; absent means always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

impl PlaylistItem {
    /// Whether the item plays at local instant `at`.
    pub fn plays_at(&self, at: NaiveDateTime) -> bool {
        self.window.as_ref().is_none_or(|w| w.contains(at))
    }
}

/// A media player profile: which files a screen plays, in what order, for
/// how long. Part of a branch's configuration document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Player {
    #[schema(value_type = String, example = "lobby")]
    pub id: crate::domain::Id,
    pub name: String,
    pub playlist: Vec<PlaylistItem>,
}

/// Body of `PUT /api/v1/admin/branches/{branch}/players/{player}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerInput {
    pub name: String,
    #[serde(default)]
    pub playlist: Vec<PlaylistItem>,
}

impl PlayerInput {
    /// Every problem of the profile, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.playlist.len() > MAX_PLAYLIST_ITEMS {
            problems.push(format!("playlist: at most {MAX_PLAYLIST_ITEMS} items"));
        }
        for (at, item) in self.playlist.iter().enumerate() {
            if let Err(e) = MediaPath::parse(&item.media) {
                problems.push(format!("playlist[{at}].media: {e}"));
            }
            if !(1..=MAX_DURATION_S).contains(&item.duration_s) {
                problems.push(format!(
                    "playlist[{at}].duration_s: must be 1 to {MAX_DURATION_S}"
                ));
            }
            if let Some(window) = &item.window {
                window.problems(at, &mut problems);
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("test instant")
    }

    #[test]
    fn windows() {
        let date = |s: &str| Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date"));
        let spring = Window {
            from: date("2026-03-01"),
            until: date("2026-05-31"),
            ..Window::default()
        };
        // (window, instant, plays) — 2026-03-02 is a Monday.
        let mornings = Window {
            weekdays: vec!["mon".into(), "tue".into()],
            from_time: Some("08:00".into()),
            until_time: Some("12:00".into()),
            ..Window::default()
        };
        let night = Window {
            from_time: Some("22:00".into()),
            until_time: Some("02:00".into()),
            ..Window::default()
        };
        let cases = [
            (&spring, "2026-02-28 12:00", false),
            (&spring, "2026-03-01 00:00", true),
            (&spring, "2026-05-31 23:59", true),
            (&spring, "2026-06-01 00:00", false),
            (&mornings, "2026-03-02 08:00", true),
            (&mornings, "2026-03-02 11:59", true),
            (&mornings, "2026-03-02 12:00", false),
            (&mornings, "2026-03-04 09:00", false),
            (&night, "2026-03-04 23:00", true),
            (&night, "2026-03-04 01:59", true),
            (&night, "2026-03-04 02:00", false),
            (&night, "2026-03-04 12:00", false),
        ];
        for (window, instant, plays) in cases {
            assert_eq!(
                window.contains(at(instant)),
                plays,
                "{window:?} at {instant}"
            );
        }
    }

    #[test]
    fn player_input_reports_every_problem() {
        let input = PlayerInput {
            name: "Lobby".into(),
            playlist: vec![
                PlaylistItem {
                    media: "../x.png".into(),
                    duration_s: 0,
                    window: Some(Window {
                        weekdays: vec!["monday".into()],
                        from_time: Some("25:00".into()),
                        from: NaiveDate::from_ymd_opt(2026, 5, 1),
                        until: NaiveDate::from_ymd_opt(2026, 4, 1),
                        ..Window::default()
                    }),
                },
                PlaylistItem {
                    media: "ok.png".into(),
                    duration_s: 10,
                    window: None,
                },
            ],
        };
        assert_eq!(input.problems().len(), 5, "{:?}", input.problems());
    }
}
