//! Typed node configuration: built-in defaults < a TOML file (`--config`) <
//! `TURNUS__<SECTION>__<KEY>` environment variables.
//!
//! Settings are loaded once in `main` and passed down; nothing reads them
//! from a global, so a test builds its own. Loading reports every problem it
//! finds at once, each with its full key, the value given and what is
//! allowed (`check.rs`). Secrets are [`Secret`] / [`SecretUrl`] values that
//! mask themselves wherever they are printed (`secret.rs`).

mod check;
pub mod secret;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::domain::Id;
pub use secret::{mask_url, Secret, SecretUrl};

/// The whole node configuration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    pub node: NodeSettings,
    pub http: HttpSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub upstream: UpstreamSettings,
    pub leader: LeaderSettings,
    pub stats: StatsSettings,
    pub media: MediaSettings,
}

/// `master` holds the configuration and accepts administration; `slave`
/// serves branches from a mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum NodeRole {
    #[default]
    Master,
    Slave,
}

impl TryFrom<String> for NodeRole {
    type Error = String;

    /// Parsed by hand so a wrong value is reported with the allowed ones.
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "master" => Ok(NodeRole::Master),
            "slave" => Ok(NodeRole::Slave),
            other => Err(format!("{other:?} is not a role; allowed: master, slave")),
        }
    }
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
    /// A ticket or counter request older than this when its turn comes is
    /// refused with 503 instead of performed (its client has given up).
    pub request_deadline_ms: u64,
    /// A request body must have arrived within this time, plus one second
    /// for every `body_min_bytes_per_s` bytes received (so large uploads at
    /// a fair rate go on, a trickle does not); else 408.
    pub body_timeout_ms: u64,
    pub body_min_bytes_per_s: u64,
    /// Interval of the comment line on event streams; a client that has gone
    /// is noticed at the second one written after it left.
    pub sse_heartbeat_ms: u64,
    /// Event streams one token may hold open at once; more get 429.
    pub max_streams_per_token: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: "127.0.0.1:8080".to_owned(),
            advertise_url: String::new(),
            workers: 0,
            max_json_bytes: 64 * 1024,
            request_deadline_ms: 3_000,
            body_timeout_ms: 10_000,
            body_min_bytes_per_s: 4_096,
            sse_heartbeat_ms: 2_000,
            max_streams_per_token: 200,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// The group's Redis; empty starts the embedded default.
    pub url: SecretUrl,
    /// The program the embedded default runs.
    pub embedded_binary: String,
    /// `appendfsync` of the embedded Redis: `everysec` (an acknowledged
    /// ticket survives a crash of the node or of Redis; an OS crash may lose
    /// the last second) or `always`.
    pub embedded_appendfsync: String,
    /// Longest wait for one Redis reply before the request fails with 503.
    pub response_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Redis Sentinel addresses (`host:port`), instead of `url`.
    #[serde(deserialize_with = "string_list")]
    pub sentinels: Vec<String>,
    /// The master's name the sentinels monitor.
    pub master_name: String,
    /// How often the sentinels are asked where the master is, besides at
    /// once when a request met `READONLY` or a lost connection.
    pub sentinel_poll_ms: u64,
    /// The sentinels' `requirepass`, when they have one.
    pub sentinel_password: Secret,
    /// With `sentinels`: the password of the Redis servers they name (with
    /// `url`, the password goes in the URL).
    pub password: Secret,
    /// With `sentinels`: speak TLS to them and to the masters they name
    /// (with `url`, a `rediss://` URL says so).
    pub sentinel_tls: bool,
    /// PEM file of the certificate authorities a TLS Redis or Sentinel is
    /// checked against; empty: the system's.
    pub tls_ca_file: String,
    /// When a ticket change is acknowledged.
    pub durability: Durability,
    /// `replicated`: replicas that must confirm a ticket change.
    pub min_replicas: u32,
    /// `replicated`: longest wait for them before answering 503.
    pub replication_timeout_ms: u64,
}

/// When a ticket change is acknowledged (API.md `redis.durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// As soon as the group's Redis has applied it.
    #[default]
    Async,
    /// Once `min_replicas` replicas have it too (`WAIT`), else 503
    /// `replication-timeout`.
    Replicated,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: SecretUrl::default(),
            embedded_binary: "redis-server".to_owned(),
            embedded_appendfsync: "everysec".to_owned(),
            response_timeout_ms: 2_000,
            connect_timeout_ms: 1_000,
            sentinels: Vec::new(),
            master_name: String::new(),
            sentinel_poll_ms: 200,
            sentinel_password: Secret::default(),
            password: Secret::default(),
            sentinel_tls: false,
            tls_ca_file: String::new(),
            durability: Durability::Async,
            min_replicas: 1,
            replication_timeout_ms: 500,
        }
    }
}

