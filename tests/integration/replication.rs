//! Durability `replicated` (API.md `redis.durability`): a ticket change is
//! acknowledged only once a replica has it (`WAIT`); when the replica does
//! not confirm in time the answer is 503 `replication-timeout`, and the
//! client's retry with the same `Idempotency-Key` returns the ticket that was
//! made, without making another.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::api::{assert_error, metric_value};
use crate::support::cluster::{node_config, RedisProbe, Timing};
use crate::support::process::NodeProcess;
use crate::support::redis::RedisServer;
use crate::support::KIOSK;

const BRANCH: &str = "main";

/// A master with a linked replica, and a node with durability
/// `replicated` on it serving [`BRANCH`].
async fn replicated_node() -> (RedisServer, RedisServer, NodeProcess) {
    let master = RedisServer::start();
    let replica = RedisServer::start_replica_of(master.port());
    RedisProbe::connect(&replica.url()).wait_linked().await;
    let mut config = node_config("durable", &master.url(), Timing::SHORT);
    for (key, value) in [
        ("TURNUS__REDIS__DURABILITY", "replicated"),
        ("TURNUS__REDIS__MIN_REPLICAS", "1"),
        ("TURNUS__REDIS__REPLICATION_TIMEOUT_MS", "1500"),
    ] {
        config.env.push((key.to_owned(), value.to_owned()));
    }
    let node = NodeProcess::start_ready(config).await;
    node.api()
        .setup_branch(BRANCH, &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    (master, replica, node)
}

#[tokio::test]
async fn replicated_durability_acknowledges_only_what_a_replica_has() {
    let (_master, replica, node) = replicated_node().await;
    let mut on_replica = RedisProbe::connect(&replica.url());
    let api = node.api();

    // Every acknowledged ticket is on the replica at the moment of the
    // answer: read there at once, without waiting.
    for n in 1..=20 {
        let ticket = api.issue(BRANCH, "cash").await;
        let on_it = on_replica.tickets(BRANCH);
        assert_eq!(
            on_it.len(),
            n,
            "ticket {} acknowledged before the replica had it",
            ticket.number
        );
        assert!(
            on_it.contains(&ticket.id),
            "{} not on the replica",
            ticket.id
        );
    }

    // A replica that does not confirm: 503, and the change is not lost to a
    // retry with the same key.
    replica.pause();
    let tickets = format!("/api/v1/branches/{BRANCH}/tickets");
    let body = Some(json!({"service": "cash"}));
    let (status, text) = api
        .try_post(&tickets, KIOSK, body.clone(), Some("kiosk-1-0042"))
        .await
        .expect("an answer");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    let error: Value = serde_json::from_str(&text).expect("an error body");
    assert_eq!(error["error"]["code"], "replication-timeout");
    let text = api.metrics().await.expect("/metrics");
    assert_eq!(
        metric_value(&text, "turnus_replication_timeouts_total"),
        Some(1.0)
    );

    replica.resume();
    let (status, text) = api
        .try_post(&tickets, KIOSK, body, Some("kiosk-1-0042"))
        .await
        .expect("an answer");
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let ticket: Value = serde_json::from_str(&text).expect("a ticket");
    assert_eq!(
        ticket["number"], "C021",
        "the retry returns the ticket made the first time"
    );
    assert_eq!(on_replica.tickets(BRANCH).len(), 21, "and made no other");
    let waiting: u64 = api.queues(BRANCH).await.iter().map(|q| q.waiting).sum();
    assert_eq!(waiting, 21);

    // With the replica gone for good, an unkeyed request says 503 as well.
    drop(replica);
    let response = api
        .request(
            reqwest::Method::POST,
            &tickets,
            Some(KIOSK),
            Some(json!({"service": "cash"})),
        )
        .await;
    assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "replication-timeout",
    )
    .await;
}

#[tokio::test]
async fn concurrent_replicated_changes_share_waits_and_all_fail_without_the_replica() {
    let (master, replica, node) = replicated_node().await;
    let api = node.api();
    let tickets = format!("/api/v1/branches/{BRANCH}/tickets");
    let issue_all = |n: usize| {
        join_all(
            (0..n).map(|_| api.try_post(&tickets, KIOSK, Some(json!({"service": "cash"})), None)),
        )
    };
    let waits_before = RedisProbe::connect(&master.url()).command_calls("wait");

    // Many at once: every one acknowledged, and every acknowledged one on
    // the replica.
    const MANY: usize = 200;
    let answers = issue_all(MANY).await;
    let mut ids = Vec::new();
    for answer in answers {
        let (status, text) = answer.expect("an answer");
        assert_eq!(status, StatusCode::CREATED, "{text}");
        let ticket: Value = serde_json::from_str(&text).expect("a ticket");
        ids.push(ticket["id"].as_str().expect("an id").to_owned());
    }
    let on_replica = RedisProbe::connect(&replica.url()).tickets(BRANCH);
    assert_eq!(on_replica.len(), MANY);
    assert!(ids.iter().all(|id| on_replica.contains(id)));
    // They shared WAITs (one each would be MANY).
    let waits = RedisProbe::connect(&master.url()).command_calls("wait") - waits_before;
    println!("{MANY} concurrent replicated tickets confirmed by {waits} WAITs");
    assert!(waits < MANY as u64, "{waits} WAITs for {MANY} changes");

    // The replica stopped: every one of them is refused, none acknowledged.
    replica.pause();
    for answer in issue_all(50).await {
        let (status, text) = answer.expect("an answer");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        let error: Value = serde_json::from_str(&text).expect("an error body");
        assert_eq!(error["error"]["code"], "replication-timeout", "{text}");
    }
    replica.resume();
}
