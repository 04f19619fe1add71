//! The display board recovers by itself after the node it talks to dies and
//! another one serves (behind a load balancer, here the fault proxy moved
//! to the surviving node).

use std::time::Duration;

use super::two_branches;
use crate::support::browser::{Browser, BrowserOptions};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::proxy::Proxy;
use crate::support::DISPLAY;

const WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_display_recovers_when_its_node_is_killed() {
    let mut cluster = Cluster::start(&["web-a", "web-b"], Timing::SHORT).await;
    let a = cluster.node("web-a").api().clone();
    let b = cluster.node("web-b").api().clone();
    two_branches(&a).await;
    wait_config(&b, "main", a.config_version().await).await;
    let balancer = Proxy::start(([127, 0, 0, 1], cluster.node("web-a").port()).into()).await;
    let base = format!("http://127.0.0.1:{}", balancer.port());

    let browser = Browser::start(BrowserOptions::default()).await;
    browser
        .open_live(&format!("{base}/display/main#token={DISPLAY}"), WITHIN)
        .await;
    browser.js("window.notReloaded = true; return true;").await;

    let first = b.issue("main", "cash").await;
    b.call("main", "c1").await.expect("a ticket to call");
    browser
        .wait_text(
            "the board to show the first call",
            "#now-number",
            WITHIN,
            |t| t == first.number,
        )
        .await;

    // The node dies; the balancer sends new connections to the survivor.
    cluster.node_mut("web-a").kill();
    browser
        .wait_text(
            "the board to say it is reconnecting",
            "#reconnect-banner:not([hidden])",
            WITHIN,
            |t| t.contains("Reconnecting"),
        )
        .await;
    balancer.retarget(([127, 0, 0, 1], cluster.node("web-b").port()).into());

    // A call made while the board was cut off is on it after the snapshot
    // it takes on reconnecting; one made after that arrives live.
    let missed = b.issue("main", "cash").await;
    b.call("main", "c1").await.expect("a ticket to call");
    browser
        .wait_text("the board to catch up", "#recent", WITHIN, |t| {
            t.contains(&first.number)
        })
        .await;
    browser
        .wait_text(
            "the board to show the missed call",
            "#now-number",
            WITHIN,
            |t| t == missed.number,
        )
        .await;
    browser
        .wait_live("the board to go live again", WITHIN)
        .await;
    let live = b.issue("main", "accounts").await;
    b.call("main", "c2").await.expect("a ticket to call");
    browser
        .wait_text(
            "the board to show a live call",
            "#now-number",
            WITHIN,
            |t| t == live.number,
        )
        .await;
    assert_eq!(
        browser.js("return window.notReloaded === true").await,
        serde_json::Value::Bool(true),
        "recovered without a reload"
    );
    browser.close().await;
}
