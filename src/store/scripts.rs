//! The Lua script library and the one builder that assembles every script.
//!
//! A script is its body (`lua/<name>.lua`) after a fixed sequence of parts,
//! each defining the names it uses and nothing else:
//!
//! 1. constants, generated here from the Rust constants that define them
//!    (display length, TTLs, the moving-average weight), so no number is
//!    written twice;
//! 2. the clock, `lua/lib/clock.lua`: `now()` and `now_ms()` from Redis
//!    `TIME` (tests may swap in `lib/clock_injected.lua`, see [`Clock`]);
//! 3. the scope prelude: `lib/group.lua` (defines `G`, the group prefix) or
//!    `lib/branch.lua` (defines `P`, the branch prefix, and the ticket
//!    helpers);
//! 4. for leader-only writes, the fence: `lib/fence_group.lua` or
//!    `lib/fence_branch.lua`, which takes the epoch off the front of `ARGV`,
//!    so every body reads its own arguments from `ARGV[1]`;
//! 5. the body; for ticket and counter operations wrapped by
//!    `lib/once.lua` / `lib/once_end.lua` (the `Idempotency-Key`: the
//!    client's key and the request's fingerprint come off the front of
//!    `ARGV`, a repeated key returns the first reply).
//!
//! This module owns how scripts are put together; it must not run them
//! (that is the rest of `store`) nor hold business rules beyond handing the
//! constants over.

use redis::Script;

use crate::domain::estimate::EWMA_ALPHA;
use crate::domain::request::IDEMPOTENCY_TTL_S;
use crate::domain::ticket::DISPLAY_LENGTH;

/// How long a finished (served, no-show, closed) ticket stays readable.
pub const FINISHED_TICKET_TTL_S: u64 = 2 * 86_400;
/// How long a day's ticket sequence counter is kept after its first ticket:
/// long enough that no business day (even one spanning a DST change) outlives
/// its counter.
pub const SEQUENCE_TTL_S: u64 = 3 * 86_400;

/// Which keys a script works on, and so which prelude it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Group,
    Branch,
}

/// Whether a script is a leader-only write, checked against the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fencing {
    Open,
    Fenced,
}

/// Where "now" comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Redis `TIME`: what every node runs.
    Redis,
    /// For tests only: "now" in microseconds since the Unix epoch is one
    /// more argument after the script's own, which the clock removes before
    /// the body runs. Everything but the clock is the production text.
    Injected,
}

/// Whether a repeated `Idempotency-Key` returns the first reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Reads, group scripts, leader-only writes: no key.
    None,
    /// Ticket and counter operations (API.md "Retries").
    Once,
}

/// One script: its name (for `turnus script NAME`), scope, fencing, body.
pub struct ScriptDef {
    pub name: &'static str,
    scope: Scope,
    fencing: Fencing,
    replay: Replay,
    body: &'static str,
}

macro_rules! script {
    ($name:literal, $scope:ident, $fencing:ident) => {
        script!($name, $scope, $fencing, None)
    };
    ($name:literal, $scope:ident, $fencing:ident, $replay:ident) => {
        ScriptDef {
            name: $name,
            scope: Scope::$scope,
            fencing: Fencing::$fencing,
            replay: Replay::$replay,
            body: include_str!(concat!("lua/", $name, ".lua")),
        }
    };
}

