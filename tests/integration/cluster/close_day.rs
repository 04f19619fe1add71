//! The end-of-day close across the group: at a branch's close time the
//! leader closes every ticket issued before it and still waiting or called,
//! exactly once (one `ticket-closed` event each), leaves served tickets and
//! later tickets alone, and a leader killed right at the close moment
//! neither doubles nor skips the close.
//!
//! The branches run in a fixed-offset zone whose local time is between noon
//! and 1 pm while the test runs, so no local midnight is near. They are
//! created with a close time of 23:00 (yesterday's close is the one due, and
//! closes nothing), get their tickets, and only then is the close time moved
//! to a moment just past: the close follows from the configuration, and no
//! setup has to finish before a deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use serde_json::json;

use crate::support::api::{ApiClient, Ticket};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::eventually;

use super::{LEADER_WITHIN, NODES};

const BRANCHES: [&str; 2] = ["north", "south"];
/// The close time the branches are created with: later than the local time
/// of the test (about noon), so the close due is yesterday's.
const LATE_CLOSE: &str = "23:00:00";

/// A fixed-offset zone (`Etc/GMT±N`) where it is now between 12:00 and 13:00.
fn zone_far_from_midnight() -> (String, Tz) {
    let offset_h = 12 - i32::try_from(Utc::now().hour()).expect("an hour"); // -11..=12
                                                                            // Etc/GMT names count west as positive: UTC+3 is "Etc/GMT-3".
    let name = if offset_h == 0 {
        "Etc/GMT".to_owned()
    } else {
        format!("Etc/GMT{:+}", -offset_h)
    };
    let zone = name.parse().expect("an Etc/GMT zone");
    (name, zone)
}

fn day_number(moment: DateTime<Utc>, zone: Tz) -> i64 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
    (moment.with_timezone(&zone).date_naive() - epoch).num_days()
}

/// Sets a branch's meta (name, zone, close time), keeping its services and
/// counters; returns the configuration version.
async fn put_meta(api: &ApiClient, branch: &str, zone: &str, close_time: &str) -> u64 {
    api.put_branch(
        branch,
        json!({"name": format!("Branch {branch}"), "timezone": zone, "close_time": close_time}),
    )
    .await["version"]
        .as_u64()
        .expect("version")
}

/// A branch with one service and two counters, closing at [`LATE_CLOSE`],
/// known to every node.
async fn setup_branch(cluster: &Cluster, branch: &str, zone: &str) {
    let api = cluster.nodes[0].api();
    put_meta(api, branch, zone, LATE_CLOSE).await;
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

/// Both branches and their tickets, in a zone far from midnight.
async fn prepare(cluster: &Cluster) -> (Vec<Plan>, String, Tz) {
    let (zone_name, zone) = zone_far_from_midnight();
    let mut plans = Vec::new();
    for branch in BRANCHES {
        setup_branch(cluster, branch, &zone_name).await;
        plans.push(open_tickets(cluster, branch).await);
    }
    (plans, zone_name, zone)
}

/// Moves every branch's close time to the first whole second after the last
/// ticket was issued, once the clock has passed it: the close of today is
/// then due. Returns the close moment.
async fn close_now(cluster: &Cluster, zone_name: &str, zone: Tz) -> DateTime<Utc> {
    let close_at = Utc::now().with_nanosecond(0).expect("valid") + chrono::Duration::seconds(1);
    // Waiting for the clock to pass an instant (a condition, not a budget).
    while Utc::now() <= close_at {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let close_time = close_at.with_timezone(&zone).format("%H:%M:%S").to_string();
    for branch in BRANCHES {
        put_meta(cluster.nodes[0].api(), branch, zone_name, &close_time).await;
    }
    close_at
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
    let (plans, zone_name, zone) = prepare(&cluster).await;
    let close_at = close_now(&cluster, &zone_name, zone).await;

    wait_closed(
        &mut cluster,
        day_number(close_at, zone),
        Duration::from_secs(20),
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
    let (plans, zone_name, zone) = prepare(&cluster).await;
    let old = cluster.wait_leader(LEADER_WITHIN).await;

    // Killed somewhere in the second after the close became due: the old
    // leader (which checks once a second) may or may not have closed
    // already. (The random phase is the point, not a wait for a condition.)
    let close_at = close_now(&cluster, &zone_name, zone).await;
    let offset = Duration::from_millis(fastrand::u64(0..1_000));
    tokio::time::sleep(offset).await;
    cluster.node_mut(&old.node).kill();
    let killed_ms = Utc::now().timestamp_millis();
    let (new, _) = cluster
        .wait_new_leader(&old, Duration::from_secs(20), Duration::from_millis(10))
        .await;

    wait_closed(
        &mut cluster,
        day_number(close_at, zone),
        Duration::from_secs(20),
    )
    .await;
    let reader = cluster.node(&new.node).api().clone();
    let stamps = assert_closed_once(&mut cluster, &reader, &plans).await;
    let by_old = stamps.iter().filter(|&&ts| ts <= killed_ms).count();
    println!(
        "leader {} killed {offset:?} after the close time was set; {by_old} of {} tickets closed before the kill, the rest by {}",
        old.node,
        stamps.len(),
        new.node
    );
}
