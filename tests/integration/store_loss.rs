//! A group's Redis that comes back empty under load (DESIGN.md §4, issue
//! 12): the nodes notice (`/readyz` 503 `store-lost` until adopted; a
//! master group's nodes refuse ticket and counter writes meanwhile), ticket
//! numbers and ids continue above every one given that day, the leader
//! epoch continues above the highest seen so a deposed leader's fenced write
//! is refused, and a slave group recovers by itself.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;

use crate::slave::topology::{
    setup_branch as setup_north, Links, Topology, BRANCH as NORTH_BRANCH,
};
use crate::support::api::{assert_error, metric_value, ApiClient, Ticket};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::eventually;
use crate::support::load::Load;
use crate::support::{KIOSK, OPERATOR};

const BRANCH: &str = "main";
const WITHIN: Duration = Duration::from_secs(30);

/// No number and no id given twice (the test runs within one business day,
/// and issues fewer tickets than the service's range holds).
fn assert_unique(tickets: &[Ticket]) {
    let mut numbers = HashSet::new();
    let mut ids = HashSet::new();
    for t in tickets {
        assert!(
            numbers.insert(t.number.clone()),
            "number {} given twice: {:?}",
            t.number,
            tickets
                .iter()
                .filter(|o| o.number == t.number)
                .collect::<Vec<_>>()
        );
        assert!(ids.insert(t.id.clone()), "id {} given twice", t.id);
    }
}

async fn readyz_code(api: &ApiClient) -> Option<String> {
    let response = api.http.get(api.url("/readyz")).send().await.ok()?;
    if response.status() == StatusCode::OK {
        return Some("ok".into());
    }
    let body: serde_json::Value = response.json().await.ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}

