//! Bodies a node refuses: malformed or ill-typed JSON, configuration
//! values out of range, a matrix row naming an unknown service (400),
//! bodies over the limit (413) and wrong content types (415).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_still_serving, branch_with_counter, JSON};
use crate::support::api::assert_error;
use crate::support::{ADMIN, KIOSK};

#[actix_web::test]
async fn malformed_and_ill_typed_bodies_are_400() {
    let app = branch_with_counter().await;
    let put = |body: &'static str| {
        app.request_raw(
            Method::PUT,
            "/api/v1/admin/branches/north",
            Some(ADMIN),
            JSON,
            body,
        )
    };
    assert_error(
        put(r#"{"name": "Porto""#).await,
        StatusCode::BAD_REQUEST,
        "invalid-json",
    )
    .await;
    assert_error(
        put("not json at all").await,
        StatusCode::BAD_REQUEST,
        "invalid-json",
    )
    .await;
    assert_error(
        put(r#"{"name": 5}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(
        put(r#"{"timezone": "UTC"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(
        put(r#"{"name": "Porto", "colour": "red"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(put("[]").await, StatusCode::BAD_REQUEST, "invalid-body").await;

    let issue = |body: &'static str| {
        app.request_raw(
            Method::POST,
            "/api/v1/branches/main/tickets",
            Some(KIOSK),
            JSON,
            body,
        )
    };
    assert_error(
        issue(r#"{"service": 1}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(
        issue(r#"{"service": "cash", "vip": true}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(
        issue(r#"{"service": "Cash!"}"#).await,
        StatusCode::BAD_REQUEST,
        "invalid-body",
    )
    .await;
    assert_error(issue("{}").await, StatusCode::BAD_REQUEST, "invalid-body").await;

    // A counter row of the wrong shape.
    let row = app
        .request(
            Method::PUT,
            "/api/v1/admin/branches/main/counters/c9",
            Some(ADMIN),
            Some(json!({"name": "C9", "services": [{"service": "cash", "priority": -1}]})),
        )
        .await;
    assert_error(row, StatusCode::BAD_REQUEST, "invalid-body").await;

    // Nothing was created on the way.
    app.assert_no_branch("north").await;
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn invalid_configuration_values_are_400_invalid_body() {
    let app = branch_with_counter().await;
    let service = |body| {
        app.request(
            Method::PUT,
            "/api/v1/admin/branches/main/services/new",
            Some(ADMIN),
            Some(body),
        )
    };
    for prefix in ["a", "ABC", "", "A1", "É"] {
        let answer = service(json!({"name": "New", "prefix": prefix})).await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-body").await;
    }
    let answer = service(json!({"name": "New", "prefix": "N", "first": 10, "last": 5})).await;
    let message = assert_error(answer, StatusCode::BAD_REQUEST, "invalid-body").await;
    assert!(
        message.contains("first"),
        "the message names the field: {message}"
    );
    let answer = service(json!({"name": "  ", "prefix": "N"})).await;
    assert_error(answer, StatusCode::BAD_REQUEST, "invalid-body").await;

    let branch = |body| {
        app.request(
            Method::PUT,
            "/api/v1/admin/branches/main",
            Some(ADMIN),
            Some(body),
        )
    };
    for timezone in ["Mars/Olympus", "", "UTC+25"] {
        let answer = branch(json!({"name": "Lisbon", "timezone": timezone})).await;
        assert_error(answer, StatusCode::BAD_REQUEST, "invalid-body").await;
    }

    // None of it changed the configuration.
    let main = app.admin_get("/api/v1/admin/branches/main").await;
    assert_eq!(main["timezone"], "Europe/Lisbon");
    assert_eq!(main["services"].as_array().map(Vec::len), Some(2));
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn a_counter_row_with_an_unknown_service_is_400() {
    let app = branch_with_counter().await;
    let answer = app
        .request(
            Method::PUT,
            "/api/v1/admin/branches/main/counters/c9",
            Some(ADMIN),
            Some(json!({"name": "C9", "services": [{"service": "cash", "priority": 1}, {"service": "gold", "priority": 2}]})),
        )
        .await;
    let message = assert_error(answer, StatusCode::BAD_REQUEST, "unknown-service").await;
    assert!(message.contains("gold"), "{message}");
    let main = app.admin_get("/api/v1/admin/branches/main").await;
    assert_eq!(
        main["counters"].as_array().map(Vec::len),
        Some(2),
        "c9 was not created"
    );
    assert_still_serving(&app).await;
}

#[actix_web::test]
async fn oversized_bodies_are_413_and_wrong_content_types_415() {
    let app = branch_with_counter().await;
    let north = "/api/v1/admin/branches/north";
    for (method, path, token, body, status, code) in [
        (
            Method::PUT,
            north,
            ADMIN,
            format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
        ),
        (
            Method::POST,
            "/api/v1/branches/main/tickets",
            KIOSK,
            format!(r#"{{"service": "{}"}}"#, "c".repeat(70 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
        ),
        // Just under the limit is not too large (it fails validation instead).
        (
            Method::PUT,
            north,
            ADMIN,
            format!(r#"{{"name": "{}"}}"#, "x".repeat(60 * 1024)),
            StatusCode::BAD_REQUEST,
            "invalid-body",
        ),
    ] {
        let answer = app.request_raw(method, path, Some(token), JSON, body).await;
        assert_error(answer, status, code).await;
    }

    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let answer = app
            .request_raw(
                Method::POST,
                "/api/v1/branches/main/tickets",
                Some(KIOSK),
                content_type,
                r#"{"service": "cash"}"#,
            )
            .await;
        assert_error(
            answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        )
        .await;
    }
    assert_still_serving(&app).await;
}
