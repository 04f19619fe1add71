//! Who leads: exactly one leader that every node of the group reports
//! alike, and a leader stopped with SIGTERM handing the lease to a standby
//! at once instead of letting it expire.

use std::time::{Duration, Instant};

use super::{LEADER_WITHIN, NODES};
use crate::support::api::metric_value;
use crate::support::cluster::{reports_leading, Cluster, Timing};
use crate::support::eventually;

#[tokio::test]
async fn one_leader_and_every_node_reports_the_same_group() {
    let mut cluster = Cluster::start(&NODES, Timing::SHORT).await;
    let lease = cluster.wait_leader(LEADER_WITHIN).await;

    // Members join with their first heartbeat: wait for all three.
    let nodes = &cluster.nodes;
    let views = eventually(
        "all nodes to show the same leader, epoch and three members",
        Duration::from_secs(15),
        || async move {
            let mut views = Vec::new();
            for node in nodes {
                views.push(node.api().cluster().await);
            }
            let first = views[0].clone();
            let agree = views.iter().all(|v| {
                let mut ids: Vec<&str> = v.members.iter().map(|m| m.id.as_str()).collect();
                ids.sort_unstable();
                v.leader == first.leader && v.epoch == first.epoch && ids == NODES
            });
            agree.then_some(views)
        },
    )
    .await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(view.node, node.id());
        assert_eq!(view.group, "central");
        assert_eq!(view.role, "master");
        assert_eq!(
            view.leader.as_deref(),
            Some(lease.node.as_str()),
            "{view:?}"
        );
        assert_eq!(view.epoch, lease.epoch, "{view:?}");
        let me = view
            .members
            .iter()
            .find(|m| m.id == node.id())
            .expect("listed");
        assert_eq!(me.addr, node.api().base_url, "advertised address");
    }

    // Exactly one node says it leads, and it is the lease holder.
    let nodes = &cluster.nodes;
    let leading = eventually(
        "exactly one node to report turnus_leader 1",
        Duration::from_secs(10),
        || async move {
            let mut leading = Vec::new();
            for node in nodes {
                if reports_leading(node.api()).await? {
                    leading.push(node.id().to_owned());
                }
            }
            (leading.len() == 1).then_some(leading)
        },
    )
    .await;
    assert_eq!(leading, [lease.node.as_str()]);
    let text = cluster
        .node(&lease.node)
        .api()
        .metrics()
        .await
        .expect("metrics");
    assert_eq!(
        metric_value(&text, "turnus_epoch"),
        Some(lease.epoch as f64)
    );
    assert_eq!(cluster.probe.lease(), Some(lease), "the lease stayed put");
}

/// What one node's background traffic acknowledged.
#[tokio::test]
async fn sigterm_hands_the_lease_to_a_standby_at_once() {
    let mut cluster = Cluster::start(&NODES, Timing::DEFAULT).await;
    let old = cluster.wait_leader(LEADER_WITHIN).await;

    let signalled_at = Instant::now();
    cluster.node(&old.node).terminate();
    // "At once" as a property, not a time budget: the old leader gives the
    // lease up (compare-and-delete) on its way out, so a standby takes it
    // without waiting for it to expire. How long that takes is a figure for
    // `failover_timing` and scripts/bench-failover.sh.
    let (new, seen_at) = cluster
        .wait_new_leader(&old, Duration::from_secs(30), Duration::from_millis(5))
        .await;
    println!(
        "SIGTERM of leader {}: {} took the lease after {:?}",
        old.node,
        new.node,
        seen_at - signalled_at
    );
    let status = cluster
        .node_mut(&old.node)
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the node exits on SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let log = cluster.node(&old.node).log();
    assert!(
        log.contains("released the leader lease"),
        "the old leader did not release its lease on SIGTERM; its log:\n{log}"
    );
    assert_eq!(new.epoch, old.epoch + 1, "the next term took over");
    // It left the member list on its way out.
    let api = cluster.node(&new.node).api();
    let gone = old.node.as_str();
    eventually(
        "the stopped node to leave the member list",
        Duration::from_secs(10),
        || async move {
            let view = api.cluster().await;
            (!view.members.iter().any(|m| m.id == gone)).then_some(())
        },
    )
    .await;
}
