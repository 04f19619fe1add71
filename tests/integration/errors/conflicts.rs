//! Counter actions that need a current ticket when the counter has none (409).

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{assert_still_serving, branch_with_counter};
use crate::support::api::assert_error;
use crate::support::OPERATOR;

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
