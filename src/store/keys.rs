//! Redis key and channel names. Nothing else in Rust builds them (the Lua
//! scripts append the suffixes below to the prefix they get as `KEYS[1]`).
//!
//! Every key of a branch starts with `turnus:b:{<branch>}:` and every key of
//! a group with `turnus:g:{<group>}:`. The hash tag in braces puts all keys
//! a script touches into one slot, which keeps the layout valid on Redis
//! Cluster. Scripts receive the prefix as `KEYS[1]` and append the rest:
//!
//! | key (after the branch prefix) | type | what |
//! |---|---|---|
//! | `next-id` | string | ticket id counter |
//! | `seq:<service>:<day>` | string | the day's ticket sequence of a service |
//! | `t:<id>` | hash | one ticket |
//! | `q:<service>` | sorted set | waiting tickets, scored by issue time (µs) |
//! | `current` | hash | counter → ticket it is serving |
//! | `seen` | hash | counter → when it last called (ms) |
//! | `free` | hash | counter → when it last became free (ms; `domain::counter_idle`) |
//! | `waiting-since` | hash | service → since when its queue has been non-empty (ms) |
//! | `service-time` | hash | service → moving average service time (s) |
//! | `display` | list | the last ten called tickets |
//! | `outbox` | stream | every ticket event, for statistics |
//! | `events` | channel | the same events, for live displays |
//! | `queues` | set | services that ever had a queue (the day close walks them) |
//! | `fence` | string | highest leader epoch that wrote here (fenced writes) |
//! | `closed-day` | string | last business day closed |
//! | `outbox-source` | string | the outbox's source identity (random; re-created with its history) |
//! | `stats-wm` | hash | source → stream id of the last event applied to the rollups here |
//! | `stats-shipped` | hash | slave: source → stream id the master acknowledged last (its watermark then); `<source>|counted` → how many events of it the master had accounted for |
//! | `outbox-trimmed` | hash | `source`, `id` (last event trimmed from the outbox), `n` (how many) |
//! | `stats-counted` | hash | source → events accounted for here (applied, or declared lost) |
//! | `stats-epoch` | hash | master: group → highest epoch that shipped this branch's events |
//! | `stats-meta` | hash | `through_ms`, `last_report_ms`, `group`, `applied`, `lost` |
//! | `st:<day>` | hash | rollups of one business day (`domain::stats`), expiring after 410 days |
//! | `st-waiting:<service>` | sorted set | `<service>|<ticket>` of one service waiting now, scored by issue ms |
//! | `st-current` | hash | counter → its open transaction |
//! | `once:<key>` | hash | an `Idempotency-Key`'s request fingerprint and first reply, 24 h (`lua/lib/once.lua`) |
//!
//! | key (after the group prefix) | type | what |
//! |---|---|---|
//! | `branches` | hash | branch → configuration document (JSON) |
//! | `version` | string | configuration version |
//! | `config` | channel | published version after each change |
//! | `lease` | string | `<node>|<epoch>` of the leader, with a TTL |
//! | `epoch` | string | the fencing epoch, raised by each new leader |
//! | `members` | sorted set | node → last heartbeat (ms) |
//! | `member-addr` | hash | node → advertised URL |
//! | `upstream` | hash | slave: link to the master as the leader last saw it |
//! | `media-manifest` | string | slave: the media manifest the group wants (JSON) |
//! | `media-version` | string | slave: its version (sha256) |
//! | `store-id` | string | the store's identity, written once (`lua/store_identity.lua`) |
//! | `store-replaced` | set | identities an adoption replaced: nodes that knew one follow |
//! | `link-secret` | string | HMAC secret of customers' ticket links (hex; set once, NX) |

use crate::domain::stats::RollupKey;
use crate::domain::Id;

/// `turnus:b:{<branch>}:`, the prefix scripts on a branch get as `KEYS[1]`.
pub fn branch_prefix(branch: &Id) -> String {
    format!("turnus:b:{{{branch}}}:")
}

/// `turnus:g:{<group>}:`, the prefix scripts on a group get as `KEYS[1]`.
pub fn group_prefix(group: &Id) -> String {
    format!("turnus:g:{{{group}}}:")
}

/// The group's secret for customers' ticket links (`domain::link`).
pub fn group_link_secret(group: &Id) -> String {
    format!("{}link-secret", group_prefix(group))
}

