//! Two real nodes on one Redis, many kiosks and eight counters at once:
//! numbers stay unique, no ticket is called twice, none is lost. Kiosks
//! and counters post the way terminals do (README, "Retries"): with an
//! `Idempotency-Key`, sent again when a loaded node refuses a request that
//! waited past its deadline, or the connection breaks.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono_tz::Tz;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::api::{ApiClient, Ticket};
use crate::support::process::{NodeConfig, NodeProcess};
use crate::support::redis::RedisServer;
use crate::support::{eventually, KIOSK, OPERATOR};

const BRANCH: &str = "main";
const TICKETS: usize = 1_000;
const IN_FLIGHT: usize = 32;
/// A bound so that a broken queue fails the test instead of hanging it; the
/// work takes a few seconds in a debug build.
const WORK_WITHIN: Duration = Duration::from_secs(300);
const SERVICES: [(&str, &str); 3] = [("alpha", "A"), ("beta", "B"), ("gamma", "C")];
/// Eight counters; every service is in some row, so everything gets called.
const COUNTERS: [(&str, &[(&str, u32)]); 8] = [
    ("k1", &[("alpha", 1)]),
    ("k2", &[("beta", 1)]),
    ("k3", &[("gamma", 1)]),
    ("k4", &[("alpha", 1), ("beta", 2)]),
    ("k5", &[("beta", 1), ("gamma", 2)]),
    ("k6", &[("gamma", 1), ("alpha", 1)]),
    ("k7", &[("alpha", 1), ("beta", 1), ("gamma", 1)]),
    ("k8", &[("gamma", 1), ("beta", 2), ("alpha", 3)]),
];

/// Tries of one request before the test gives up on it.
const TRIES: usize = 20;

/// A POST as a terminal makes it: the same `key` on every try, sent again
/// on 408, 503 or a broken connection; any other answer is returned.
async fn post_as_terminal(
    node: &ApiClient,
    path: &str,
    token: &str,
    body: Option<Value>,
    key: &str,
) -> (StatusCode, String) {
    let mut last = String::new();
    for _ in 0..TRIES {
        match node.try_post(path, token, body.clone(), Some(key)).await {
            Ok((status, _))
                if status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                last = status.to_string();
            }
            Ok(answer) => return answer,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("POST {path} (key {key}) failed {TRIES} times, last: {last}");
}

async fn issue(node: &ApiClient, service: &str, key: &str) -> Ticket {
    let path = format!("/api/v1/branches/{BRANCH}/tickets");
    let body = Some(json!({ "service": service }));
    let (status, text) = post_as_terminal(node, &path, KIOSK, body, key).await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("issue: {e}: {text}"))
}

async fn call(node: &ApiClient, counter: &str, key: &str) -> Option<Ticket> {
    let path = format!("/api/v1/branches/{BRANCH}/counters/{counter}/call");
    match post_as_terminal(node, &path, OPERATOR, None, key).await {
        (StatusCode::OK, text) => {
            Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("call: {e}: {text}")))
        }
        (StatusCode::NO_CONTENT, _) => None,
        (status, text) => panic!("POST {path} answered {status}: {text}"),
    }
}

