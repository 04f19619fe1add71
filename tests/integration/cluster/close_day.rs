//! The end-of-day close across the group: at a branch's close time the
//! leader closes every ticket issued before it and still waiting or called,
//! exactly once (one `ticket-closed` event each), leaves served tickets and
//! later tickets alone, and a leader killed right at the close moment
//! neither doubles nor skips the close.
//!
//! The branches run on UTC with a close time a few seconds ahead, so these
//! tests wait for the next day when started in the last minute of one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde_json::json;

use crate::support::api::{ApiClient, Ticket};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::eventually;

use super::{LEADER_WITHIN, NODES};

const BRANCHES: [&str; 2] = ["north", "south"];
/// Setting up two branches and their tickets takes well under this.
const CLOSE_AHEAD: Duration = Duration::from_secs(4);

/// A whole-second UTC instant about `ahead` from now on today's date.
async fn close_moment_ahead(ahead: Duration) -> DateTime<Utc> {
    let left_today = 86_400 - u64::from(Utc::now().num_seconds_from_midnight());
    if left_today < 60 + ahead.as_secs() {
        // Waiting for a date, not for a condition: the close must not cross
        // midnight, where "today" would change under the test.
        tokio::time::sleep(Duration::from_secs(left_today + 2)).await;
    }
    let moment = Utc::now() + ahead;
    moment.with_nanosecond(0).expect("valid") + chrono::Duration::seconds(1)
}

fn day_number(moment: DateTime<Utc>) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (moment.date_naive() - epoch).num_days()
}

/// A branch on UTC that closes at `close_at`, with one service and two
/// counters, known to every node.
async fn setup_branch(cluster: &Cluster, branch: &str, close_at: DateTime<Utc>) {
    let api = cluster.nodes[0].api();
    let close_time = close_at.format("%H:%M:%S").to_string();
    api.put_branch(
        branch,
        json!({"name": format!("Branch {branch}"), "timezone": "UTC", "close_time": close_time}),
    )
    .await;
    let service = json!({"name": "Cash", "prefix": "C", "target_wait_s": 600});
    api.put_service(branch, "cash", service).await;
    api.put_counter(branch, "k1", &[("cash", 1)]).await;
    let version = api.put_counter(branch, "k2", &[("cash", 1)]).await["version"]
        .as_u64()
        .expect("version");
    for node in &cluster.nodes {
        wait_config(node.api(), branch, version).await;
    }
}

/// One branch's tickets before the close.
struct Plan {
    branch: &'static str,
    /// Waiting or called: the close must close each exactly once.
    open: Vec<Ticket>,
    /// Served before the close: untouched.
    served: Ticket,
}

/// Served, called and waiting tickets, through all three nodes.
async fn open_tickets(cluster: &Cluster, branch: &'static str) -> Plan {
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].api());
    let served = a.issue(branch, "cash").await;
    assert_eq!(
        b.call(branch, "k1").await.map(|t| t.id),
        Some(served.id.clone())
    );
    let served = b.counter_action(branch, "k1", "finish").await;
    assert_eq!(served.status, "served");
    let mut open = Vec::new();
    for api in [c, a, b, c] {
        open.push(api.issue(branch, "cash").await);
    }
    let called = a.call(branch, "k2").await.expect("a ticket waits");
    assert_eq!(called.id, open[0].id);
    Plan {
        branch,
        open,
        served,
    }
}

/// Sets up both branches and their tickets before a close `CLOSE_AHEAD`
/// from now; returns the plans and the close moment.
async fn prepare(cluster: &Cluster) -> (Vec<Plan>, DateTime<Utc>) {
    let close_at = close_moment_ahead(CLOSE_AHEAD).await;
    let mut plans = Vec::new();
    for branch in BRANCHES {
        setup_branch(cluster, branch, close_at).await;
        plans.push(open_tickets(cluster, branch).await);
    }
    let slack = close_at - Utc::now();
    assert!(
        slack > chrono::Duration::zero(),
        "setting up took past the close moment {close_at}: raise CLOSE_AHEAD"
    );
    println!(
        "set up {} ms before the close moment",
        slack.num_milliseconds()
    );
    (plans, close_at)
}