/// Accepted bearer tokens per role. Lists are TOML arrays or, from the
/// environment, comma-separated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(deserialize_with = "string_list")]
    pub admin_tokens: Vec<Secret>,
    #[serde(deserialize_with = "string_list")]
    pub operator_tokens: Vec<Secret>,
    #[serde(deserialize_with = "string_list")]
    pub kiosk_tokens: Vec<Secret>,
    #[serde(deserialize_with = "string_list")]
    pub display_tokens: Vec<Secret>,
    #[serde(deserialize_with = "string_list")]
    pub peer_tokens: Vec<Secret>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamSettings {
    #[serde(deserialize_with = "string_list")]
    pub master_urls: Vec<SecretUrl>,
    pub token: Secret,
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

/// Statistics shipping and aggregation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsSettings {
    /// Slave: largest batch shipped at once (and read from an outbox).
    pub batch_max_events: usize,
    /// How often an idle shipper or aggregator looks at the outboxes.
    pub poll_interval_ms: u64,
    /// Slave: the pace at which a backlog drains after an outage, so the
    /// master is not flooded (live events interleave with it, branch by
    /// branch).
    pub drain_events_per_s: u64,
    /// Slave: events the master acknowledged stay in the outbox this long,
    /// so a master restored from a backup this recent is refilled exactly.
    pub outbox_retention_s: u64,
}

impl StatsSettings {
    /// How long acknowledged events stay in an outbox: on a slave group the
    /// retention, on the master group none (its own aggregator is the only
    /// reader, and a restore rolls its outbox back with its rollups).
    pub fn outbox_retention_ms(&self, is_master: bool) -> u64 {
        if is_master {
            0
        } else {
            self.outbox_retention_s.saturating_mul(1000)
        }
    }
}

