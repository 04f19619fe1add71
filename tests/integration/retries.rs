//! Safe retries (API.md "Retries"): a ticket or counter POST repeated with
//! the same `Idempotency-Key` returns the first answer and changes nothing
//! more, whichever node of the group the retry reaches, also when the
//! repeats race each other.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::api::{assert_error, ApiClient};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::{KIOSK, OPERATOR};

const BRANCH: &str = "main";

async fn two_nodes() -> Cluster {
    let cluster = Cluster::start(&["node-a", "node-b"], Timing::SHORT).await;
    let version = cluster.nodes[0]
        .api()
        .setup_branch(
            BRANCH,
            &[("loans", "A"), ("cash", "B")],
            &[("c1", &[("loans", 1), ("cash", 2)])],
        )
        .await;
    for node in &cluster.nodes {
        wait_config(node.api(), BRANCH, version).await;
    }
    cluster
}

async fn post(
    api: &ApiClient,
    path: &str,
    token: &str,
    body: Option<Value>,
    key: &str,
) -> (StatusCode, Value) {
    let (status, text) = api
        .try_post(path, token, body, Some(key))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    (status, value)
}

fn waiting(api_queues: &[crate::support::api::QueueStatus], service: &str) -> u64 {
    api_queues
        .iter()
        .find(|q| q.service == service)
        .map_or(0, |q| q.waiting)
}

#[tokio::test]
async fn a_repeated_key_returns_the_first_answer_on_any_node_and_changes_nothing() {
    let cluster = two_nodes().await; // the event log reads Redis
    let (a, b) = (cluster.nodes[0].api(), cluster.nodes[1].api());
    let tickets = format!("/api/v1/branches/{BRANCH}/tickets");
    let loans = Some(json!({"service": "loans"}));

    let (first_status, first) = post(a, &tickets, KIOSK, loans.clone(), "kiosk-7-0001").await;
    assert_eq!(first_status, StatusCode::CREATED, "{first}");
    for api in [b, a, b] {
        let (status, again) = post(api, &tickets, KIOSK, loans.clone(), "kiosk-7-0001").await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(again, first, "a retry must return the first answer");
    }
    // A new key is a new ticket.
    let (_, second) = post(b, &tickets, KIOSK, loans.clone(), "kiosk-7-0002").await;
    assert_ne!(second["id"], first["id"]);
    assert_eq!(waiting(&a.queues(BRANCH).await, "loans"), 2);
    let issued = cluster
        .events
        .of(BRANCH)
        .iter()
        .filter(|e| e["type"] == "ticket-issued")
        .count();
    assert_eq!(
        issued, 2,
        "one ticket-issued event per ticket, none for the retries"
    );

    // The same key for a different request is refused, and changes nothing.
    let cash = Some(json!({"service": "cash"}));
    let response = a
        .request(reqwest::Method::POST, &tickets, Some(KIOSK), cash)
        .await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "no key: a plain issue"
    );
    let (status, body) = post(
        b,
        &tickets,
        KIOSK,
        Some(json!({"service": "cash"})),
        "kiosk-7-0001",
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "idempotency-key-reused");
    assert_eq!(waiting(&a.queues(BRANCH).await, "cash"), 1);

    // Counter operations: a repeated call calls once, and returns the same
    // ticket; an answer without a ticket (204) is repeated as well.
    let call = format!("/api/v1/branches/{BRANCH}/counters/c1/call");
    let (status, called) = post(a, &call, OPERATOR, None, "c1-call-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(called["id"], first["id"], "the oldest loans ticket");
    let (status, again) = post(b, &call, OPERATOR, None, "c1-call-1").await;
    assert_eq!((status, &again), (StatusCode::OK, &called));
    assert_eq!(waiting(&a.queues(BRANCH).await, "loans"), 1, "called once");

    let finish = format!("/api/v1/branches/{BRANCH}/counters/c1/finish");
    let (status, finished) = post(b, &finish, OPERATOR, None, "c1-finish-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(finished["status"], "served");
    // The retry repeats the first answer, not today's state (which would be
    // 409 no-current-ticket).
    let (status, again) = post(a, &finish, OPERATOR, None, "c1-finish-1").await;
    assert_eq!((status, &again), (StatusCode::OK, &finished));
    // And a first answer of 409 is repeated as 409.
    let (status, body) = post(a, &finish, OPERATOR, None, "c1-finish-2").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, again) = post(b, &finish, OPERATOR, None, "c1-finish-2").await;
    assert_eq!((status, &again), (StatusCode::CONFLICT, &body));

    // A key that does not fit is refused before anything happens.
    for bad in ["with space", &"k".repeat(256)] {
        let response = a
            .http
            .post(a.url(&tickets))
            .bearer_auth(KIOSK)
            .header("Idempotency-Key", bad)
            .json(&json!({"service": "loans"}))
            .send()
            .await
            .expect("an answer");
        assert_error(response, StatusCode::BAD_REQUEST, "invalid-idempotency-key").await;
    }
    assert_eq!(waiting(&a.queues(BRANCH).await, "loans"), 1);
}

