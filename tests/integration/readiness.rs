//! Readiness follows Redis: down (stopped, or cut off by the network) means
//! 503 on `/readyz` and on ticket operations; back up means ready again,
//! tickets and live events included, without restarting the node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::api::assert_error;
use crate::support::app::{spawn_app, spawn_app_behind_proxy, TestApp};
use crate::support::sse::{issue_until_seen, open_events};
use crate::support::{eventually, ADMIN, KIOSK};

/// Long enough for the node's Redis connection to notice and reconnect on a
/// slow machine; the tests move on as soon as the condition holds.
const WITHIN: Duration = Duration::from_secs(30);

async fn setup(app: &TestApp) {
    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    assert_eq!(app.readyz().await, Some(StatusCode::OK));
    app.issue("main", "cash").await;
}

async fn wait_readyz(app: &TestApp, status: StatusCode) {
    eventually(&format!("/readyz to say {status}"), WITHIN, || async {
        (app.readyz().await == Some(status)).then_some(())
    })
    .await;
}

/// While Redis is unreachable: 503 everywhere it matters, bodies that give
/// nothing away, and a process that is alive.
async fn assert_unavailable(app: &TestApp) {
    let answer = app.request(Method::GET, "/readyz", None, None).await;
    assert_error(answer, StatusCode::SERVICE_UNAVAILABLE, "not-ready").await;
    let issue = app
        .request(
            Method::POST,
            "/api/v1/branches/main/tickets",
            Some(KIOSK),
            Some(json!({"service": "cash"})),
        )
        .await;
    let message = assert_error(issue, StatusCode::SERVICE_UNAVAILABLE, "redis-unavailable").await;
    let port = app.redis.port().to_string();
    for secret in [
        port.as_str(),
        "127.0.0.1",
        "redis://",
        "refused",
        "timed out",
    ] {
        assert!(
            !message.contains(secret),
            "the 503 body leaks {secret:?}: {message}"
        );
    }
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "the process itself is fine"
    );
}

/// After Redis is back: tickets are issued and called, and live events flow
/// again (the node subscribed anew).
async fn assert_serving_again(app: &TestApp) {
    let ticket = app.issue("main", "cash").await;
    assert_eq!(app.ticket("main", &ticket.id).await.status, "waiting");
    assert!(app.call("main", "c1").await.is_some());
    let mut events = open_events(app, "main").await;
    issue_until_seen(app, &mut events, "main", "cash", WITHIN).await;
}

#[actix_web::test]
async fn readiness_follows_redis_down_and_back_up() {
    let mut app = spawn_app().await;
    setup(&app).await;

    app.redis.stop().await;
    wait_readyz(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_unavailable(&app).await;

    app.redis.restart().await;
    // The restarted test Redis kept nothing (it has no persistence): within
    // a heartbeat the node notices its store lost its data, and a master
    // group takes no ticket writes until the administrator has set the
    // branch up again and adopted the store.
    eventually("/readyz to say store-lost", WITHIN, || async {
        let answer = app.request(Method::GET, "/readyz", None, None).await;
        let body: serde_json::Value = answer.json().await.ok()?;
        (body["error"]["code"] == "store-lost").then_some(())
    })
    .await;
    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    let adopted = app
        .request(
            Method::POST,
            "/api/v1/cluster/store/adopt",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(adopted.status(), StatusCode::OK);
    wait_readyz(&app, StatusCode::OK).await;
    assert_serving_again(&app).await;
}

#[actix_web::test]
async fn readiness_follows_a_cut_and_healed_connection_to_redis() {
    let (app, proxy) = spawn_app_behind_proxy().await;
    setup(&app).await;

    // Refused connections.
    proxy.cut();
    wait_readyz(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_unavailable(&app).await;
    proxy.heal();
    wait_readyz(&app, StatusCode::OK).await;
    assert_serving_again(&app).await;

    // Silence: connections accepted, never answered, as in a partition.
    proxy.blackhole();
    wait_readyz(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_unavailable(&app).await;
    proxy.heal();
    wait_readyz(&app, StatusCode::OK).await;
    assert_serving_again(&app).await;
}
