//! `Cluster`: a group of real `turnus` processes sharing one private
//! [`RedisServer`], and `RedisProbe`, a direct synchronous Redis connection
//! for watching the group's lease, epoch and branch keys with a finer time
//! resolution than any HTTP endpoint gives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::Value;

use super::api::{metric_value, ApiClient};
use super::eventually;
use super::id;
use super::process::{NodeConfig, NodeProcess, START_WITHIN};
use super::redis::RedisServer;
use turnus::store::keys;

/// The group every test node is in (the default).
pub const GROUP: &str = "central";

/// The leader's timing, passed as `TURNUS__LEADER__*`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub lease_ttl_ms: u64,
    pub renew_interval_ms: u64,
    pub renew_deadline_ms: u64,
}

impl Timing {
    /// The shipped defaults (DESIGN.md §4).
    pub const DEFAULT: Timing = Timing {
        lease_ttl_ms: 3_000,
        renew_interval_ms: 1_000,
        renew_deadline_ms: 2_000,
    };

    /// Half the defaults, for tests that are not about the figures.
    pub const SHORT: Timing = Timing {
        lease_ttl_ms: 1_500,
        renew_interval_ms: 500,
        renew_deadline_ms: 1_000,
    };

    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("TURNUS__LEADER__LEASE_TTL_MS", self.lease_ttl_ms),
            ("TURNUS__LEADER__RENEW_INTERVAL_MS", self.renew_interval_ms),
            ("TURNUS__LEADER__RENEW_DEADLINE_MS", self.renew_deadline_ms),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.to_string()))
        .collect()
    }
}

/// A node of the group on `redis_url` with `timing`.
pub fn node_config(id: &str, redis_url: &str, timing: Timing) -> NodeConfig {
    let mut config = NodeConfig::new(id).redis(redis_url);
    config.env.extend(timing.env());
    config
}

/// The lease value `node|epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: String,
    pub epoch: u64,
}

impl Lease {
    fn parse(value: &str) -> Lease {
        let (node, epoch) = value
            .rsplit_once('|')
            .unwrap_or_else(|| panic!("lease value {value:?} is not node|epoch"));
        Lease {
            node: node.to_owned(),
            epoch: epoch
                .parse()
                .unwrap_or_else(|e| panic!("lease value {value:?}: {e}")),
        }
    }
}

/// A direct connection to the group's Redis. Each call is one quick round
/// trip on loopback, so blocking the test's thread for it is harmless.
pub struct RedisProbe {
    conn: redis::Connection,
}

impl RedisProbe {
    pub fn connect(url: &str) -> RedisProbe {
        let conn = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        RedisProbe { conn }
    }

