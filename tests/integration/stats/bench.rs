//! Statistics benchmarks (ignored; `scripts/bench-stats.sh` runs them in
//! release mode). They print figures and assert no timing (STYLE.md).
//!
//! - `stats_ingest_and_summary`: one master node, 1,000 branches in 200
//!   slave groups; a simulator of the 200 groups' leaders ships batches
//!   concurrently; events applied per second, compared with
//!   `redis-benchmark` running the same apply script on the same Redis;
//!   then `GET /api/v1/stats/summary` latency over the 1,000 branches.
//! - `stats_lag_and_backlog_drain`: a master and a slave group; the lag from
//!   a ticket's answer at the slave to the master's figures including it;
//!   then a 10-minute outage's backlog at 50 tickets/s drained after the
//!   link heals.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use turnus::domain::stats::{ShippedEvent, StatsBatch};
use turnus::domain::Id;
use turnus::settings::RedisSettings;
use turnus::store::stats::{apply_argv, Sender};
use turnus::store::Store;

use super::api::{get_json, totals};
use super::apply::{generate, generate_from, ops_of, test_branch};
use crate::slave::topology::{Links, Topology};
use crate::support::api::metric_value;
use crate::support::process::{NodeConfig, NodeProcess};
use crate::support::redis::RedisServer;
use crate::support::{eventually, DISPLAY, PEER};

const GROUPS: usize = 200;
const BRANCHES_PER_GROUP: usize = 5;
/// Events each branch ships (`STATS_BENCH_EVENTS` overrides, for a quick run).
fn events_per_branch() -> usize {
    std::env::var("STATS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}
const BATCH: usize = 100;
/// Batches sent again because their answer was lost.
static RESENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Ten minutes ago: the generator spreads a branch's 300 events over about
/// five hours from there, so they land in today's rollups, which the
/// summary reads.
fn today_start_ms() -> i64 {
    chrono::Utc::now().timestamp_millis() - 10 * 60_000
}

fn branch_name(group: usize, n: usize) -> String {
    format!("b{group:03}-{n}")
}

/// Imports the 1,000 branches (services loans and cash, as the generator
/// uses) in 200 groups straight into the master's Redis, through the same
/// domain rules as the admin API, before the node starts (1,000 admin
/// writes would each make the node reload the whole configuration).
async fn import_branches(redis: &RedisServer) {
    let mut toml = String::new();
    for g in 0..GROUPS {
        for n in 0..BRANCHES_PER_GROUP {
            let id = branch_name(g, n);
            toml.push_str(&format!(
                "[[branches]]\nid = \"{id}\"\nname = \"{id}\"\ntimezone = \"Europe/Lisbon\"\ngroup = \"g{g:03}\"\n"
            ));
            for service in ["loans", "cash"] {
                toml.push_str(&format!(
                    "  [[branches.services]]\n  id = \"{service}\"\n  name = \"{service}\"\n  prefix = \"A\"\n  target_wait_s = 600\n"
                ));
            }
        }
    }
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = Id::parse("central").expect("id");
    turnus::demo::import(&store, &group, &toml)
        .await
        .expect("import the branches");
}

/// One simulated slave group leader: ships its branches' events in batches,
/// branch by branch, as the real shipper does.
async fn simulated_group(base: String, group: usize) -> usize {
    let client = reqwest::Client::new();
    let mut shipped = 0;
    let streams: Vec<(String, Vec<ShippedEvent>)> = (0..BRANCHES_PER_GROUP)
        .map(|n| {
            // Today's events, so the summary has today's figures to read.
            let events = generate_from(
                (group * 10 + n) as u64,
                events_per_branch(),
                today_start_ms(),
            )
            .into_iter()
            .map(|(id, event)| ShippedEvent {
                id: id.to_string(),
                event,
            })
            .collect();
            (branch_name(group, n), events)
        })
        .collect();
    for start in (0..events_per_branch()).step_by(BATCH) {
        for (branch, events) in &streams {
            let batch = StatsBatch {
                group: format!("g{group:03}"),
                epoch: 1,
                source: format!("sim-{group}"),
                branch: branch.clone(),
                through_ms: 0,
                after: None,
                lost: 0,
                events: events[start..(start + BATCH).min(events.len())].to_vec(),
            };
            // Like the real shipper, a batch whose answer did not arrive is
            // sent again (the master applies it once).
            let mut attempts = 0;
            loop {
                attempts += 1;
                let response = client
                    .post(format!("{base}/api/v1/mirror/stats"))
                    .bearer_auth(PEER)
                    .json(&batch)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::OK => break,
                    // The node was too busy to read the request in time.
                    Ok(r) if r.status() == StatusCode::REQUEST_TIMEOUT && attempts < 10 => {
                        RESENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Ok(r) => panic!("batch refused: {}", r.status()),
                    Err(e) if attempts < 10 => {
                        RESENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let _ = e;
                    }
                    Err(e) => panic!("the master does not answer: {e}"),
                }
            }
            shipped += batch.events.len();
        }
    }
    shipped
}

/// `redis-benchmark` running the apply script with one `BATCH`-event batch
/// per call (a fresh source each call, so every event is applied):
/// events per second.
fn redis_benchmark_events_per_s(redis: &RedisServer) -> f64 {
    let script = turnus::store::script_source("stats_apply").expect("the apply script");
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(&script)
        .query(&mut conn)
        .expect("SCRIPT LOAD");
    let branch = test_branch("rb");
    let events = ops_of(&branch, &generate(99, BATCH));
    let group = Id::parse("rb").expect("id");
    let argv = apply_argv(
        Sender::Peer {
            group: &group,
            epoch: 1,
            after: None,
            lost: 0,
        },
        "rb-__rand_int__",
        0,
        &events,
    );
    let requests = 3000;
    let output = std::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &redis.port().to_string(),
            "-c",
            "32",
            "-n",
            &requests.to_string(),
            "-r",
            "1000000000",
            "-q",
        ])
        .args(["EVALSHA", &sha, "1", "turnus:b:{rb}:"])
        .args(&argv)
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&output.stdout);
    // "EVALSHA ...: 1234.56 requests per second, p50=..."
    let rps: f64 = text
        .split("requests per second")
        .next()
        .and_then(|head| head.rsplit(' ').nth(1).or_else(|| head.rsplit(':').next()))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("cannot read redis-benchmark output: {text}"));
    rps * BATCH as f64
}