/// Waits until every branch records `day` as closed.
async fn wait_closed(cluster: &mut Cluster, day: i64, within: Duration) {
    let probe = &mut cluster.probe;
    eventually(&format!("day {day} closed in every branch"), within, || {
        let closed = BRANCHES.iter().all(|b| probe.closed_day(b) == Some(day));
        async move { closed.then_some(()) }
    })
    .await;
}

/// Every open ticket is closed with exactly one event; the served one is
/// untouched. Returns the `ts_ms` of each branch's close events.
async fn assert_closed_once(cluster: &mut Cluster, reader: &ApiClient, plans: &[Plan]) -> Vec<i64> {
    let mut stamps = Vec::new();
    for plan in plans {
        for ticket in &plan.open {
            let now = reader.ticket(plan.branch, &ticket.id).await;
            assert_eq!(now.status, "closed", "{} in {}", ticket.id, plan.branch);
        }
        let served = reader.ticket(plan.branch, &plan.served.id).await;
        assert_eq!(
            (served.status.as_str(), served.finished_at),
            ("served", plan.served.finished_at),
            "the served ticket changed"
        );

        let mut closed_events: HashMap<String, usize> = HashMap::new();
        for event in cluster.probe.outbox(plan.branch) {
            if event["type"] == "ticket-closed" {
                let id = event["id"].as_str().expect("event id").to_owned();
                assert_eq!(event["status"], "closed", "{event}");
                stamps.push(event["ts_ms"].as_i64().expect("ts_ms"));
                *closed_events.entry(id).or_default() += 1;
            }
        }
        let expected: HashMap<String, usize> =
            plan.open.iter().map(|t| (t.id.clone(), 1)).collect();
        assert_eq!(
            closed_events, expected,
            "ticket-closed events of {}",
            plan.branch
        );
    }
    stamps
}

#[tokio::test]
async fn open_tickets_close_exactly_once_at_the_close_time() {
    let mut cluster = Cluster::start(&NODES, Timing::SHORT).await;
    let (plans, close_at) = prepare(&cluster).await;

    wait_closed(
        &mut cluster,
        day_number(close_at),
        CLOSE_AHEAD + Duration::from_secs(20),
    )
    .await;
    let reader = cluster.nodes[2].api().clone();
    let stamps = assert_closed_once(&mut cluster, &reader, &plans).await;
    for stamp in stamps {
        assert!(
            stamp >= close_at.timestamp_millis(),
            "closed at {stamp} ms, before {close_at}"
        );
    }

    // A ticket issued after the close waits for tomorrow's, and the
    // closer's later rounds (every second) change nothing.
    let late = cluster.nodes[1].api().issue(BRANCHES[0], "cash").await;
    let watch_until = Instant::now() + Duration::from_millis(2_500);
    while Instant::now() < watch_until {
        assert_eq!(reader.ticket(BRANCHES[0], &late.id).await.status, "waiting");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_closed_once(&mut cluster, &reader, &plans).await;
}

#[tokio::test]
async fn a_leader_killed_at_the_close_time_still_closes_exactly_once() {
    let mut cluster = Cluster::start(&NODES, Timing::SHORT).await;
    let (plans, close_at) = prepare(&cluster).await;
    let old = cluster.wait_leader(LEADER_WITHIN).await;

    // Killed somewhere in the second after the close moment: the old leader
    // (which checks once a second) may or may not have closed already.
    let offset = Duration::from_millis(fastrand::u64(0..1_000));
    let until_close = (close_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_close + offset).await;
    cluster.node_mut(&old.node).kill();
    let killed_ms = Utc::now().timestamp_millis();
    let (new, _) = cluster
        .wait_new_leader(&old, Duration::from_secs(20), Duration::from_millis(10))
        .await;

    wait_closed(&mut cluster, day_number(close_at), Duration::from_secs(20)).await;
    let reader = cluster.node(&new.node).api().clone();
    let stamps = assert_closed_once(&mut cluster, &reader, &plans).await;
    let by_old = stamps.iter().filter(|&&ts| ts <= killed_ms).count();
    println!(
        "leader {} killed {offset:?} after the close moment; {by_old} of {} tickets closed before the kill, the rest by {}",
        old.node,
        stamps.len(),
        new.node
    );
}
