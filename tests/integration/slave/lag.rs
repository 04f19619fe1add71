//! The propagation-lag benchmark: how long an administrative change on the
//! master takes to be served by a slave node. It prints figures and asserts
//! no timing (STYLE.md "Tests"); run it in release mode with
//! `scripts/bench-mirror-lag.sh`.

use std::time::{Duration, Instant};

use super::topology::{publish_change, served_version, setup_branch, Links, Topology};

/// Administrative changes measured.
const CHANGES: usize = 200;
/// How often the slave node is asked for the version it serves.
const POLL_EVERY: Duration = Duration::from_millis(2);
/// A change not served within this is a broken mirror, not a slow one.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);

/// The `q`-quantile of sorted figures (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test]
#[ignore = "benchmark: run with scripts/bench-mirror-lag.sh"]
async fn mirror_lag() {
    let topology = Topology::start(Links::Direct).await;
    let master = topology.master();
    let version = setup_branch(master).await;
    topology.wait_slaves_at(version).await;

    let mut lags = Vec::with_capacity(CHANGES);
    for n in 0..CHANGES {
        // Alternate between the slave nodes: the leader, which applies the
        // snapshot, and a follower, which learns of it through its Redis.
        let slave = &topology.slaves[n % topology.slaves.len()];
        let published = publish_change(master, n).await;
        let answered = Instant::now();
        loop {
            if served_version(slave.api()).await >= Some(published) {
                break;
            }
            assert!(
                answered.elapsed() < GIVE_UP_AFTER,
                "{} did not serve version {published} within {GIVE_UP_AFTER:?}",
                slave.id()
            );
            tokio::time::sleep(POLL_EVERY).await;
        }
        lags.push(answered.elapsed());
    }

    lags.sort_unstable();
    let mean = lags.iter().sum::<Duration>() / lags.len() as u32;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "mirror lag over {} changes (master admin answer -> slave node serves it, polled every {:?}): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms, min {:.1} ms",
        lags.len(),
        POLL_EVERY,
        ms(quantile(&lags, 0.50)),
        ms(quantile(&lags, 0.99)),
        ms(lags[lags.len() - 1]),
        ms(mean),
        ms(lags[0]),
    );
}
