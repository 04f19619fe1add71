//! Statistics shipped from a slave group to the master group exactly once,
//! with real processes: a master group of two nodes, a slave group of two,
//! ticket traffic at both, the link cut for 30 s, the slave leader SIGKILLed while a
//! backlog drains, a master node SIGKILLed while batches are applied, and a
//! proxy dropping a share of the master's answers so batches are resent.
//! Afterwards the master's totals per branch equal exactly what the
//! clients were acknowledged, and the slave's own figures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::RwLock;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::api::totals;
use crate::slave::topology::{version_of, Links, Topology, GROUP, WITHIN};
use crate::support::api::ApiClient;
use crate::support::{eventually, DISPLAY, KIOSK, OPERATOR, PEER};

/// The slave group's branch and the master group's own branch.
pub const SLAVE_BRANCH: &str = "porto";
const MASTER_BRANCH: &str = "lisboa";

/// How long the link is cut under load (issue 9: 30 s).
const CUT: Duration = Duration::from_secs(30);

/// Small batches and a slow drain, so a backlog takes many batches and a
/// kill lands in the middle of them.
pub const STATS_ENV: &[(&str, &str)] = &[
    ("TURNUS__STATS__BATCH_MAX_EVENTS", "20"),
    ("TURNUS__STATS__DRAIN_EVENTS_PER_S", "300"),
    ("TURNUS__STATS__POLL_INTERVAL_MS", "100"),
];

/// Creates a branch (services cash and loans, counters c1 [cash] and
/// c2 [loans, cash]) on the master; returns the configuration version.
pub async fn setup(master: &ApiClient, branch: &str, group: Option<&str>) -> u64 {
    let mut body = json!({"name": branch, "timezone": "Europe/Lisbon"});
    if let Some(group) = group {
        body["group"] = json!(group);
    }
    master.put_branch(branch, body).await;
    for (id, prefix) in [("cash", "C"), ("loans", "L")] {
        master
            .put_service(
                branch,
                id,
                json!({"name": id, "prefix": prefix, "target_wait_s": 600}),
            )
            .await;
    }
    master.put_counter(branch, "c1", &[("cash", 1)]).await;
    version_of(
        &master
            .put_counter(branch, "c2", &[("loans", 1), ("cash", 2)])
            .await,
    )
}

/// What the clients were told happened: (issued, first calls, served,
/// no_show, transferred), as in the stats API's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ledger(pub i64, pub i64, pub i64, pub i64, pub i64);

impl Ledger {
    pub fn tuple(&self) -> (i64, i64, i64, i64, i64) {
        (self.0, self.1, self.2, self.3, self.4)
    }
}

/// Sequential kiosk and counter traffic on one branch over a set of nodes,
/// keeping a ledger of every acknowledged change. A node is removed from the
/// targets before it is killed (removal waits for the request in flight),
/// so every request gets an answer and the ledger is exact.
pub struct BranchTraffic {
    targets: Arc<RwLock<BTreeMap<usize, ApiClient>>>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    task: JoinHandle<(Ledger, Vec<String>)>,
}

impl BranchTraffic {
    pub fn start(branch: &'static str, nodes: &[ApiClient], seed: u64) -> BranchTraffic {
        let targets = Arc::new(RwLock::new(nodes.iter().cloned().enumerate().collect()));
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(traffic(
            branch,
            targets.clone(),
            stop.clone(),
            ops.clone(),
            seed,
        ));
        BranchTraffic {
            targets,
            stop,
            ops,
            task,
        }
    }

    pub async fn remove(&self, index: usize) {
        self.targets.write().await.remove(&index);
    }

    pub async fn add(&self, index: usize, api: ApiClient) {
        self.targets.write().await.insert(index, api);
    }

    /// Waits until `more` further operations were acknowledged.
    pub async fn wait_for(&self, more: u64) {
        let target = self.ops.load(Ordering::SeqCst) + more;
        eventually("ticket traffic to go on", WITHIN * 2, || async {
            (self.ops.load(Ordering::SeqCst) >= target).then_some(())
        })
        .await;
    }

