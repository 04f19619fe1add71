//! Live events (Server-Sent Events) and the operational endpoints.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::app::spawn_app;
use crate::support::sse::{issue_until_seen, open_events};

#[actix_web::test]
async fn live_events_carry_issued_and_called_tickets() {
    let app = spawn_app().await;
    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;

    let mut events = open_events(&app, "main").await;
    let (ticket, seen) =
        issue_until_seen(&app, &mut events, "main", "cash", Duration::from_secs(30)).await;
    assert_eq!(
        (seen.number.as_str(), seen.status.as_str()),
        (ticket.number.as_str(), "waiting")
    );
    assert_eq!(
        (seen.branch.as_str(), seen.service.as_str()),
        ("main", "cash")
    );

    let later = app.issue("main", "cash").await;
    let seen = events
        .find("ticket-issued", &later.id, Duration::from_secs(10))
        .await
        .expect("ticket-issued for the second ticket");
    assert_eq!(seen.number, later.number);

    // Called: the oldest waiting ticket, which may be one issued while the
    // node was not yet listening.
    let called = app.call("main", "c1").await.expect("tickets wait");
    let seen = events
        .find("ticket-called", &called.id, Duration::from_secs(10))
        .await
        .expect("ticket-called event");
    assert_eq!(seen.status, "called");
    assert_eq!(seen.counter.as_deref(), Some("c1"));
    assert_eq!(seen.number, called.number);
    assert!(seen.called_at.is_some());

    app.counter_action("main", "c1", "recall").await;
    let seen = events
        .find("ticket-recalled", &called.id, Duration::from_secs(10))
        .await;
    assert_eq!(seen.expect("ticket-recalled event").status, "called");
    app.counter_action("main", "c1", "finish").await;
    let seen = events
        .find("ticket-served", &called.id, Duration::from_secs(10))
        .await;
    assert_eq!(seen.expect("ticket-served event").status, "served");
}

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let app = spawn_app().await;
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.expect("JSON")["status"], "ok");
    assert_eq!(app.readyz().await, Some(StatusCode::OK));

    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    app.issue("main", "cash").await;
    app.issue("main", "cash").await;
    app.call("main", "c1").await.expect("a ticket");

    let metrics = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let content_type = metrics.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = metrics.text().await.expect("text");
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("branch=\"main\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for main in:\n{text}"))
    };
    assert!(text.contains("turnus_tickets_issued"), "{text}");
    assert_eq!(value("turnus_tickets_issued"), 2.0);
    assert_eq!(value("turnus_tickets_called"), 1.0);
    assert_eq!(value("turnus_queue_waiting"), 1.0);
    assert!(
        text.contains("turnus_http_requests"),
        "request counts: {text}"
    );
}

#[actix_web::test]
async fn the_openapi_document_lists_the_api() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.expect("the document is JSON");
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3: {}",
        document["openapi"]
    );
    let paths = document["paths"].as_object().expect("paths");
    let expected = [
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/api/v1/admin/branches"),
        ("get", "/api/v1/admin/branches/{branch}"),
        ("put", "/api/v1/admin/branches/{branch}"),
        ("delete", "/api/v1/admin/branches/{branch}"),
        ("put", "/api/v1/admin/branches/{branch}/services/{service}"),
        (
            "delete",
            "/api/v1/admin/branches/{branch}/services/{service}",
        ),
        ("put", "/api/v1/admin/branches/{branch}/counters/{counter}"),
        (
            "delete",
            "/api/v1/admin/branches/{branch}/counters/{counter}",
        ),
        ("get", "/api/v1/admin/config/version"),
        ("get", "/api/v1/branches/{branch}"),
        ("post", "/api/v1/branches/{branch}/tickets"),
        ("get", "/api/v1/branches/{branch}/tickets/{id}"),
        ("post", "/api/v1/branches/{branch}/counters/{counter}/call"),
        (
            "post",
            "/api/v1/branches/{branch}/counters/{counter}/recall",
        ),
        (
            "post",
            "/api/v1/branches/{branch}/counters/{counter}/finish",
        ),
        (
            "post",
            "/api/v1/branches/{branch}/counters/{counter}/no-show",
        ),
        (
            "post",
            "/api/v1/branches/{branch}/counters/{counter}/transfer",
        ),
        ("get", "/api/v1/branches/{branch}/queues"),
        ("get", "/api/v1/branches/{branch}/display"),
        ("get", "/api/v1/branches/{branch}/events"),
        ("get", "/api/v1/admin/media"),
        ("put", "/api/v1/admin/media/{path}"),
        ("delete", "/api/v1/admin/media/{path}"),
        ("get", "/media/{path}"),
        ("get", "/api/v1/mirror/media/manifest"),
        ("get", "/api/v1/mirror/media/blobs/{sha256}"),
        ("put", "/api/v1/admin/branches/{branch}/players/{player}"),
        ("delete", "/api/v1/admin/branches/{branch}/players/{player}"),
        ("get", "/api/v1/branches/{branch}/players/{player}"),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(method, path)| paths.get(*path).and_then(|p| p.get(*method)).is_none())
        .map(|(method, path)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        missing.is_empty(),
        "missing from the OpenAPI document: {missing:?}"
    );
}

/// A change to a branch's configuration reaches its live displays as
/// `config-changed` with the new version; a display of another branch is not
/// told.
#[actix_web::test]
async fn config_changes_reach_the_branch_displays() {
    let app = spawn_app().await;
    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    app.setup_branch("other", &[("cash", "C")], &[]).await;
    let mut main_events = open_events(&app, "main").await;
    let mut other_events = open_events(&app, "other").await;
    // Events flow only once the node has subscribed; prove it first.
    issue_until_seen(
        &app,
        &mut main_events,
        "main",
        "cash",
        Duration::from_secs(30),
    )
    .await;

    let body = serde_json::json!({"name": "Loans", "prefix": "L", "target_wait_s": 300});
    let version = app.put_service("main", "loans", body).await["version"]
        .as_u64()
        .expect("version");

    let changed = loop {
        let event = main_events
            .next(Duration::from_secs(10))
            .await
            .expect("config-changed within 10 s");
        if event.name == "config-changed" {
            break event;
        }
    };
    let data: Value = serde_json::from_str(&changed.data).expect("JSON data");
    assert_eq!(data["branch"], "main");
    assert_eq!(data["config_version"].as_u64(), Some(version));

    // The other branch's display hears nothing about it: its next event is
    // its own ticket.
    let own = app.issue("other", "cash").await;
    let event = other_events
        .next(Duration::from_secs(10))
        .await
        .expect("the other branch's own ticket event");
    assert_eq!(event.name, "ticket-issued", "{}", event.data);
    assert!(event.data.contains(&own.id));
}
