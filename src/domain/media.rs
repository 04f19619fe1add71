//! Media library rules: which paths a library may hold, the manifest a
//! master publishes and its version, and media player playlists with their
//! validity windows (DESIGN.md §2, API.md "Administration").
//!
//! Pure: no file system, no clock. Hashing is computation, so the manifest
//! version (sha256 of the canonical manifest) is computed here; reading and
//! writing files belongs to `crate::blobs`.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::DomainError;

/// Longest media path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
const MAX_SEGMENT_BYTES: usize = 255;
/// Most items one playlist may have.
pub const MAX_PLAYLIST_ITEMS: usize = 500;
const MAX_DURATION_S: u32 = 86_400;
const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A validated path inside a media library: `/`-separated segments of
/// printable characters, none empty, none `.` or `..`, none starting with
/// `.` (names starting with a dot are the library's temporary files), no
/// backslash and no `%` (so no encoded form can smuggle a separator or a
/// `..` past this check), not absolute. Such a path can be joined to the
/// library directory without ever leaving it lexically; symlinks are the
/// file layer's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct MediaPath(String);

impl MediaPath {
    pub fn parse(value: &str) -> Result<MediaPath, DomainError> {
        let invalid = |reason: &str| DomainError::InvalidMediaPath {
            path: value.chars().take(80).collect(),
            reason: reason.to_owned(),
        };
        if value.is_empty() {
            return Err(invalid("empty path"));
        }
        if value.len() > MAX_PATH_BYTES {
            return Err(invalid("longer than 512 bytes"));
        }
        if value.starts_with('/') {
            return Err(invalid("absolute paths are not allowed"));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("control characters are not allowed"));
        }
        if value.contains('\\') || value.contains('%') {
            return Err(invalid("'\\' and '%' are not allowed"));
        }
        for segment in value.split('/') {
            if segment.is_empty() {
                return Err(invalid("empty path segment"));
            }
            if segment == "." || segment == ".." {
                return Err(invalid("'.' and '..' segments are not allowed"));
            }
            if segment.starts_with('.') {
                return Err(invalid("segments must not start with '.'"));
            }
            if segment.len() > MAX_SEGMENT_BYTES {
                return Err(invalid("a segment is longer than 255 bytes"));
            }
        }
        Ok(MediaPath(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's segments, for joining onto a directory one at a time.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl std::fmt::Display for MediaPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of a sha256 digest.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The sha256 of `bytes`, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Whether `value` is a blob id: 64 lower-case hex digits.
pub fn is_blob_id(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One file of a library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    #[schema(example = "ads/spring.png")]
    pub path: String,
    pub size: u64,
    /// The content's sha256 (lower-case hex); also its blob id.
    pub sha256: String,
}

/// A library's manifest: every file, sorted by path, and a version that is
/// the sha256 of the canonical form (the compact JSON array of the sorted
/// entries), so equal libraries have equal versions on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Manifest {
    pub version: String,
    pub files: Vec<ManifestEntry>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest::new(Vec::new())
    }
}

impl Manifest {
    /// Builds a manifest from entries in any order; a path given twice keeps
    /// its last entry.
    pub fn new(entries: impl IntoIterator<Item = ManifestEntry>) -> Manifest {
        let by_path: BTreeMap<String, ManifestEntry> =
            entries.into_iter().map(|e| (e.path.clone(), e)).collect();
        let files: Vec<ManifestEntry> = by_path.into_values().collect();
        Manifest {
            version: Manifest::version_of(&files),
            files,
        }
    }

    /// The version of sorted `files`.
    pub fn version_of(files: &[ManifestEntry]) -> String {
        let canonical = serde_json::to_vec(files).unwrap_or_default();
        sha256_hex(&canonical)
    }

    /// Whether the version matches the files and every entry is valid: a
    /// manifest received from a peer is checked with this before use.
    pub fn is_consistent(&self) -> bool {
        let sorted = self.files.windows(2).all(|w| w[0].path < w[1].path);
        let valid = self
            .files
            .iter()
            .all(|e| MediaPath::parse(&e.path).is_ok() && is_blob_id(&e.sha256));
        sorted && valid && self.version == Manifest::version_of(&self.files)
    }

    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.files
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|at| &self.files[at])
    }

    /// Blob id → size of every blob the manifest references.
    pub fn blobs(&self) -> BTreeMap<&str, u64> {
        self.files
            .iter()
            .map(|e| (e.sha256.as_str(), e.size))
            .collect()
    }
}

/// The `Content-Type` of a media file, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "txt" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

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
                if super::close::parse_close_time(t).is_none() {
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
        let parse = |t: &Option<String>| t.as_deref().and_then(super::close::parse_close_time);
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
    pub id: super::Id,
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
    use proptest::prelude::*;

    #[test]
    fn media_paths() {
        for ok in ["a.png", "ads/spring.png", "a b/ü.mp4", "x/y/z-1_2.webm"] {
            assert!(MediaPath::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".hidden",
            "a/.upload.tmp",
            "a\\..\\b",
            "%2e%2e/x",
            "a%2Fb",
            "a\nb",
            "a\0b",
            "..",
        ] {
            assert!(MediaPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(MediaPath::parse(&"a".repeat(MAX_PATH_BYTES + 1)).is_err());
    }

    proptest! {
        /// A valid path never has a segment that could climb out of, or
        /// hide inside, the library, whatever characters it is made of.
        #[test]
        fn valid_paths_stay_inside(raw in "[a-z./%\\\\\\x00-\\x1f]{1,30}") {
            if let Ok(path) = MediaPath::parse(&raw) {
                prop_assert!(!path.as_str().starts_with('/'));
                for segment in path.segments() {
                    prop_assert!(!segment.is_empty() && !segment.starts_with('.'));
                    prop_assert!(!segment.contains('%') && !segment.contains('\\'));
                }
            }
        }

        /// The version depends on the content, not on the order entries
        /// were listed in.
        #[test]
        fn manifest_version_ignores_order(sizes in proptest::collection::vec(0u64..1000, 0..8)) {
            let entries: Vec<ManifestEntry> = sizes.iter().enumerate().map(|(i, s)| ManifestEntry {
                path: format!("f{i}.png"), size: *s, sha256: sha256_hex(&s.to_le_bytes()),
            }).collect();
            let forward = Manifest::new(entries.clone());
            let backward = Manifest::new(entries.into_iter().rev());
            prop_assert_eq!(&forward, &backward);
            prop_assert!(forward.is_consistent());
        }
    }

    #[test]
    fn manifest_version_changes_with_content() {
        let entry = |size| ManifestEntry {
            path: "a.png".into(),
            size,
            sha256: sha256_hex(b"x"),
        };
        let one = Manifest::new([entry(1)]);
        assert_ne!(one.version, Manifest::new([entry(2)]).version);
        assert_ne!(one.version, Manifest::default().version);
        assert_eq!(
            Manifest::default().version,
            sha256_hex(b"[]"),
            "the canonical form of the empty manifest"
        );
        let mut tampered = one.clone();
        tampered.files[0].size = 5;
        assert!(!tampered.is_consistent());
    }

    #[test]
    fn blob_ids() {
        assert!(is_blob_id(&sha256_hex(b"")));
        assert!(!is_blob_id("../../etc/passwd"));
        assert!(!is_blob_id(&sha256_hex(b"").to_uppercase()));
    }

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
