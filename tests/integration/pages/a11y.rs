//! Every page against axe-core's WCAG 2.1 A/AA rules (contrast, labels,
//! names, structure), at desktop size and at the width a 1280-pixel screen
//! has at 200 % zoom (640 CSS pixels: zoom halves the CSS viewport, which is
//! what reflow depends on), in a browser that asks for reduced motion.

use std::time::Duration;

use serde_json::Value;

use super::two_branches;
use crate::support::app::spawn_app;
use crate::support::browser::{Browser, BrowserOptions};
use crate::support::{DISPLAY, KIOSK, OPERATOR};

const WITHIN: Duration = Duration::from_secs(15);

async fn check(browser: &Browser, page: &str, problems: &mut Vec<String>) {
    for (width, height) in [(1366, 768), (640, 400)] {
        browser.viewport(width, height).await;
        for violation in browser.accessibility_violations().await {
            problems.push(format!("{page} at {width}px: {violation}"));
        }
        // Reflow: nothing wider than the viewport, so nothing is cut off or
        // needs scrolling sideways (tables scroll inside their own box).
        let overflow = browser
            .js("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        if overflow.as_i64().unwrap_or(0) > 1 {
            problems.push(format!(
                "{page} at {width}px: {overflow} px wider than the viewport"
            ));
        }
    }
    browser.viewport(1366, 768).await;
}