async fn wait_readyz(api: &ApiClient, code: &str) {
    eventually(&format!("/readyz {code}"), WITHIN, || async {
        (readyz_code(api).await.as_deref() == Some(code)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_master_group_store_restarted_empty_reuses_no_number_epoch_or_id() {
    let mut cluster = Cluster::start(&["node-a", "node-b"], Timing::SHORT).await;
    let lease = cluster.wait_leader(WITHIN).await;
    let (leader, other) = if lease.node == "node-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    // Numbers wrap within a service's range (A001..A999 by default); a wide
    // range keeps every number of this test's load distinct.
    let setup = |api: ApiClient| async move {
        api.setup_branch(BRANCH, &[], &[]).await;
        let wide = serde_json::json!({"name": "Cash", "prefix": "C", "first": 1, "last": 999_999});
        api.put_service(BRANCH, "cash", wide).await;
        api.put_counter(BRANCH, "c1", &[("cash", 1)]).await["version"]
            .as_u64()
            .expect("version")
    };
    let version = setup(cluster.nodes[other].api().clone()).await;
    for node in &cluster.nodes {
        wait_config(node.api(), BRANCH, version).await;
    }
    let apis: Vec<ApiClient> = cluster.nodes.iter().map(|n| n.api().clone()).collect();
    let load = Load::start(apis.clone(), BRANCH, "cash");
    load.wait_more(40, "tickets before the loss").await;

    // The leader is paused, and the store loses everything meanwhile.
    cluster.nodes[leader].pause();
    cluster.restart_redis_empty().await;
    let survivor = apis[other].clone();
    wait_readyz(&survivor, "store-lost").await;
    let text = survivor.metrics().await.expect("/metrics");
    assert_eq!(metric_value(&text, "turnus_store_lost"), Some(1.0));
    assert!(
        cluster.nodes[other].log().contains("lost its data"),
        "logged"
    );

    // The operator restores the configuration (administration is allowed);
    // ticket and counter writes are not, on any node, until the store is
    // adopted.
    let version = setup(survivor.clone()).await;
    wait_config(&survivor, BRANCH, version).await;
    assert_refused_while_lost(&survivor).await;
    // A new leader, with an epoch above the paused one's (the helper asserts).
    let (new_lease, _) = cluster
        .wait_new_leader(&lease, WITHIN, Duration::from_millis(20))
        .await;
    assert!(new_lease.epoch > lease.epoch);

    // The deposed leader comes back: its fenced write is refused.
    // (Its connection died with the old store: the first tries may say 503,
    // which accepts nothing either.)
    cluster.nodes[leader].resume();
    let deposed = cluster.nodes[leader].api();
    let status = eventually(
        "an answer to the deposed leader's fenced write",
        WITHIN,
        || async {
            let status = deposed.fence_check().await.status();
            (status != StatusCode::SERVICE_UNAVAILABLE).then_some(status)
        },
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a deposed leader's fenced write was accepted"
    );
    wait_readyz(&apis[leader], "store-lost").await;
    assert_refused_while_lost(&apis[leader]).await;
    // Until an operator adopts the store, it stays lost; then all is ready
    // and issuing goes on, above the numbers and ids given before the loss.
    // The README's command: `turnus store adopt`, which calls the endpoint.
    let refused = store_adopt(&survivor.url(""), "not-a-token").await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("401 Unauthorized unauthorized"),
        "{refused:?}"
    );
    wait_readyz(&survivor, "store-lost").await;
    let adopted = store_adopt(&survivor.url(""), crate::support::ADMIN).await;
    assert!(adopted.status.success(), "turnus store adopt: {adopted:?}");
    assert!(
        String::from_utf8_lossy(&adopted.stdout).contains("adopted"),
        "{adopted:?}"
    );
    for api in &apis {
        wait_readyz(api, "ok").await;
    }
    load.wait_more(40, "tickets after the adoption").await;
    let tickets = load.finish().await;
    assert_unique(&tickets);
}

/// Runs `turnus store adopt --url <node>` with `token` as the admin token
/// in the environment, as an operator would.
async fn store_adopt(node: &str, token: &str) -> std::process::Output {
    let (node, token) = (node.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_turnus"))
            .args(["store", "adopt", "--url", &node])
            .env("TURNUS__AUTH__ADMIN_TOKENS", token)
            .output()
            .expect("run turnus store adopt")
    })
    .await
    .expect("the command's thread")
}

/// A master group's node with its store marked lost refuses ticket and
/// counter writes: 503 `store-lost`.
async fn assert_refused_while_lost(api: &ApiClient) {
    let tickets = format!("/api/v1/branches/{BRANCH}/tickets");
    let call = format!("/api/v1/branches/{BRANCH}/counters/c1/call");
    for (path, token, body) in [
        (
            &tickets,
            KIOSK,
            Some(serde_json::json!({"service": "cash"})),
        ),
        (&call, OPERATOR, None),
    ] {
        let response = api
            .request(reqwest::Method::POST, path, Some(token), body)
            .await;
        assert_error(response, StatusCode::SERVICE_UNAVAILABLE, "store-lost").await;
    }
}

#[tokio::test]
async fn a_slave_group_store_restarted_empty_recovers_by_itself() {
    let mut topology = Topology::start(Links::Direct).await;
    setup_north(topology.master()).await;
    // A wide range, so the load's numbers never wrap (see assert_unique).
    let wide = serde_json::json!({"name": "Cash", "prefix": "C", "first": 1, "last": 999_999});
    let answer = topology
        .master()
        .put_service(NORTH_BRANCH, "cash", wide)
        .await;
    topology
        .wait_slaves_at(answer["version"].as_u64().expect("version"))
        .await;
    let apis: Vec<ApiClient> = topology.slaves.iter().map(|n| n.api().clone()).collect();
    let load = Load::start(apis.clone(), NORTH_BRANCH, "cash");
    load.wait_more(40, "tickets before the loss").await;

    topology.slave_redis.stop().await;
    topology.slave_redis.restart().await;
    // Noticed at the next heartbeat (every second).
    let slaves = &topology.slaves;
    eventually("a slave node to notice the loss", WITHIN, || {
        let noticed = slaves.iter().any(|n| n.log().contains("lost its data"));
        std::future::ready(noticed.then_some(()))
    })
    .await;
    // The group mirrors its configuration again and adopts the store by
    // itself; issuing goes on above the numbers given before.
    load.wait_more(40, "tickets after the loss").await;
    for api in &apis {
        wait_readyz(api, "ok").await;
    }
    let tickets = load.finish().await;
    assert_unique(&tickets);
    // The first node that noticed adopts the store once the leader's mirror
    // has refilled it; the others follow that adoption.
    let logs: Vec<String> = topology.slaves.iter().map(|n| n.log()).collect();
    assert!(
        logs.iter().any(|log| log.contains("adopted it")),
        "the adoption is logged"
    );
}