    pub async fn finish(self) -> (Ledger, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the traffic task panicked")
    }
}

async fn traffic(
    branch: &'static str,
    targets: Arc<RwLock<BTreeMap<usize, ApiClient>>>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    seed: u64,
) -> (Ledger, Vec<String>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut ledger = Ledger::default();
    let mut failures = Vec::new();
    let mut current: HashMap<&str, Option<String>> = HashMap::from([("c1", None), ("c2", None)]);
    let mut ever_called: HashSet<String> = HashSet::new();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        // Held until the answer is read: removing a node waits for it.
        let guard = targets.read().await;
        let Some(api) = guard.values().nth(round % guard.len().max(1)).cloned() else {
            drop(guard);
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let counter = if rng.bool() { "c1" } else { "c2" };
        let busy = current[counter].is_some();
        let pick = rng.usize(0..100);
        let (path, token, body, what) = match pick {
            0..=39 => {
                let service = if rng.bool() { "cash" } else { "loans" };
                (
                    "tickets".to_owned(),
                    KIOSK,
                    Some(json!({"service": service})),
                    "issue",
                )
            }
            40..=74 => (format!("counters/{counter}/call"), OPERATOR, None, "call"),
            75..=84 if busy => (
                format!("counters/{counter}/finish"),
                OPERATOR,
                None,
                "finish",
            ),
            85..=91 if busy => (
                format!("counters/{counter}/no-show"),
                OPERATOR,
                None,
                "no-show",
            ),
            92..=99 if busy => {
                let to = if counter == "c1" { "loans" } else { "cash" };
                (
                    format!("counters/{counter}/transfer"),
                    OPERATOR,
                    Some(json!({"service": to})),
                    "transfer",
                )
            }
            _ => continue,
        };
        let mut request = api
            .http
            .post(api.url(&format!("/api/v1/branches/{branch}/{path}")))
            .bearer_auth(token)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{what} on {}: {e}", api.base_url));
                continue;
            }
        };
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        drop(guard);
        match (what, status) {
            ("issue", StatusCode::CREATED) => ledger.0 += 1,
            ("call", StatusCode::OK | StatusCode::NO_CONTENT) => {
                // The call first finished the counter's current ticket as served.
                if current.get_mut(counter).and_then(Option::take).is_some() {
                    ledger.2 += 1;
                }
                if status == StatusCode::OK {
                    let id = answer["id"].as_str().unwrap_or_default().to_owned();
                    if ever_called.insert(id.clone()) {
                        ledger.1 += 1;
                    }
                    current.insert(counter, Some(id));
                }
            }
            ("finish", StatusCode::OK) => {
                current.insert(counter, None);
                ledger.2 += 1;
            }
            ("no-show", StatusCode::OK) => {
                current.insert(counter, None);
                ledger.3 += 1;
            }
            ("transfer", StatusCode::OK) => {
                current.insert(counter, None);
                ledger.4 += 1;
            }
            _ => {
                failures.push(format!("{what} on {}: {status} {answer}", api.base_url));
                continue;
            }
        }
        ops.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (ledger, failures)
}

/// Samples the master's `complete_through` of the slave branch every
/// 100 ms from whichever master node answers.
struct WatermarkSampler {
    stop: Arc<AtomicBool>,
    targets: Arc<Mutex<Vec<ApiClient>>>,
    task: JoinHandle<Vec<DateTime<Utc>>>,
}

impl WatermarkSampler {
    fn start(masters: Vec<ApiClient>) -> WatermarkSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let targets = Arc::new(Mutex::new(masters));
        let (stopped, nodes) = (stop.clone(), targets.clone());
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                let apis = nodes.lock().expect("sampler targets").clone();
                for api in apis {
                    if let Some(t) = complete_through(&api, SLAVE_BRANCH).await {
                        samples.push(t);
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        });
        WatermarkSampler {
            stop,
            targets,
            task,
        }
    }

    fn without(&self, base_url: &str) {
        self.targets
            .lock()
            .expect("sampler targets")
            .retain(|a| a.base_url != base_url);
    }

    async fn finish(self) -> Vec<DateTime<Utc>> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the sampler panicked")
    }
}

