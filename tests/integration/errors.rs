//! Every error of API.md "Conventions": the status, the stable `error.code`
//! from `src/http/error.rs`, and that the node goes on serving afterwards.

mod store;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::api::assert_error;
use crate::support::app::{spawn_app, TestApp};
use crate::support::{ADMIN, DISPLAY, KIOSK, OPERATOR, PEER};

const JSON: &str = "application/json";

async fn branch_with_counter() -> TestApp {
    let app = spawn_app().await;
    app.setup_branch(
        "main",
        &[("cash", "C"), ("loans", "L")],
        &[("c1", &[("cash", 1)]), ("c2", &[("loans", 1)])],
    )
    .await;
    app
}

/// The node still does real work: a ticket is issued and can be read.
async fn assert_still_serving(app: &TestApp) {
    let health = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    let ticket = app.issue("main", "cash").await;
    assert_eq!(app.ticket("main", &ticket.id).await.status, "waiting");
}

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
    let north = app
        .request(
            Method::GET,
            "/api/v1/admin/branches/north",
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(north, StatusCode::NOT_FOUND, "unknown-branch").await;
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
    let north = app
        .request(
            Method::GET,
            "/api/v1/admin/branches/north",
            Some(ADMIN),
            None,
        )
        .await;
    assert_error(north, StatusCode::NOT_FOUND, "unknown-branch").await;

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

#[actix_web::test]
async fn oversized_bodies_are_413_and_wrong_content_types_415() {
    let app = branch_with_counter().await;
    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(70 * 1024));
    let answer = app
        .request_raw(
            Method::PUT,
            "/api/v1/admin/branches/north",
            Some(ADMIN),
            JSON,
            huge,
        )
        .await;
    assert_error(answer, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    let huge = format!(r#"{{"service": "{}"}}"#, "c".repeat(70 * 1024));
    let answer = app
        .request_raw(
            Method::POST,
            "/api/v1/branches/main/tickets",
            Some(KIOSK),
            JSON,
            huge,
        )
        .await;
    assert_error(answer, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    // Just under the limit is not too large (it fails validation instead).
    let near = format!(r#"{{"name": "{}"}}"#, "x".repeat(60 * 1024));
    let answer = app
        .request_raw(
            Method::PUT,
            "/api/v1/admin/branches/north",
            Some(ADMIN),
            JSON,
            near,
        )
        .await;
    assert_error(answer, StatusCode::BAD_REQUEST, "invalid-body").await;

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

#[actix_web::test]
async fn counter_actions_without_a_current_ticket_are_409() {
    let app = branch_with_counter().await;
    let expect_409 = async |action: &str, body: Option<serde_json::Value>| {
        let path = format!("/api/v1/branches/main/counters/c1/{action}");
        app.request(Method::POST, &path, Some(OPERATOR), body).await
    };
    let check_all = || async {
        for action in ["recall", "finish", "no-show"] {
            assert_error(
                expect_409(action, None).await,
                StatusCode::CONFLICT,
                "no-current-ticket",
            )
            .await;
        }
        let transfer = expect_409("transfer", Some(json!({"service": "loans"}))).await;
        assert_error(transfer, StatusCode::CONFLICT, "no-current-ticket").await;
    };
    // Never called anything.
    check_all().await;
    // Called, then finished: nothing current again.
    let ticket = app.issue("main", "cash").await;
    app.call("main", "c1").await.expect("a ticket");
    app.counter_action("main", "c1", "finish").await;
    check_all().await;
    assert_eq!(
        app.ticket("main", &ticket.id).await.status,
        "served",
        "the 409s changed nothing"
    );
    assert_still_serving(&app).await;
}