#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-stats.sh"]
async fn stats_ingest_and_summary() {
    let redis = RedisServer::start();
    let setup = Instant::now();
    import_branches(&redis).await;
    let node = NodeProcess::start_ready(NodeConfig::new("master").redis(&redis.url())).await;
    let master = node.api().clone();
    println!(
        "created {} branches in {:.1} s",
        GROUPS * BRANCHES_PER_GROUP,
        setup.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let shipped: usize = join_all((0..GROUPS).map(|g| simulated_group(master.base_url.clone(), g)))
        .await
        .into_iter()
        .sum();
    let elapsed = started.elapsed();
    let metrics = master.metrics().await.expect("metrics");
    let applied = metric_value(&metrics, "turnus_stats_events_applied_total").unwrap_or(0.0);
    assert_eq!(applied as usize, shipped, "each event applied exactly once");
    let http_rate = shipped as f64 / elapsed.as_secs_f64();
    let rb_rate = redis_benchmark_events_per_s(&redis);
    println!(
        "master ingest: {shipped} events from {GROUPS} simulated slave groups in batches of {BATCH}: \
         {:.1} s ({} batches resent), {http_rate:.0} events/s applied (goal >= 25,000); redis-benchmark running the apply script \
         on the same Redis: {rb_rate:.0} events/s; ratio {:.2}",
        elapsed.as_secs_f64(),
        RESENT.load(std::sync::atomic::Ordering::Relaxed),
        http_rate / rb_rate
    );

    // Summary over 1,000 branches, sequential requests, on a fresh client
    // (a pooled connection idle through redis-benchmark may be closed).
    let client = reqwest::Client::new();
    let mut latencies = Vec::new();
    for _ in 0..200 {
        let at = Instant::now();
        let response = client
            .get(master.url("/api/v1/stats/summary"))
            .bearer_auth(DISPLAY)
            .send()
            .await
            .unwrap_or_else(|e| panic!("summary: {e:?}"));
        let status = response.status();
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(status, StatusCode::OK, "after {:?}: {body}", at.elapsed());
        latencies.push(at.elapsed());
        assert_eq!(
            body["branches"].as_array().map(Vec::len),
            Some(GROUPS * BRANCHES_PER_GROUP)
        );
    }
    latencies.sort_unstable();
    println!(
        "GET /api/v1/stats/summary with {} branches, 200 requests: p50 {:.1} ms, p99 {:.1} ms (goal < 100 ms), max {:.1} ms",
        GROUPS * BRANCHES_PER_GROUP,
        ms(quantile(&latencies, 0.5)),
        ms(quantile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1])
    );
    let mut conn = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut conn)
        .expect("INFO");
    let used = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    println!(
        "master Redis used_memory after {shipped} events over {} branches: {:.1} MB",
        GROUPS * BRANCHES_PER_GROUP,
        used / 1e6
    );
}

/// Tickets issued for the lag measurement, one every `LAG_EVERY`.
const LAG_TICKETS: usize = 300;
const LAG_EVERY: Duration = Duration::from_millis(50);

