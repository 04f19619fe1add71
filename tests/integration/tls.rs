//! TLS to the group's Redis: `redis.url = "rediss://…"` with
//! `redis.tls_ca_file`, against a real `redis-server` with a TLS port and a
//! certificate from a throw-away authority.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::cluster::{node_config, RedisProbe, Timing};
use crate::support::eventually;
use crate::support::free_port;
use crate::support::process::NodeProcess;
use crate::support::redis::RedisServer;
use crate::support::sentinel::{Sentinels, MASTER_NAME};
use crate::support::tls::TestCertificates;

const BRANCH: &str = "main";

#[tokio::test]
async fn a_node_talks_to_redis_over_tls_checked_against_the_configured_authority() {
    let certs = TestCertificates::generate();
    let tls_port = free_port();
    let redis = RedisServer::start_with(certs.redis_args(tls_port));
    let url = format!("rediss://127.0.0.1:{tls_port}/");

    // Without the authority the server's certificate is not trusted: the
    // node runs but is not ready, and writes nothing.
    let mut untrusting = NodeProcess::start(node_config("node-x", &url, Timing::SHORT));
    let status = eventually("/readyz to answer", Duration::from_secs(30), || async {
        untrusting.api().readyz().await
    })
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    untrusting.kill();

    let mut config = node_config("node-a", &url, Timing::SHORT);
    let ca = certs.ca_file().to_string_lossy().into_owned();
    config.env.push(("TURNUS__REDIS__TLS_CA_FILE".into(), ca));
    let node = NodeProcess::start_ready(config).await;
    let api = node.api();
    let version = api
        .setup_branch(BRANCH, &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    crate::support::cluster::wait_config(api, BRANCH, version).await;
    let ticket = api.issue(BRANCH, "cash").await;
    assert_eq!(ticket.number, "C001");
    // It is in that Redis (read here over its plain port).
    let stored = RedisProbe::connect(&redis.url()).tickets(BRANCH);
    assert!(stored.contains(&ticket.id), "{stored:?}");
}

#[tokio::test]
async fn a_node_finds_and_uses_the_master_through_sentinels_over_tls() {
    let certs = TestCertificates::generate();
    let tls_port = free_port();
    let _master = RedisServer::start_with(certs.redis_args(tls_port));
    let sentinels = Sentinels::start_with(tls_port, 1_000, None, Some(&certs)).await;
    sentinels.wait_settled(0).await;

    let mut config = node_config("node-a", "", Timing::SHORT);
    config.redis_url = None;
    let ca = certs.ca_file().to_string_lossy().into_owned();
    for (key, value) in [
        ("TURNUS__REDIS__SENTINELS", sentinels.addresses()),
        ("TURNUS__REDIS__MASTER_NAME", MASTER_NAME.to_owned()),
        ("TURNUS__REDIS__SENTINEL_TLS", "true".to_owned()),
        ("TURNUS__REDIS__TLS_CA_FILE", ca),
    ] {
        config.env.push((key.to_owned(), value));
    }
    let node = NodeProcess::start_ready(config).await;
    assert!(
        node.log()
            .contains(&format!("url=rediss://127.0.0.1:{tls_port}/")),
        "the master named by the sentinels is reached over TLS:\n{}",
        node.log()
    );
    let api = node.api();
    let version = api
        .setup_branch(BRANCH, &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    crate::support::cluster::wait_config(api, BRANCH, version).await;
    assert_eq!(api.issue(BRANCH, "cash").await.number, "C001");
}
