//! The path of one customer through the pages: kiosk → counter → display
//! board → phone, and the dashboard with a second branch.

use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::Locator;
use serde_json::Value;

use super::{two_branches, HOSTILE_NAME};
use crate::support::app::spawn_app;
use crate::support::browser::{Browser, BrowserOptions};
use crate::support::{eventually, DISPLAY, KIOSK, OPERATOR};

/// Generous: the machine runs other builds; what is measured is inside the
/// pages (see the display check).
const WITHIN: Duration = Duration::from_secs(15);

#[actix_web::test]
async fn a_ticket_goes_from_kiosk_to_counter_to_board_and_phone() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    let base = app.base_url.clone();
    // Waiting from the start, so they are over their 1 s target by the time
    // the dashboard looks.
    for _ in 0..3 {
        app.issue("second", "loans").await;
    }
    let browser = Browser::start(BrowserOptions::default()).await;

    // The display board first, so it is live when the call happens.
    browser
        .open_live(&format!("{base}/display/main#token={DISPLAY}"), WITHIN)
        .await;
    // Sound needs one tap (browsers block audio until then); the button
    // goes once the audio runs.
    browser.click("#enable-sound").await;
    eventually("the sound button to go", WITHIN, || async {
        browser.text("#enable-sound").await.is_none().then_some(())
    })
    .await;
    let board = browser.client.window().await.expect("window");
    assert_eq!(
        browser.js("return location.hash").await,
        Value::from(""),
        "the token leaves the address bar once stored"
    );

    // Kiosk: the button issues a ticket the API then sees.
    let kiosk = browser.client.new_window(true).await.expect("tab").handle;
    browser
        .client
        .switch_to_window(kiosk)
        .await
        .expect("switch");
    browser
        .goto(&format!(
            "{base}/kiosk/main#token={KIOSK}&display={DISPLAY}"
        ))
        .await;
    browser.click("button[data-service=cash]").await;
    let number = browser
        .wait_text("the new ticket's number", "#ticket-number", WITHIN, |t| {
            !t.is_empty()
        })
        .await;
    let link = browser
        .js("return document.getElementById('ticket-qr').dataset.link")
        .await;
    let link = link.as_str().expect("the QR code's link").to_owned();
    let id = link
        .split("/t/main/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .expect("a ticket link")
        .to_owned();
    let ticket = app.ticket("main", &id).await;
    assert_eq!(
        (ticket.number.as_str(), ticket.status.as_str()),
        (number.as_str(), "waiting")
    );
    assert_eq!(
        browser.text("#ticket-position").await.as_deref(),
        Some("You are next")
    );
    assert!(browser
        .client
        .find(Locator::Css("svg.qr path"))
        .await
        .is_ok());

    // The phone: the link alone, no token, shows the position.
    let phone = browser.client.new_window(true).await.expect("tab").handle;
    browser
        .client
        .switch_to_window(phone.clone())
        .await
        .expect("switch");
    browser.goto(&link).await;
    browser
        .wait_text(
            "the phone to show the position",
            "#phone-ahead",
            WITHIN,
            |t| t == "You are next",
        )
        .await;

    // Counter: "call next" calls it.
    let counter = browser.client.new_window(true).await.expect("tab").handle;
    browser
        .client
        .switch_to_window(counter.clone())
        .await
        .expect("switch");
    browser
        .goto(&format!(
            "{base}/counter/main/c1#token={OPERATOR}&display={DISPLAY}"
        ))
        .await;
    browser
        .wait_text("the counter page", "#current-number", WITHIN, |t| {
            !t.is_empty()
        })
        .await;
    browser.click("#call-next").await;
    browser
        .wait_text(
            "the counter to show its ticket",
            "#current-number",
            WITHIN,
            |t| t == number,
        )
        .await;
    let called_at = browser
        .js("return Number(document.body.dataset.lastCallAt)")
        .await;
    assert_eq!(app.ticket("main", &id).await.status, "called");

    // The board shows it without a reload. "Within 1 s" is measured by the
    // pages themselves: the counter page notes when the call's answer
    // arrived, the board when it drew the number (same machine, same
    // clock). The test's own polling only has to find it, with a deadline,
    // so a slow WebDriver on a loaded box does not count against the board.
    browser
        .client
        .switch_to_window(board)
        .await
        .expect("switch");
    browser.js("window.notReloaded = true; return true;").await;
    browser
        .wait_text("the board to show the call", "#now-number", WITHIN, |t| {
            t == number
        })
        .await;
    assert_eq!(
        browser.text("#now-counter").await.as_deref(),
        Some("Counter 1")
    );
    let shown_at = browser
        .js("return Number(document.getElementById('now').dataset.shownAt)")
        .await;
    let latency_ms = shown_at.as_f64().expect("shownAt") - called_at.as_f64().expect("lastCallAt");
    println!("call answered → board drew it: {latency_ms:.0} ms");
    assert!(
        latency_ms <= 1000.0,
        "the board showed the call {latency_ms} ms after it was answered"
    );
    assert_eq!(
        browser.js("return window.notReloaded === true").await,
        Value::Bool(true)
    );
    // What the board announces, in a live region for screen readers; the
    // same words the clips say.
    let spoken = browser
        .js("return document.getElementById('spoken').textContent")
        .await;
    assert_eq!(spoken, Value::from(format!("{number}, Counter 1")));
    // The announcement clips ship and decode in this browser, every
    // language, every word an announcement can need.
    let durations = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const words = [...'abcdefghijklmnopqrstuvwxyz0123456789'].concat(['counter']);
             const ctx = new OfflineAudioContext(1, 16000, 16000);
             Promise.all(['en', 'pt'].flatMap((l) => words.map((w) =>
               fetch(`/assets/audio/${l}/${w}.ogg`).then((r) => r.arrayBuffer())
                 .then((b) => ctx.decodeAudioData(b)).then((d) => d.duration))))
               .then(done, (e) => done(String(e)));",
            vec![],
        )
        .await
        .expect("decode the clips");
    let durations = durations
        .as_array()
        .unwrap_or_else(|| panic!("clips: {durations}"))
        .clone();
    assert_eq!(durations.len(), 2 * 37);
    for d in durations {
        let d = d.as_f64().expect("a duration");
        assert!((0.1..2.0).contains(&d), "a clip of {d} s");
    }

    // The phone: "your turn: Counter 1", the counter's name, not its id.
    browser
        .client
        .switch_to_window(phone)
        .await
        .expect("switch");
    browser
        .wait_text(
            "the phone to show the counter",
            "#phone-turn",
            WITHIN,
            |t| t.contains("Counter 1"),
        )
        .await;

    // Back at the counter: call a ticket by its number, out of turn; send
    // it to another service with the picker; then the keyboard: N calls
    // the next, X marks it a no-show.
    let second = app.issue("main", "cash").await;
    let third = app.issue("main", "cash").await;
    browser
        .client
        .switch_to_window(counter)
        .await
        .expect("switch");
    browser
        .type_into("#call-number", &third.number.to_lowercase())
        .await;
    browser.click("#call-number-button").await;
    browser
        .wait_text("the number called", "#current-number", WITHIN, |t| {
            t == third.number
        })
        .await;
    assert_eq!(app.ticket("main", &third.id).await.status, "called");
    assert_eq!(app.ticket("main", &second.id).await.status, "waiting");

    browser
        .client
        .find(Locator::Css("#transfer-to"))
        .await
        .expect("the service picker")
        .select_by_value("accounts")
        .await
        .expect("pick a service");
    browser.click("#transfer").await;
    browser
        .wait_text("the transfer", "#current-number", WITHIN, |t| {
            t != third.number
        })
        .await;
    let moved = app.ticket("main", &third.id).await;
    assert_eq!(
        (moved.service.as_str(), moved.status.as_str()),
        ("accounts", "waiting")
    );

    // The keys work wherever the focus is, except in a field being typed
    // in: the transfer button, disabled now, handed the focus on.
    eventually("the focus to leave the fields", WITHIN, || async {
        let tag = browser.js("return document.activeElement.tagName").await;
        (tag != "SELECT" && tag != "INPUT").then_some(())
    })
    .await;
    press(&browser, 'n').await;
    browser
        .wait_text("N to call the next", "#current-number", WITHIN, |t| {
            t == second.number
        })
        .await;
    press(&browser, 'x').await;
    eventually("X to mark a no-show", WITHIN, || async {
        (app.ticket("main", &second.id).await.status == "no_show").then_some(())
    })
    .await;

    // The dashboard: the second branch's waiting count, and the branch
    // over its target (1 s) as an alert in words, not only in colour.
    browser
        .goto(&format!("{base}/dashboard#token={DISPLAY}"))
        .await;
    let waiting = browser
        .wait_text(
            "the dashboard's row of the second branch",
            "tr[data-branch=second] .waiting-now",
            WITHIN,
            |t| t == "3",
        )
        .await;
    assert_eq!(waiting, "3");
    let row = browser
        .wait_text(
            "the second branch flagged over its target",
            "tr[data-branch=second].over th",
            Duration::from_secs(30),
            |t| t.contains("over target"),
        )
        .await;
    assert!(row.starts_with("second"), "{row}");
    let alert = browser
        .text("#alerts [role=alert]")
        .await
        .unwrap_or_default();
    assert!(alert.contains("second"), "{alert}");
    assert!(
        browser
            .text("tr[data-branch=main]")
            .await
            .is_some_and(|t| !t.contains("over target")),
        "main is within its 600 s target"
    );

    // Markup in a branch name is text on every page that shows it.
    browser
        .goto(&format!(
            "{base}/kiosk/second#token={KIOSK}&display={DISPLAY}"
        ))
        .await;
    browser
        .wait_text("the kiosk's heading", "#branch-name", WITHIN, |t| {
            t == HOSTILE_NAME
        })
        .await;
    browser.goto(&format!("{base}/")).await;
    let index = browser.text("main").await.unwrap_or_default();
    assert!(index.contains(HOSTILE_NAME), "{index}");
    assert_eq!(
        browser.js("return typeof window.pwned").await,
        Value::from("undefined")
    );

    // A wrong key is 404, also for the page.
    let wrong = link.replace("?k=", "?k=0");
    let status = app
        .http
        .get(format!("{base}{}", wrong.trim_start_matches(&base)))
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND);
    browser.close().await;
}

/// A key pressed and released, as a person would, wherever the focus is.
async fn press(browser: &Browser, key: char) {
    let keys = KeyActions::new("keyboard".to_owned())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser
        .client
        .perform_actions(keys)
        .await
        .expect("press a key");
}