/// A branch's `complete_through` in a node's summary.
pub async fn complete_through(api: &ApiClient, branch: &str) -> Option<DateTime<Utc>> {
    let response = api
        .http
        .get(api.url("/api/v1/stats/summary"))
        .bearer_auth(DISPLAY)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    let line = body["branches"]
        .as_array()?
        .iter()
        .find(|b| b["branch"] == branch)?
        .clone();
    line["complete_through"].as_str()?.parse().ok()
}

#[tokio::test]
async fn every_event_is_counted_once_through_cuts_kills_and_lost_answers() {
    let mut topology = Topology::start_with(Links::Proxied, STATS_ENV).await;
    let master = topology.master().clone();
    setup(&master, MASTER_BRANCH, None).await;
    let version = setup(&master, SLAVE_BRANCH, Some(GROUP)).await;
    topology.wait_slaves_at(version).await;

    let slave_apis: Vec<ApiClient> = topology.slaves.iter().map(|s| s.api().clone()).collect();
    let master_apis: Vec<ApiClient> = topology.masters.iter().map(|m| m.api().clone()).collect();
    let at_slave = BranchTraffic::start(SLAVE_BRANCH, &slave_apis, 1);
    let at_master = BranchTraffic::start(MASTER_BRANCH, &master_apis, 2);
    let sampler = WatermarkSampler::start(master_apis.clone());
    at_slave.wait_for(40).await;

    // The link is cut for 30 s under load, as the issue says; the slave
    // keeps serving and queues its events. The cut's length is the fault
    // itself, not a wait for a condition: the traffic is checked to go on.
    let cut_at = Instant::now();
    topology.cut_links();
    at_slave.wait_for(250).await;
    let busy_for = cut_at.elapsed();
    tokio::time::sleep_until(cut_at + CUT).await;
    at_slave.wait_for(1).await;
    topology.heal_links();
    println!(
        "link cut for {:.1} s; the first 250 operations behind it took {:.1} s",
        cut_at.elapsed().as_secs_f64(),
        busy_for.as_secs_f64()
    );

    // SIGKILL the slave leader while the backlog drains in small batches.
    let (leader_id, _) = topology.wait_slave_leader().await;
    let index = topology.slave_index(&leader_id);
    let backlog = cluster_backlog(topology.slaves[index].api()).await;
    at_slave.remove(index).await;
    topology.slaves[index].kill();
    topology.restart_slave(index).await;
    at_slave
        .add(index, topology.slaves[index].api().clone())
        .await;

    // Answers get lost: batches are resent. Then one master node is
    // SIGKILLed while the new slave leader ships into it.
    topology.lossy_links(0.3);
    at_slave.wait_for(100).await;
    let victim = topology.master_index("central-1");
    at_master.remove(victim).await;
    sampler.without(&master_apis[victim].base_url);
    topology.masters[victim].kill();
    at_slave.wait_for(100).await;
    topology.heal_links();

    let (slave_ledger, slave_failures) = at_slave.finish().await;
    let (master_ledger, master_failures) = at_master.finish().await;
    let stopped_at = Utc::now();
    assert!(
        slave_failures.is_empty(),
        "slave traffic failures: {slave_failures:?}"
    );
    assert!(
        master_failures.is_empty(),
        "master traffic failures: {master_failures:?}"
    );
    assert!(
        backlog > 0,
        "the slave leader was killed with no backlog to ship"
    );

    let survivor = topology.masters[1 - victim].api().clone();
    let slave = topology.slaves[0].api().clone();
    eventually(
        "the slave's own figures to match what it acknowledged",
        WITHIN,
        || async { (totals(&slave, SLAVE_BRANCH).await == slave_ledger.tuple()).then_some(()) },
    )
    .await;
    eventually(
        "the master's figures to match the slave's",
        WITHIN * 2,
        || async { (totals(&survivor, SLAVE_BRANCH).await == slave_ledger.tuple()).then_some(()) },
    )
    .await;
    eventually(
        "the master's own branch to match its ledger",
        WITHIN,
        || async {
            (totals(&survivor, MASTER_BRANCH).await == master_ledger.tuple()).then_some(())
        },
    )
    .await;
    // The watermark reaches the end of the traffic once connected…
    eventually(
        "complete_through to pass the last event",
        WITHIN,
        || async { (complete_through(&survivor, SLAVE_BRANCH).await? >= stopped_at).then_some(()) },
    )
    .await;
    // …and never went backwards on the way.
    let samples = sampler.finish().await;
    assert!(samples.len() > 10, "too few samples: {samples:?}");
    for pair in samples.windows(2) {
        assert!(
            pair[0] <= pair[1],
            "complete_through went back: {} → {}",
            pair[0],
            pair[1]
        );
    }
    // Counted once even though answers were lost and batches resent: the
    // totals above are exact; and the outbox is drained.
    eventually("the slave's backlog to drain", WITHIN, || async {
        (cluster_backlog(&slave).await == 0).then_some(())
    })
    .await;
    println!(
        "slave ledger {slave_ledger:?}, master ledger {master_ledger:?}, backlog at the kill {backlog}, {} watermark samples",
        samples.len()
    );
}

