//! The media mirror's upkeep, with real processes and real files (the
//! topology of `slave::topology`: a master group of two, slave group
//! "north" of two):
//!
//! - `media.bandwidth_limit_bytes_per_s`: a real download from the master
//!   takes at least size / limit, and the leader's received-bytes metric
//!   never runs ahead of the limit while `upstream.media` shows the file
//!   missing (a lower bound on time is a behaviour, not a timing budget);
//! - `media.busy_bandwidth_bytes_per_s`: while the slave leader issues
//!   tickets at more than 20 a second, its download from the master and the
//!   media it serves go no faster than the busy pace (ticket changes come
//!   first), bounded the same way;
//! - periodic re-verification (`media.verify_interval_s`): a blob that rots
//!   on a slave node's disk is found, no longer served, and fetched again
//!   from the group, not from the master.

use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::mirror::{
    leader_index, master_bytes_sent, random_bytes, served_sha, sha256_hex, wait_served_everywhere,
    watch_readers, MB, TRANSFER_WITHIN,
};
use super::upload;
use crate::slave::topology::{cluster_view, metric, setup_branch, Links, Topology, BRANCH, WITHIN};
use crate::support::eventually;
use crate::support::load::Load;

fn blob_file(topology: &Topology, index: usize, sha: &str) -> PathBuf {
    topology.slaves[index]
        .data_dir()
        .join("media/blobs")
        .join(sha)
}

