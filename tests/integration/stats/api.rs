//! The statistics API on one master node: its own branch's events reach
//! the figures through the local aggregator (no HTTP), the peer endpoint
//! applies batches idempotently, and every bad input gets its error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::api::{assert_error, ApiClient};
use crate::support::app::spawn_app;
use crate::support::{eventually, DISPLAY, KIOSK, PEER};

const WITHIN: Duration = Duration::from_secs(30);

pub async fn get_json(api: &ApiClient, path: &str) -> Value {
    let response = api.request(Method::GET, path, Some(DISPLAY), None).await;
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.json().await.expect("JSON")
}

/// The branch's totals for today: (issued, called, served, no_show, transferred).
pub async fn totals(api: &ApiClient, branch: &str) -> (i64, i64, i64, i64, i64) {
    let body = get_json(api, &format!("/api/v1/stats/branches/{branch}")).await;
    let t = &body["total"];
    let n = |k: &str| t[k].as_i64().unwrap_or_else(|| panic!("{k} in {body}"));
    (
        n("issued"),
        n("called"),
        n("served"),
        n("no_show"),
        n("transferred"),
    )
}

#[actix_web::test]
async fn a_master_branch_gets_its_figures_without_shipping() {
    let app = spawn_app().await;
    app.setup_branch(
        "main",
        &[("loans", "L"), ("cash", "C")],
        &[("c1", &[("loans", 1)]), ("c2", &[("cash", 1)])],
    )
    .await;
    for _ in 0..3 {
        app.issue("main", "loans").await;
    }
    app.call("main", "c1").await.expect("a loans ticket");
    app.counter_action("main", "c1", "recall").await;
    app.transfer("main", "c1", "cash").await;
    app.call("main", "c2")
        .await
        .expect("the transferred ticket");
    app.counter_action("main", "c2", "finish").await;
    app.call("main", "c1").await.expect("second loans ticket");
    app.counter_action("main", "c1", "no-show").await;

    // 3 issued; 2 first calls (the call after the transfer is not one);
    // 1 served, 1 no-show, 1 transferred.
    eventually("the figures to include every event", WITHIN, || async {
        (totals(&app, "main").await == (3, 2, 1, 1, 1)).then_some(())
    })
    .await;
    let body = get_json(&app, "/api/v1/stats/branches/main").await;
    assert_eq!(body["services"]["loans"]["called"], 2, "{body}");
    assert_eq!(body["services"]["loans"]["transferred"], 1, "{body}");
    assert_eq!(body["services"]["cash"]["served"], 1, "{body}");
    assert_eq!(body["counters"]["c1"]["called"], 2, "{body}");
    assert_eq!(body["counters"]["c2"]["served"], 1, "{body}");
    // c1 stood free from its transfer to its next call while loans tickets
    // waited: milliseconds here, whole seconds in the answer.
    assert!(
        body["counters"]["c1"]["idle_while_waiting_s"].is_u64(),
        "{body}"
    );
    assert_eq!(body["total"]["sla_pct"], 100.0, "{body}");
    assert!(body["complete_through"].is_string(), "{body}");
    assert!(!body["hours"].as_array().expect("hours").is_empty());

    let csv = app
        .request(
            Method::GET,
            "/api/v1/stats/branches/main?format=csv",
            Some(DISPLAY),
            None,
        )
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/csv"));
    let text = csv.text().await.expect("body");
    assert!(text.starts_with("hour,service,issued,"), "{text}");
    assert!(text.lines().any(|l| l.contains(",loans,3,2,")), "{text}");
    let counters = app
        .request(
            Method::GET,
            "/api/v1/stats/branches/main?format=csv&rows=counters",
            Some(DISPLAY),
            None,
        )
        .await
        .text()
        .await
        .expect("body");
    let mut lines = counters.lines();
    assert_eq!(
        lines.next(),
        Some("counter,called,served,no_show,avg_service_s,idle_while_waiting_s")
    );
    assert!(
        lines.next().is_some_and(|l| l.starts_with("c1,2,0,1,")),
        "{counters}"
    );

    let summary = get_json(&app, "/api/v1/stats/summary").await;
    let line = &summary["branches"][0];
    assert_eq!(line["branch"], "main");
    assert_eq!(
        (line["issued"].as_i64(), line["waiting_now"].as_u64()),
        (Some(3), Some(1)),
        "{summary}"
    );
    assert!(line["last_report"].is_string(), "{summary}");

    // The outbox is trimmed once the rollups have its events.
    eventually("the outbox to be trimmed", WITHIN, || async {
        let text = app.metrics().await?;
        let line = text
            .lines()
            .find(|l| l.starts_with("turnus_outbox_length{"))?;
        line.ends_with(" 0").then_some(())
    })
    .await;
    let metrics = app.metrics().await.expect("metrics");
    assert!(
        metrics.contains("turnus_stats_events_applied_total"),
        "{metrics}"
    );
    // Issuing still works and is counted after the trim.
    app.issue("main", "cash").await;
    eventually("the next ticket counted", WITHIN, || async {
        (totals(&app, "main").await.0 == 4).then_some(())
    })
    .await;
}

