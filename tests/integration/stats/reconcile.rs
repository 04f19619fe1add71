//! Reconciliation after the master's store goes back in time, with real
//! processes (two master nodes, two slave nodes): the master group's
//! statistics keys of the slave's branch are rolled back to a snapshot
//! taken earlier (`DUMP`/`RESTORE`, as a restore from an older backup
//! would leave them) while every node keeps running.
//!
//! - With the outbox keeping acknowledged events (the default retention),
//!   the shipper follows the master's older watermark and refills it: the
//!   master's totals equal the slave's again, exactly.
//! - With no retention, the events are gone from the slave: the master
//!   records exactly how many it misses, says so in the summary
//!   (`stats-gap`) and its metric, and counts new events as before.

use serde_json::Value;
use turnus::domain::Id;
use turnus::store::keys;

use super::api::{get_json, totals};
use super::shipping::{cluster_backlog, setup, BranchTraffic, SLAVE_BRANCH, STATS_ENV};
use crate::slave::topology::{metric, Links, Topology, GROUP, WITHIN};
use crate::support::api::ApiClient;
use crate::support::eventually;

/// Every key of the branch on the master's Redis: (name, ms to live or 0,
/// `DUMP` payload). Taken while nothing ships but idle reports.
type Snapshot = Vec<(String, i64, Vec<u8>)>;

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the master's redis")
}

async fn branch_keys(conn: &mut redis::aio::MultiplexedConnection, branch: &Id) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("{}*", keys::branch_prefix(branch)))
        .query_async(conn)
        .await
        .expect("KEYS")
}

async fn snapshot(url: &str, branch: &Id) -> Snapshot {
    let mut conn = connect(url).await;
    let names = branch_keys(&mut conn, branch).await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for name in &names {
        pipe.cmd("PTTL").arg(name).cmd("DUMP").arg(name);
    }
    let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await.expect("DUMP");
    names
        .into_iter()
        .zip(replies.chunks(2))
        .map(|(name, pair)| {
            let ttl: i64 = redis::from_redis_value(pair[0].clone()).expect("PTTL");
            let dump: Vec<u8> = redis::from_redis_value(pair[1].clone()).expect("DUMP");
            (name, ttl.max(0), dump)
        })
        .collect()
}

/// Puts the branch's keys back as they were in `snapshot`, atomically.
async fn roll_back(url: &str, branch: &Id, snapshot: &Snapshot) {
    let mut conn = connect(url).await;
    let now = branch_keys(&mut conn, branch).await;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for name in &now {
        pipe.cmd("DEL").arg(name).ignore();
    }
    for (name, ttl, dump) in snapshot {
        pipe.cmd("RESTORE")
            .arg(name)
            .arg(ttl)
            .arg(dump.as_slice())
            .arg("REPLACE")
            .ignore();
    }
    let () = pipe.query_async(&mut conn).await.expect("RESTORE");
}

/// Events the master has applied for the branch (`stats-meta` `applied`).
async fn applied_on_master(url: &str, branch: &Id) -> i64 {
    let mut conn = connect(url).await;
    let applied: Option<i64> = redis::cmd("HGET")
        .arg(keys::branch_stats_meta(branch))
        .arg("applied")
        .query_async(&mut conn)
        .await
        .expect("HGET");
    applied.unwrap_or(0)
}

/// A branch's totals (issued, called, served, no_show, transferred).
type Totals = (i64, i64, i64, i64, i64);

/// `a + b - c`, figure by figure: figures are sums over events.
fn plus_minus(a: Totals, b: Totals, c: Totals) -> Totals {
    (
        a.0 + b.0 - c.0,
        a.1 + b.1 - c.1,
        a.2 + b.2 - c.2,
        a.3 + b.3 - c.3,
        a.4 + b.4 - c.4,
    )
}

/// Runs traffic on the slave nodes for `ops` operations and stops it; then
/// waits until the slave's own figures hold every acknowledged change
/// (`shipping` checks them against the clients' ledger) and, when
/// `shipped`, until the master's equal them and nothing is left to ship.
/// Returns the slave's figures.
async fn traffic_round(topology: &Topology, ops: u64, seed: u64, shipped: bool) -> Totals {
    let slaves: Vec<ApiClient> = topology.slaves.iter().map(|s| s.api().clone()).collect();
    let before = totals(&slaves[0], SLAVE_BRANCH).await;
    let traffic = BranchTraffic::start(SLAVE_BRANCH, &slaves, seed);
    traffic.wait_for(ops).await;
    let (_, failures) = traffic.finish().await;
    assert!(failures.is_empty(), "traffic failures: {failures:?}");
    let slave = slaves[0].clone();
    let master = topology.master().clone();
    // The slave's figures are whole once its own outbox is applied
    // locally; they are then what the master must reach.
    eventually("the slave's figures to settle", WITHIN, || async {
        let first = totals(&slave, SLAVE_BRANCH).await;
        let settled = cluster_backlog(&slave).await == 0
            && (!shipped || totals(&master, SLAVE_BRANCH).await == first)
            && totals(&slave, SLAVE_BRANCH).await == first;
        settled.then_some(())
    })
    .await;
    let now = totals(&slave, SLAVE_BRANCH).await;
    assert_ne!(now, before, "the traffic changed nothing");
    now
}

