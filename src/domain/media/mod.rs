//! Media library rules: which paths a library may hold and the manifest a
//! master publishes and its version (DESIGN.md §2). Media player profiles
//! and their playlists with validity windows (API.md "Administration") are
//! `playlist`'s, re-exported here.
//!
//! Pure: no file system, no clock. Hashing is computation, so the manifest
//! version (sha256 of the canonical manifest) is computed here; reading and
//! writing files belongs to `crate::blobs`.

mod playlist;

pub use playlist::{Player, PlayerInput, PlaylistItem, Window, MAX_PLAYLIST_ITEMS};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::DomainError;

/// Longest media path, in bytes.
pub const MAX_PATH_BYTES: usize = 512;
const MAX_SEGMENT_BYTES: usize = 255;

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
}