fn batch(source: &str, epoch: u64, events: Value) -> Value {
    json!({"group": "north", "epoch": epoch, "source": source, "branch": "porto",
           "through_ms": 0, "events": events})
}

fn issued(id: &str, ticket: &str) -> Value {
    json!({"id": id, "event": {"type": "ticket-issued", "id": ticket, "service": "cash",
        "number": "C001", "status": "waiting", "issued_ms": 1_780_000_000_000i64, "ts_ms": 1_780_000_000_000i64}})
}

async fn post_batch(api: &ApiClient, body: Value) -> reqwest::Response {
    api.request(Method::POST, "/api/v1/mirror/stats", Some(PEER), Some(body))
        .await
}

#[actix_web::test]
async fn the_peer_endpoint_applies_once_refuses_stale_epochs_and_bad_batches() {
    let app = spawn_app().await;
    app.put_branch(
        "porto",
        json!({"name": "Porto", "timezone": "UTC", "group": "north"}),
    )
    .await;
    app.put_service("porto", "cash", json!({"name": "Cash", "prefix": "C"}))
        .await;
    let day = "2026-05-28"; // 1_780_000_000_000 ms
    let path = format!("/api/v1/stats/branches/porto?from={day}&to={day}");
    let events = json!([
        issued("1780000000000-0", "1"),
        issued("1780000000000-1", "2")
    ]);

    for _ in 0..3 {
        let response = post_batch(&app, batch("s1", 2, events.clone())).await;
        assert_eq!(response.status(), StatusCode::OK);
        let ack: Value = response.json().await.expect("ack");
        assert_eq!(ack["applied_through"], "1780000000000-1");
    }
    assert_eq!(
        get_json(&app, &path).await["total"]["issued"],
        2,
        "sent three times, counted once"
    );

    // Malformed batches change nothing: ids not increasing, a bad id, a
    // missing field, epoch 0, a bad source.
    let bad = [
        batch(
            "s1",
            2,
            json!([
                issued("1780000000001-0", "3"),
                issued("1780000000000-5", "4")
            ]),
        ),
        batch("s1", 2, json!([issued("banana", "3")])),
        batch(
            "s1",
            2,
            json!([{"id": "1780000000001-0", "event": {"type": "ticket-issued"}}]),
        ),
        batch("s1", 0, json!([issued("1780000000001-0", "3")])),
        batch("bad source!", 2, json!([issued("1780000000001-0", "3")])),
    ];
    for body in bad {
        let response = post_batch(&app, body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(
        get_json(&app, &path).await["total"]["issued"],
        2,
        "nothing applied"
    );

    // A deposed leader's (older epoch) batch is refused and changes nothing.
    let response = post_batch(
        &app,
        batch("s1", 1, json!([issued("1780000000002-0", "9")])),
    )
    .await;
    assert_error(response, StatusCode::CONFLICT, "stale-epoch").await;
    assert_eq!(get_json(&app, &path).await["total"]["issued"], 2);

    // Unknown branch, wrong role.
    let mut unknown = batch("s1", 2, json!([]));
    unknown["branch"] = json!("nowhere");
    assert_error(
        post_batch(&app, unknown).await,
        StatusCode::NOT_FOUND,
        "unknown-branch",
    )
    .await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/mirror/stats",
            Some(KIOSK),
            Some(batch("s1", 2, json!([]))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn bad_stats_queries_are_refused() {
    let app = spawn_app().await;
    // No branch at all: an empty summary, not an error.
    let empty = get_json(&app, "/api/v1/stats/summary").await;
    assert_eq!(empty, json!({"branches": []}));
    app.setup_branch("main", &[("loans", "L")], &[]).await;
    for (query, status, code) in [
        (
            "/api/v1/stats/branches/nowhere",
            StatusCode::NOT_FOUND,
            "unknown-branch",
        ),
        (
            "/api/v1/stats/branches/Main",
            StatusCode::BAD_REQUEST,
            "invalid-identifier",
        ),
        (
            "/api/v1/stats/branches/main?from=2026-02-30",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?from=yesterday",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?from=2026-03-02&to=2026-03-01",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?from=2025-01-01&to=2026-02-05",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?format=xml",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?rows=counters",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?format=csv&rows=days",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
        (
            "/api/v1/stats/branches/main?color=red",
            StatusCode::BAD_REQUEST,
            "invalid-query",
        ),
    ] {
        let response = app.request(Method::GET, query, Some(DISPLAY), None).await;
        assert_error(response, status, code).await;
    }
    // 400 days exactly is allowed.
    let ok = app
        .request(
            Method::GET,
            "/api/v1/stats/branches/main?from=2025-01-01&to=2026-02-04",
            Some(DISPLAY),
            None,
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let no_token = app
        .request(Method::GET, "/api/v1/stats/summary", None, None)
        .await;
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
}