/// The branch's outbox stream.
pub fn branch_outbox(branch: &Id) -> String {
    format!("{}outbox", branch_prefix(branch))
}

/// The outbox's source identity.
pub fn branch_outbox_source(branch: &Id) -> String {
    format!("{}outbox-source", branch_prefix(branch))
}

/// What a slave's outbox had trimmed away (`source`, `id`, `n`).
pub fn branch_outbox_trimmed(branch: &Id) -> String {
    format!("{}outbox-trimmed", branch_prefix(branch))
}

/// A slave's record of the master's acknowledgements per source.
pub fn branch_stats_shipped(branch: &Id) -> String {
    format!("{}stats-shipped", branch_prefix(branch))
}

/// One ticket's hash.
pub fn branch_ticket(branch: &Id, ticket: &str) -> String {
    format!("{}t:{ticket}", branch_prefix(branch))
}

/// Service → moving-average service time (s).
pub fn branch_service_times(branch: &Id) -> String {
    format!("{}service-time", branch_prefix(branch))
}

/// The branch's fence: the highest leader epoch that wrote there.
pub fn branch_fence(branch: &Id) -> String {
    format!("{}fence", branch_prefix(branch))
}

/// The last business day closed for the branch.
pub fn branch_closed_day(branch: &Id) -> String {
    format!("{}closed-day", branch_prefix(branch))
}

/// The group's configuration documents (branch → JSON).
pub fn group_branches(group: &Id) -> String {
    format!("{}branches", group_prefix(group))
}

/// The group's configuration version.
pub fn group_version(group: &Id) -> String {
    format!("{}version", group_prefix(group))
}

/// The group's leader lease.
pub fn group_lease(group: &Id) -> String {
    format!("{}lease", group_prefix(group))
}

/// The group's fencing epoch.
pub fn group_epoch(group: &Id) -> String {
    format!("{}epoch", group_prefix(group))
}

/// A slave group's record of its link to the master.
pub fn group_upstream(group: &Id) -> String {
    format!("{}upstream", group_prefix(group))
}

/// A slave group's wanted media manifest (JSON).
pub fn group_media_manifest(group: &Id) -> String {
    format!("{}media-manifest", group_prefix(group))
}

/// The version (sha256) of a slave group's wanted media manifest, written
/// with it by `media_swap.lua`: cheap to poll.
pub fn group_media_version(group: &Id) -> String {
    format!("{}media-version", group_prefix(group))
}

/// The channel a branch's ticket events are published on.
pub fn branch_events_channel(branch: &Id) -> String {
    format!("{}events", branch_prefix(branch))
}

/// The pattern matching every branch's event channel.
pub fn all_branch_events_pattern() -> String {
    "turnus:b:*:events".to_owned()
}

/// The suffix (after the branch prefix) of a statistics rollup key.
pub fn rollup_suffix(key: &RollupKey) -> String {
    match key {
        RollupKey::Day(day) => format!("st:{day}"),
        RollupKey::Waiting(service) => format!("st-waiting:{service}"),
        RollupKey::Current => "st-current".to_owned(),
    }
}

/// A branch's rollup key.
pub fn branch_rollup(branch: &Id, key: &RollupKey) -> String {
    format!("{}{}", branch_prefix(branch), rollup_suffix(key))
}

/// A branch's statistics bookkeeping (`stats-meta`).
pub fn branch_stats_meta(branch: &Id) -> String {
    format!("{}stats-meta", branch_prefix(branch))
}

/// The group's configuration-change channel.
pub fn config_channel(group: &Id) -> String {
    format!("{}config", group_prefix(group))
}

/// The branch of an event channel name, if it is one.
pub fn branch_of_events_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("turnus:b:{")?.strip_suffix("}:events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_tag() {
        let b = Id::parse("main").expect("id");
        assert_eq!(branch_prefix(&b), "turnus:b:{main}:");
        let channel = branch_events_channel(&b);
        assert_eq!(channel, "turnus:b:{main}:events");
        assert_eq!(branch_of_events_channel(&channel), Some("main"));
        assert_eq!(branch_of_events_channel(&config_channel(&b)), None);
        assert_eq!(config_channel(&b), "turnus:g:{main}:config");
        // The pattern matches every branch's channel (glob: '*' spans braces).
        let pattern = all_branch_events_pattern();
        let (head, tail) = pattern.split_once('*').expect("one wildcard");
        assert!(channel.starts_with(head) && channel.ends_with(tail));
    }
}
