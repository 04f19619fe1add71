//! The background load of the slave-group tests: kiosk and counter traffic
//! on the slave nodes ([`Traffic`]), and a sampler of the configuration
//! version every slave node serves ([`VersionSampler`]), so a test can
//! check that none ever went back to an older one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;

use super::{served_version, Topology, BRANCH, WITHIN};
use crate::support::api::ApiClient;
use crate::support::{eventually, KIOSK, OPERATOR};

/// Kiosk and counter traffic on the slave nodes: issue a `cash` ticket on
/// one node, call at `c1` on the next, round-robin, until stopped. Every
/// refusal is recorded. The test removes a node from the targets before it
/// kills it (removal waits for requests in flight to it).
pub struct Traffic {
    targets: Arc<tokio::sync::RwLock<BTreeMap<usize, ApiClient>>>,
    operations: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<String>>,
}

impl Traffic {
    pub fn start(topology: &Topology) -> Traffic {
        let targets: BTreeMap<usize, ApiClient> = topology
            .slaves
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.api().clone()))
            .collect();
        let targets = Arc::new(tokio::sync::RwLock::new(targets));
        let operations = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(traffic_loop(
            targets.clone(),
            operations.clone(),
            stop.clone(),
        ));
        Traffic {
            targets,
            operations,
            stop,
            task,
        }
    }

    /// Successful operations so far.
    pub fn operations(&self) -> u64 {
        self.operations.load(Ordering::SeqCst)
    }

    /// Stops sending to slave node `index` (returns once nothing is in
    /// flight to it).
    pub async fn remove(&self, index: usize) {
        self.targets.write().await.remove(&index);
    }

    pub async fn add(&self, index: usize, api: ApiClient) {
        self.targets.write().await.insert(index, api);
    }

    /// Waits until `more` further operations succeeded.
    pub async fn wait_for(&self, more: u64) {
        let target = self.operations() + more;
        eventually("ticket traffic to go on", WITHIN, || async {
            (self.operations() >= target).then_some(())
        })
        .await;
    }

    /// Stops and returns every refusal seen.
    pub async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the traffic task panicked")
    }
}

async fn traffic_loop(
    targets: Arc<tokio::sync::RwLock<BTreeMap<usize, ApiClient>>>,
    operations: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        {
            let targets = targets.read().await;
            let nodes: Vec<&ApiClient> = targets.values().collect();
            if !nodes.is_empty() {
                let issuer = nodes[round % nodes.len()];
                let caller = nodes[(round + 1) % nodes.len()];
                let issue = issuer
                    .http
                    .post(issuer.url(&format!("/api/v1/branches/{BRANCH}/tickets")))
                    .bearer_auth(KIOSK)
                    .json(&json!({"service": "cash"}))
                    .send()
                    .await;
                record(&mut failures, &operations, "issue", issue, &[201]).await;
                let call = caller
                    .http
                    .post(caller.url(&format!("/api/v1/branches/{BRANCH}/counters/c1/call")))
                    .bearer_auth(OPERATOR)
                    .send()
                    .await;
                record(&mut failures, &operations, "call", call, &[200, 204]).await;
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    failures
}

async fn record(
    failures: &mut Vec<String>,
    operations: &AtomicU64,
    what: &str,
    result: reqwest::Result<reqwest::Response>,
    expected: &[u16],
) {
    match result {
        Ok(response) if expected.contains(&response.status().as_u16()) => {
            operations.fetch_add(1, Ordering::SeqCst);
        }
        Ok(response) => {
            let url = response.url().to_string();
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            failures.push(format!("{what} {url}: {status} {body}"));
        }
        Err(e) => failures.push(format!("{what}: {e}")),
    }
}

/// Samples the version every slave node serves, every 20 ms, until
/// stopped; keyed by node id, so a restarted node continues its sequence.
pub struct VersionSampler {
    targets: Arc<Mutex<BTreeMap<String, ApiClient>>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<BTreeMap<String, Vec<u64>>>,
}

impl VersionSampler {
    pub fn start(topology: &Topology) -> VersionSampler {
        let targets: BTreeMap<String, ApiClient> = topology
            .slaves
            .iter()
            .map(|s| (s.id().to_owned(), s.api().clone()))
            .collect();
        let targets = Arc::new(Mutex::new(targets));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (targets.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut samples: BTreeMap<String, Vec<u64>> = BTreeMap::new();
            while !stopped.load(Ordering::SeqCst) {
                let nodes = shared.lock().expect("sampler targets").clone();
                let probes = nodes
                    .iter()
                    .map(|(id, api)| async move { (id.clone(), served_version(api).await) });
                for (id, version) in futures::future::join_all(probes).await {
                    if let Some(version) = version {
                        samples.entry(id).or_default().push(version);
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            samples
        });
        VersionSampler {
            targets,
            stop,
            task,
        }
    }

    /// Points the sampler at a restarted node's new address.
    pub fn retarget(&self, id: &str, api: ApiClient) {
        self.targets
            .lock()
            .expect("sampler targets")
            .insert(id.to_owned(), api);
    }

    /// Stops and returns each node's samples in order.
    pub async fn finish(self) -> BTreeMap<String, Vec<u64>> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the sampler task panicked")
    }
}
