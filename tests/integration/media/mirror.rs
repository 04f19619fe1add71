//! The media mirror with real processes and real files: a master group
//! (two nodes sharing one library directory) and a slave group "north"
//! (two nodes), from `slave::topology`.
//!
//! - a 50 MB file reaches both slave nodes byte-identical with one WAN copy;
//!   a byte flipped on the wire is rejected and fetched again; a delete at
//!   the master removes it everywhere and the player says `present: false`;
//! - the slave leader SIGKILLed at about 60 %: the new leader resumes,
//!   ≤ 1.2 × the size crosses the WAN;
//! - the link cut mid-file: resumed after the heal, ≤ 1.2 × the size;
//! - in all of them, a reader polling `/media/...` on the slave nodes sees
//!   404 or the complete file, never a part of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;

use super::upload;
use crate::slave::topology::{cluster_view, metric, setup_branch, Links, Topology, BRANCH, WITHIN};
use crate::support::api::ApiClient;
use crate::support::{eventually, ADMIN, DISPLAY};

pub(super) const MB: usize = 1024 * 1024;
/// Long enough for 50 MB through two hops on a loaded machine.
pub(super) const TRANSFER_WITHIN: Duration = Duration::from_secs(120);

pub(super) fn random_bytes(len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(len as u64);
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes);
    bytes
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    turnus::domain::media::hex(&sha2::Sha256::digest(bytes))
}

/// `GET /media/{path}` on a node: `Some(sha256 of the body)` on 200,
/// `None` on 404; any other answer, or a body whose length is not the
/// announced one, fails the test.
pub(super) async fn served_sha(api: &ApiClient, path: &str) -> Option<String> {
    let response = api
        .http
        .get(api.url(&format!("/media/{path}")))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    match response.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::OK => {
            let announced = response.content_length();
            let body = response.bytes().await.ok()?;
            assert_eq!(announced, Some(body.len() as u64), "short body for {path}");
            Some(sha256_hex(&body))
        }
        other => panic!("GET /media/{path} answered {other}"),
    }
}

