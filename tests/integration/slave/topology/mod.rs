//! The slave-group test bed: a master group "central" (two nodes, one
//! Redis) and a slave group "north" (two nodes, another Redis), real
//! `turnus` processes, optionally with a fault [`Proxy`] on every slave →
//! master link, and the helpers that set it up and read it (branch,
//! changes, served version, cluster view, metrics). The background load
//! the tests run against it is `load`'s, re-exported here: kiosk and
//! counter traffic ([`Traffic`]) and a sampler of the configuration version
//! every slave node serves ([`VersionSampler`]).

mod load;

pub use load::{Traffic, VersionSampler};

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::api::ApiClient;
use crate::support::process::{NodeConfig, NodeProcess};
use crate::support::proxy::Proxy;
use crate::support::redis::RedisServer;
use crate::support::{eventually, DISPLAY, PEER};

/// The slave group under test.
pub const GROUP: &str = "north";
/// The branch it serves, with service `cash` (prefix C) and counter `c1`.
pub const BRANCH: &str = "porto";
/// Deadline for anything that should take a second or two (a failover, a
/// mirrored change), generous for a loaded 2-core machine.
pub const WITHIN: Duration = Duration::from_secs(30);

/// Shorter leader timings than the defaults, so that a failover takes
/// about 1.5 s; none of these tests is about the timing itself.
fn leader_env() -> Vec<(String, String)> {
    [
        ("TURNUS__LEADER__LEASE_TTL_MS", "1500"),
        ("TURNUS__LEADER__RENEW_INTERVAL_MS", "500"),
        ("TURNUS__LEADER__RENEW_DEADLINE_MS", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// How the slave nodes reach the master nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Straight to the master nodes.
    Direct,
    /// Through one proxy per (slave node, master node) pair.
    Proxied,
}

pub struct Topology {
    // Nodes first: fields drop in order, so they stop before their Redis.
    pub masters: Vec<NodeProcess>,
    pub slaves: Vec<NodeProcess>,
    /// Slave processes replaced by [`restart_slave`](Self::restart_slave),
    /// kept so their logs are printed if the test fails.
    retired: Vec<NodeProcess>,
    slave_configs: Vec<NodeConfig>,
    /// `proxies[i][j]`: slave node `i` → master node `j`.
    proxies: Vec<Vec<Proxy>>,
    /// The master nodes' shared media library.
    media_dir: tempfile::TempDir,
    // Held until drop.
    pub master_redis: RedisServer,
    pub slave_redis: RedisServer,
}

impl Topology {
    /// Starts both groups and waits until every node is ready. The master
    /// nodes are ready before the slaves start, so the slave leader's first
    /// poll finds them (instead of backing off).
    pub async fn start(links: Links) -> Topology {
        Topology::start_with(links, &[]).await
    }

    /// [`start`](Self::start), with `extra` environment on every node.
    pub async fn start_with(links: Links, extra: &[(&str, &str)]) -> Topology {
        Topology::start_full(links, extra, &[], [None, None]).await
    }

    /// [`start`](Self::start), with more `TURNUS__*` variables for the
    /// slave nodes only.
    pub async fn start_with_slave_env(links: Links, slave_env: &[(&str, String)]) -> Topology {
        Topology::start_full(links, &[], slave_env, [None, None]).await
    }

    /// [`start`](Self::start), with the slave nodes' data directories where
    /// given (the caller keeps them).
    pub async fn start_with_slave_dirs(links: Links, dirs: [Option<PathBuf>; 2]) -> Topology {
        Topology::start_full(links, &[], &[], dirs).await
    }

    async fn start_full(
        links: Links,
        extra: &[(&str, &str)],
        slave_env: &[(&str, String)],
        slave_dirs: [Option<PathBuf>; 2],
    ) -> Topology {
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let media_dir = tempfile::tempdir().expect("a temp media library");
        let master_redis = RedisServer::start();
        let slave_redis = RedisServer::start();
        let master_configs: Vec<NodeConfig> = ["central-1", "central-2"]
            .into_iter()
            .map(|id| {
                let mut config = NodeConfig::new(id).redis(&master_redis.url());
                config.env = leader_env();
                config.env.extend(extra.iter().cloned());
                config.env.push((
                    "TURNUS__MEDIA__LIBRARY_DIR".to_owned(),
                    media_dir.path().display().to_string(),
                ));
                config
            })
            .collect();
        let mut masters: Vec<NodeProcess> =
            master_configs.into_iter().map(NodeProcess::start).collect();
        futures::future::join_all(masters.iter_mut().map(|n| n.wait_ready(START))).await;

        let mut proxies = Vec::new();
        let mut slave_configs = Vec::new();
        for (id, dir) in ["north-1", "north-2"].into_iter().zip(slave_dirs) {
            let urls: Vec<String> = match links {
                Links::Direct => masters.iter().map(|m| m.api().base_url.clone()).collect(),
                Links::Proxied => {
                    let mut row = Vec::new();
                    for master in &masters {
                        row.push(Proxy::start(([127, 0, 0, 1], master.port()).into()).await);
                    }
                    let urls = row
                        .iter()
                        .map(|p| format!("http://127.0.0.1:{}", p.port()))
                        .collect();
                    proxies.push(row);
                    urls
                }
            };
            let mut config = NodeConfig::new(id).redis(&slave_redis.url());
            if let Some(dir) = dir {
                config = config.data_dir(&dir);
            }
            config.env = leader_env();
            config.env.extend(extra.iter().cloned());
            config.env.extend(
                [
                    ("TURNUS__NODE__ROLE", "slave".to_owned()),
                    ("TURNUS__NODE__GROUP", GROUP.to_owned()),
                    ("TURNUS__UPSTREAM__MASTER_URLS", urls.join(",")),
                    ("TURNUS__UPSTREAM__TOKEN", PEER.to_owned()),
                ]
                .map(|(k, v)| (k.to_owned(), v)),
            );
            config
                .env
                .extend(slave_env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
            slave_configs.push(config);
        }
        let mut slaves: Vec<NodeProcess> = slave_configs
            .iter()
            .cloned()
            .map(NodeProcess::start)
            .collect();
        futures::future::join_all(slaves.iter_mut().map(|n| n.wait_ready(START))).await;
        Topology {
            masters,
            slaves,
            retired: Vec::new(),
            slave_configs,
            proxies,
            media_dir,
            master_redis,
            slave_redis,
        }
    }

    /// The master nodes' shared media library directory.
    pub fn media_dir(&self) -> &std::path::Path {
        self.media_dir.path()
    }

    /// The first master node's API (where tests administer).
    pub fn master(&self) -> &ApiClient {
        self.masters[0].api()
    }

    /// Cuts every slave → master link (open connections are dropped, new
    /// ones refused).
    pub fn cut_links(&self) {
        self.proxies.iter().flatten().for_each(Proxy::cut);
    }

    pub fn heal_links(&self) {
        self.proxies.iter().flatten().for_each(Proxy::heal);
    }

    /// Every slave → master link loses `share` of the answers.
    pub fn lossy_links(&self, share: f64) {
        self.proxies
            .iter()
            .flatten()
            .for_each(|p| p.drop_responses(share));
    }

    /// The index of the master node with this id.
    pub fn master_index(&self, id: &str) -> usize {
        self.masters
            .iter()
            .position(|m| m.id() == id)
            .unwrap_or_else(|| panic!("no master node {id}"))
    }

    /// Every slave → master proxy flips one byte of what the master sends,
    /// `at` bytes into a connection, once.
    pub fn flip_byte_once(&self, at: u64) {
        self.proxies
            .iter()
            .flatten()
            .for_each(|p| p.flip_byte_once(at));
    }

    /// Starts slave node `index` again with the same configuration (after a
    /// kill) and waits until it is ready.
    pub async fn restart_slave(&mut self, index: usize) {
        let fresh = NodeProcess::start_ready(self.slave_configs[index].clone()).await;
        let old = std::mem::replace(&mut self.slaves[index], fresh);
        self.retired.push(old);
    }

    /// The index of the slave node with this id.
    pub fn slave_index(&self, id: &str) -> usize {
        self.slaves
            .iter()
            .position(|s| s.id() == id)
            .unwrap_or_else(|| panic!("no slave node {id}"))
    }

    /// The slave group's lease as its Redis holds it: `(node, epoch)`.
    pub async fn slave_lease(&self) -> Option<(String, u64)> {
        let client = redis::Client::open(self.slave_redis.url()).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let value: Option<String> = redis::cmd("GET")
            .arg(turnus::store::keys::group_lease(&crate::support::id(GROUP)))
            .query_async(&mut conn)
            .await
            .ok()?;
        let (node, epoch) = value?
            .rsplit_once('|')
            .map(|(n, e)| (n.to_owned(), e.to_owned()))?;
        Some((node, epoch.parse().ok()?))
    }

    /// Waits until the slave group has a leader; returns `(node, epoch)`.
    pub async fn wait_slave_leader(&self) -> (String, u64) {
        eventually("the slave group to have a leader", WITHIN, || {
            self.slave_lease()
        })
        .await
    }

    /// Waits until every slave node serves exactly `version` of [`BRANCH`].
    pub async fn wait_slaves_at(&self, version: u64) {
        for slave in &self.slaves {
            eventually(
                &format!("{} to serve configuration version {version}", slave.id()),
                WITHIN,
                || async {
                    let served = served_version(slave.api()).await?;
                    assert!(
                        served <= version,
                        "{} serves version {served}, above the master's {version}",
                        slave.id()
                    );
                    (served == version).then_some(())
                },
            )
            .await;
        }
    }
}

const START: Duration = crate::support::process::START_WITHIN;

/// Creates [`BRANCH`] on the master, served by [`GROUP`], with service
/// `cash` and counter `c1`; returns the configuration version.
pub async fn setup_branch(master: &ApiClient) -> u64 {
    master
        .put_branch(
            BRANCH,
            json!({"name": "Porto", "timezone": "Europe/Lisbon", "group": GROUP}),
        )
        .await;
    master
        .put_service(
            BRANCH,
            "cash",
            json!({"name": "Cash", "prefix": "C", "target_wait_s": 600}),
        )
        .await;
    version_of(&master.put_counter(BRANCH, "c1", &[("cash", 1)]).await)
}

/// One more administrative change on the master (renames service `cash`);
/// returns the new configuration version.
pub async fn publish_change(master: &ApiClient, n: usize) -> u64 {
    let body = json!({"name": format!("Cash {n}"), "prefix": "C", "target_wait_s": 600});
    version_of(&master.put_service(BRANCH, "cash", body).await)
}

pub fn version_of(answer: &Value) -> u64 {
    answer["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no version in {answer}"))
}

/// The `config_version` a node serves [`BRANCH`] with, or `None` when it
/// does not answer 200 within a second (down, not ready, not mirrored yet).
pub async fn served_version(api: &ApiClient) -> Option<u64> {
    let response = api
        .http
        .get(api.url(&format!("/api/v1/branches/{BRANCH}")))
        .bearer_auth(DISPLAY)
        .timeout(Duration::from_secs(1))
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["config_version"].as_u64()
}

/// `GET /api/v1/cluster` on one node.
pub async fn cluster_view(api: &ApiClient) -> Value {
    let response = api
        .request(Method::GET, "/api/v1/cluster", Some(DISPLAY), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "GET /api/v1/cluster");
    response.json().await.expect("cluster view is JSON")
}

/// One sample of a metric without labels from `/metrics`.
pub async fn metric(api: &ApiClient, name: &str) -> Option<f64> {
    let text = api
        .http
        .get(api.url("/metrics"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|line| line.split([' ', '{']).next() == Some(name))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}
