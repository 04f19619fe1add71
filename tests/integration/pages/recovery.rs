//! Pages recovering their live stream:
//! - the display board, after the node it talks to dies and another one
//!   serves (behind a load balancer, here the fault proxy moved to the
//!   surviving node);
//! - the counter page, whose reconnect snapshot must not undo a call the
//!   operator made while it was under way;
//! - the display board, which must show a call made while its reconnect
//!   snapshot was being read (the stream opens first, then the snapshot).

use std::time::Duration;

use serde_json::Value;

use super::two_branches;
use crate::support::app::spawn_app;
use crate::support::browser::{Browser, BrowserOptions};
use crate::support::cluster::{wait_config, Cluster, Timing};
use crate::support::proxy::Proxy;
use crate::support::{eventually, DISPLAY, OPERATOR};

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

/// Holds the answer of the page's next board read (`GET …/display`) for
/// 3 s after it arrived, then has the page reconnect its stream, whose
/// snapshot starts with that read.
const HOLD_THE_NEXT_BOARD_READ: &str = r#"
const real = window.fetch.bind(window);
window.heldBoard = false;
window.fetch = async (url, options) => {
  const response = await real(url, options);
  if (!window.heldBoard && String(url).endsWith('/display')) {
    window.heldBoard = true;
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  return response;
};
window.dispatchEvent(new Event('online'));
return true;
"#;

/// Opens the live page at `url`, then drops its stream (a phone back from
/// the background, a network change) and returns once the reconnect's
/// snapshot has read the board, whose answer is then held for 3 s.
async fn reconnect_with_a_slow_snapshot(url: &str) -> Browser {
    let browser = Browser::start(BrowserOptions::default()).await;
    browser.open_live(url, WITHIN).await;
    browser.js(HOLD_THE_NEXT_BOARD_READ).await;
    eventually("the snapshot to read the board", WITHIN, || async {
        (browser.js("return window.heldBoard").await == Value::Bool(true)).then_some(())
    })
    .await;
    browser
}

#[actix_web::test]
async fn a_counter_reconnecting_keeps_the_ticket_called_meanwhile() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    // The board's last call at c1 is a ticket already served.
    let served = app.issue("main", "cash").await;
    let called = app.api.call("main", "c1").await.expect("a ticket to call");
    assert_eq!(called.id, served.id);
    app.api.counter_action("main", "c1", "finish").await;
    let next = app.issue("main", "cash").await;

    // The snapshot reads the board as it is now, slowly.
    let browser = reconnect_with_a_slow_snapshot(&format!(
        "{}/counter/main/c1#token={OPERATOR}&display={DISPLAY}",
        app.base_url
    ))
    .await;
    // Meanwhile the operator calls the next ticket by its number.
    browser.type_into("#call-number", &next.number).await;
    browser.click("#call-number-button").await;
    browser
        .wait_text("the number called", "#current-number", WITHIN, |t| {
            t == next.number
        })
        .await;
    // The snapshot ends (the stream is live again only after it): the
    // older board it read must not take the called ticket off the page.
    browser
        .wait_live("the stream back after its snapshot", WITHIN)
        .await;
    assert_eq!(
        browser.text("#current-number").await.as_deref(),
        Some(next.number.as_str()),
        "the counter page lost the ticket it called to an older snapshot"
    );
    assert_eq!(app.api.ticket("main", &next.id).await.status, "called");
}

#[actix_web::test]
async fn a_call_made_while_the_board_reads_its_snapshot_is_shown() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    let ticket = app.issue("main", "cash").await;
    let browser =
        reconnect_with_a_slow_snapshot(&format!("{}/display/main#token={DISPLAY}", app.base_url))
            .await;
    // The board read is done and on its way; the call comes after it.
    let called = app.api.call("main", "c1").await.expect("a ticket to call");
    assert_eq!(called.id, ticket.id);
    browser
        .wait_text(
            "the board to show the call made during its snapshot",
            "#now-number",
            WITHIN,
            |t| t == ticket.number,
        )
        .await;
}
