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
        for (method, path, token, body) in [
            (
                Method::PUT,
                format!("/api/v1/admin/branches/{bad}"),
                ADMIN,
                Some(json!({"name": "X"})),
            ),
            (
                Method::GET,
                format!("/api/v1/branches/{bad}/queues"),
                DISPLAY,
                None,
            ),
            (
                Method::POST,
                format!("/api/v1/branches/main/counters/{bad}/call"),
                OPERATOR,
                None,
            ),
            (
                Method::GET,
                format!("/api/v1/branches/main/tickets/{bad}"),
                DISPLAY,
                None,
            ),
        ] {
            let answer = app.request(method, &path, Some(token), body).await;
            assert_error(answer, StatusCode::BAD_REQUEST, "invalid-identifier").await;
        }
    }
    // 63 characters is still an identifier.
    let longest = "a".repeat(63);
    app.put_branch(&longest, json!({"name": "Longest"})).await;
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn unknown_things_are_404() {
    let app = branch_with_counter().await;
    // (method, path, token, body, the error code)
    let mut refused = vec![
        (
            Method::GET,
            "/api/v1/branches/nowhere".to_owned(),
            DISPLAY,
            None,
            "unknown-branch",
        ),
        (
            Method::GET,
            "/api/v1/branches/nowhere/queues".to_owned(),
            DISPLAY,
            None,
            "unknown-branch",
        ),
        (
            Method::GET,
            "/api/v1/branches/main/tickets/999999".to_owned(),
            DISPLAY,
            None,
            "unknown-ticket",
        ),
        (
            Method::POST,
            "/api/v1/branches/main/tickets".to_owned(),
            KIOSK,
            Some(json!({"service": "gold"})),
            "unknown-service",
        ),
        (
            Method::POST,
            "/api/v1/branches/nowhere/tickets".to_owned(),
            KIOSK,
            Some(json!({"service": "cash"})),
            "unknown-branch",
        ),
    ];
    for action in ["call", "recall", "finish", "no-show"] {
        refused.push((
            Method::POST,
            format!("/api/v1/branches/main/counters/c42/{action}"),
            OPERATOR,
            None,
            "unknown-counter",
        ));
    }
    // Administration of things that are not there.
    refused.extend([
        (
            Method::DELETE,
            "/api/v1/admin/branches/nowhere".to_owned(),
            ADMIN,
            None,
            "unknown-branch",
        ),
        (
            Method::DELETE,
            "/api/v1/admin/branches/main/services/gold".to_owned(),
            ADMIN,
            None,
            "unknown-service",
        ),
        (
            Method::DELETE,
            "/api/v1/admin/branches/main/counters/c42".to_owned(),
            ADMIN,
            None,
            "unknown-counter",
        ),
        (
            Method::PUT,
            "/api/v1/admin/branches/nowhere/services/cash".to_owned(),
            ADMIN,
            Some(json!({"name": "Cash", "prefix": "C"})),
            "unknown-branch",
        ),
    ]);
    for (method, path, token, body, code) in refused {
        let answer = app.request(method, &path, Some(token), body).await;
        assert_error(answer, StatusCode::NOT_FOUND, code).await;
    }

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
