//! Every error of API.md "Conventions": the status, the stable `error.code`
//! from `src/http/error.rs`, and that the node goes on serving afterwards.
//! This file owns the shared fixture (a branch with two counters) and the
//! "still serving" check; the tests live in one file per family:
//!
//! - `bodies`: malformed, ill-typed, invalid, oversized bodies and wrong
//!   content types (400, 413, 415);
//! - `paths`: invalid identifiers in paths (400) and unknown things (404);
//! - `auth`: tokens checked by role (401, 403);
//! - `conflicts`: counter actions without a current ticket (409);
//! - `store`: store failures that are not bugs: a loading Redis (503), a
//!   compare-and-swap that keeps losing (409).

mod auth;
mod bodies;
mod conflicts;
mod paths;
mod store;

use reqwest::{Method, StatusCode};

use crate::support::app::{spawn_app, TestApp};

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
