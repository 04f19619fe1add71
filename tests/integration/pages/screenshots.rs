//! `cargo test --test integration pages::screenshots -- --ignored` (or
//! `scripts/screenshots.sh`): every page at kiosk (768x1024), desktop
//! (1366x768) and phone (390x844) size into `docs/screenshots/`.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::two_branches;
use crate::media::upload;
use crate::support::app::spawn_app;
use crate::support::browser::{Browser, BrowserOptions};
use crate::support::{ADMIN, DISPLAY, KIOSK, OPERATOR};

const WITHIN: Duration = Duration::from_secs(15);
const SIZES: [(&str, u32, u32); 3] = [
    ("kiosk", 768, 1024),
    ("desktop", 1366, 768),
    ("phone", 390, 844),
];

#[actix_web::test]
#[ignore = "writes docs/screenshots/; run by scripts/screenshots.sh"]
async fn screenshots() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    for service in ["cash", "cash", "accounts", "cash", "accounts", "cash"] {
        app.issue("main", service).await;
    }
    for _ in 0..3 {
        app.issue("second", "loans").await;
    }
    for counter in ["c1", "c2", "c1", "c2"] {
        app.call("main", counter).await;
    }
    // The demo's sample media and a player profile that plays them, so the
    // player page and the display board's side panel show real content.
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media/ads");
    let mut playlist = Vec::new();
    for name in ["welcome.svg", "savings.svg", "gradient.png"] {
        let bytes = std::fs::read(samples.join(name)).expect("a sample media file");
        let (status, stored) = upload(&app.api, &format!("ads/{name}"), bytes).await;
        assert!(status.is_success(), "upload {name}: {stored}");
        playlist.push(json!({"media": format!("ads/{name}"), "duration_s": 8}));
    }
    let profile = app
        .api
        .request(
            Method::PUT,
            "/api/v1/admin/branches/main/players/lobby",
            Some(ADMIN),
            Some(json!({"name": "Lobby", "playlist": playlist})),
        )
        .await;
    assert!(profile.status().is_success(), "player profile");
    let base = app.base_url.clone();
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&out).expect("docs/screenshots");
    let browser = Browser::start(BrowserOptions::default()).await;

    // Tokens once, for the whole origin.
    browser
        .goto(&format!(
            "{base}/kiosk/main#token={KIOSK}&display={DISPLAY}"
        ))
        .await;
    browser.click("button[data-service=cash]").await;
    browser
        .wait_text("a ticket", "#ticket-number", WITHIN, |t| !t.is_empty())
        .await;
    let phone_link = browser
        .js("return document.getElementById('ticket-qr').dataset.link")
        .await;
    let phone_link = phone_link.as_str().expect("link").to_owned();

    let pages: Vec<(&str, String, &str)> = vec![
        ("index", format!("{base}/"), "main h1"),
        (
            "kiosk",
            format!("{base}/kiosk/main"),
            "button[data-service=cash]",
        ),
        (
            "counter",
            format!("{base}/counter/main/c1#token={OPERATOR}"),
            "#queues tr",
        ),
        (
            "display",
            format!("{base}/display/main?player=lobby"),
            ".connection[data-state=live]",
        ),
        (
            "player",
            format!("{base}/player/main/lobby"),
            ".playlist-item",
        ),
        (
            "dashboard",
            format!("{base}/dashboard"),
            "tr[data-branch=second] .waiting-now",
        ),
        ("phone-ticket", phone_link.clone(), "#phone-ahead"),
    ];
    for (size, width, height) in SIZES {
        browser.viewport(width, height).await;
        for (name, url, ready) in &pages {
            browser.goto(url).await;
            browser.wait_text(name, ready, WITHIN, |_| true).await;
            browser
                .screenshot(&out.join(format!("{name}-{size}.png")))
                .await;
        }
        // The kiosk right after a tap: the ticket with its QR code.
        browser.goto(&format!("{base}/kiosk/main")).await;
        browser.click("button[data-service=accounts]").await;
        browser
            .wait_text("a ticket", "#ticket-number", WITHIN, |t| !t.is_empty())
            .await;
        browser
            .screenshot(&out.join(format!("kiosk-ticket-{size}.png")))
            .await;
    }
    browser.close().await;
}