#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-stats.sh"]
async fn stats_lag_and_backlog_drain() {
    let topology = Topology::start(Links::Proxied).await;
    let master = topology.master().clone();
    let version = crate::slave::topology::setup_branch(&master).await;
    topology.wait_slaves_at(version).await;
    let slave = topology.slaves[0].api().clone();
    let branch = crate::slave::topology::BRANCH;

    // Lag: issue at a steady pace; a watcher polls the master's figures and
    // notes when each count is first reached.
    let watcher = {
        let master = master.clone();
        tokio::spawn(async move {
            let mut seen = Vec::with_capacity(LAG_TICKETS);
            let deadline = Instant::now() + Duration::from_secs(120);
            while seen.len() < LAG_TICKETS && Instant::now() < deadline {
                let issued = totals(&master, branch).await.0.max(0) as usize;
                while seen.len() < issued.min(LAG_TICKETS) {
                    seen.push(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            seen
        })
    };
    let mut answered = Vec::with_capacity(LAG_TICKETS);
    for _ in 0..LAG_TICKETS {
        let at = Instant::now();
        slave.issue(branch, "cash").await;
        answered.push(Instant::now());
        if let Some(rest) = LAG_EVERY.checked_sub(at.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
    let seen = watcher.await.expect("watcher");
    assert_eq!(
        seen.len(),
        LAG_TICKETS,
        "the master did not count every ticket"
    );
    let mut lags: Vec<Duration> = seen
        .iter()
        .zip(&answered)
        .map(|(s, a)| s.saturating_duration_since(*a))
        .collect();
    lags.sort_unstable();
    println!(
        "lag, slave ticket answer -> master figures include it ({LAG_TICKETS} tickets, one per {LAG_EVERY:?}, \
         master polled every 5 ms): p50 {:.0} ms, p99 {:.0} ms (goal <= 2000 ms), max {:.0} ms",
        ms(quantile(&lags, 0.5)),
        ms(quantile(&lags, 0.99)),
        ms(lags[lags.len() - 1])
    );

    // Backlog drain: 10 minutes at 50 tickets/s is 30,000 tickets, each
    // issued, called and served: 90,000 events. Written straight into the
    // outbox while the link is cut (the same documents the scripts write).
    topology.cut_links();
    let before = totals(&master, branch).await;
    let outbox = format!("turnus:b:{{{branch}}}:outbox");
    let mut conn = redis::Client::open(topology.slave_redis.url())
        .and_then(|c| c.get_connection())
        .expect("connect");
    let tickets = 30_000;
    let base_ms = chrono::Utc::now().timestamp_millis();
    for chunk in (0..tickets).collect::<Vec<i64>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for n in chunk {
            let issued = base_ms + n;
            let ticket = json!({"id": format!("x{n}"), "service": "cash", "number": "C001", "issued_ms": issued});
            for (kind, status, extra) in [
                ("ticket-issued", "waiting", json!({})),
                (
                    "ticket-called",
                    "called",
                    json!({"counter": "c1", "called_ms": issued + 1, "first_call": true}),
                ),
                (
                    "ticket-served",
                    "served",
                    json!({"counter": "c1", "called_ms": issued + 1, "finished_ms": issued + 2}),
                ),
            ] {
                let mut doc = ticket.clone();
                doc["type"] = json!(kind);
                doc["status"] = json!(status);
                doc["ts_ms"] = json!(issued);
                for (k, v) in extra.as_object().expect("object") {
                    doc[k] = v.clone();
                }
                pipe.cmd("XADD")
                    .arg(&outbox)
                    .arg("*")
                    .arg("e")
                    .arg(doc.to_string())
                    .ignore();
            }
        }
        pipe.query::<()>(&mut conn).expect("XADD");
    }
    let events = tickets * 3;
    let healed = Instant::now();
    topology.heal_links();
    // The shipper retries with back-off while cut (up to 5 s): the drain is
    // timed from the first backlog event the master counts.
    let first = eventually(
        "the backlog to start arriving",
        Duration::from_secs(60),
        || async { (totals(&master, branch).await.0 > before.0).then(Instant::now) },
    )
    .await;
    eventually(
        "the backlog to reach the master",
        Duration::from_secs(300),
        || async { (totals(&master, branch).await.0 >= before.0 + tickets).then_some(()) },
    )
    .await;
    let drained = first.elapsed();
    println!(
        "first backlog event counted {:.1} s after the heal",
        (first - healed).as_secs_f64()
    );
    let after = totals(&master, branch).await;
    assert_eq!(after.0 - before.0, tickets, "issued counted exactly once");
    assert_eq!(after.2 - before.2, tickets, "served counted exactly once");
    println!(
        "backlog drain after a 10-minute outage at 50 tickets/s ({events} events): {:.1} s from the first arrival, \
         {:.0} events/s (goal >= 10,000; pace limit stats.drain_events_per_s)",
        drained.as_secs_f64(),
        events as f64 / drained.as_secs_f64()
    );
    let cluster = get_json(&slave, "/api/v1/cluster").await;
    println!(
        "slave stats_backlog after the drain: {}",
        cluster["upstream"]["stats_backlog"]
    );
}
