//! The media benchmark (issue 10 "Performance"): it prints figures and
//! asserts no timing (STYLE.md "Tests"); run it in release mode with
//! `scripts/bench-media.sh`. On one topology (master group of two, slave
//! group "north" of two, loopback):
//!
//! 1. ticket issuing on the slave leader for a few seconds, alone (and
//!    again after (2): the yardstick is the mean of the two);
//! 2. a 1 GB file copied into the master's library and mirrored to both
//!    slave nodes, with the same issuing load for the mirror's first few
//!    seconds: the issuing rate then against (1), the mirror's rate while
//!    the leader is busy with tickets (`media.busy_bandwidth_bytes_per_s`)
//!    and after, and the peak RSS of every node;
//!
//! and, in `media_mirror_rate`, three rounds of: a 200 MB file mirrored
//! master → slave leader → follower, timed from the moment the leader opens
//! its partial file to the follower's verified, fsynced file, against plain
//! `curl` downloads of the same bytes from the master in the same round: to
//! /dev/null, into a file, into a file then fsynced (one copy, the
//! durability a mirrored blob has: the goal's yardstick), and two at once
//! into two fsynced files (the chain's two copies on this machine's one
//! disk). CPU seconds of every process are printed too: steadier than
//! wall time on a loaded machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::slave::topology::{metric, setup_branch, Links, Topology, BRANCH};
use crate::support::api::ApiClient;

const MB: u64 = 1024 * 1024;
const ISSUE_FOR: Duration = Duration::from_secs(5);
const WARM_UP: Duration = Duration::from_secs(2);
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

