//! Redis key names. Nothing else builds them.
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
//! | `service-time` | hash | service → moving average service time (s) |
//! | `display` | list | the last ten called tickets |
//! | `outbox` | stream | every ticket event, for statistics |
//! | `events` | channel | the same events, for live displays |
//! | `queues` | set | services that ever had a queue (the day close walks them) |
//! | `fence` | string | highest leader epoch that wrote here (fenced writes) |
//! | `closed-day` | string | last business day closed |
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

use crate::domain::Id;

/// `turnus:b:{<branch>}:`
pub fn branch_prefix(branch: &Id) -> String {
    format!("turnus:b:{{{branch}}}:")
}

/// `turnus:g:{<group>}:`
pub fn group_prefix(group: &Id) -> String {
    format!("turnus:g:{{{group}}}:")
}

/// The slave group's wanted media manifest.
pub fn media_manifest(group: &Id) -> String {
    format!("{}media-manifest", group_prefix(group))
}

/// The pattern of every branch's event channel.
pub const BRANCH_EVENTS_PATTERN: &str = "turnus:b:*:events";

/// The group's configuration-change channel.
pub fn config_channel(group: &Id) -> String {
    format!("{}config", group_prefix(group))
}

/// The branch of an event channel name, if it is one.
pub fn branch_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("turnus:b:{")?.strip_suffix("}:events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_hash_tag() {
        let b = Id::parse("main").expect("id");
        assert_eq!(branch_prefix(&b), "turnus:b:{main}:");
        assert_eq!(branch_of_channel("turnus:b:{main}:events"), Some("main"));
        assert_eq!(branch_of_channel("turnus:g:{main}:config"), None);
        assert_eq!(config_channel(&b), "turnus:g:{main}:config");
    }
}
