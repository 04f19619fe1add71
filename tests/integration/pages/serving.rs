//! How a node serves the pages, without a browser: caching headers, 304s,
//! 404s for bad ids and wrong keys, the language choice, the headers that
//! keep a ticket link's key from leaking.

use reqwest::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    REFERRER_POLICY,
};
use reqwest::StatusCode;

use super::two_branches;
use crate::support::app::spawn_app;

#[actix_web::test]
async fn assets_carry_etags_and_cache_headers() {
    let app = spawn_app().await;
    let url = app.url("/assets/css/turnus.css");
    let first = app.http.get(&url).send().await.expect("get");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
    assert_eq!(first.headers()[CACHE_CONTROL], "no-cache");
    let etag = first.headers()[ETAG].to_str().expect("etag").to_owned();
    assert_eq!(etag.len(), 66, "a quoted SHA-256: {etag}");

    let again = app
        .http
        .get(&url)
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .expect("get");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("body").is_empty());

    // Pages link assets with their version: such a URL is cached for good.
    let page = app
        .http
        .get(app.url("/kiosk/main"))
        .send()
        .await
        .expect("get");
    let html = page.text().await.expect("html");
    let versioned = html
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the stylesheet link")
        .to_owned();
    assert!(
        versioned.starts_with("/assets/css/turnus.css?v="),
        "{versioned}"
    );
    assert!(etag.starts_with(&format!(
        "\"{}",
        versioned.rsplit('=').next().unwrap_or("-")
    )));
    let cached = app.http.get(app.url(&versioned)).send().await.expect("get");
    assert_eq!(
        cached.headers()[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );

    for missing in [
        "/assets/nope.js",
        "/assets/page.html",
        "/assets/../Cargo.toml",
    ] {
        let answer = app.http.get(app.url(missing)).send().await.expect("get");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{missing}");
    }
}

#[actix_web::test]
async fn pages_404_on_bad_ids_and_wrong_keys_and_pick_the_language() {
    let app = spawn_app().await;
    two_branches(&app.api).await;
    let get = |path: &str| app.http.get(app.url(path)).send();

    let kiosk = get("/kiosk/main").await.expect("get");
    assert_eq!(kiosk.status(), StatusCode::OK);
    assert_eq!(kiosk.headers()[REFERRER_POLICY], "no-referrer");
    assert!(kiosk.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp")
        .contains("default-src 'self'"));
    let html = kiosk.text().await.expect("html");
    assert!(html.contains("<html lang=\"en\">") && html.contains("data-branch=\"main\""));

    for path in [
        "/kiosk/Main",
        "/counter/main/C_1",
        "/display/%3Cscript%3E",
        "/t/main/1",
        "/t/main/1?k=00",
    ] {
        assert_eq!(
            get(path).await.expect("get").status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }

    // A real key opens the page.
    let issued = app
        .request(
            reqwest::Method::POST,
            "/api/v1/branches/main/tickets",
            Some(crate::support::KIOSK),
            Some(serde_json::json!({"service": "cash"})),
        )
        .await;
    let issued: serde_json::Value = issued.json().await.expect("ticket");
    let link = issued["link"].as_str().expect("link");
    assert_eq!(get(link).await.expect("get").status(), StatusCode::OK);

    let page = |path: &'static str, accept: &'static str| {
        let request = app.http.get(app.url(path)).header(ACCEPT_LANGUAGE, accept);
        async move {
            let html = request
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("html");
            let lang = html
                .split("<html lang=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("")
                .to_owned();
            (lang, html)
        }
    };
    let (lang, html) = page("/display/main?lang=pt", "en").await;
    assert_eq!(lang, "pt", "?lang= wins");
    assert!(html.contains("Ecrã"), "the Portuguese title");
    assert_eq!(
        page("/display/main", "pt-BR,pt;q=0.9,en;q=0.8").await.0,
        "pt"
    );
    assert_eq!(page("/display/main", "de-DE, pt;q=0.5").await.0, "pt");
    assert_eq!(page("/display/main?lang=xx", "de-DE").await.0, "en");
}