#[tokio::test]
async fn the_bandwidth_limit_holds_a_real_download_back() {
    const LIMIT: u64 = 4 * MB as u64;
    // What a pacing limiter may let through before its first pause.
    const BURST: u64 = MB as u64;
    let limit = [(
        "TURNUS__MEDIA__BANDWIDTH_LIMIT_BYTES_PER_S",
        LIMIT.to_string(),
    )];
    let topology = Topology::start_with_slave_env(Links::Direct, &limit).await;
    let leader = leader_index(&topology).await;
    let leader_api = topology.slaves[leader].api().clone();
    let content = random_bytes(12 * MB);
    let (sha, size) = (sha256_hex(&content), content.len() as u64);
    let received_before = metric(&leader_api, "turnus_media_blob_bytes_received_total")
        .await
        .unwrap_or(0.0) as u64;
    let (status, _) = upload(topology.master(), "slow.mp4", content).await;
    assert_eq!(status, StatusCode::OK);

    // From the moment the leader opens its partial file (before it asks for
    // the first byte), the bytes it has received can never be more than the
    // limit allows for the time gone by.
    let partial = topology.slaves[leader]
        .data_dir()
        .join("media/partial")
        .join(&sha);
    let waiting = Instant::now();
    while !partial.exists() {
        assert!(
            waiting.elapsed() < TRANSFER_WITHIN,
            "the leader never started"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    let complete = blob_file(&topology, leader, &sha);
    let mut samples = 0;
    let mut saw_missing = false;
    while !complete.exists() {
        assert!(
            started.elapsed() < TRANSFER_WITHIN,
            "the download never ended"
        );
        let media = cluster_view(&leader_api).await["upstream"]["media"].clone();
        let received = metric(&leader_api, "turnus_media_blob_bytes_received_total")
            .await
            .unwrap_or(0.0) as u64
            - received_before;
        // Taken after the answers: the allowance is generous, never tight.
        let allowed = (LIMIT as f64 * started.elapsed().as_secs_f64()) as u64 + BURST;
        assert!(
            received <= allowed,
            "{received} bytes received {:?} after the first one: the limit allows {allowed}",
            started.elapsed()
        );
        if received < size && !complete.exists() {
            assert_eq!(media["missing"], 1, "{media}");
            assert_eq!(media["bytes_missing"], size, "{media}");
            saw_missing = true;
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    let at_least = Duration::from_secs_f64((size - BURST) as f64 / LIMIT as f64);
    assert!(
        took >= at_least,
        "{size} bytes at {LIMIT} bytes/s took {took:?}, less than {at_least:?}"
    );
    assert!(saw_missing && samples >= 10, "{samples} samples only");
    wait_served_everywhere(&topology, "slow.mp4", &sha).await;
    let media = cluster_view(&leader_api).await["upstream"]["media"].clone();
    assert_eq!(media["missing"], 0, "{media}");
}

#[tokio::test]
async fn a_node_busy_with_tickets_moves_media_at_the_busy_pace() {
    const PACE: u64 = 2 * MB as u64;
    const BURST: u64 = MB as u64;
    const WATCHED: Duration = Duration::from_secs(3);
    let pace = [(
        "TURNUS__MEDIA__BUSY_BANDWIDTH_BYTES_PER_S",
        PACE.to_string(),
    )];
    let topology = Topology::start_with_slave_env(Links::Direct, &pace).await;
    let version = setup_branch(topology.master()).await;
    topology.wait_slaves_at(version).await;
    let leader = leader_index(&topology).await;
    let leader_api = topology.slaves[leader].api().clone();
    let received = || async {
        metric(&leader_api, "turnus_media_blob_bytes_received_total")
            .await
            .unwrap_or(0.0) as u64
    };
    let received_before = received().await;

    // A rush at the leader's kiosks, then a 12 MB file at the master.
    let rush = Load::start(vec![leader_api.clone()], BRANCH, "cash");
    rush.wait_more(50, "the rush to start").await;
    let content = random_bytes(12 * MB);
    let (sha, size) = (sha256_hex(&content), content.len() as u64);
    let (status, _) = upload(topology.master(), "rush.mp4", content).await;
    assert_eq!(status, StatusCode::OK);
    let partial = topology.slaves[leader]
        .data_dir()
        .join("media/partial")
        .join(&sha);
    eventually("the leader to start", TRANSFER_WITHIN, || async {
        partial.exists().then_some(())
    })
    .await;

    // The download, watched for a few seconds of the rush.
    let started = Instant::now();
    let issued_at_start = rush.count();
    while started.elapsed() < WATCHED {
        let got = received().await - received_before;
        let allowed = (PACE as f64 * started.elapsed().as_secs_f64()) as u64 + BURST;
        assert!(
            got <= allowed,
            "{got} bytes received {:?} into the rush: the busy pace allows {allowed}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = (rush.count() - issued_at_start) as f64 / started.elapsed().as_secs_f64();
    assert!(rate >= 40.0, "a rush of {rate:.0} tickets/s is no rush");

    // After the rush the mirror finishes; then a player reading the whole
    // file from the busy leader gets it at the busy pace too.
    rush.finish().await;
    wait_served_everywhere(&topology, "rush.mp4", &sha).await;
    let rush = Load::start(vec![leader_api.clone()], BRANCH, "cash");
    rush.wait_more(50, "the second rush to start").await;
    // Reading the file everywhere just now judged the leader idle: a rush
    // counts from the next judgement, one window on.
    tokio::time::sleep(turnus::blobs::pace::WINDOW * 2).await;
    let reading = Instant::now();
    assert_eq!(served_sha(&leader_api, "rush.mp4").await, Some(sha));
    let took = reading.elapsed();
    rush.finish().await;
    let at_least = Duration::from_secs_f64((size - BURST) as f64 / PACE as f64);
    assert!(
        took >= at_least,
        "{size} bytes served in {took:?} by a busy node, less than {at_least:?}"
    );
}

#[tokio::test]
async fn a_blob_rotting_on_a_slave_disk_is_found_and_fetched_again_from_the_group() {
    let verify = [("TURNUS__MEDIA__VERIFY_INTERVAL_S", "1".to_owned())];
    let topology = Topology::start_with_slave_env(Links::Direct, &verify).await;
    let content = random_bytes(2 * MB);
    let sha = sha256_hex(&content);
    let (status, _) = upload(topology.master(), "ads/poster.png", content).await;
    assert_eq!(status, StatusCode::OK);
    wait_served_everywhere(&topology, "ads/poster.png", &sha).await;
    let sent_before = master_bytes_sent(&topology).await;

    // The leader's copy rots in place: same size, one byte different. The
    // leader could fetch it from the master; it must ask its group first.
    let leader = leader_index(&topology).await;
    let leader_api = topology.slaves[leader].api().clone();
    let rejected = || async {
        metric(&leader_api, "turnus_media_blobs_rejected_total")
            .await
            .unwrap_or(0.0)
    };
    let rejected_before = rejected().await;
    let file = blob_file(&topology, leader, &sha);
    let mut rotten = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&file)
        .expect("open the held blob");
    rotten.seek(SeekFrom::Start(1000)).expect("seek");
    rotten
        .write_all(&[content_byte(&file, 1000) ^ 0x40])
        .expect("rot one byte");
    rotten.sync_all().expect("sync");
    drop(rotten);

    eventually("the re-verify to find the rotten blob", WITHIN, || async {
        (rejected().await > rejected_before).then_some(())
    })
    .await;
    // From now on, readers get the right bytes or 404, never the rotten
    // ones, and the file comes back.
    let reader = watch_readers(&topology, "ads/poster.png", sha.clone());
    eventually("the leader to serve the file again", WITHIN, || async {
        (served_sha(&leader_api, "ads/poster.png").await.as_deref() == Some(sha.as_str()))
            .then_some(())
    })
    .await;
    assert!(reader.finish().await > 0, "the reader never saw the file");
    assert_eq!(
        std::fs::read(&file).map(|b| sha256_hex(&b)).ok().as_deref(),
        Some(sha.as_str()),
        "the copy on disk is intact again"
    );
    assert_eq!(
        master_bytes_sent(&topology).await,
        sent_before,
        "fetched again over the WAN instead of from the group"
    );
}

/// The byte at `offset` of `file`.
fn content_byte(file: &std::path::Path, offset: usize) -> u8 {
    std::fs::read(file).expect("read the blob")[offset]
}