const ISSUE: ScriptDef = script!("issue", Branch, Open, Once);
const CALL: ScriptDef = script!("call", Branch, Open, Once);
const CALL_NUMBER: ScriptDef = script!("call_number", Branch, Open, Once);
const FINISH: ScriptDef = script!("finish", Branch, Open, Once);
const RECALL: ScriptDef = script!("recall", Branch, Open, Once);
const TRANSFER: ScriptDef = script!("transfer", Branch, Open, Once);
const TICKET: ScriptDef = script!("ticket", Branch, Open);
const QUEUES: ScriptDef = script!("queues", Branch, Open);
const DISPLAY: ScriptDef = script!("display", Branch, Open);
const CONFIG_PUT: ScriptDef = script!("config_put", Group, Open);
const CONFIG_LOAD: ScriptDef = script!("config_load", Group, Open);
const LEASE_ACQUIRE: ScriptDef = script!("lease_acquire", Group, Open);
const LEASE_RENEW: ScriptDef = script!("lease_renew", Group, Open);
const LEASE_RELEASE: ScriptDef = script!("lease_release", Group, Open);
const HEARTBEAT: ScriptDef = script!("heartbeat", Group, Open);
const LEAVE: ScriptDef = script!("leave", Group, Open);
const CLUSTER_STATE: ScriptDef = script!("cluster_state", Group, Open);
const FENCE_PROBE: ScriptDef = script!("fence_probe", Group, Fenced);
const RAISE_FENCE: ScriptDef = script!("raise_fence", Branch, Fenced);
const CLOSE_DAY: ScriptDef = script!("close_day", Branch, Fenced);
const MIRROR_APPLY: ScriptDef = script!("mirror_apply", Group, Fenced);
const UPSTREAM_STATUS: ScriptDef = script!("upstream_status", Group, Fenced);
const MEDIA_SWAP: ScriptDef = script!("media_swap", Group, Fenced);
const STORE_IDENTITY: ScriptDef = script!("store_identity", Group, Open);
const STATS_APPLY: ScriptDef = script!("stats_apply", Branch, Open);
const OUTBOX_TRIM: ScriptDef = script!("outbox_trim", Branch, Fenced);

/// Every script, for lookup by name.
const ALL: [&ScriptDef; 26] = [
    &ISSUE,
    &CALL,
    &CALL_NUMBER,
    &FINISH,
    &RECALL,
    &TRANSFER,
    &TICKET,
    &QUEUES,
    &DISPLAY,
    &CONFIG_PUT,
    &CONFIG_LOAD,
    &LEASE_ACQUIRE,
    &LEASE_RENEW,
    &LEASE_RELEASE,
    &HEARTBEAT,
    &LEAVE,
    &CLUSTER_STATE,
    &FENCE_PROBE,
    &RAISE_FENCE,
    &CLOSE_DAY,
    &MIRROR_APPLY,
    &UPSTREAM_STATUS,
    &MEDIA_SWAP,
    &STORE_IDENTITY,
    &STATS_APPLY,
    &OUTBOX_TRIM,
];

impl ScriptDef {
    /// The full text with the given clock.
    pub fn source(&self, clock: Clock) -> String {
        let clock = match clock {
            Clock::Redis => include_str!("lua/lib/clock.lua"),
            Clock::Injected => include_str!("lua/lib/clock_injected.lua"),
        };
        let scope = match self.scope {
            Scope::Group => include_str!("lua/lib/group.lua"),
            Scope::Branch => include_str!("lua/lib/branch.lua"),
        };
        let fence = match (self.fencing, self.scope) {
            (Fencing::Open, _) => "",
            (Fencing::Fenced, Scope::Group) => include_str!("lua/lib/fence_group.lua"),
            (Fencing::Fenced, Scope::Branch) => include_str!("lua/lib/fence_branch.lua"),
        };
        let body = match self.replay {
            Replay::None => self.body.to_owned(),
            Replay::Once => format!(
                "{}\nlocal function once_body()\n{}\nend\n{}",
                include_str!("lua/lib/once.lua"),
                self.body,
                include_str!("lua/lib/once_end.lua"),
            ),
        };
        format!(
            "-- turnus script '{name}' (assembled by src/store/scripts.rs)\n{constants}\n{clock}\n{scope}\n{fence}\n{body}",
            name = self.name,
            constants = constants(),
        )
    }

    /// Whether the script takes the client's `Idempotency-Key` and the
    /// request's fingerprint as its first two arguments (`lib/once.lua`).
    pub fn takes_idempotency_key(&self) -> bool {
        self.replay == Replay::Once
    }

    fn script(&self) -> Script {
        Script::new(&self.source(Clock::Redis))
    }
}

