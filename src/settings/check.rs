//! Checking a configuration as it loads: each key deserialised on its own
//! path so a problem names the full key (`leader.lease_ttl_ms`), the value
//! given and what is allowed; cross-key rules; URLs; environment variables
//! that look meant for turnus but are not read.
//!
//! This module only finds problems; `mod.rs` decides what a problem means
//! (every one is reported, then the node refuses to start).

use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;

use super::{mask_url, Durability, NodeRole, SecretUrl, Settings};
use crate::domain::Id;

const SECTIONS: [&str; 8] = [
    "node", "http", "redis", "auth", "upstream", "leader", "stats", "media",
];
/// Longest outbox retention: a month of a busy branch's events (about
/// 1,000 tickets a day, 720 bytes each) is about 22 MB.
const MAX_OUTBOX_RETENTION_S: u64 = 30 * 86_400;
const ID_RULE: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// Top-level keys that are no section.
pub(super) fn unknown_sections(raw: &config::Config) -> Vec<String> {
    let Ok(table) = raw
        .clone()
        .try_deserialize::<HashMap<String, config::Value>>()
    else {
        return Vec::new();
    };
    let mut unknown: Vec<String> = table
        .keys()
        .filter(|key| !SECTIONS.contains(&key.as_str()))
        .map(|key| format!("{key}: unknown section; allowed: {}", SECTIONS.join(", ")))
        .collect();
    unknown.sort();
    unknown
}

/// Deserialises section `name`; every key that does not fit adds one
/// problem and is then left at its default, so the next one is found too.
pub(super) fn section<T: DeserializeOwned + Default>(
    raw: &config::Config,
    name: &str,
    problems: &mut Vec<String>,
) -> T {
    let mut table = match raw.get::<config::Map<String, config::Value>>(name) {
        Ok(table) => table,
        Err(config::ConfigError::NotFound(_)) => return T::default(),
        Err(e) => {
            problems.push(format!("{name}: must be a section of keys ({e})"));
            return T::default();
        }
    };
    // One pass per bad key; the table shrinks each time, so this ends.
    loop {
        let value = config::Value::new(None, table.clone());
        let error = match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(section) => return section,
            Err(error) => error,
        };
        let path = error.path().to_string();
        let key = path.split(['.', '[']).next().unwrap_or_default().to_owned();
        let given = table.get(&key).map(shown_value);
        problems.push(describe(name, &path, given, error.inner()));
        if table.remove(&key).is_none() {
            return T::default();
        }
    }
}

/// A value as the operator wrote it; URLs with credentials masked.
fn shown_value(value: &config::Value) -> String {
    let text = value.to_string();
    if text.contains("://") {
        format!("{:?}", mask_url(&text))
    } else {
        format!("{text:?}")
    }
}

fn describe(
    section: &str,
    path: &str,
    given: Option<String>,
    error: &config::ConfigError,
) -> String {
    let reason = match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => {
            // Every number in these settings is a count or a duration, so
            // "an integer" means a whole number from 0 here.
            let expected = expected.replace("an integer", "a whole number from 0");
            format!("got {unexpected}; allowed: {expected}")
        }
        other => {
            // Messages made by our own parsers end in " for key `x`": the
            // full key starts the line already.
            let text = other.to_string();
            match text.find(" for key `") {
                Some(at) => text[..at].to_owned(),
                None => text,
            }
        }
    };
    match (path, given) {
        ("." | "?", _) => format!("{section}: {reason}"),
        (_, Some(value)) if !reason.starts_with("unknown field") => {
            format!("{section}.{path} = {value}: {reason}")
        }
        _ => format!("{section}.{path}: {reason}"),
    }
}

/// Environment variables that look meant for turnus but are not read:
/// `TURNUS_X` with one underscore after the prefix (the prefix itself is
/// matched in any case, as the `config` crate does).
pub(super) fn unread_variables(env: &HashMap<String, String>) -> Vec<String> {
    let mut unread: Vec<String> = env
        .keys()
        .filter(|name| {
            let upper = name.to_ascii_uppercase();
            upper.starts_with("TURNUS") && !upper.starts_with("TURNUS__")
        })
        .map(|name| {
            format!("{name} is not read: settings come from variables named TURNUS__<SECTION>__<KEY>, for example TURNUS__REDIS__URL")
        })
        .collect();
    unread.sort();
    unread
}

