//! The media benchmark (issue 10 "Performance"): it prints figures and
//! asserts no timing (STYLE.md "Tests"); run it in release mode with
//! `scripts/bench-media.sh`. On one topology (master group of two, slave
//! group "north" of two, loopback):
//!
//! 1. ticket issuing on the slave leader for a few seconds, alone;
//! 2. a 1 GB file copied into the master's library and mirrored to both
//!    slave nodes, while the same issuing load runs: the issuing rate
//!    during the mirror against (1), and the peak RSS of every node;
//! 3. a 200 MB file mirrored master → slave leader → follower, timed from
//!    the leader's first byte to the follower's verified file, against a
//!    plain `curl` of the same bytes from the master and from the leader.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::slave::topology::{setup_branch, Links, Topology, BRANCH};
use crate::support::api::ApiClient;

const MB: u64 = 1024 * 1024;
const ISSUE_FOR: Duration = Duration::from_secs(5);
const KIOSKS: usize = 16;
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Writes `len` pseudo-random bytes to `path` in 1 MiB pieces (never the
/// whole file in memory), as an administrator copying a file in would.
fn write_file(path: &Path, len: u64, seed: u64) {
    use std::io::Write;
    let mut rng = fastrand::Rng::with_seed(seed);
    let partial = path.with_file_name(format!(
        ".{}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = std::fs::File::create(&partial).expect("create media file");
    let mut piece = vec![0u8; MB as usize];
    for _ in 0..len / MB {
        rng.fill(&mut piece);
        file.write_all(&piece).expect("write media file");
    }
    file.sync_all().expect("sync media file");
    // Renamed from a dot-name, as the library's rules suggest.
    std::fs::rename(&partial, path).expect("publish media file");
}

fn sha256_of(path: &Path) -> String {
    turnus::blobs::hash_file(path).expect("hash").0
}

/// Issues tickets from `KIOSKS` concurrent clients until `stop` is set (or
/// for `ISSUE_FOR` when it is never set by anyone else); returns tickets
/// per second.
async fn issuing_rate(api: &ApiClient, stop: Arc<AtomicBool>) -> f64 {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..KIOSKS)
        .map(|_| {
            let (api, issued, stop) = (api.clone(), issued.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && started.elapsed() < GIVE_UP_AFTER {
                    if api.try_issue(BRANCH, "cash").await.is_ok() {
                        issued.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("kiosk task");
    }
    issued.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the RSS of `pids` every 20 ms until stopped; returns the peaks.
fn sample_rss(pids: Vec<u32>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut peaks = vec![0u64; pids.len()];
        while !stop.load(Ordering::Relaxed) {
            for (peak, pid) in peaks.iter_mut().zip(&pids) {
                *peak = (*peak).max(rss_kb(*pid));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peaks
    })
}

/// Waits until `file` exists; returns when it was first seen.
async fn appears(file: &Path) -> Instant {
    let deadline = Instant::now() + GIVE_UP_AFTER;
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            file.display()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Instant::now()
}

fn blob(topology: &Topology, index: usize, dir: &str, sha: &str) -> PathBuf {
    topology.slaves[index]
        .data_dir()
        .join("media")
        .join(dir)
        .join(sha)
}

/// Seconds a plain `curl` takes to download `url` to /dev/null.
fn curl_seconds(url: &str) -> f64 {
    let output = Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "-w", "%{time_total}", url])
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {url} failed");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("curl time")
}

/// Seconds a plain `curl` takes to download `url` into `file` and have it
/// fsynced: the same durability a mirrored blob gets.
fn curl_to_disk_seconds(url: &str, file: &Path) -> f64 {
    let started = Instant::now();
    let status = Command::new("curl")
        .args(["-sf", "-o"])
        .arg(file)
        .arg(url)
        .status()
        .expect("run curl");
    assert!(status.success(), "curl {url} failed");
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .expect("fsync the download");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(file);
    seconds
}

#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-media.sh"]
async fn media_mirror() {
    let topology = Topology::start(Links::Direct).await;
    let library = topology.media_dir().to_owned();
    let version = setup_branch(topology.master()).await;
    topology.wait_slaves_at(version).await;
    let (leader_id, _) = topology.wait_slave_leader().await;
    let leader = topology.slave_index(&leader_id);
    let follower = 1 - leader;
    let leader_api = topology.slaves[leader].api().clone();

    // 1. Issuing alone.
    let alone_stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = alone_stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(ISSUE_FOR).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let alone = issuing_rate(&leader_api, alone_stop).await;
    timer.await.expect("timer");

    // 2. A 1 GB mirror with issuing alongside, RSS sampled.
    let big = library.join("big.bin");
    write_file(&big, 1024 * MB, 1);
    let big_sha = sha256_of(&big);
    let pids: Vec<u32> = topology
        .masters
        .iter()
        .chain(&topology.slaves)
        .map(|n| n.pid())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pids, stop.clone());
    // Issue from the leader's first byte until the follower holds the file.
    let big_started = appears(&blob(&topology, leader, "partial", &big_sha)).await;
    let mirrored = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (file, mirrored) = (
            blob(&topology, follower, "blobs", &big_sha),
            mirrored.clone(),
        );
        tokio::spawn(async move {
            appears(&file).await;
            mirrored.store(true, Ordering::Relaxed);
        })
    };
    let during = issuing_rate(&leader_api, mirrored).await;
    watcher.await.expect("watcher");
    let big_s = big_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peaks = sampler.await.expect("sampler");

    // 3. 200 MB master → leader → follower against plain curl.
    let file = library.join("ad-200.bin");
    write_file(&file, 200 * MB, 2);
    let sha = sha256_of(&file);
    let first_byte = appears(&blob(&topology, leader, "partial", &sha)).await;
    let at_leader = appears(&blob(&topology, leader, "blobs", &sha)).await;
    let at_follower = appears(&blob(&topology, follower, "blobs", &sha)).await;
    let chain_s = (at_follower - first_byte).as_secs_f64();
    let leader_s = (at_leader - first_byte).as_secs_f64();
    let curl_master = curl_seconds(&topology.master().url("/media/ad-200.bin"));
    let curl_leader = curl_seconds(&leader_api.url("/media/ad-200.bin"));
    let scratch = topology.slaves[leader].data_dir().join("curl-download");
    let curl_disk = curl_to_disk_seconds(&topology.master().url("/media/ad-200.bin"), &scratch);
    let rate = |seconds: f64| 200.0 / seconds;

    println!("\n| what | figure |\n|---|---|");
    println!("| issuing on the slave leader, alone ({KIOSKS} kiosks) | {alone:.0} tickets/s |");
    println!(
        "| issuing during the 1 GB mirror ({big_s:.1} s, leader's first byte → follower verified) | {during:.0} tickets/s: **{:.2}** of alone |",
        during / alone
    );
    let names = ["master-1", "master-2", "slave leader", "slave follower"];
    let order = [0, 1, 2 + leader, 2 + follower];
    for (name, at) in names.iter().zip(order) {
        println!(
            "| peak RSS while moving 1 GB, {name} | {:.1} MB |",
            peaks[at] as f64 / 1024.0
        );
    }
    println!(
        "| 200 MB master → leader (first byte → verified) | {leader_s:.2} s, {:.0} MB/s |",
        rate(leader_s)
    );
    println!(
        "| 200 MB master → leader → follower (first byte → follower verified) | {chain_s:.2} s, {:.0} MB/s |",
        rate(chain_s)
    );
    println!(
        "| plain curl of the same 200 MB from the master | {curl_master:.2} s, {:.0} MB/s |",
        rate(curl_master)
    );
    println!(
        "| plain curl of the same 200 MB from the leader | {curl_leader:.2} s, {:.0} MB/s |",
        rate(curl_leader)
    );
    println!(
        "| plain curl of the same 200 MB from the master into a file, fsynced | {curl_disk:.2} s, {:.0} MB/s |",
        rate(curl_disk)
    );
    println!(
        "| mirror chain rate / curl rate from the master (to /dev/null; to disk) | **{:.2}**; **{:.2}** |",
        curl_master / chain_s,
        curl_disk / chain_s
    );
    println!(
        "| one hop (master → leader) / curl from the master (to /dev/null; to disk) | {:.2}; {:.2} |",
        curl_master / leader_s,
        curl_disk / leader_s
    );
}