/// The constants every script may use, from their Rust definitions.
fn constants() -> String {
    format!(
        "local DISPLAY_LENGTH = {DISPLAY_LENGTH}\n\
         local FINISHED_TTL_S = {FINISHED_TICKET_TTL_S}\n\
         local SEQUENCE_TTL_S = {SEQUENCE_TTL_S}\n\
         local EWMA_ALPHA = {EWMA_ALPHA:?}\n\
         local ONCE_TTL_S = {IDEMPOTENCY_TTL_S}\n"
    )
}

/// A script by name (`turnus script NAME`; the differential tests).
pub fn by_name(name: &str) -> Option<&'static ScriptDef> {
    ALL.into_iter().find(|def| def.name == name)
}

/// The production text of a script by name, for `turnus script NAME` (the
/// benchmark loads the issue script into `redis-benchmark` with it).
pub fn script_source(name: &str) -> Option<String> {
    by_name(name).map(|def| def.source(Clock::Redis))
}

/// The scripts, hashed once at start-up and run by EVALSHA.
pub(crate) struct Scripts {
    pub issue: Script,
    pub call: Script,
    pub call_number: Script,
    pub finish: Script,
    pub recall: Script,
    pub transfer: Script,
    pub ticket: Script,
    pub queues: Script,
    pub display: Script,
    pub config_put: Script,
    pub config_load: Script,
    pub lease_acquire: Script,
    pub lease_renew: Script,
    pub lease_release: Script,
    pub heartbeat: Script,
    pub leave: Script,
    pub cluster_state: Script,
    pub fence_probe: Script,
    pub raise_fence: Script,
    pub close_day: Script,
    pub mirror_apply: Script,
    pub upstream_status: Script,
    pub media_swap: Script,
    pub store_identity: Script,
    pub stats_apply: Script,
    pub outbox_trim: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        Scripts {
            issue: ISSUE.script(),
            call: CALL.script(),
            call_number: CALL_NUMBER.script(),
            finish: FINISH.script(),
            recall: RECALL.script(),
            transfer: TRANSFER.script(),
            ticket: TICKET.script(),
            queues: QUEUES.script(),
            display: DISPLAY.script(),
            config_put: CONFIG_PUT.script(),
            config_load: CONFIG_LOAD.script(),
            lease_acquire: LEASE_ACQUIRE.script(),
            lease_renew: LEASE_RENEW.script(),
            lease_release: LEASE_RELEASE.script(),
            heartbeat: HEARTBEAT.script(),
            leave: LEAVE.script(),
            cluster_state: CLUSTER_STATE.script(),
            fence_probe: FENCE_PROBE.script(),
            raise_fence: RAISE_FENCE.script(),
            close_day: CLOSE_DAY.script(),
            mirror_apply: MIRROR_APPLY.script(),
            upstream_status: UPSTREAM_STATUS.script(),
            media_swap: MEDIA_SWAP.script(),
            store_identity: STORE_IDENTITY.script(),
            stats_apply: STATS_APPLY.script(),
            outbox_trim: OUTBOX_TRIM.script(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let names: std::collections::HashSet<&str> = ALL.iter().map(|d| d.name).collect();
        assert_eq!(names.len(), ALL.len(), "a name used twice");
        for def in ALL {
            assert_eq!(by_name(def.name).map(|d| d.body), Some(def.body));
        }
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn the_injected_clock_changes_only_the_clock() {
        for def in ALL {
            let real = def.source(Clock::Redis);
            let injected = def.source(Clock::Injected);
            let strip = |text: &str, clock: &str| text.replacen(clock, "", 1);
            assert_eq!(
                strip(&real, include_str!("lua/lib/clock.lua")),
                strip(&injected, include_str!("lua/lib/clock_injected.lua")),
                "{}",
                def.name
            );
        }
    }

    #[test]
    fn constants_come_from_rust() {
        let text = ISSUE.source(Clock::Redis);
        assert!(text.contains("local DISPLAY_LENGTH = 10\n"), "{text}");
        assert!(text.contains("local EWMA_ALPHA = 0.2\n"), "{text}");
    }
}