    pub fn get(&mut self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.conn)
            .unwrap_or_else(|e| panic!("GET {key}: {e}"))
    }

    /// Who holds the group's lease now.
    pub fn lease(&mut self) -> Option<Lease> {
        self.get(&keys::group_lease(&id(GROUP)))
            .map(|v| Lease::parse(&v))
    }

    /// The lease and its remaining time to live in ms, read together.
    pub fn lease_with_pttl(&mut self) -> Option<(Lease, u64)> {
        let key = keys::group_lease(&id(GROUP));
        let (value, pttl): (Option<String>, i64) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query(&mut self.conn)
            .unwrap_or_else(|e| panic!("GET/PTTL {key}: {e}"));
        value.map(|v| (Lease::parse(&v), u64::try_from(pttl).unwrap_or(0)))
    }

    /// The group's fencing epoch (0 before any leader).
    pub fn epoch(&mut self) -> u64 {
        self.get(&keys::group_epoch(&id(GROUP)))
            .map_or(0, |v| v.parse().expect("a numeric epoch"))
    }

    /// `INFO replication` of this server.
    pub fn replication_info(&mut self) -> String {
        redis::cmd("INFO")
            .arg("replication")
            .query(&mut self.conn)
            .unwrap_or_default()
    }

    /// How many times this server ran `command` (`INFO commandstats`).
    pub fn command_calls(&mut self, command: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.conn)
            .unwrap_or_default();
        let prefix = format!("cmdstat_{}:calls=", command.to_lowercase());
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Makes this server require `password` from now on (`requirepass`);
    /// this probe's own connection stays authenticated.
    pub fn require_password(&mut self, password: &str) {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg(password)
            .query(&mut self.conn)
            .expect("CONFIG SET requirepass");
    }

    /// Makes this server a replica of the one on `port` (`REPLICAOF`).
    pub fn replicate_from(&mut self, port: u16) {
        let _: () = redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(port)
            .query(&mut self.conn)
            .expect("REPLICAOF");
    }

    /// Waits until this server, a replica, has a live link to its master
    /// (its initial sync is done).
    pub async fn wait_linked(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.replication_info().contains("master_link_status:up") {
            assert!(
                Instant::now() < deadline,
                "the replica did not sync within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The branch's fence: the highest leader epoch that wrote there.
    pub fn branch_fence(&mut self, branch: &str) -> u64 {
        self.get(&keys::branch_fence(&id(branch)))
            .map_or(0, |v| v.parse().expect("a numeric fence"))
    }

    /// The last business day closed for `branch` (days since 1970-01-01).
    pub fn closed_day(&mut self, branch: &str) -> Option<i64> {
        self.get(&keys::branch_closed_day(&id(branch)))
            .map(|v| v.parse().expect("a numeric day"))
    }

    /// The ids of every ticket the branch's keys hold (the tickets
    /// themselves, not the outbox, which the statistics aggregator trims).
    pub fn tickets(&mut self, branch: &str) -> Vec<String> {
        let pattern = keys::branch_ticket(&id(branch), "*");
        let prefix = pattern.trim_end_matches('*').to_owned();
        let found: Vec<String> = redis::Commands::scan_match(&mut self.conn, &pattern)
            .unwrap_or_else(|e| panic!("SCAN {pattern}: {e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("SCAN {pattern}: {e}"));
        found
            .into_iter()
            .filter_map(|key| key.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }
}

/// Every ticket event the group's scripts publish, recorded from before the
/// nodes start. The outbox is no record of what was ever written: the
/// statistics aggregator consumes and trims it.
pub struct EventLog {
    events: Arc<Mutex<Vec<(String, Value)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EventLog {
    /// Subscribes to every branch's event channel; returns once subscribed.
    pub fn start(url: &str) -> EventLog {
        let mut conn = redis::Client::open(url)
            .and_then(|client| client.get_connection())
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        conn.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, subscribed) = std::sync::mpsc::channel();
        let (log, stopped) = (events.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut pubsub = conn.as_pubsub();
            pubsub
                .psubscribe("turnus:b:*:events")
                .expect("subscribe to the event channels");
            let _ = ready.send(());
            while !stopped.load(Ordering::SeqCst) {
                let Ok(message) = pubsub.get_message() else {
                    continue; // the read timeout: look at the stop flag
                };
                let channel = message.get_channel_name().to_owned();
                let payload: String = message.get_payload().unwrap_or_default();
                if let (Some(branch), Ok(event)) = (
                    channel
                        .strip_prefix("turnus:b:{")
                        .and_then(|rest| rest.strip_suffix("}:events")),
                    serde_json::from_str::<Value>(&payload),
                ) {
                    log.lock()
                        .expect("event log")
                        .push((branch.to_owned(), event));
                }
            }
        });
        subscribed
            .recv_timeout(Duration::from_secs(10))
            .expect("the event log subscribed");
        EventLog {
            events,
            stop,
            thread: Some(thread),
        }
    }

    /// The events of one branch so far, in the order they were published.
    pub fn of(&self, branch: &str) -> Vec<Value> {
        self.events
            .lock()
            .expect("event log")
            .iter()
            .filter(|(b, _)| b == branch)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether the node's `/metrics` says it leads (`None`: no answer).
pub async fn reports_leading(api: &ApiClient) -> Option<bool> {
    let text = api.metrics().await?;
    Some(metric_value(&text, "turnus_leader")? == 1.0)
}

/// Waits until `api` serves configuration `version` (nodes load it from
/// Redis on their own).
pub async fn wait_config(api: &ApiClient, branch: &str, version: u64) {
    eventually(
        &format!("{} to serve config version {version}", api.base_url),
        Duration::from_secs(30),
        || async move {
            let response = api
                .request(
                    reqwest::Method::GET,
                    &format!("/api/v1/branches/{branch}"),
                    Some(super::DISPLAY),
                    None,
                )
                .await;
            if !response.status().is_success() {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            (body["config_version"].as_u64() >= Some(version)).then_some(())
        },
    )
    .await;
}

/// The group: nodes (dropped first, so their logs print while Redis is
/// still up), the Redis, and a probe on it.
pub struct Cluster {
    pub nodes: Vec<NodeProcess>,
    configs: Vec<NodeConfig>,
    pub probe: RedisProbe,
    /// Every ticket event published in the group.
    pub events: EventLog,
    pub timing: Timing,
    _redis: RedisServer,
}

impl Cluster {
    /// Starts one node per id, all on a fresh Redis, and waits until each
    /// is ready.
    pub async fn start(ids: &[&str], timing: Timing) -> Cluster {
        let redis = RedisServer::start();
        let events = EventLog::start(&redis.url());
        let configs: Vec<NodeConfig> = ids
            .iter()
            .map(|id| node_config(id, &redis.url(), timing))
            .collect();
        let mut nodes: Vec<NodeProcess> = configs.iter().cloned().map(NodeProcess::start).collect();
        join_all(nodes.iter_mut().map(|n| n.wait_ready(START_WITHIN))).await;
        Cluster {
            nodes,
            configs,
            probe: RedisProbe::connect(&redis.url()),
            events,
            timing,
            _redis: redis,
        }
    }

    pub fn node(&self, id: &str) -> &NodeProcess {
        &self.nodes[self.index(id)]
    }

    pub fn node_mut(&mut self, id: &str) -> &mut NodeProcess {
        let index = self.index(id);
        &mut self.nodes[index]
    }

    fn index(&self, id: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id() == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Replaces node `id` (dead by now) with a fresh process of the same
    /// configuration, and waits until it is ready.
    pub async fn restart(&mut self, id: &str) {
        let index = self.index(id);
        self.nodes[index].kill();
        let config = self.configs[index].clone();
        self.nodes[index] = NodeProcess::start_ready(config).await;
    }

    /// Stops the group's Redis and starts it again on the same port with
    /// nothing in it (the test Redis keeps no data): a store that lost its
    /// data under the running nodes.
    pub async fn restart_redis_empty(&mut self) {
        self._redis.stop().await;
        self._redis.restart().await;
        self.probe = RedisProbe::connect(&self._redis.url());
    }

    /// Waits until some node holds the lease.
    pub async fn wait_leader(&mut self, within: Duration) -> Lease {
        let deadline = Instant::now() + within;
        loop {
            if let Some(lease) = self.probe.lease() {
                return lease;
            }
            assert!(
                Instant::now() < deadline,
                "no node took the lease within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Polls the lease every `every` until a node other than `old.node`
    /// holds it; returns that lease and the moment it was first seen.
    pub async fn wait_new_leader(
        &mut self,
        old: &Lease,
        within: Duration,
        every: Duration,
    ) -> (Lease, Instant) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(lease) = self.probe.lease() {
                if lease.node != old.node {
                    assert!(
                        lease.epoch > old.epoch,
                        "new leader {lease:?} with an epoch not above {old:?}"
                    );
                    return (lease, Instant::now());
                }
            }
            assert!(
                Instant::now() < deadline,
                "no node replaced leader {old:?} within {within:?} (lease now {:?})",
                self.probe.lease()
            );
            tokio::time::sleep(every).await;
        }
    }
}