/// Polls `/media/{path}` on every slave node until stopped; every 200 must
/// carry exactly `expected`. Returns how many complete reads it saw.
pub(super) fn watch_readers(topology: &Topology, path: &str, expected: String) -> Reader {
    let stop = Arc::new(AtomicBool::new(false));
    let complete = Arc::new(AtomicU64::new(0));
    let apis: Vec<ApiClient> = topology.slaves.iter().map(|s| s.api().clone()).collect();
    let (path, flag, count) = (path.to_owned(), stop.clone(), complete.clone());
    let task = tokio::spawn(async move {
        while !flag.load(Ordering::Relaxed) {
            for api in &apis {
                if let Some(sha) = served_sha(api, &path).await {
                    assert_eq!(sha, expected, "a reader saw a partial or wrong file");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Reader {
        stop,
        complete,
        task,
    }
}

pub(super) struct Reader {
    stop: Arc<AtomicBool>,
    complete: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    /// Stops polling; fails the test if a read saw a bad file.
    pub(super) async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("no reader saw a partial file");
        self.complete.load(Ordering::Relaxed)
    }
}

/// Blob bytes all master nodes have sent to peers.
pub(super) async fn master_bytes_sent(topology: &Topology) -> f64 {
    let mut total = 0.0;
    for master in &topology.masters {
        total += metric(master.api(), "turnus_media_blob_bytes_sent_total")
            .await
            .unwrap_or(0.0);
    }
    total
}

pub(super) async fn wait_served_everywhere(topology: &Topology, path: &str, sha: &str) {
    for slave in &topology.slaves {
        eventually(
            &format!("{} to serve {path} complete", slave.id()),
            TRANSFER_WITHIN,
            || async {
                (served_sha(slave.api(), path).await.as_deref() == Some(sha)).then_some(())
            },
        )
        .await;
    }
}

async fn player_items(api: &ApiClient) -> Vec<(String, bool)> {
    let response = api
        .request(
            Method::GET,
            &format!("/api/v1/branches/{BRANCH}/players/lobby"),
            Some(DISPLAY),
            None,
        )
        .await;
    let view: Value = response.json().await.expect("player JSON");
    view["playlist"]
        .as_array()
        .unwrap_or_else(|| panic!("no playlist in {view}"))
        .iter()
        .map(|i| {
            (
                i["media"].as_str().unwrap_or("").to_owned(),
                i["present"] == true,
            )
        })
        .collect()
}

/// The slave node index that leads now.
pub(super) async fn leader_index(topology: &Topology) -> usize {
    let (leader, _) = topology.wait_slave_leader().await;
    topology.slave_index(&leader)
}

/// Bytes of `sha` in the node's partial download (0 when none).
pub(super) fn partial_len(topology: &Topology, index: usize, sha: &str) -> u64 {
    let file = topology.slaves[index]
        .data_dir()
        .join("media/partial")
        .join(sha);
    std::fs::metadata(file).map_or(0, |m| m.len())
}

#[tokio::test]
async fn a_file_reaches_every_slave_node_with_one_wan_copy_and_leaves_with_the_delete() {
    let topology = Topology::start(Links::Proxied).await;
    let master = topology.master();
    let version = setup_branch(master).await;
    topology.wait_slaves_at(version).await;
    let content = random_bytes(50 * MB);
    let sha = sha256_hex(&content);
    let reader = watch_readers(&topology, "ads/big.bin", sha.clone());
    let before = master_bytes_sent(&topology).await;

    let (status, stored) = upload(master, "ads/big.bin", content).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    let player = json!({"name": "Lobby", "playlist": [
        {"media": "ads/big.bin", "duration_s": 10}, {"media": "ads/small.png", "duration_s": 5}]});
    let answer = master
        .request(
            Method::PUT,
            &format!("/api/v1/admin/branches/{BRANCH}/players/lobby"),
            Some(ADMIN),
            Some(player),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    wait_served_everywhere(&topology, "ads/big.bin", &sha).await;
    let sent = master_bytes_sent(&topology).await - before;
    let size = (50 * MB) as f64;
    assert!(
        sent >= size && sent <= 1.2 * size,
        "the master sent {sent} blob bytes for a {size}-byte file to a group of two"
    );
    for slave in &topology.slaves {
        let view = cluster_view(slave.api()).await;
        let media = &view["upstream"]["media"];
        eventually(
            "the cluster view to show the mirror complete",
            WITHIN,
            || async {
                let view = cluster_view(slave.api()).await;
                (view["upstream"]["media"]["missing"] == 0).then_some(())
            },
        )
        .await;
        assert_eq!(media["version"], stored["version"], "{view}");
    }

    // A byte flipped on the wire: rejected, fetched again, served intact.
    topology.flip_byte_once(MB as u64);
    let small = random_bytes(4 * MB);
    let small_sha = sha256_hex(&small);
    upload(master, "ads/small.png", small).await;
    wait_served_everywhere(&topology, "ads/small.png", &small_sha).await;
    let mut rejected = 0.0;
    for slave in &topology.slaves {
        rejected += metric(slave.api(), "turnus_media_blobs_rejected_total")
            .await
            .unwrap_or(0.0);
    }
    assert!(rejected >= 1.0, "the flipped byte went unnoticed");
    for slave in &topology.slaves {
        let items = player_items(slave.api()).await;
        assert_eq!(
            items,
            [
                ("ads/big.bin".to_owned(), true),
                ("ads/small.png".to_owned(), true)
            ]
        );
    }

    // Deleted at the master: gone from every slave node, disk included.
    master.admin_delete("/api/v1/admin/media/ads/big.bin").await;
    for slave in &topology.slaves {
        eventually(
            &format!("{} to drop the file", slave.id()),
            WITHIN,
            || async {
                served_sha(slave.api(), "ads/big.bin")
                    .await
                    .is_none()
                    .then_some(())
            },
        )
        .await;
        let blob = slave.data_dir().join("media/blobs").join(&sha);
        eventually("the blob file to be deleted", WITHIN, || async {
            (!blob.exists()).then_some(())
        })
        .await;
        let items = player_items(slave.api()).await;
        assert_eq!(
            items,
            [
                ("ads/big.bin".to_owned(), false),
                ("ads/small.png".to_owned(), true)
            ]
        );
    }
    assert!(reader.finish().await > 0, "the reader never saw the file");
}

/// Slave nodes download at most this fast in the fault tests, so that a
/// fault can be placed in the middle of a transfer.
fn throttled() -> [(&'static str, String); 1] {
    [(
        "TURNUS__MEDIA__BANDWIDTH_LIMIT_BYTES_PER_S",
        (16 * MB).to_string(),
    )]
}

#[tokio::test]
async fn the_slave_leader_killed_mid_file_is_resumed_by_the_new_leader() {
    let mut topology = Topology::start_with_slave_env(Links::Direct, &throttled()).await;
    let content = random_bytes(50 * MB);
    let sha = sha256_hex(&content);
    let size = content.len() as u64;
    let reader = watch_readers(&topology, "ad.mp4", sha.clone());
    let leader = leader_index(&topology).await;
    upload(topology.master(), "ad.mp4", content).await;
    eventually("the leader to be 60 % through", TRANSFER_WITHIN, || async {
        (partial_len(&topology, leader, &sha) >= size * 6 / 10).then_some(())
    })
    .await;
    topology.slaves[leader].kill();
    let survivor = 1 - leader;
    eventually(
        "the survivor to serve the file",
        TRANSFER_WITHIN,
        || async {
            (served_sha(topology.slaves[survivor].api(), "ad.mp4")
                .await
                .as_deref()
                == Some(sha.as_str()))
            .then_some(())
        },
    )
    .await;
    let sent = master_bytes_sent(&topology).await;
    assert!(
        sent <= 1.2 * size as f64,
        "the master sent {sent} bytes for a {size}-byte file: not resumed"
    );
    // The killed node comes back and gets the file from its group.
    topology.restart_slave(leader).await;
    wait_served_everywhere(&topology, "ad.mp4", &sha).await;
    let after = master_bytes_sent(&topology).await;
    assert!(
        after <= 1.2 * size as f64,
        "the restarted node fetched over the WAN: {after} bytes"
    );
    reader.finish().await;
}

#[tokio::test]
async fn a_link_cut_mid_file_resumes_after_the_heal() {
    let topology = Topology::start_with_slave_env(Links::Proxied, &throttled()).await;
    let content = random_bytes(30 * MB);
    let sha = sha256_hex(&content);
    let size = content.len() as u64;
    let reader = watch_readers(&topology, "clip.webm", sha.clone());
    let leader = leader_index(&topology).await;
    upload(topology.master(), "clip.webm", content).await;
    eventually("the leader to be half way", TRANSFER_WITHIN, || async {
        (partial_len(&topology, leader, &sha) >= size / 2).then_some(())
    })
    .await;
    topology.cut_links();
    let cut_at = partial_len(&topology, leader, &sha);
    assert!(cut_at < size, "finished before the cut");
    topology.heal_links();
    wait_served_everywhere(&topology, "clip.webm", &sha).await;
    let sent = master_bytes_sent(&topology).await;
    assert!(
        sent <= 1.2 * size as f64,
        "the master sent {sent} bytes for a {size}-byte file (cut at {cut_at}): not resumed"
    );
    reader.finish().await;
}

#[tokio::test]
async fn a_full_disk_is_reported_and_not_retried_in_a_loop() {
    // No disk has an exabyte free: every download is refused before it starts.
    let full = [("TURNUS__MEDIA__MIN_FREE_BYTES", (1u64 << 60).to_string())];
    let topology = Topology::start_with_slave_env(Links::Direct, &full).await;
    let (status, _) = upload(topology.master(), "poster.svg", random_bytes(1000)).await;
    assert_eq!(status, StatusCode::OK);
    for slave in &topology.slaves {
        let media = eventually("the slave to report the full disk", WITHIN, || async {
            let view = cluster_view(slave.api()).await;
            let media = view["upstream"]["media"].clone();
            let said = media["problem"]
                .as_str()
                .is_some_and(|p| p.contains("free"));
            said.then_some(media)
        })
        .await;
        assert_eq!(media["missing"], 1, "{media}");
        assert_eq!(media["bytes_missing"], 1000, "{media}");
    }
    assert_eq!(master_bytes_sent(&topology).await, 0.0, "downloaded anyway");
    let log = topology.slaves[0].log() + &topology.slaves[1].log();
    let reports = log.matches("media mirror stopped: disk full").count();
    assert!(
        (1..=6).contains(&reports),
        "{reports} disk-full reports: retried in a loop, or never said"
    );
}