async fn start(retention_s: &str) -> (Topology, Id) {
    let mut env = STATS_ENV.to_vec();
    env.push(("TURNUS__STATS__OUTBOX_RETENTION_S", retention_s));
    let topology = Topology::start_with(Links::Direct, &env).await;
    let version = setup(topology.master(), SLAVE_BRANCH, Some(GROUP)).await;
    topology.wait_slaves_at(version).await;
    (topology, Id::parse(SLAVE_BRANCH).expect("branch id"))
}

#[tokio::test]
async fn a_master_restored_from_an_older_backup_is_refilled_exactly() {
    let (topology, branch) = start("172800").await;
    let url = topology.master_redis.url();
    let before = traffic_round(&topology, 60, 21, true).await;
    let backup = snapshot(&url, &branch).await;
    let all = traffic_round(&topology, 80, 22, true).await;

    assert_ne!(all, before);

    // The master's figures go back to the backup while tickets go on at
    // the slave: its next batches continue from the master's old
    // acknowledgement and must not be applied over the hole; the shipper
    // goes back to the master's watermark and sends the events again.
    let slaves: Vec<ApiClient> = topology.slaves.iter().map(|s| s.api().clone()).collect();
    let traffic = BranchTraffic::start(SLAVE_BRANCH, &slaves, 23);
    traffic.wait_for(10).await;
    roll_back(&url, &branch, &backup).await;
    traffic.wait_for(40).await;
    let (_, failures) = traffic.finish().await;
    assert!(failures.is_empty(), "traffic failures: {failures:?}");
    let master = topology.master().clone();
    let slave = slaves[0].clone();
    eventually(
        "the master's figures to equal the slave's again",
        WITHIN,
        || async {
            let want = totals(&slave, SLAVE_BRANCH).await;
            (cluster_backlog(&slave).await == 0 && totals(&master, SLAVE_BRANCH).await == want)
                .then_some(())
        },
    )
    .await;
    // And it goes on: new events are counted once.
    traffic_round(&topology, 30, 24, true).await;
    let summary = get_json(&master, "/api/v1/stats/summary").await;
    assert!(
        !summary.to_string().contains("stats-gap"),
        "nothing was lost: {summary}"
    );
}

#[tokio::test]
async fn events_the_slave_no_longer_holds_are_reported_as_lost() {
    let (topology, branch) = start("0").await;
    let url = topology.master_redis.url();
    let before = traffic_round(&topology, 40, 31, true).await;
    let backup = snapshot(&url, &branch).await;
    let counted_then = applied_on_master(&url, &branch).await;
    let all = traffic_round(&topology, 60, 32, true).await;
    let counted_later = applied_on_master(&url, &branch).await;
    let missing = counted_later - counted_then;
    assert!(missing > 0);
    // No retention: once acknowledged and applied locally, the outbox is
    // trimmed empty.
    let slave = topology.slaves[0].api().clone();
    eventually("the slave's outbox to be trimmed", WITHIN, || async {
        let text = slave.metrics().await?;
        let line = text
            .lines()
            .find(|l| l.starts_with("turnus_outbox_length{"))?;
        line.ends_with(" 0").then_some(())
    })
    .await;

    roll_back(&url, &branch, &backup).await;
    let master = topology.master().clone();
    let gap = eventually("the summary to report the gap", WITHIN, || async {
        let summary = get_json(&master, "/api/v1/stats/summary").await;
        let line = summary["branches"]
            .as_array()?
            .iter()
            .find(|b| b["branch"] == SLAVE_BRANCH)?
            .clone();
        line["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["kind"] == "stats-gap")
            .cloned()
    })
    .await;
    let message = gap["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{missing} ticket events")),
        "expected {missing} lost events: {gap}"
    );
    let mut lost_metric = 0.0;
    for node in &topology.masters {
        lost_metric += metric(node.api(), "turnus_stats_events_lost_total")
            .await
            .unwrap_or(0.0);
    }
    assert_eq!(
        lost_metric, missing as f64,
        "reported once, in the metric too"
    );
    // The master keeps what the backup had, and counts what comes next.
    assert_eq!(totals(&master, SLAVE_BRANCH).await, before);
    traffic_round(&topology, 30, 33, false).await;
    eventually("new events to be counted on the master", WITHIN, || async {
        let later = totals(&slave, SLAVE_BRANCH).await;
        (totals(&master, SLAVE_BRANCH).await == plus_minus(before, later, all)).then_some(())
    })
    .await;
    let again = get_json(&master, "/api/v1/stats/summary").await;
    let still: Value = again["branches"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["branch"] == SLAVE_BRANCH))
        .cloned()
        .unwrap_or_default();
    assert!(
        still
            .to_string()
            .contains(&format!("{missing} ticket events")),
        "the loss is recorded once, not again: {still}"
    );
}
