//! Tokens checked by role: none or unknown (401), a role that may not do
//! the thing asked (403), on every family of endpoints.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_still_serving, branch_with_counter};
use crate::support::api::assert_error;
use crate::support::{ADMIN, DISPLAY, KIOSK, OPERATOR, PEER};

#[actix_web::test]
async fn tokens_are_checked_by_role() {
    let app = branch_with_counter().await;
    let call = "/api/v1/branches/main/counters/c1/call";
    let issue_body = || Some(json!({"service": "cash"}));

    // No token, an unknown token, a malformed header: 401.
    for token in [None, Some("not-a-token")] {
        let answer = app.request(Method::POST, call, token, None).await;
        assert_error(answer, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let answer = app
            .request(Method::GET, "/api/v1/admin/branches", token, None)
            .await;
        assert_error(answer, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let basic = app
        .http
        .get(app.url("/api/v1/branches/main/queues"))
        .header("Authorization", format!("Basic {DISPLAY}"))
        .send()
        .await
        .expect("answer");
    assert_error(basic, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A token of a role not allowed here: 403.
    let forbidden = [
        (Method::POST, call, KIOSK, None),
        (Method::POST, call, DISPLAY, None),
        (Method::POST, call, PEER, None),
        (Method::GET, "/api/v1/admin/branches", OPERATOR, None),
        (Method::GET, "/api/v1/admin/config/version", KIOSK, None),
        (
            Method::POST,
            "/api/v1/branches/main/tickets",
            DISPLAY,
            issue_body(),
        ),
        (
            Method::POST,
            "/api/v1/branches/main/tickets",
            OPERATOR,
            issue_body(),
        ),
        (Method::GET, "/api/v1/branches/main/queues", KIOSK, None),
        (Method::GET, "/api/v1/branches/main/display", PEER, None),
    ];
    for (method, path, token, body) in forbidden {
        let answer = app.request(method.clone(), path, Some(token), body).await;
        assert_error(answer, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let put = app
        .request(
            Method::PUT,
            "/api/v1/admin/branches/north",
            Some(OPERATOR),
            Some(json!({"name": "Porto"})),
        )
        .await;
    assert_error(put, StatusCode::FORBIDDEN, "forbidden").await;
    app.assert_no_branch("north").await;

    // Admin may do what an operator, kiosk or display may.
    let issued = app
        .request(
            Method::POST,
            "/api/v1/branches/main/tickets",
            Some(ADMIN),
            issue_body(),
        )
        .await;
    assert_eq!(issued.status(), StatusCode::CREATED);
    let called = app.request(Method::POST, call, Some(ADMIN), None).await;
    assert_eq!(called.status(), StatusCode::OK);
    let queues = app
        .request(
            Method::GET,
            "/api/v1/branches/main/queues",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(queues.status(), StatusCode::OK);
    assert_still_serving(&app).await;
}