/// `upstream.stats_backlog` of a slave node.
pub async fn cluster_backlog(api: &ApiClient) -> u64 {
    let response = api
        .request(Method::GET, "/api/v1/cluster", Some(DISPLAY), None)
        .await;
    let body: Value = response.json().await.expect("cluster JSON");
    body["upstream"]["stats_backlog"]
        .as_u64()
        .unwrap_or_else(|| panic!("no stats_backlog in {body}"))
}

#[tokio::test]
async fn a_paused_ex_leaders_batch_is_refused_and_changes_nothing() {
    let topology = Topology::start_with(Links::Direct, STATS_ENV).await;
    let master = topology.master().clone();
    let version = setup(&master, SLAVE_BRANCH, Some(GROUP)).await;
    topology.wait_slaves_at(version).await;
    let (old_leader, old_epoch) = topology.wait_slave_leader().await;
    let index = topology.slave_index(&old_leader);
    let other = topology.slaves[1 - index].api().clone();

    topology.slaves[index].pause();
    eventually("a new slave leader", WITHIN, || async {
        let (node, epoch) = topology.slave_lease().await?;
        (node != old_leader && epoch > old_epoch).then_some(())
    })
    .await;
    for _ in 0..5 {
        other.issue(SLAVE_BRANCH, "cash").await;
    }
    eventually("the new leader's events at the master", WITHIN, || async {
        (totals(&master, SLAVE_BRANCH).await.0 == 5).then_some(())
    })
    .await;

    // What the paused leader would send when it wakes: its epoch, a batch
    // of events the master has not seen. Refused, nothing counted.
    let stale = json!({"group": GROUP, "epoch": old_epoch, "source": "paused-leader",
        "branch": SLAVE_BRANCH, "through_ms": 0, "events": [{"id": "1-0", "event": {
            "type": "ticket-issued", "id": "999", "service": "cash", "number": "C999",
            "status": "waiting", "issued_ms": Utc::now().timestamp_millis(),
            "ts_ms": Utc::now().timestamp_millis()}}]});
    let response = master
        .request(
            Method::POST,
            "/api/v1/mirror/stats",
            Some(PEER),
            Some(stale),
        )
        .await;
    crate::support::api::assert_error(response, StatusCode::CONFLICT, "stale-epoch").await;

    // The real ex-leader wakes up: whatever it still tries is refused or
    // deduplicated, and the figures stay exact.
    topology.slaves[index].resume();
    other.issue(SLAVE_BRANCH, "cash").await;
    eventually(
        "the figures to be exact after the ex-leader woke",
        WITHIN,
        || async {
            let master_totals = totals(&master, SLAVE_BRANCH).await;
            (master_totals.0 == 6 && totals(&other, SLAVE_BRANCH).await == master_totals)
                .then_some(())
        },
    )
    .await;
}