#[tokio::test]
async fn racing_retries_through_both_nodes_give_exactly_one_ticket_per_key() {
    let cluster = two_nodes().await;
    let tickets = format!("/api/v1/branches/{BRANCH}/tickets");
    const KEYS: usize = 40;
    const TRIES: usize = 4;
    // Every key is sent four times at once, alternating nodes.
    let attempts = (0..KEYS).flat_map(|k| (0..TRIES).map(move |t| (k, t)));
    let answers = join_all(attempts.map(|(k, t)| {
        let api = cluster.nodes[t % 2].api();
        let tickets = tickets.clone();
        async move {
            let key = format!("race-{k}");
            let answer = post(
                api,
                &tickets,
                KIOSK,
                Some(json!({"service": "loans"})),
                &key,
            )
            .await;
            (k, answer)
        }
    }))
    .await;
    let mut by_key: HashMap<usize, HashSet<String>> = HashMap::new();
    for (k, (status, body)) in answers {
        assert_eq!(status, StatusCode::CREATED, "{body}");
        by_key.entry(k).or_default().insert(body.to_string());
    }
    for (k, bodies) in &by_key {
        assert_eq!(bodies.len(), 1, "key {k} got different answers: {bodies:?}");
    }
    let api = cluster.nodes[0].api();
    assert_eq!(waiting(&api.queues(BRANCH).await, "loans"), KEYS as u64);
}

#[tokio::test]
async fn call_by_number_with_a_repeated_key_calls_once_on_any_node() {
    let cluster = two_nodes().await;
    let (a, b) = (cluster.nodes[0].api(), cluster.nodes[1].api());
    let first = a.issue(BRANCH, "loans").await;
    let second = a.issue(BRANCH, "loans").await;
    let call = format!("/api/v1/branches/{BRANCH}/counters/c1/call");
    let by_number = Some(json!({"number": second.number}));

    // The counter calls the second ticket by its number, and the answer is
    // lost: the retry goes through the other node with the same key.
    let (status, called) = post(a, &call, OPERATOR, by_number.clone(), "c1-number-1").await;
    assert_eq!(status, StatusCode::OK, "{called}");
    assert_eq!(called["id"], second.id.as_str());
    for api in [b, a, b] {
        let (status, again) = post(api, &call, OPERATOR, by_number.clone(), "c1-number-1").await;
        assert_eq!(
            (status, &again),
            (StatusCode::OK, &called),
            "a retry must return the first answer"
        );
    }
    // Called once: the first ticket still waits, and the second was called
    // by one event only; the counter's current ticket was not finished by a
    // retry (a second run would have finished it as served).
    assert_eq!(waiting(&a.queues(BRANCH).await, "loans"), 1);
    assert_eq!(a.ticket(BRANCH, &first.id).await.status, "waiting");
    assert_eq!(b.ticket(BRANCH, &second.id).await.status, "called");
    let calls = cluster
        .events
        .of(BRANCH)
        .iter()
        .filter(|e| e["type"] == "ticket-called")
        .count();
    assert_eq!(calls, 1, "one ticket-called event, none for the retries");

    // The same key with another number is refused and calls nothing.
    let other = Some(json!({"number": first.number}));
    let (status, body) = post(b, &call, OPERATOR, other, "c1-number-1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "idempotency-key-reused");
    assert_eq!(a.ticket(BRANCH, &first.id).await.status, "waiting");
}