/// Issues tickets from `KIOSKS` concurrent clients for `length`; returns
/// tickets per second.
async fn issuing_for(api: &ApiClient, length: Duration) -> f64 {
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..KIOSKS)
        .map(|_| {
            let (api, issued) = (api.clone(), issued.clone());
            tokio::spawn(async move {
                while started.elapsed() < length {
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

    let pids: Vec<u32> = topology
        .masters
        .iter()
        .chain(&topology.slaves)
        .map(|n| n.pid())
        .collect();

    // 1. Issuing alone, after a warm-up (connections, the first scripts).
    issuing_for(&leader_api, WARM_UP).await;
    let cpu = Cpu::take(&pids);
    let alone = issuing_for(&leader_api, ISSUE_FOR).await;
    let cpu_alone = cpu.since(&pids);

    // 2. A 1 GB mirror; the same issuing for its first ISSUE_FOR (from the
    // leader's first byte), then the rest of it alone; RSS sampled.
    let big = library.join("big.bin");
    write_file(&big, 1024 * MB, 1);
    let big_sha = sha256_of(&big);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(pids.clone(), stop.clone());
    let received = || async {
        metric(&leader_api, "turnus_media_blob_bytes_received_total")
            .await
            .unwrap_or(0.0)
            / MB as f64
    };
    let received_before = received().await;
    let big_started = appears(&blob(&topology, leader, "partial", &big_sha)).await;
    let cpu = Cpu::take(&pids);
    let during = issuing_for(&leader_api, ISSUE_FOR).await;
    let cpu_during = cpu.since(&pids);
    let busy_mb = received().await - received_before;
    let busy_s = big_started.elapsed().as_secs_f64();
    let at_follower = blob(&topology, follower, "blobs", &big_sha);
    let ended_during = at_follower.exists();
    appears(&at_follower).await;
    let big_s = big_started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let peaks = sampler.await.expect("sampler");
    let after = issuing_for(&leader_api, ISSUE_FOR).await;

    println!("\n| what | figure |\n|---|---|");
    // Each window's tickets lengthen the queue, and the rate drifts down a
    // little with it: the yardstick brackets the mirror.
    let yardstick = (alone + after) / 2.0;
    println!(
        "| issuing on the slave leader alone ({KIOSKS} kiosks), before and after the mirror | {alone:.0} and {after:.0} tickets/s, mean {yardstick:.0} |"
    );
    println!(
        "| issuing during the first {busy_s:.1} s of the 1 GB mirror | {during:.0} tickets/s: **{:.2}** of alone (the mean; {:.2} of before){} |",
        during / yardstick,
        during / alone,
        if ended_during { " (the mirror ended before the issuing did)" } else { "" }
    );
    println!(
        "| the mirror meanwhile (slave leader busy with tickets) | {busy_mb:.0} MB received, {:.1} MB/s |",
        busy_mb / busy_s
    );
    println!(
        "| the rest of the mirror, no tickets | {:.0} MB more until the follower held the file, {:.0} MB/s; the whole 1 GB in {big_s:.1} s |",
        1024.0 - busy_mb,
        (1024.0 - busy_mb) / (big_s - busy_s)
    );
    let names = ["master-1", "master-2", "slave leader", "slave follower"];
    let order = [0, 1, 2 + leader, 2 + follower];
    for (what, cpu) in [("alone", cpu_alone), ("during the mirror", cpu_during)] {
        let nodes: Vec<String> = names
            .iter()
            .zip(order)
            .map(|(name, at)| format!("{name} {:.2}", cpu.nodes[at]))
            .collect();
        println!(
            "| CPU seconds while issuing {what} | {}; this machine: {} |",
            nodes.join(", "),
            cpu.machine
        );
    }
    for (name, at) in names.iter().zip(order) {
        println!(
            "| peak RSS while moving 1 GB, {name} | {:.1} MB |",
            peaks[at] as f64 / 1024.0
        );
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second
}

/// CPU seconds of some processes, and of the machine by kind (`/proc/stat`).
struct Cpu {
    nodes: Vec<f64>,
    machine: Vec<f64>,
}

/// The kinds of `/proc/stat`'s `cpu` line, in its order.
const CPU_KINDS: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

impl Cpu {
    fn take(pids: &[u32]) -> Cpu {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let machine = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .take(CPU_KINDS.len())
            .map(|v| v.parse::<f64>().unwrap_or(0.0) / per_second)
            .collect();
        Cpu {
            nodes: pids.iter().map(|&pid| cpu_seconds(pid)).collect(),
            machine,
        }
    }

    /// What was used since `self`, the machine's as "kind seconds" text.
    fn since(&self, pids: &[u32]) -> CpuUsed {
        let now = Cpu::take(pids);
        let nodes = now
            .nodes
            .iter()
            .zip(&self.nodes)
            .map(|(a, b)| a - b)
            .collect();
        let machine = CPU_KINDS
            .iter()
            .zip(now.machine.iter().zip(&self.machine))
            .map(|(kind, (a, b))| format!("{kind} {:.2}", a - b))
            .collect::<Vec<_>>()
            .join(", ");
        CpuUsed { nodes, machine }
    }
}

struct CpuUsed {
    nodes: Vec<f64>,
    machine: String,
}

/// CPU seconds used by the waited-for children of this process so far.
fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the plain-data struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// How a plain curl download is kept.
#[derive(Clone, Copy)]
enum Keep {
    Discard,
    File,
    Fsynced,
}

/// Runs `curl` on `url` into each of `files` at once (or to /dev/null);
/// returns wall seconds (fsync included when asked) and curl's CPU seconds.
fn curl(url: &str, files: &[PathBuf], keep: Keep) -> (f64, f64) {
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let targets: Vec<PathBuf> = match keep {
        Keep::Discard => vec![PathBuf::from("/dev/null")],
        Keep::File | Keep::Fsynced => files.to_vec(),
    };
    let children: Vec<_> = targets
        .iter()
        .map(|file| {
            Command::new("curl")
                .args(["-sf", "-o"])
                .arg(file)
                .arg(url)
                .spawn()
                .expect("run curl")
        })
        .collect();
    for mut child in children {
        assert!(
            child.wait().expect("wait for curl").success(),
            "curl {url} failed"
        );
    }
    if let Keep::Fsynced = keep {
        for file in &targets {
            std::fs::File::open(file)
                .and_then(|f| f.sync_all())
                .expect("fsync the download");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !matches!(keep, Keep::Discard) {
        for file in &targets {
            let _ = std::fs::remove_file(file);
        }
    }
    (seconds, children_cpu_seconds() - cpu_before)
}

const ROUNDS: u64 = 3;

#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-media.sh"]
async fn media_mirror_rate() {
    let topology = Topology::start(Links::Direct).await;
    mirror_rounds(&topology, "both slave nodes on this machine's one disk").await;
}

/// The same with each slave node on its own storage, as two machines are:
/// one slave node's data directory on tmpfs (`/dev/shm`) stands in for its
/// own disk, so whichever node leads, one copy goes to the disk and one does
/// not compete with it.
#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-media.sh"]
async fn media_mirror_rate_own_disks() {
    let own_disk = tempfile::Builder::new()
        .prefix("turnus-bench-")
        .tempdir_in("/dev/shm")
        .expect("a directory on /dev/shm");
    let topology =
        Topology::start_with_slave_dirs(Links::Direct, [None, Some(own_disk.path().join("data"))])
            .await;
    mirror_rounds(
        &topology,
        "north-2's data directory on tmpfs, standing in for its own disk",
    )
    .await;
}

/// `ROUNDS` rounds of the 200 MB chain against curl; the curls write to the
/// disk (the temp directory), never to tmpfs.
async fn mirror_rounds(topology: &Topology, setup: &str) {
    println!("\nsetup: {setup}");
    let library = topology.media_dir().to_owned();
    let (leader_id, _) = topology.wait_slave_leader().await;
    let leader = topology.slave_index(&leader_id);
    let follower = 1 - leader;
    let nodes: Vec<(&str, u32)> = vec![
        ("master-1", topology.masters[0].pid()),
        ("master-2", topology.masters[1].pid()),
        ("slave leader", topology.slaves[leader].pid()),
        ("slave follower", topology.slaves[follower].pid()),
    ];
    let scratch = tempfile::tempdir().expect("a temp directory for curl");
    let copies = [scratch.path().join("curl-1"), scratch.path().join("curl-2")];
    let rate = |seconds: f64| 200.0 / seconds;
    println!("\n| round | what (200 MB) | wall | rate | CPU seconds |\n|---|---|---|---|---|");
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let name = format!("ad-200-{round}.bin");
        let file = library.join(&name);
        write_file(&file, 200 * MB, 10 + round);
        let sha = sha256_of(&file);
        let cpu_before: Vec<f64> = nodes.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();
        let first_byte = appears(&blob(topology, leader, "partial", &sha)).await;
        let at_leader = appears(&blob(topology, leader, "blobs", &sha)).await;
        let at_follower = appears(&blob(topology, follower, "blobs", &sha)).await;
        let cpu: Vec<String> = nodes
            .iter()
            .zip(&cpu_before)
            .map(|((who, pid), before)| format!("{who} {:.2}", cpu_seconds(*pid) - before))
            .collect();
        let chain = (at_follower - first_byte).as_secs_f64();
        let hop = (at_leader - first_byte).as_secs_f64();
        let url = topology.master().url(&format!("/media/{name}"));
        let mut rows = vec![
            (
                "mirror, master → leader (verified, fsynced)",
                hop,
                String::new(),
            ),
            (
                "mirror, master → leader → follower (verified, fsynced)",
                chain,
                cpu.join(", "),
            ),
        ];
        let curls = [
            ("curl from the master to /dev/null", 1, Keep::Discard),
            ("curl from the master into a file", 1, Keep::File),
            (
                "curl from the master into a file, fsynced",
                1,
                Keep::Fsynced,
            ),
            (
                "two curls at once into two files, fsynced",
                2,
                Keep::Fsynced,
            ),
        ];
        let mut curl_seconds = Vec::new();
        for (what, files, keep) in curls {
            let (seconds, cpu) = curl(&url, &copies[..files], keep);
            rows.push((what, seconds, format!("curl {cpu:.2}")));
            curl_seconds.push(seconds);
        }
        for (what, seconds, cpu) in rows {
            println!(
                "| {round} | {what} | {seconds:.2} s | {:.0} MB/s | {cpu} |",
                rate(seconds)
            );
        }
        let [null, plain, synced, two] = curl_seconds[..] else {
            unreachable!("four curl rows")
        };
        let ratio = synced / chain;
        println!(
            "| {round} | **chain rate / rate of curl into an fsynced file** | | **{ratio:.2}** (to /dev/null {:.2}; into a file {:.2}; two fsynced copies {:.2}) | |",
            null / chain,
            plain / chain,
            two / chain
        );
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\nmedian of {ROUNDS} rounds, chain rate / rate of curl into an fsynced file: {:.2}",
        ratios[ratios.len() / 2]
    );
}
