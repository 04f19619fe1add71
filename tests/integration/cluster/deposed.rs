//! A leader that lost its lease without knowing it: paused (SIGSTOP) until
//! another node took over, it comes back fenced and rejoins as a follower;
//! cut from Redis, it steps down before its lease can expire.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use serde_json::Value;

use super::{logged_at, wait_follower, LEADER_WITHIN, NODES};
use crate::support::api::{assert_error, metric_value};
use crate::support::cluster::{node_config, reports_leading, Cluster, RedisProbe, Timing};
use crate::support::eventually;
use crate::support::process::NodeProcess;
use crate::support::proxy::Proxy;
use crate::support::redis::RedisServer;

async fn fenced_rejections(node: &NodeProcess) -> f64 {
    let text = node.api().metrics().await.expect("/metrics answers");
    metric_value(&text, "turnus_fenced_writes_rejected_total").expect("the counter is exported")
}

#[tokio::test]
async fn a_paused_leader_comes_back_fenced_and_rejoins_as_a_follower() {
    let mut cluster = Cluster::start(&NODES, Timing::SHORT).await;
    let old = cluster.wait_leader(LEADER_WITHIN).await;

    cluster.node(&old.node).pause();
    // Paused for longer than the TTL: another node takes the lease.
    let (new, _) = cluster
        .wait_new_leader(&old, Duration::from_secs(30), Duration::from_millis(10))
        .await;
    cluster.node(&old.node).resume();

    // Its first leader-only write carries the old epoch and is refused.
    let response = cluster.node(&old.node).api().fence_check().await;
    assert_error(response, StatusCode::CONFLICT, "fenced").await;
    assert!(fenced_rejections(cluster.node(&old.node)).await >= 1.0);
    assert_eq!(
        cluster.probe.lease(),
        Some(new.clone()),
        "the refused write moved the lease"
    );
    assert_eq!(
        cluster.probe.epoch(),
        new.epoch,
        "the refused write moved the epoch"
    );

    wait_follower(cluster.node(&old.node), Duration::from_secs(10)).await;
    let view = cluster.node(&old.node).api().cluster().await;
    assert_eq!(view.leader.as_deref(), Some(new.node.as_str()));
    assert_eq!(view.epoch, new.epoch);

    // The new leader's own leader-only write goes through.
    let response = cluster.node(&new.node).api().fence_check().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"accepted": true, "epoch": new.epoch})
    );
    assert_eq!(cluster.probe.lease(), Some(new));
}

#[tokio::test]
async fn a_leader_cut_from_redis_steps_down_before_its_lease_expires() {
    let timing = Timing::SHORT;
    let redis = RedisServer::start();
    let proxy = Proxy::start(([127, 0, 0, 1], redis.port()).into()).await;
    let proxied = format!("redis://127.0.0.1:{}/", proxy.port());
    let mut probe = RedisProbe::connect(&redis.url());
    // The node behind the proxy starts alone, so it becomes the leader.
    let cut = NodeProcess::start_ready(node_config("cut-off", &proxied, timing)).await;
    let old = eventually("the first node to take the lease", LEADER_WITHIN, || {
        let lease = probe.lease();
        async move { lease }
    })
    .await;
    assert_eq!(old.node, "cut-off");
    let (n2, n3) = futures::join!(
        NodeProcess::start_ready(node_config("direct-2", &redis.url(), timing)),
        NodeProcess::start_ready(node_config("direct-3", &redis.url(), timing)),
    );

    let cut_at = Instant::now();
    let cut_wall = Utc::now();
    proxy.cut();
    // Two watchers at once. The node's `/metrics` shows when it reports
    // `turnus_leader 0`, but while Redis is unreachable each scrape waits
    // about half a second for its Redis ping, so that moment is coarse; the
    // ordering is asserted on the step-down line of its log (same clock).
    // Redis gives a lower bound on when another node took the lease (the
    // last poll that did not see it) and on when the old lease expires
    // (poll time + its PTTL).
    let metrics_say_follower = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if reports_leading(cut.api()).await == Some(false) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "the cut-off leader never reported turnus_leader 0"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let taken_over = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut expires_no_earlier = cut_at;
        let mut last_not_taken = cut_at;
        loop {
            let polled_at = Instant::now();
            match probe.lease_with_pttl() {
                Some((lease, _)) if lease.node != old.node => {
                    return (lease, last_not_taken, polled_at, expires_no_earlier)
                }
                Some((_, pttl)) => {
                    expires_no_earlier =
                        expires_no_earlier.max(polled_at + Duration::from_millis(pttl));
                }
                None => {}
            }
            last_not_taken = polled_at;
            assert!(
                Instant::now() < deadline,
                "nobody took over from the cut-off leader"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (metrics_at, (new, taken_after, seen_at, expires_no_earlier)) =
        futures::join!(metrics_say_follower, taken_over);
    let ms = |t: Instant| t.saturating_duration_since(cut_at).as_millis() as i64;
    let stepped_down = logged_at(&cut.log(), "stepping down as leader")
        .expect("the cut-off leader logged its step-down");
    let stepped_down = (stepped_down - cut_wall).num_milliseconds();
    println!(
        "cut at 0 ms: stepped down at {stepped_down} ms (/metrics said so by {} ms), old lease expired \
         no earlier than {} ms, {} took over between {} and {} ms",
        ms(metrics_at),
        ms(expires_no_earlier),
        new.node,
        ms(taken_after),
        ms(seen_at)
    );
    assert!(
        stepped_down < ms(taken_after),
        "another node led before the cut-off leader stepped down"
    );
    assert!(
        stepped_down <= ms(expires_no_earlier),
        "the cut-off leader still led when its lease may have expired"
    );

    proxy.heal();
    wait_follower(&cut, Duration::from_secs(20)).await;
    let api = cut.api();
    let leader = new.node.clone();
    eventually(
        "the healed node to see the new leader",
        Duration::from_secs(20),
        || {
            let leader = leader.clone();
            async move {
                let view = api.cluster().await;
                (view.leader.as_deref() == Some(leader.as_str())).then_some(())
            }
        },
    )
    .await;
    // Its old epoch is refused now that it can reach Redis again.
    assert_error(
        cut.api().fence_check().await,
        StatusCode::CONFLICT,
        "fenced",
    )
    .await;

    // Watched for two lease lifetimes: one leader, always the same.
    let watch_until = Instant::now() + 2 * timing.ttl();
    while Instant::now() < watch_until {
        let mut leading = Vec::new();
        for node in [&cut, &n2, &n3] {
            if reports_leading(node.api()).await == Some(true) {
                leading.push(node.id().to_owned());
            }
        }
        assert_eq!(leading, [new.node.as_str()], "leaders after the heal");
        assert_eq!(probe.lease(), Some(new.clone()), "the lease after the heal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
