//! Administration: branches, services and counters, each write raising the
//! configuration version, and the branch as branch operations see it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::api::assert_error;
use crate::support::app::spawn_app;
use crate::support::DISPLAY;

fn version(answer: &Value) -> u64 {
    answer["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no version in {answer}"))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect()
}

#[actix_web::test]
async fn admin_crud_raises_the_version_on_every_write() {
    let app = spawn_app().await;
    assert_eq!(
        app.config_version().await,
        0,
        "a fresh installation is at version 0"
    );

    let created = app
        .put_branch(
            "main",
            json!({"name": "Lisbon", "timezone": "Europe/Lisbon"}),
        )
        .await;
    let v1 = version(&created);
    assert!(v1 >= 1);
    assert_eq!(created["id"], "main");
    assert_eq!(created["name"], "Lisbon");
    assert_eq!(created["timezone"], "Europe/Lisbon");

    let service = app
        .put_service(
            "main",
            "loans",
            json!({"name": "Loans", "prefix": "L", "target_wait_s": 900}),
        )
        .await;
    let v2 = version(&service);
    assert!(v2 > v1, "{v2} after {v1}");
    assert_eq!(service["id"], "loans");
    assert_eq!(service["prefix"], "L");
    assert_eq!(service["target_wait_s"], 900);
    assert_eq!(
        (service["first"].as_u64(), service["last"].as_u64()),
        (Some(1), Some(999)),
        "default range"
    );

    let v3 = version(
        &app.put_service("main", "cash", json!({"name": "Cash", "prefix": "C"}))
            .await,
    );
    assert!(v3 > v2);

    let counter = app
        .put_counter("main", "c1", &[("loans", 1), ("cash", 2)])
        .await;
    let v4 = version(&counter);
    assert!(v4 > v3);
    assert_eq!(counter["id"], "c1");
    assert_eq!(
        counter["services"],
        json!([{"service": "loans", "priority": 1}, {"service": "cash", "priority": 2}])
    );
    let v5 = version(&app.put_counter("main", "c2", &[("cash", 1)]).await);
    assert!(v5 > v4);

    // Replacing the branch's metadata keeps its services and counters.
    let renamed = app
        .put_branch(
            "main",
            json!({"name": "Lisbon, Avenida", "timezone": "Europe/Lisbon"}),
        )
        .await;
    let v6 = version(&renamed);
    assert!(v6 > v5);
    assert_eq!(renamed["name"], "Lisbon, Avenida");
    assert_eq!(ids(&renamed["services"]), ["cash", "loans"]);
    assert_eq!(ids(&renamed["counters"]), ["c1", "c2"]);
    assert_eq!(app.config_version().await, v6);

    // Reads.
    let v7 = version(&app.put_branch("north", json!({"name": "Porto"})).await);
    assert!(v7 > v6);
    let all = app.admin_get("/api/v1/admin/branches").await;
    let mut names = ids(&all);
    names.sort();
    assert_eq!(names, ["main", "north"]);
    let north = app.admin_get("/api/v1/admin/branches/north").await;
    assert_eq!(north["timezone"], "UTC", "the default time zone");
    let main = app.admin_get("/api/v1/admin/branches/main").await;
    assert_eq!(ids(&main["services"]), ["cash", "loans"]);

    // The branch as kiosks and displays see it, with the version it is at.
    let seen = app.branch("main").await;
    assert_eq!(seen["config_version"].as_u64(), Some(v7));
    assert_eq!(seen["name"], "Lisbon, Avenida");
    assert_eq!(ids(&seen["counters"]), ["c1", "c2"]);

    // Deleting a service removes it from every counter's row.
    let v8 = version(
        &app.admin_delete("/api/v1/admin/branches/main/services/cash")
            .await,
    );
    assert!(v8 > v7);
    let main = app.admin_get("/api/v1/admin/branches/main").await;
    assert_eq!(ids(&main["services"]), ["loans"]);
    assert_eq!(
        main["counters"][0]["services"],
        json!([{"service": "loans", "priority": 1}])
    );
    assert_eq!(main["counters"][1]["services"], json!([]));

    let v9 = version(
        &app.admin_delete("/api/v1/admin/branches/main/counters/c2")
            .await,
    );
    assert!(v9 > v8);
    assert_eq!(
        ids(&app.admin_get("/api/v1/admin/branches/main").await["counters"]),
        ["c1"]
    );

    let v10 = version(&app.admin_delete("/api/v1/admin/branches/north").await);
    assert!(v10 > v9);
    assert_eq!(
        ids(&app.admin_get("/api/v1/admin/branches").await),
        ["main"]
    );
    assert_eq!(app.config_version().await, v10);
    app.assert_no_branch("north").await;
    let gone = app
        .request(Method::GET, "/api/v1/branches/north", Some(DISPLAY), None)
        .await;
    assert_error(gone, StatusCode::NOT_FOUND, "unknown-branch").await;
}

#[actix_web::test]
async fn a_service_can_be_replaced_and_the_branch_view_follows() {
    let app = spawn_app().await;
    app.setup_branch("main", &[("loans", "L")], &[("c1", &[("loans", 1)])])
        .await;
    let before = app.branch("main").await["config_version"]
        .as_u64()
        .expect("version");
    let answer = app
        .put_service(
            "main",
            "loans",
            json!({"name": "Mortgages", "prefix": "M", "first": 10, "last": 99}),
        )
        .await;
    assert!(version(&answer) > before);
    let seen = app.branch("main").await;
    assert_eq!(seen["config_version"].as_u64(), Some(version(&answer)));
    assert_eq!(seen["services"][0]["name"], "Mortgages");
    // The next ticket uses the new prefix and range at once.
    assert_eq!(app.issue("main", "loans").await.number, "M10");
}
