//! Paths a node refuses: identifiers that break the id pattern (400) and
//! branches, services, counters, tickets and routes that do not exist (404).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_still_serving, branch_with_counter};
use crate::support::api::assert_error;
use crate::support::{ADMIN, DISPLAY, KIOSK, OPERATOR};

#[actix_web::test]
async fn invalid_identifiers_in_paths_are_400() {
    let app = branch_with_counter().await;
    let too_long = "a".repeat(64);
    for bad in ["Main", "a_b", too_long.as_str(), "-main", "ma%20in"] {
        let answer = app
            .request(
                Method::PUT,
                &format!("/api/v1/admin/branches/{bad}"),
                Some(ADMIN),
                Some(json!({"name": "X"})),
            )
            .await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-identifier").await;
        let answer = app
            .request(
                Method::GET,
                &format!("/api/v1/branches/{bad}/queues"),
                Some(DISPLAY),
                None,
            )
            .await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-identifier").await;
        let answer = app
            .request(
                Method::POST,
                &format!("/api/v1/branches/main/counters/{bad}/call"),
                Some(OPERATOR),
                None,
            )
            .await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-identifier").await;
        let answer = app
            .request(
                Method::GET,
                &format!("/api/v1/branches/main/tickets/{bad}"),
                Some(DISPLAY),
                None,
            )
            .await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-identifier").await;
    }
    // 63 characters is still an identifier.
    let longest = "a".repeat(63);
    app.put_branch(&longest, json!({"name": "Longest"})).await;
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn unknown_things_are_404() {
    let app = branch_with_counter().await;
    let get = async |path: &str| app.request(Method::GET, path, Some(DISPLAY), None).await;
    assert_error(
        get("/api/v1/branches/nowhere").await,
        StatusCode::NOT_FOUND,
        "unknown-branch",
    )
    .await;
    assert_error(
        get("/api/v1/branches/nowhere/queues").await,
        StatusCode::NOT_FOUND,
        "unknown-branch",
    )
    .await;
    assert_error(
        get("/api/v1/branches/main/tickets/999999").await,
        StatusCode::NOT_FOUND,
        "unknown-ticket",
    )
    .await;

    let issue = app
        .request(
            Method::POST,
            "/api/v1/branches/main/tickets",
            Some(KIOSK),
            Some(json!({"service": "gold"})),
        )
        .await;
    assert_error(issue, StatusCode::NOT_FOUND, "unknown-service").await;
    let issue = app
        .request(
            Method::POST,
            "/api/v1/branches/nowhere/tickets",
            Some(KIOSK),
            Some(json!({"service": "cash"})),
        )
        .await;
    assert_error(issue, StatusCode::NOT_FOUND, "unknown-branch").await;
    for action in ["call", "recall", "finish", "no-show"] {
        let answer = app
            .request(
                Method::POST,
                &format!("/api/v1/branches/main/counters/c42/{action}"),
                Some(OPERATOR),
                None,
            )
            .await;
        assert_error(answer, StatusCode::NOT_FOUND, "unknown-counter").await;
    }

    // Administration of things that are not there.
    let delete = |path: &'static str| app.request(Method::DELETE, path, Some(ADMIN), None);
    assert_error(
        delete("/api/v1/admin/branches/nowhere").await,
        StatusCode::NOT_FOUND,
        "unknown-branch",
    )
    .await;
    assert_error(
        delete("/api/v1/admin/branches/main/services/gold").await,
        StatusCode::NOT_FOUND,
        "unknown-service",
    )
    .await;
    assert_error(
        delete("/api/v1/admin/branches/main/counters/c42").await,
        StatusCode::NOT_FOUND,
        "unknown-counter",
    )
    .await;
    let service = app
        .request(
            Method::PUT,
            "/api/v1/admin/branches/nowhere/services/cash",
            Some(ADMIN),
            Some(json!({"name": "Cash", "prefix": "C"})),
        )
        .await;
    assert_error(service, StatusCode::NOT_FOUND, "unknown-branch").await;

    // A transfer to a service the branch does not have.
    app.issue("main", "cash").await;
    app.call("main", "c1").await.expect("a ticket");
    let transfer = app
        .request(
            Method::POST,
            "/api/v1/branches/main/counters/c1/transfer",
            Some(OPERATOR),
            Some(json!({"service": "gold"})),
        )
        .await;
    assert_error(transfer, StatusCode::NOT_FOUND, "unknown-service").await;
    assert_eq!(
        app.counter_action("main", "c1", "recall").await.status,
        "called",
        "the ticket stayed"
    );

    // Paths that do not exist at all.
    for (method, path) in [
        (Method::GET, "/nothing-here"),
        (Method::GET, "/api/v2/branches/main"),
        (Method::POST, "/api/v1/branches/main/counters/c1/dance"),
    ] {
        let answer = app.request(method, path, Some(ADMIN), None).await;
        assert_error(answer, StatusCode::NOT_FOUND, "not-found").await;
    }
    assert_still_serving(&app).await;
}