/// Calls at one counter until nothing waits for it after issuing is over.
async fn counter_loop(
    node: &ApiClient,
    counter: &'static str,
    issuing_done: &AtomicBool,
) -> Vec<Ticket> {
    let mut called = Vec::new();
    for attempt in 0.. {
        // Read the flag before calling: a 204 after issuing ended means this
        // counter's services are empty for good (nothing is transferred).
        let done = issuing_done.load(Ordering::SeqCst);
        match call(node, counter, &format!("{counter}-{attempt}")).await {
            Some(ticket) => {
                called.push(ticket);
                assert!(
                    called.len() <= TICKETS,
                    "{counter} called more tickets than were issued"
                );
            }
            None if done => return called,
            // Kiosks are slower than this counter for now: let them work.
            None => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    unreachable!("the attempts never run out")
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(&format!("branch=\"{BRANCH}\"")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn two_nodes_issue_and_call_concurrently_without_duplicates_or_losses() {
    let redis = RedisServer::start();
    let (a, b) = futures::join!(
        NodeProcess::start_ready(NodeConfig::new("node-a").redis(&redis.url())),
        NodeProcess::start_ready(NodeConfig::new("node-b").redis(&redis.url())),
    );
    let version = a.api().setup_branch(BRANCH, &SERVICES, &COUNTERS).await;
    // The other node learns the configuration from Redis on its own.
    eventually(
        "node-b to load the configuration",
        Duration::from_secs(30),
        || async {
            let response = b
                .api()
                .request(
                    reqwest::Method::GET,
                    &format!("/api/v1/branches/{BRANCH}"),
                    Some(crate::support::DISPLAY),
                    None,
                )
                .await;
            if !response.status().is_success() {
                return None;
            }
            let body: serde_json::Value = response.json().await.ok()?;
            (body["config_version"].as_u64() == Some(version)).then_some(())
        },
    )
    .await;

    let nodes = [a.api(), b.api()];
    let issuing_done = AtomicBool::new(false);
    let issuing = async {
        let issued: Vec<Ticket> = futures::stream::iter(0..TICKETS)
            .map(|i| {
                let service = SERVICES[i % SERVICES.len()].0;
                async move { issue(nodes[i % 2], service, &format!("issue-{i}")).await }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        issuing_done.store(true, Ordering::SeqCst);
        issued
    };
    let counters = futures::future::join_all(
        COUNTERS
            .iter()
            .enumerate()
            .map(|(i, (counter, _))| counter_loop(nodes[i % 2], counter, &issuing_done)),
    );
    let (issued, calls) =
        tokio::time::timeout(WORK_WITHIN, async { futures::join!(issuing, counters) })
            .await
            .expect("issuing and calling every ticket finishes");

    // Every ticket is distinct, and every number unique within its service
    // and business day.
    assert_eq!(issued.len(), TICKETS);
    let ids: HashSet<&str> = issued.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), TICKETS, "ticket ids are unique");
    let lisbon: Tz = "Europe/Lisbon".parse().expect("time zone");
    let mut numbers = HashSet::new();
    for ticket in &issued {
        let day = ticket.issued_at.with_timezone(&lisbon).date_naive();
        assert!(
            numbers.insert((ticket.service.clone(), day, ticket.number.clone())),
            "number {} issued twice in {} on {day}",
            ticket.number,
            ticket.service
        );
    }

    // No ticket called by two counters, and every one called, each by a
    // counter whose row has its service.
    let rows: HashMap<&str, Vec<&str>> = COUNTERS
        .iter()
        .map(|(counter, row)| (*counter, row.iter().map(|(s, _)| *s).collect()))
        .collect();
    let mut called_by: HashMap<String, &str> = HashMap::new();
    for ((counter, _), tickets) in COUNTERS.iter().zip(&calls) {
        for ticket in tickets {
            assert!(
                rows[counter].contains(&ticket.service.as_str()),
                "{counter} called a {} ticket",
                ticket.service
            );
            assert_eq!(ticket.counter.as_deref(), Some(*counter));
            if let Some(other) = called_by.insert(ticket.id.clone(), counter) {
                panic!(
                    "ticket {} ({}) called by {other} and {counter}",
                    ticket.id, ticket.number
                );
            }
        }
    }
    assert_eq!(
        called_by.len(),
        TICKETS,
        "every issued ticket was called exactly once"
    );
    assert!(
        called_by.keys().all(|id| ids.contains(id.as_str())),
        "only issued tickets were called"
    );

    // The stored state agrees: every ticket was finished as served, by the
    // next call at its counter (each counter's last call, the 204, finished
    // the last one), and none was left waiting.
    let finals: Vec<Ticket> = futures::stream::iter(issued.iter().enumerate())
        .map(|(i, t)| nodes[i % 2].ticket(BRANCH, &t.id))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for ticket in &finals {
        assert_eq!(
            ticket.status, "served",
            "ticket {} ({})",
            ticket.id, ticket.number
        );
        assert_eq!(
            ticket.counter.as_deref(),
            Some(called_by[&ticket.id]),
            "ticket {}",
            ticket.id
        );
    }
    for node in nodes {
        assert!(node.queues(BRANCH).await.iter().all(|q| q.waiting == 0));
    }

    // Both nodes did their share.
    let mut issued_per_node = Vec::new();
    for node in nodes {
        let text = node
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .text()
            .await
            .expect("metrics");
        issued_per_node.push(metric(&text, "turnus_tickets_issued"));
    }
    assert_eq!(
        issued_per_node,
        [(TICKETS / 2) as f64, (TICKETS / 2) as f64]
    );
}