/// Checks of values and of rules across keys.
pub(super) fn problems(settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    let (node, http, redis, leader) = (
        &settings.node,
        &settings.http,
        &settings.redis,
        &settings.leader,
    );
    if !node.id.is_empty() && Id::parse(&node.id).is_err() {
        problems.push(format!("node.id = {:?}: must match {ID_RULE}", node.id));
    }
    if Id::parse(&node.group).is_err() {
        problems.push(format!(
            "node.group = {:?}: must match {ID_RULE}",
            node.group
        ));
    }
    if http.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(format!(
            "http.listen = {:?}: not an address; allowed: IP:port such as 127.0.0.1:8080 or 0.0.0.0:8080",
            http.listen
        ));
    }
    if !http.advertise_url.is_empty() {
        let url = SecretUrl::new(http.advertise_url.clone());
        problems.extend(url_problem("http.advertise_url", &url, &["http", "https"]));
    }
    for (name, value) in [
        ("http.max_json_bytes", http.max_json_bytes as u64),
        ("http.body_timeout_ms", http.body_timeout_ms),
        ("http.body_min_bytes_per_s", http.body_min_bytes_per_s),
        ("http.sse_heartbeat_ms", http.sse_heartbeat_ms),
        (
            "http.max_streams_per_token",
            http.max_streams_per_token as u64,
        ),
        ("http.request_deadline_ms", http.request_deadline_ms),
        ("redis.response_timeout_ms", redis.response_timeout_ms),
        ("redis.connect_timeout_ms", redis.connect_timeout_ms),
        ("redis.sentinel_poll_ms", redis.sentinel_poll_ms),
    ] {
        if value == 0 {
            problems.push(format!("{name} = 0: must be above 0"));
        }
    }
    if !redis.url.is_empty() {
        problems.extend(url_problem("redis.url", &redis.url, &["redis", "rediss"]));
    }
    if redis.durability == Durability::Replicated
        && (redis.min_replicas == 0 || redis.replication_timeout_ms == 0)
    {
        problems.push(
            "redis.min_replicas and redis.replication_timeout_ms: must be above 0 with durability replicated".to_owned(),
        );
    }
    if redis.sentinels.is_empty() {
        for (name, value) in [
            ("redis.sentinel_password", &redis.sentinel_password),
            ("redis.password", &redis.password),
        ] {
            if !value.is_empty() {
                problems.push(format!(
                    "{name}: only used with redis.sentinels (with redis.url, put the password in the URL)"
                ));
            }
        }
        if redis.sentinel_tls {
            problems.push(
                "redis.sentinel_tls: only used with redis.sentinels (with redis.url, use rediss://)"
                    .to_owned(),
            );
        }
    } else {
        if !redis.url.is_empty() {
            problems.push("redis.sentinels and redis.url: set one of them, not both".to_owned());
        }
        if redis.master_name.is_empty() {
            problems.push("redis.master_name: needed with redis.sentinels".to_owned());
        }
    }
    if !["everysec", "always"].contains(&redis.embedded_appendfsync.as_str()) {
        problems.push(format!(
            "redis.embedded_appendfsync = {:?}: allowed: everysec, always",
            redis.embedded_appendfsync
        ));
    }
    if leader.renew_interval_ms == 0 || leader.renew_interval_ms >= leader.renew_deadline_ms {
        problems.push(format!(
            "leader.renew_interval_ms = {}: must be above 0 and below leader.renew_deadline_ms ({})",
            leader.renew_interval_ms, leader.renew_deadline_ms
        ));
    }
    if leader.renew_deadline_ms >= leader.lease_ttl_ms {
        problems.push(format!(
            "leader.renew_deadline_ms = {}: must be below leader.lease_ttl_ms ({}), so a leader steps down before its lease can expire",
            leader.renew_deadline_ms, leader.lease_ttl_ms
        ));
    }
    for (index, url) in settings.upstream.master_urls.iter().enumerate() {
        let key = format!("upstream.master_urls[{index}]");
        problems.extend(url_problem(&key, url, &["http", "https"]));
    }
    let stats = &settings.stats;
    if stats.batch_max_events == 0 || stats.batch_max_events > 10_000 {
        problems.push(format!(
            "stats.batch_max_events = {}: must be 1 to 10000",
            stats.batch_max_events
        ));
    }
    if stats.poll_interval_ms == 0 || stats.drain_events_per_s == 0 {
        problems.push("stats: poll_interval_ms and drain_events_per_s must be above 0".to_owned());
    }
    if stats.outbox_retention_s > MAX_OUTBOX_RETENTION_S {
        problems.push(format!(
            "stats.outbox_retention_s: {} is above {MAX_OUTBOX_RETENTION_S} (30 days)",
            stats.outbox_retention_s
        ));
    }
    if settings.media.max_file_bytes == 0 || settings.media.scan_interval_ms == 0 {
        problems.push("media: max_file_bytes and scan_interval_ms must be above 0".to_owned());
    }
    if node.role == NodeRole::Slave {
        if settings.upstream.master_urls.is_empty() {
            problems.push("upstream.master_urls: a slave needs at least one master URL".to_owned());
        }
        if settings.upstream.token.is_empty() {
            problems.push(
                "upstream.token: a slave needs the peer token it presents to the master".to_owned(),
            );
        }
    }
    let auth = &settings.auth;
    let all_tokens = [
        &auth.admin_tokens,
        &auth.operator_tokens,
        &auth.kiosk_tokens,
        &auth.display_tokens,
        &auth.peer_tokens,
    ];
    let mut seen = HashSet::new();
    for token in all_tokens.into_iter().flatten() {
        if !seen.insert(token.expose()) {
            problems.push("auth: the same token is configured for two roles".to_owned());
            break;
        }
    }
    problems
}

/// Why `url` is not an absolute URL with one of `schemes` and a host.
fn url_problem(key: &str, url: &SecretUrl, schemes: &[&str]) -> Option<String> {
    let allowed = schemes
        .iter()
        .map(|s| format!("{s}://host[:port]"))
        .collect::<Vec<_>>()
        .join(" or ");
    let reason = match url::Url::parse(url.expose()) {
        Err(e) => format!("not a URL ({e})"),
        Ok(parsed) if !schemes.contains(&parsed.scheme()) => {
            format!("scheme {:?} is not allowed", parsed.scheme())
        }
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => "no host".to_owned(),
        Ok(_) => return None,
    };
    Some(format!("{key} = \"{url}\": {reason}; allowed: {allowed}"))
}
