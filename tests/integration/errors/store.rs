//! Store failures that are not bugs reach clients with a deliberate status:
//!
//! - a restarted Redis that is still reading a large data set answers
//!   `LOADING` to every command; the node answers 503 `store-loading`
//!   meanwhile (not 500 `internal`) and serves again, with the data, once
//!   it is loaded;
//! - a compare-and-swap that keeps losing to concurrent writers gives up as
//!   contention (409 `write-contention`), not as corrupt data.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::app::spawn_app;
use crate::support::KIOSK;

/// Keys written besides the ticket, so the reload takes a while: with the
/// per-key delay below, about 2 s.
const FILLER_KEYS: u32 = 20_000;
const KEY_LOAD_DELAY_US: u32 = 100;

#[actix_web::test]
async fn a_loading_redis_gives_503_store_loading_then_serves_the_data() {
    let mut app = spawn_app().await;
    app.setup_branch("main", &[("cash", "C")], &[]).await;
    let before = app.issue("main", "cash").await;

    let client = redis::Client::open(app.redis.url()).expect("redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    // In chunks: one big command can outlast the client's reply timeout on
    // a loaded machine.
    for chunk in (0..FILLER_KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut mset = redis::cmd("MSET");
        for i in chunk {
            mset.arg(format!("filler:{i}")).arg(i);
        }
        let () = mset
            .query_async(&mut conn)
            .await
            .expect("write the filler keys");
    }
    drop(conn);
    app.redis.save().await;
    app.redis.stop().await;
    app.redis.restart_loading_slowly(KEY_LOAD_DELAY_US).await;

    // Issue until the node issues again; count every other answer by
    // status and code.
    let path = "/api/v1/branches/main/tickets";
    let mut refusals: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        assert!(
            Instant::now() < deadline,
            "no ticket within 60 s of the restart; refusals so far: {refusals:?}"
        );
        let response = app
            .request(
                Method::POST,
                path,
                Some(KIOSK),
                Some(json!({"service": "cash"})),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        if status == StatusCode::CREATED {
            break body;
        }
        let code = body["error"]["code"].as_str().unwrap_or("?").to_owned();
        *refusals.entry((status.as_u16(), code)).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    assert!(
        refusals.contains_key(&(503, "store-loading".to_owned())),
        "no 503 store-loading while Redis loaded: {refusals:?}"
    );
    // Only "not now" answers while Redis came back; never a 500.
    for (status, code) in refusals.keys() {
        assert!(
            *status == 503 && (code == "store-loading" || code == "redis-unavailable"),
            "unexpected answer while Redis loaded: {status} {code} ({refusals:?})"
        );
    }
    // The data came back with it: the earlier ticket is there and numbering
    // went on.
    let kept = app.ticket("main", &before.id).await;
    assert_eq!(kept.number, before.number);
    assert_ne!(after["number"], before.number.as_str());
}

#[actix_web::test]
async fn a_compare_and_swap_that_keeps_losing_is_contention_not_corruption() {
    use actix_web::ResponseError;
    use turnus::domain::Branch;
    use turnus::http::ApiError;
    use turnus::settings::RedisSettings;
    use turnus::store::config::UpdateError;
    use turnus::store::{keys, Store, StoreError};

    let redis = crate::support::redis::RedisServer::start();
    let store = Store::connect(&redis.url(), &RedisSettings::default()).expect("store");
    let group = crate::support::id("g");
    let branch = crate::support::id("main");
    let mut rival = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("a second connection");

    // Every time the change is computed, another writer changes the document
    // first, so every swap finds it changed.
    let mut attempts = 0;
    let result = store
        .update_branch(&group, &branch, |_current: Option<Branch>| {
            attempts += 1;
            let () = redis::cmd("HSET")
                .arg(keys::group_branches(&group))
                .arg(branch.as_str())
                .arg(
                    json!({"id": "main", "name": format!("Rival {attempts}"),
                        "timezone": "Europe/Lisbon", "services": [], "counters": []})
                    .to_string(),
                )
                .query(&mut rival)
                .expect("the rival write");
            Ok::<_, ApiError>(None)
        })
        .await;
    let Err(UpdateError::Store(error)) = result else {
        panic!("expected a store error, got {result:?}");
    };
    assert!(
        matches!(error, StoreError::Contention { attempts: n } if n == attempts),
        "{error:?} after {attempts} attempts"
    );
    let api = ApiError::from(error);
    assert_eq!(api.status_code().as_u16(), 409);
    assert_eq!(api.status_and_code().1, "write-contention");
}
