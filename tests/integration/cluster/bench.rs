//! The failover benchmark (ignored; `scripts/bench-failover.sh`): how long
//! from a signal to the leader until another node holds the lease, with
//! default timings, printed as p50 and max per kind of failure.

use std::time::{Duration, Instant};

use super::{wait_follower, LEADER_WITHIN, NODES};
use crate::support::cluster::{Cluster, Timing};

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

fn summary(name: &str, mut figures: Vec<Duration>) {
    figures.sort_unstable();
    println!(
        "{name}: {} trials, p50 {:?}, max {:?} (all: {:?})",
        figures.len(),
        percentile(&figures, 0.5),
        figures.last().expect("trials"),
        figures
    );
}

/// Failover figures with default timings: from the signal to the leader
/// until another node holds the lease (polled every 5 ms). Run with
/// `scripts/bench-failover.sh`.
#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-failover.sh"]
async fn failover_timing() {
    let trials: usize = std::env::var("FAILOVER_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let poll = Duration::from_millis(5);
    // Restarting a node takes about the same time in every trial, so without
    // this the signal would hit the same point of the leader's renewal
    // cycle every time; a random wait of up to one renew interval spreads
    // it over the whole cycle.
    let random_phase = || {
        let renew_ms = Timing::DEFAULT.renew_interval_ms;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..renew_ms)))
    };
    let mut cluster = Cluster::start(&NODES, Timing::DEFAULT).await;
    let mut kill_figures = Vec::new();
    let mut term_figures = Vec::new();
    let mut pause_figures = Vec::new();

    for _ in 0..trials {
        random_phase().await;
        let old = cluster.wait_leader(LEADER_WITHIN).await;
        let signalled_at = Instant::now();
        cluster.node_mut(&old.node).kill();
        let (_, seen_at) = cluster
            .wait_new_leader(&old, Duration::from_secs(30), poll)
            .await;
        kill_figures.push(seen_at - signalled_at);
        cluster.restart(&old.node).await;
    }
    for _ in 0..trials {
        random_phase().await;
        let old = cluster.wait_leader(LEADER_WITHIN).await;
        let signalled_at = Instant::now();
        cluster.node(&old.node).terminate();
        let (_, seen_at) = cluster
            .wait_new_leader(&old, Duration::from_secs(30), poll)
            .await;
        term_figures.push(seen_at - signalled_at);
        cluster
            .node_mut(&old.node)
            .wait_exit(Duration::from_secs(30))
            .await;
        cluster.restart(&old.node).await;
    }
    // A paused leader that comes back tries a leader-only write: it must
    // never be accepted.
    let (mut fenced_attempts, mut fenced_accepted) = (0, 0);
    for _ in 0..3 {
        random_phase().await;
        let old = cluster.wait_leader(LEADER_WITHIN).await;
        let signalled_at = Instant::now();
        cluster.node(&old.node).pause();
        let (_, seen_at) = cluster
            .wait_new_leader(&old, Duration::from_secs(30), poll)
            .await;
        pause_figures.push(seen_at - signalled_at);
        cluster.node(&old.node).resume();
        let status = cluster.node(&old.node).api().fence_check().await.status();
        fenced_attempts += 1;
        if status.is_success() {
            fenced_accepted += 1;
        }
        wait_follower(cluster.node(&old.node), Duration::from_secs(30)).await;
    }

    println!("failover of a 3-node group, default timings (ttl 3000 ms, renew 1000 ms, deadline 2000 ms):");
    summary("SIGKILL of the leader -> new lease holder", kill_figures);
    summary("SIGTERM of the leader -> new lease holder", term_figures);
    summary("SIGSTOP of the leader -> new lease holder", pause_figures);
    println!(
        "fenced writes accepted from a resumed ex-leader: {fenced_accepted} of {fenced_attempts}"
    );
    assert_eq!(fenced_accepted, 0, "a deposed leader's write was accepted");
}
