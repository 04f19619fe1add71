//! A group of three real nodes on one Redis (DESIGN.md §4): exactly one
//! leader that every node reports alike; a replacement when the leader is
//! killed, paused, stopped or cut off from Redis, without losing or
//! duplicating tickets; fencing of a leader that comes back; and the
//! end-of-day close running exactly once. This file owns what the families
//! share (node names, deadlines, waiting for a follower, reading the log);
//! the tests live in one file per family:
//!
//! - `election`: one leader reported alike by every node, and a SIGTERMed
//!   leader handing the lease over at once;
//! - `failover`: a SIGKILLed leader replaced under traffic, no
//!   acknowledged ticket lost or doubled;
//! - `deposed`: a paused leader and a leader cut from Redis: fenced, and
//!   stepping down before its lease expires;
//! - `fences`: the stores' fences and the leader raising them;
//! - `close_day`: the end-of-day close, exactly once;
//! - `bench`: the ignored `failover_timing` benchmark
//!   (`scripts/bench-failover.sh`); the tests assert generous deadlines only.

mod bench;
mod close_day;
mod deposed;
mod election;
mod failover;
mod fences;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::support::cluster::reports_leading;
use crate::support::eventually;
use crate::support::process::NodeProcess;

const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
const LEADER_WITHIN: Duration = Duration::from_secs(15);
const BRANCH: &str = "main";

/// Polls `/metrics` of `node` until it reports `turnus_leader 0`.
async fn wait_follower(node: &NodeProcess, within: Duration) {
    let api = node.api();
    eventually(
        &format!("{} to report turnus_leader 0", node.id()),
        within,
        || async move { (reports_leading(api).await == Some(false)).then_some(()) },
    )
    .await;
}

/// The timestamp of the first line of a node log that contains `needle`.
fn logged_at(log: &str, needle: &str) -> Option<DateTime<Utc>> {
    let line = log.lines().find(|line| line.contains(needle))?;
    let stamp = line.split_whitespace().next()?;
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
