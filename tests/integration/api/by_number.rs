//! Calling a waiting ticket by its number (`POST …/call` with
//! `{"number":"A042"}`) and the customer's ticket link (`"link"` in the
//! kiosk's answer, `?k=` on the one-ticket read).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::tickets::bank;
use crate::support::api::{assert_error, Ticket};
use crate::support::app::{spawn_app, TestApp};
use crate::support::{KIOSK, OPERATOR};

async fn call_number(app: &TestApp, counter: &str, body: Value) -> reqwest::Response {
    let path = format!("/api/v1/branches/main/counters/{counter}/call");
    app.request(Method::POST, &path, Some(OPERATOR), Some(body))
        .await
}

#[actix_web::test]
async fn a_counter_calls_a_waiting_ticket_by_its_number() {
    let app = bank().await;
    let first = app.issue("main", "cash").await;
    let second = app.issue("main", "cash").await;
    let third = app.issue("main", "accounts").await;

    // Out of the matrix order: the second cash ticket, then the accounts one.
    let answer = call_number(&app, "c1", json!({"number": second.number})).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let called: Ticket = answer.json().await.expect("a ticket");
    assert_eq!(
        (called.id.as_str(), called.status.as_str()),
        (second.id.as_str(), "called")
    );
    assert_eq!(called.counter.as_deref(), Some("c1"));
    assert_eq!(app.display("main").await[0].number, second.number);

    // Calling by number finishes the current ticket as served, like a call.
    let answer = call_number(&app, "c1", json!({"number": third.number})).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(app.ticket("main", &second.id).await.status, "served");

    // The called tickets left their queues: the matrix rule now finds the
    // first cash ticket and then nothing.
    assert_eq!(
        app.call("main", "c1").await.map(|t| t.id),
        Some(first.id.clone())
    );
    assert_eq!(app.call("main", "c1").await, None);
    assert_eq!(app.ticket("main", &third.id).await.status, "served");
}

#[actix_web::test]
async fn a_number_not_waiting_for_this_counter_is_409_and_changes_nothing() {
    let app = bank().await;
    let cash = app.issue("main", "cash").await;
    let loan = app.issue("main", "loans").await;
    let current = app.issue("main", "accounts").await;
    assert_eq!(
        app.call("main", "c1").await.map(|t| t.id),
        Some(cash.id.clone())
    );

    // A loans ticket is not in c1's row; C999 was never issued; the cash
    // ticket is already called.
    for number in [loan.number.as_str(), "C999", cash.number.as_str()] {
        let answer = call_number(&app, "c1", json!({"number": number})).await;
        assert_error(answer, StatusCode::CONFLICT, "not-waiting").await;
    }
    // c1's current ticket was not finished by the refused calls.
    assert_eq!(app.ticket("main", &cash.id).await.status, "called");
    assert_eq!(app.ticket("main", &loan.id).await.status, "waiting");
    assert_eq!(app.ticket("main", &current.id).await.status, "waiting");

    // Malformed numbers and bodies are 400, unknown counters 404.
    for body in [
        json!({"number": "a1"}),
        json!({"number": ""}),
        json!({"number": 42}),
    ] {
        let answer = call_number(&app, "c1", body).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    }
    let answer = call_number(&app, "nope", json!({"number": "C001"})).await;
    assert_error(answer, StatusCode::NOT_FOUND, "unknown-counter").await;
}

#[actix_web::test]
async fn two_counters_racing_for_one_number_get_it_once() {
    let app = spawn_app().await;
    let counters: Vec<(String, Vec<(&str, u32)>)> = (1..=6)
        .map(|i| (format!("c{i}"), vec![("cash", 1)]))
        .collect();
    let rows: Vec<(&str, &[(&str, u32)])> = counters
        .iter()
        .map(|(id, row)| (id.as_str(), row.as_slice()))
        .collect();
    app.setup_branch("main", &[("cash", "C")], &rows).await;
    for _ in 0..5 {
        let ticket = app.issue("main", "cash").await;
        let calls = counters
            .iter()
            .map(|(id, _)| call_number(&app, id, json!({"number": ticket.number})));
        let statuses: Vec<StatusCode> = futures::future::join_all(calls)
            .await
            .iter()
            .map(|r| r.status())
            .collect();
        let won = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        let refused = statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count();
        assert_eq!((won, refused), (1, 5), "{statuses:?}");
    }
}

#[actix_web::test]
async fn the_kiosks_link_opens_that_ticket_and_no_other() {
    let app = bank().await;
    let path = "/api/v1/branches/main/tickets";
    let issue = |service: &'static str| {
        app.request(
            Method::POST,
            path,
            Some(KIOSK),
            Some(json!({"service": service})),
        )
    };
    let mine: Value = issue("cash").await.json().await.expect("json");
    let other: Value = issue("cash").await.json().await.expect("json");
    let id = mine["id"].as_str().expect("id");
    let link = mine["link"]
        .as_str()
        .expect("the kiosk's answer carries a link");
    let key = link
        .strip_prefix(&format!("/t/main/{id}?k="))
        .unwrap_or_else(|| panic!("link {link} is /t/{{branch}}/{{id}}?k={{key}}"));

    // The key reads this ticket without a token.
    let read = |id: String, key: String| {
        let url = app.url(&format!("/api/v1/branches/main/tickets/{id}?k={key}"));
        let http = app.http.clone();
        async move { http.get(url).send().await.expect("request") }
    };
    let answer = read(id.to_owned(), key.to_owned()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let ticket: Ticket = answer.json().await.expect("ticket");
    assert_eq!((ticket.id.as_str(), ticket.position), (id, Some(1)));

    // Not another ticket, not a changed key, not another branch's ticket.
    let other_id = other["id"].as_str().expect("id").to_owned();
    let other_key = other["link"]
        .as_str()
        .expect("link")
        .rsplit_once("k=")
        .expect("key")
        .1;
    assert_ne!(key, other_key);
    let mut flipped = key.to_owned();
    flipped.replace_range(0..1, if key.starts_with('0') { "1" } else { "0" });
    for (id, key) in [
        (other_id.clone(), key.to_owned()),
        (id.to_owned(), flipped),
        (id.to_owned(), String::new()),
        ("999".to_owned(), key.to_owned()),
    ] {
        assert_error(read(id, key).await, StatusCode::NOT_FOUND, "unknown-ticket").await;
    }
    // Without a key the read still needs a token.
    let bare = app
        .http
        .get(app.url(&format!("/api/v1/branches/main/tickets/{id}")));
    assert_eq!(
        bare.send().await.expect("request").status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.ticket("main", id).await.id, id);
}
