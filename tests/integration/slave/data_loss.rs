//! The two data-loss paths of the configuration (ARCHITECTURE.md
//! invariants): when the master group's Redis loses its data, the master
//! nodes serve what it now holds, a lower version; the slave group refuses
//! to go back to it, keeps serving the newer version it has, and mirrors
//! again once the master's version climbs above it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::api::ApiClient;
use crate::support::{eventually, PEER};

use super::topology::{
    publish_change, served_version, setup_branch, Links, Topology, BRANCH, GROUP, WITHIN,
};

/// The version a master node serves the slave group at, asked (as the slave
/// leader asks) by a slave holding `since`; `None` unless 200.
async fn mirrored_version(api: &ApiClient, since: u64) -> Option<u64> {
    let path = format!("/api/v1/mirror/config?group={GROUP}&since={since}&wait_s=0");
    let response = api
        .http
        .get(api.url(&path))
        .bearer_auth(PEER)
        .send()
        .await
        .ok()?;
    if response.status() != StatusCode::OK {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["version"].as_u64()
}

const LOST_DATA_LOG: &str = "the master's configuration version is below this group's";

#[tokio::test]
async fn a_master_that_lost_data_goes_back_and_the_slaves_refuse_to() {
    let topology = Topology::start(Links::Direct).await;
    let master = topology.master();
    setup_branch(master).await;
    let mut before = 0;
    for n in 0..3 {
        before = publish_change(master, n).await;
    }
    topology.wait_slaves_at(before).await;

    // The master group's Redis loses everything (as a restart without
    // persistence would), and the branch is set up again: fewer writes, so
    // a lower version.
    let client = redis::Client::open(topology.master_redis.url()).expect("URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("FLUSHALL");
    let after = setup_branch(master).await;
    assert!(
        after < before,
        "the set-up again is at {after}, below {before}"
    );

    // Path 1: every master node serves what its Redis holds, even lower:
    // asked by a slave at the version it has, it answers with the lower one.
    for node in &topology.masters {
        eventually(
            "a master node serving the lower version",
            WITHIN,
            || async { (mirrored_version(node.api(), before).await == Some(after)).then_some(()) },
        )
        .await;
    }

    // Path 2: the slave leader sees the master's lower version and refuses
    // it; every slave node goes on serving the newer one.
    eventually(
        "the slave leader to refuse the lower version",
        WITHIN,
        || {
            let seen = topology
                .slaves
                .iter()
                .any(|s| s.log().contains(LOST_DATA_LOG));
            async move { seen.then_some(()) }
        },
    )
    .await;
    for slave in &topology.slaves {
        assert_eq!(
            served_version(slave.api()).await,
            Some(before),
            "slave {} went back",
            slave.id()
        );
        let ticket = slave.api().issue(BRANCH, "cash").await;
        assert_eq!(ticket.status, "waiting");
    }

    // Once the master's version is above the slaves' again, they mirror it.
    let mut version = after;
    let mut n = 10;
    while version <= before {
        version = publish_change(master, n).await;
        n += 1;
    }
    topology.wait_slaves_at(version).await;
    assert!(
        served_version(topology.slaves[0].api())
            .await
            .is_some_and(|v| v > before),
        "the slaves mirror again"
    );
}
