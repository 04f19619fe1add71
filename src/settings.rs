//! Typed node configuration: built-in defaults < a TOML file (`--config`) <
//! `TURNUS__<SECTION>__<KEY>` environment variables.
//!
//! Settings are loaded once in `main` and passed down; nothing reads them
//! from a global, so a test builds its own. Loading reports every problem it
//! finds at once, each with its key, instead of stopping at the first.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::Id;

/// The whole node configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    pub node: NodeSettings,
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub upstream: UpstreamSettings,
    pub leader: LeaderSettings,
    pub media: MediaSettings,
}

/// `master` holds the configuration and accepts administration; `slave`
/// serves branches from a mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    #[default]
    Master,
    Slave,
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeRole::Master => "master",
            NodeRole::Slave => "slave",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSettings {
    /// Unique node name; empty means host name and port.
    pub id: String,
    pub role: NodeRole,
    pub group: String,
    pub data_dir: PathBuf,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            id: String::new(),
            role: NodeRole::Master,
            group: "central".to_owned(),
            data_dir: PathBuf::from("data"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: String,
    /// URL other nodes use to reach this one; empty means `http://<listen>`.
    pub advertise_url: String,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted JSON body.
    pub max_json_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".to_owned(),
            advertise_url: String::new(),
            workers: 0,
            max_json_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// The group's Redis; empty starts the embedded default.
    pub url: String,
    /// The program the embedded default runs.
    pub embedded_binary: String,
    /// `appendfsync` of the embedded Redis: `everysec` (an acknowledged
    /// ticket survives a crash of the node or of Redis; an OS crash may lose
    /// the last second) or `always`.
    pub embedded_appendfsync: String,
    /// Longest wait for one Redis reply before the request fails with 503.
    pub response_timeout_ms: u64,
    pub connect_timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: String::new(),
            embedded_binary: "redis-server".to_owned(),
            embedded_appendfsync: "everysec".to_owned(),
            response_timeout_ms: 2_000,
            connect_timeout_ms: 1_000,
        }
    }
}

/// Accepted bearer tokens per role. Lists are TOML arrays or, from the
/// environment, comma-separated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(deserialize_with = "string_list")]
    pub admin_tokens: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub operator_tokens: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub kiosk_tokens: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub display_tokens: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub peer_tokens: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    #[serde(deserialize_with = "string_list")]
    pub master_urls: Vec<String>,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaderSettings {
    pub lease_ttl_ms: u64,
    pub renew_interval_ms: u64,
    pub renew_deadline_ms: u64,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        LeaderSettings {
            lease_ttl_ms: 3_000,
            renew_interval_ms: 1_000,
            renew_deadline_ms: 2_000,
        }
    }
}