impl Default for StatsSettings {
    fn default() -> Self {
        StatsSettings {
            batch_max_events: 500,
            poll_interval_ms: 200,
            drain_events_per_s: 20_000,
            outbox_retention_s: 48 * 3600,
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
    /// Every node: while it handles 20 or more ticket changes a second, media
    /// bytes moving in or out of it (downloads, blobs served to other nodes,
    /// media files served) go no faster than this, in bytes per second (0:
    /// never slowed). Ticket changes come first.
    pub busy_bandwidth_bytes_per_s: u64,
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
            busy_bandwidth_bytes_per_s: 8 * 1024 * 1024,
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

/// A list given as an array or as one comma-separated string.
fn string_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: From<String>,
{
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
        .map(T::from)
        .collect())
}

/// Every problem found while loading, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct SettingsError(pub Vec<String>);

impl Settings {
    /// Loads defaults, then `file` (if any), then the `TURNUS__` variables
    /// of `env`; logs a warning for each variable it cannot place.
    pub fn load(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Settings, SettingsError> {
        let (settings, warnings) = Settings::load_with_warnings(file, env)?;
        for warning in warnings {
            tracing::warn!("configuration: {warning}");
        }
        Ok(settings)
    }

    /// [`load`](Self::load), returning the warnings instead of logging them.
    pub fn load_with_warnings(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<(Settings, Vec<String>), SettingsError> {
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
        problems.extend(check::unknown_sections(&raw));
        let settings = Settings {
            node: check::section(&raw, "node", &mut problems),
            http: check::section(&raw, "http", &mut problems),
            redis: check::section(&raw, "redis", &mut problems),
            auth: check::section(&raw, "auth", &mut problems),
            upstream: check::section(&raw, "upstream", &mut problems),
            leader: check::section(&raw, "leader", &mut problems),
            stats: check::section(&raw, "stats", &mut problems),
            media: check::section(&raw, "media", &mut problems),
        };
        problems.extend(check::problems(&settings));
        if problems.is_empty() {
            Ok((settings, check::unread_variables(env)))
        } else {
            Err(SettingsError(problems))
        }
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

    /// The resolved settings as TOML; tokens and URL credentials mask
    /// themselves when serialised.
    pub fn printable(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"))
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
        let exposed = |tokens: &[Secret]| {
            tokens
                .iter()
                .map(|t| t.expose().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(exposed(&s.auth.admin_tokens), ["a1"]);
        assert_eq!(exposed(&s.auth.kiosk_tokens), ["k1", "12345"]);
        assert_eq!(s.leader.lease_ttl_ms, 5000);
        assert_eq!(s.leader.renew_deadline_ms, 2500);
    }

    #[test]
    fn every_problem_is_reported_with_its_full_key_value_and_what_is_allowed() {
        let err = Settings::load(
            None,
            &env(&[
                ("TURNUS__NODE__ROLE", "boss"),
                ("TURNUS__HTTP__LISTEN", "nowhere"),
                ("TURNUS__LEADER__LEASE_TTL_MS", "-5"),
                ("TURNUS__LEADER__RENEW_INTERVAL_MS", "soon"),
                ("TURNUS__REDIS__COLOUR", "red"),
                ("TURNUS__BOGUS__X", "1"),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        for expected in [
            r#"node.role = "boss": "boss" is not a role; allowed: master, slave"#,
            r#"http.listen = "nowhere": not an address"#,
            r#"leader.lease_ttl_ms = "-5": got string "-5"; allowed: a whole number"#,
            r#"leader.renew_interval_ms = "soon": got string "soon""#,
            "redis.colour: unknown field `colour`, expected one of `url`",
            "bogus: unknown section; allowed: node, http",
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert_eq!(err.0.len(), 6, "{text}");
    }

    #[test]
    fn malformed_urls_are_refused_with_credentials_masked() {
        let err = Settings::load(
            None,
            &env(&[
                ("TURNUS__REDIS__URL", "redisx://u:hidden@h:1"),
                ("TURNUS__HTTP__ADVERTISE_URL", "httpfoo"),
                (
                    "TURNUS__UPSTREAM__MASTER_URLS",
                    "http://m:1,localhost:19201,https://",
                ),
            ]),
        )
        .expect_err("invalid");
        let text = err.to_string();
        for expected in [
            r#"redis.url = "redisx://********@h:1": scheme "redisx" is not allowed; allowed: redis://"#,
            r#"http.advertise_url = "httpfoo": not a URL"#,
            r#"upstream.master_urls[1] = "localhost:19201": scheme "localhost" is not allowed"#,
            r#"upstream.master_urls[2] = "https://""#,
        ] {
            assert!(
                text.contains(expected),
                "{expected:?} missing from:\n{text}"
            );
        }
        assert!(!text.contains("hidden") && !text.contains("[0]"), "{text}");
        for good in ["redis://h:1", "rediss://u:p@h:6380/2"] {
            let ok = Settings::load(None, &env(&[("TURNUS__REDIS__URL", good)]));
            assert!(ok.is_ok(), "{good}: {ok:?}");
        }
    }

    #[test]
    fn variables_that_look_meant_for_turnus_but_are_not_read_are_warned_about() {
        let (_, warnings) = Settings::load_with_warnings(
            None,
            &env(&[
                ("TURNUS_REDIS__URL", "redis://h:1"),
                ("turnus_node__id", "x"),
                ("turnus__node__group", "read-as-well"),
                ("TURNUS__NODE__ID", "fine"),
                ("PATH", "/bin"),
            ]),
        )
        .expect("loads");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("TURNUS_REDIS__URL is not read"));
        assert!(warnings[1].starts_with("turnus_node__id is not read"));
    }

    #[test]
    fn redis_passwords_are_for_sentinel_setups_and_never_printed() {
        let err = Settings::load(
            None,
            &env(&[
                ("TURNUS__REDIS__URL", "redis://h:1"),
                ("TURNUS__REDIS__SENTINEL_PASSWORD", "sentinel-secret"),
            ]),
        )
        .expect_err("a sentinel password without sentinels");
        assert!(
            err.to_string()
                .contains("redis.sentinel_password: only used with redis.sentinels"),
            "{err}"
        );
        let err = Settings::load(None, &env(&[("TURNUS__REDIS__SENTINEL_TLS", "true")]))
            .expect_err("sentinel TLS without sentinels");
        assert!(
            err.to_string().contains("redis.sentinel_tls: only used"),
            "{err}"
        );
        let s = Settings::load(
            None,
            &env(&[
                ("TURNUS__REDIS__SENTINELS", "s1:26379,s2:26379,s3:26379"),
                ("TURNUS__REDIS__MASTER_NAME", "turnus"),
                ("TURNUS__REDIS__SENTINEL_PASSWORD", "sentinel-secret"),
                ("TURNUS__REDIS__PASSWORD", "redis-secret"),
            ]),
        )
        .expect("loads");
        assert_eq!(s.redis.sentinel_password.expose(), "sentinel-secret");
        for text in [s.printable(), format!("{s:?}")] {
            assert!(!text.contains("-secret"), "{text}");
        }
    }

    #[test]
    fn printing_and_debug_mask_secrets_and_keep_the_scheme() {
        let s = Settings::load(
            None,
            &env(&[
                ("TURNUS__AUTH__ADMIN_TOKENS", "supersecret"),
                ("TURNUS__REDIS__URL", "rediss://user:pw@10.0.0.1:6379"),
                ("TURNUS__NODE__ROLE", "slave"),
                ("TURNUS__UPSTREAM__MASTER_URLS", "http://peer:pw2@m1:8080"),
                ("TURNUS__UPSTREAM__TOKEN", "peersecret"),
            ]),
        )
        .expect("loads");
        for text in [s.printable(), format!("{s:?}")] {
            for secret in ["supersecret", "pw@", "pw2", "peersecret"] {
                assert!(!text.contains(secret), "{secret} in:\n{text}");
            }
            assert!(text.contains("rediss://********@10.0.0.1:6379"), "{text}");
            assert!(text.contains("http://********@m1:8080"), "{text}");
        }
    }
}
