//! Event streams: a client that has gone gives its stream back within
//! seconds (heartbeats find the closed connection), and one token holds at
//! most `http.max_streams_per_token` streams.

use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::support::api::{assert_error, metric_value};
use crate::support::app::{spawn_app_with, TestApp};
use crate::support::eventually;
use crate::support::sse::open_events;
use crate::support::{ADMIN, DISPLAY};

const EVENTS: &str = "/api/v1/branches/main/events";

async fn open_streams(app: &TestApp) -> f64 {
    let text = app.metrics().await.expect("metrics");
    metric_value(&text, "turnus_event_streams").expect("the gauge is exported")
}

#[actix_web::test]
async fn a_token_holds_a_bounded_number_of_streams_and_a_gone_client_frees_its_own() {
    let app = spawn_app_with(&[
        ("TURNUS__HTTP__MAX_STREAMS_PER_TOKEN", "2"),
        ("TURNUS__HTTP__SSE_HEARTBEAT_MS", "300"),
    ])
    .await;
    app.setup_branch("main", &[("cash", "C")], &[]).await;
    let first = open_events(&app, "main").await;
    let mut second = open_events(&app, "main").await;
    let third = app.request(Method::GET, EVENTS, Some(DISPLAY), None).await;
    assert_error(third, StatusCode::TOO_MANY_REQUESTS, "too-many-streams").await;
    // Another token is counted on its own.
    let admin = app.request(Method::GET, EVENTS, Some(ADMIN), None).await;
    assert_eq!(admin.status(), StatusCode::OK);
    assert_eq!(open_streams(&app).await, 3.0);

    // The heartbeat is a comment line, every 300 ms here.
    assert!(
        second.heartbeat(Duration::from_secs(5)).await,
        "no heartbeat"
    );

    // The client goes away without a word; within a few heartbeats the node
    // notices and the token may open a stream again.
    drop(first);
    eventually(
        "the gone client's stream freed",
        Duration::from_secs(5),
        || async { (open_streams(&app).await == 2.0).then_some(()) },
    )
    .await;
    let again = open_events(&app, "main").await;
    drop((again, second, admin));
}