/// The media library (master) and its mirror (slaves).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Master: the library; files copied here are published once they have
    /// stopped changing. Master nodes of one group share it (one directory
    /// on one host, or a shared file system).
    pub library_dir: PathBuf,
    /// Largest upload, and largest file a slave accepts in a manifest.
    pub max_file_bytes: u64,
    /// Master: how often the library directory is scanned.
    pub scan_interval_ms: u64,
    /// Slaves: how often every held blob is hashed again (0: never).
    pub verify_interval_s: u64,
    /// Slave leader: rate limit of downloads from the master group, in bytes
    /// per second (0: none); copies within the group are not limited.
    pub bandwidth_limit_bytes_per_s: u64,
    /// Free space a download must leave on the disk.
    pub min_free_bytes: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            library_dir: PathBuf::from("media"),
            max_file_bytes: 2 * 1024 * 1024 * 1024,
            scan_interval_ms: 2_000,
            verify_interval_s: 3_600,
            bandwidth_limit_bytes_per_s: 0,
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A list given as an array or as one comma-separated string.
fn string_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        One(String),
    }
    let items = match Raw::deserialize(deserializer)? {
        Raw::List(items) => items,
        Raw::One(joined) => joined.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Every problem found while loading, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

const SECTIONS: [&str; 7] = [
    "node", "http", "redis", "auth", "upstream", "leader", "media",
];

impl Settings {
    /// Loads defaults, then `file` (if any), then the `TURNUS__` variables
    /// of `env`.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let mut problems = Vec::new();
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError(vec![format!(
                    "config file {} does not exist",
                    path.display()
                )]));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let env_source = config::Environment::with_prefix("TURNUS")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env.clone().into_iter().collect()));
        builder = builder.add_source(env_source);
        let raw = match builder.build() {
            Ok(raw) => raw,
            Err(e) => return Err(SettingsError(vec![e.to_string()])),
        };

        if let Ok(table) = raw
            .clone()
            .try_deserialize::<HashMap<String, config::Value>>()
        {
            for key in table.keys() {
                if !SECTIONS.contains(&key.as_str()) {
                    problems.push(format!(
                        "{key}: unknown section (known: {})",
                        SECTIONS.join(", ")
                    ));
                }
            }
        }

        fn section<T: serde::de::DeserializeOwned + Default>(
            raw: &config::Config,
            name: &str,
            problems: &mut Vec<String>,
        ) -> T {
            match raw.get::<T>(name) {
                Ok(value) => value,
                Err(config::ConfigError::NotFound(_)) => T::default(),
                Err(e) => {
                    problems.push(format!("{name}: {e}"));
                    T::default()
                }
            }
        }

        let settings = Settings {
            node: section(&raw, "node", &mut problems),
            http: section(&raw, "http", &mut problems),
            redis: section(&raw, "redis", &mut problems),
            auth: section(&raw, "auth", &mut problems),
            upstream: section(&raw, "upstream", &mut problems),
            leader: section(&raw, "leader", &mut problems),
            media: section(&raw, "media", &mut problems),
        };
        problems.extend(settings.problems());
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(problems))
        }
    }

    /// Semantic checks across keys.
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !self.node.id.is_empty() && Id::parse(&self.node.id).is_err() {
            problems.push(format!(
                "node.id: {:?} must match ^[a-z0-9][a-z0-9-]{{0,62}}$",
                self.node.id
            ));
        }
        if Id::parse(&self.node.group).is_err() {
            problems.push(format!(
                "node.group: {:?} must match ^[a-z0-9][a-z0-9-]{{0,62}}$",
                self.node.group
            ));
        }
        if self.http.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(format!(
                "http.listen: {:?} is not an address such as 127.0.0.1:8080",
                self.http.listen
            ));
        }
        if !self.http.advertise_url.is_empty() && !self.http.advertise_url.starts_with("http") {
            problems.push("http.advertise_url: must start with http:// or https://".to_owned());
        }
        if self.http.max_json_bytes == 0 {
            problems.push("http.max_json_bytes: must be above 0".to_owned());
        }
        if !self.redis.url.is_empty() && !self.redis.url.starts_with("redis") {
            problems.push(
                "redis.url: must start with redis:// or rediss:// (empty: embedded)".to_owned(),
            );
        }
        if !["everysec", "always"].contains(&self.redis.embedded_appendfsync.as_str()) {
            problems.push("redis.embedded_appendfsync: must be everysec or always".to_owned());
        }
        if self.redis.response_timeout_ms == 0 || self.redis.connect_timeout_ms == 0 {
            problems.push("redis: timeouts must be above 0 ms".to_owned());
        }
        let l = &self.leader;
        if l.renew_interval_ms == 0 || l.renew_interval_ms >= l.renew_deadline_ms {
            problems.push(format!(
                "leader.renew_interval_ms: {} must be above 0 and below leader.renew_deadline_ms ({})",
                l.renew_interval_ms, l.renew_deadline_ms
            ));
        }
        if l.renew_deadline_ms >= l.lease_ttl_ms {
            problems.push(format!(
                "leader.renew_deadline_ms: {} must be below leader.lease_ttl_ms ({}), so a leader steps down before its lease can expire",
                l.renew_deadline_ms, l.lease_ttl_ms
            ));
        }
        if self.media.max_file_bytes == 0 || self.media.scan_interval_ms == 0 {
            problems.push("media: max_file_bytes and scan_interval_ms must be above 0".to_owned());
        }
        if self.node.role == NodeRole::Slave {
            if self.upstream.master_urls.is_empty() {
                problems
                    .push("upstream.master_urls: a slave needs at least one master URL".to_owned());
            }
            if self.upstream.token.is_empty() {
                problems.push(
                    "upstream.token: a slave needs the peer token it presents to the master"
                        .to_owned(),
                );
            }
        }
        let all_tokens = [
            &self.auth.admin_tokens,
            &self.auth.operator_tokens,
            &self.auth.kiosk_tokens,
            &self.auth.display_tokens,
            &self.auth.peer_tokens,
        ];
        let mut seen = std::collections::HashSet::new();
        for token in all_tokens.into_iter().flatten() {
            if !seen.insert(token) {
                problems.push("auth: the same token is configured for two roles".to_owned());
                break;
            }
        }
        problems
    }

    /// The node id: configured, or host name and port.
    pub fn node_id(&self) -> String {
        if !self.node.id.is_empty() {
            return self.node.id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_lowercase())
            .filter(|h| Id::parse(h).is_ok())
            .unwrap_or_else(|| "node".to_owned());
        let port = self.http.listen.rsplit(':').next().unwrap_or("0");
        format!("{host}-{port}")
    }

    /// The group id, validated at load time.
    pub fn group(&self) -> Id {
        Id::parse(&self.node.group).expect("node.group is validated when settings load")
    }

    /// The resolved settings as TOML, with every token masked.
    pub fn printable(&self) -> String {
        let mut shown = self.clone();
        let mask = |tokens: &mut Vec<String>| {
            for t in tokens.iter_mut() {
                *t = "********".to_owned();
            }
        };
        mask(&mut shown.auth.admin_tokens);
        mask(&mut shown.auth.operator_tokens);
        mask(&mut shown.auth.kiosk_tokens);
        mask(&mut shown.auth.display_tokens);
        mask(&mut shown.auth.peer_tokens);
        if !shown.upstream.token.is_empty() {
            shown.upstream.token = "********".to_owned();
        }
        if let Some(at) = shown.redis.url.find('@') {
            // redis://user:password@host: keep the host, hide the credentials.
            shown.redis.url = format!("redis://********{}", &shown.redis.url[at..]);
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::load(None, &HashMap::new()).expect("defaults load");
        assert_eq!(s.leader.lease_ttl_ms, 3000);
        assert_eq!(s.node.role, NodeRole::Master);
        assert!(s.redis.url.is_empty());
    }

    #[test]
    fn environment_wins_over_file_and_lists_split_on_commas() {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        writeln!(
            file,
            "[node]\nid = \"from-file\"\ngroup = \"north\"\n[auth]\nadmin_tokens = [\"a1\"]\n[leader]\nlease_ttl_ms = 5000"
        )
        .expect("write");
        let s = Settings::load(
            Some(file.path()),
            &env(&[
                ("TURNUS__NODE__ID", "from-env"),
                ("TURNUS__AUTH__KIOSK_TOKENS", "k1, 12345 ,"),
                ("TURNUS__LEADER__RENEW_DEADLINE_MS", "2500"),
                ("UNRELATED", "x"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.node.id, "from-env");
        assert_eq!(s.node.group, "north");
        assert_eq!(s.auth.admin_tokens, ["a1"]);
        assert_eq!(s.auth.kiosk_tokens, ["k1", "12345"]);
        assert_eq!(s.leader.lease_ttl_ms, 5000);
        assert_eq!(s.leader.renew_deadline_ms, 2500);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = Settings::load(
            None,
            &env(&[
                ("TURNUS__NODE__ROLE", "boss"),
                ("TURNUS__HTTP__LISTEN", "nowhere"),
                ("TURNUS__LEADER__RENEW_DEADLINE_MS", "4000"),
                ("TURNUS__REDIS__COLOUR", "red"),
                ("TURNUS__BOGUS__X", "1"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        for key in [
            "node",
            "http.listen",
            "leader.renew_deadline_ms",
            "redis",
            "bogus",
        ] {
            assert!(text.contains(key), "{key} missing from:\n{text}");
        }
        assert!(err.0.len() >= 5, "{text}");
    }

    #[test]
    fn printing_masks_secrets() {
        let s = Settings::load(
            None,
            &env(&[
                ("TURNUS__AUTH__ADMIN_TOKENS", "supersecret"),
                ("TURNUS__REDIS__URL", "redis://user:pw@10.0.0.1:6379"),
            ]),
        )
        .expect("loads");
        let text = s.printable();
        assert!(
            !text.contains("supersecret") && !text.contains("pw@"),
            "{text}"
        );
        assert!(text.contains("10.0.0.1:6379"));
    }
}