#[actix_web::test]
async fn every_page_passes_axe_reflows_and_respects_reduced_motion() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    let base = app.base_url.clone();
    for _ in 0..3 {
        app.issue("main", "cash").await;
    }
    app.call("main", "c1").await.expect("a ticket");
    let browser = Browser::start(BrowserOptions {
        reduced_motion: true,
    })
    .await;
    let mut problems = Vec::new();

    // The token form a page shows without a token.
    browser.goto(&format!("{base}/display/main")).await;
    browser
        .wait_text("the token form", "form.token-form h1", WITHIN, |_| true)
        .await;
    check(&browser, "token form", &mut problems).await;

    browser.goto(&format!("{base}/")).await;
    check(&browser, "index", &mut problems).await;

    browser
        .goto(&format!(
            "{base}/kiosk/main#token={KIOSK}&display={DISPLAY}"
        ))
        .await;
    browser
        .wait_text(
            "the kiosk's buttons",
            "button[data-service=cash]",
            WITHIN,
            |_| true,
        )
        .await;
    check(&browser, "kiosk", &mut problems).await;
    browser.click("button[data-service=cash]").await;
    let link = browser
        .wait_text("the new ticket", "#ticket-number", WITHIN, |t| {
            !t.is_empty()
        })
        .await;
    assert!(!link.is_empty());
    check(&browser, "kiosk ticket", &mut problems).await;
    let link = browser
        .js("return document.getElementById('ticket-qr').dataset.link")
        .await;

    // The kiosk's settings, behind the PIN given once in the fragment: the
    // PIN form, the services form, and a kiosk set to one service.
    // (A query, so this is a new page load, not a fragment change.)
    browser
        .goto(&format!("{base}/kiosk/main?lang=en#pin=2468"))
        .await;
    assert_eq!(
        browser.js("return location.hash").await,
        serde_json::Value::from("")
    );
    browser.click(".settings-button").await;
    browser
        .wait_text("the PIN form", "label[for=pin]", WITHIN, |_| true)
        .await;
    check(&browser, "kiosk PIN", &mut problems).await;
    browser.type_into("#pin", "2468\n").await;
    browser
        .wait_text("the settings", "fieldset legend", WITHIN, |_| true)
        .await;
    check(&browser, "kiosk settings", &mut problems).await;
    browser.click("#svc-cash").await;
    browser.click("form.token-form button[type=submit]").await;
    browser
        .wait_text("the kiosk again", "button[data-service]", WITHIN, |_| true)
        .await;
    let shown = browser
        .js("return [...document.querySelectorAll('button[data-service]')].map((b) => b.dataset.service)")
        .await;
    assert_eq!(
        shown,
        serde_json::json!(["accounts"]),
        "cash is no longer offered"
    );
    browser
        .js("localStorage.removeItem('turnus.kiosk.services.main'); return true;")
        .await;

    browser
        .goto(&format!(
            "{base}/counter/main/c1#token={OPERATOR}&display={DISPLAY}"
        ))
        .await;
    browser
        .wait_text("the counter's queues", "#queues tr", WITHIN, |_| true)
        .await;
    check(&browser, "counter", &mut problems).await;

    browser
        .open_live(
            &format!("{base}/display/main?player=lobby#token={DISPLAY}"),
            WITHIN,
        )
        .await;
    check(&browser, "display", &mut problems).await;
    // A call animates the board, unless reduced motion is asked for.
    app.call("main", "c1").await.expect("a ticket");
    browser
        .wait_text("the call", "#now[data-shown-at]", WITHIN, |_| true)
        .await;
    let animation = browser
        .js("return getComputedStyle(document.getElementById('now')).animationName")
        .await;
    assert_eq!(
        animation,
        Value::from("none"),
        "no flashing under reduced motion"
    );
    // State in words, not only colour: the connection badge and the
    // enable-sound button say what they are.
    let badge = browser.text(".connection").await.unwrap_or_default();
    assert!(badge.contains("Live"), "{badge}");

    browser
        .goto(&format!("{base}/player/main/lobby#token={DISPLAY}"))
        .await;
    browser
        .wait_text("the player's message", ".playlist-empty", WITHIN, |_| true)
        .await;
    check(&browser, "player", &mut problems).await;

    browser
        .goto(&format!("{base}/dashboard#token={DISPLAY}"))
        .await;
    browser
        .wait_text(
            "the dashboard",
            "tr[data-branch=main] .waiting-now",
            WITHIN,
            |_| true,
        )
        .await;
    // The SLA chart, drawn from figures shaped like the statistics API's
    // (which this node does not serve yet): a bar per hour, the hours below
    // the goal marked with "!" besides their colour, and a text summary.
    let chart = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             import('/assets/js/chart.js').then((m) => {
               const svg = m.slaChart([{label: '09', value: 95}, {label: '10', value: 60},
                 {label: '11', value: null}], {title: 'SLA'});
               document.getElementById('charts').append(svg);
               done([svg.querySelectorAll('rect.bar').length, svg.querySelectorAll('rect.bar-low').length,
                 [...svg.querySelectorAll('.chart-mark')].map((n) => n.textContent).join(''),
                 svg.getAttribute('aria-label')]);
             }, (e) => done(String(e)));",
            vec![],
        )
        .await
        .expect("draw a chart");
    assert_eq!(
        chart,
        serde_json::json!([2, 1, "!", "SLA: 09h 95 %, 10h 60 %, 11h –"])
    );
    check(&browser, "dashboard", &mut problems).await;

    browser.goto(link.as_str().expect("link")).await;
    browser
        .wait_text("the phone page", "#phone-ahead", WITHIN, |_| true)
        .await;
    check(&browser, "phone", &mut problems).await;

    browser.goto(&format!("{base}/kiosk/main?lang=pt")).await;
    browser
        .wait_text(
            "the Portuguese kiosk",
            "button[data-service=cash]",
            WITHIN,
            |_| true,
        )
        .await;
    assert_eq!(
        browser.js("return document.documentElement.lang").await,
        Value::from("pt")
    );
    assert_eq!(
        browser.text(".kiosk-prompt").await.as_deref(),
        Some("Escolha um serviço")
    );
    check(&browser, "kiosk (pt)", &mut problems).await;

    browser.close().await;
    assert!(
        problems.is_empty(),
        "accessibility problems:\n{}",
        problems.join("\n")
    );
}
