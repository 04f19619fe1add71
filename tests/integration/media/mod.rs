//! The media library (issue 10), on one in-process master node: upload,
//! listing, serving with Range and ETag, deletion, traversal refused in
//! every form, the size limit, files copied in by hand, and player profiles
//! with `present` and the switch rule. `mirror` and `upkeep` have the
//! slave-group tests with real processes; `bench` the (ignored) benchmark,
//! `scripts/bench-media.sh`.

mod bench;
mod mirror;
mod upkeep;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::api::{assert_error, ApiClient};
use crate::support::app::spawn_app;
use crate::support::{eventually, ADMIN, DISPLAY, PEER};

/// Uploads `bytes` to `path`; returns the status and the body.
pub async fn upload(api: &ApiClient, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let response = api
        .request_raw(
            Method::PUT,
            &format!("/api/v1/admin/media/{path}"),
            Some(ADMIN),
            "application/octet-stream",
            bytes,
        )
        .await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends one request exactly as written (no URL normalisation by a client
/// library, which would resolve `..` before sending) and returns the status.
pub async fn raw_status(port: u16, method: &str, target: &str, body: &[u8]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: no status line in {text:?}"))
}

/// Sends a request without a body and checks the error it must get.
async fn refused(
    api: &ApiClient,
    method: Method,
    path: &str,
    token: &str,
    status: StatusCode,
    code: &str,
) {
    let response = api.request(method, path, Some(token), None).await;
    assert_error(response, status, code).await;
}

async fn get_media(api: &ApiClient, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(api.url(&format!("/media/{path}")));
    if let Some(range) = range {
        request = request.header(reqwest::header::RANGE, range);
    }
    request.send().await.expect("GET /media")
}

fn sha256_hex(bytes: &[u8]) -> String {
    turnus::domain::media::sha256_hex(bytes)
}

#[actix_web::test]
async fn upload_serve_ranges_etag_and_delete() {
    let app = spawn_app().await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (status, stored) = upload(&app, "ads/spring.png", content.clone()).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["path"], "ads/spring.png");
    assert_eq!(stored["size"], 100_000);
    assert_eq!(stored["sha256"], sha256_hex(&content));
    let manifest = app.admin_get("/api/v1/admin/media").await;
    assert_eq!(manifest["version"], stored["version"], "{manifest}");
    assert_eq!(manifest["files"][0]["sha256"], stored["sha256"]);
    let peer_view: Value = app
        .request(
            Method::GET,
            "/api/v1/mirror/media/manifest",
            Some(PEER),
            None,
        )
        .await
        .json()
        .await
        .expect("manifest json");
    assert_eq!(peer_view, manifest, "peers see the admin's manifest");

    let whole = get_media(&app, "ads/spring.png", None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    let etag = format!("\"{}\"", sha256_hex(&content));
    assert_eq!(whole.headers()["etag"], etag.as_str());
    assert_eq!(whole.headers()["content-type"], "image/png");
    assert_eq!(
        whole.bytes().await.expect("body").as_ref(),
        content.as_slice()
    );

    let part = get_media(&app, "ads/spring.png", Some("bytes=1000-1999")).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/100000");
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &content[1000..2000]
    );
    let tail = get_media(&app, "ads/spring.png", Some("bytes=-10")).await;
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &content[99_990..]
    );
    let beyond = get_media(&app, "ads/spring.png", Some("bytes=100000-")).await;
    assert_error(
        beyond,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
    )
    .await;
    let cached = reqwest::Client::new()
        .get(app.url("/media/ads/spring.png"))
        .header(reqwest::header::IF_NONE_MATCH, etag.as_str())
        .send()
        .await
        .expect("conditional GET");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    // A blob by its id, for peers only, with Range.
    let blob_path = format!("/api/v1/mirror/media/blobs/{}", sha256_hex(&content));
    let denied = app
        .request(Method::GET, &blob_path, Some(ADMIN), None)
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let blob = app.request(Method::GET, &blob_path, Some(PEER), None).await;
    assert_eq!(
        blob.bytes().await.expect("blob").as_ref(),
        content.as_slice()
    );
    let metrics = app.metrics().await.expect("metrics");
    let sent = crate::support::api::metric_value(&metrics, "turnus_media_blob_bytes_sent_total");
    assert_eq!(sent, Some(100_000.0), "only peer blob bytes count");

    // Replacing the file changes sha256 and version.
    let (_, replaced) = upload(&app, "ads/spring.png", b"new".to_vec()).await;
    assert_ne!(replaced["version"], stored["version"]);
    let body = get_media(&app, "ads/spring.png", None)
        .await
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.as_ref(), b"new");

    let deleted = app.admin_delete("/api/v1/admin/media/ads/spring.png").await;
    assert_ne!(deleted["version"], replaced["version"]);
    let gone = get_media(&app, "ads/spring.png", None).await;
    assert_error(gone, StatusCode::NOT_FOUND, "unknown-media").await;
    refused(
        &app,
        Method::DELETE,
        "/api/v1/admin/media/ads/spring.png",
        ADMIN,
        StatusCode::NOT_FOUND,
        "unknown-media",
    )
    .await;
    assert!(!app.media_dir.path().join("ads/spring.png").exists());
}

/// Several ranges in one request (`bytes=0-1,5-9`) are answered 200 with
/// the whole file, on `/media/…` and on the peer blob route alike: RFC 9110
/// lets a server ignore Range, and no player or peer asks for several
/// (ARCHITECTURE.md, "Media library and mirror").
#[actix_web::test]
async fn several_ranges_in_one_request_get_the_whole_file() {
    let app = spawn_app().await;
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
    let (status, _) = upload(&app, "ads/multi.bin", content.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let blob_path = format!("/api/v1/mirror/media/blobs/{}", sha256_hex(&content));
    for ranges in [
        "bytes=0-1,5-9",
        "bytes=0-1, 9990-",
        "bytes=-5,0-0",
        "bytes=0-1,20000-",
    ] {
        let media = get_media(&app, "ads/multi.bin", Some(ranges)).await;
        let blob = reqwest::Client::new()
            .get(app.url(&blob_path))
            .bearer_auth(PEER)
            .header(reqwest::header::RANGE, ranges)
            .send()
            .await
            .expect("GET blob");
        for (route, response) in [("/media", media), ("blob", blob)] {
            assert_eq!(response.status(), StatusCode::OK, "{route} {ranges}");
            assert!(
                response.headers().get("content-range").is_none(),
                "{route} {ranges}: no Content-Range on a whole answer"
            );
            assert_eq!(response.headers()["accept-ranges"], "bytes");
            let body = response.bytes().await.expect("body");
            assert_eq!(body.as_ref(), content.as_slice(), "{route} {ranges}");
        }
    }
    // One range is still a range.
    let one = get_media(&app, "ads/multi.bin", Some("bytes=5-9")).await;
    assert_eq!(one.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(one.bytes().await.expect("body").as_ref(), &content[5..10]);
}

#[actix_web::test]
async fn traversal_is_refused_in_every_form_and_nothing_lands_outside() {
    let app = spawn_app().await;
    let outside = app.media_dir.path().parent().expect("parent").to_owned();
    let marker = format!("turnus-escape-{}", std::process::id());
    let attempts = [
        format!("../{marker}"),
        format!("a/../../{marker}"),
        format!("%2e%2e/{marker}"),
        format!("%2E%2E%2F{marker}"),
        format!("..%2f{marker}"),
        format!("/{}/{marker}", outside.display()),
        format!("a//{marker}"),
        format!("a/%00{marker}"),
        format!("a/%0a{marker}"),
        format!("..\\{marker}"),
        format!(".{marker}"),
        String::new(),
    ];
    for attempt in &attempts {
        let target = format!("/api/v1/admin/media/{attempt}");
        let status = raw_status(app.port, "PUT", &target, b"escape").await;
        assert_eq!(status, 400, "PUT {target}");
        let served = raw_status(app.port, "GET", &format!("/media/{attempt}"), b"").await;
        assert_eq!(served, 404, "GET /media/{attempt}");
    }
    assert!(
        !outside.join(&marker).exists(),
        "a file was written outside"
    );
    let listing: Vec<_> = std::fs::read_dir(app.media_dir.path())
        .expect("list library")
        .collect();
    assert!(listing.is_empty(), "the library holds {listing:?}");

    // A link out of the library, copied in by an administrator, is never
    // published or served; a plain file copied in is.
    let secret_dir = tempfile::tempdir().expect("outside dir");
    std::fs::write(secret_dir.path().join("secret.txt"), b"secret").expect("write secret");
    std::os::unix::fs::symlink(
        secret_dir.path().join("secret.txt"),
        app.media_dir.path().join("leak.txt"),
    )
    .expect("symlink");
    std::fs::write(app.media_dir.path().join("dropped.txt"), b"dropped in").expect("write");
    eventually(
        "the copied file is published",
        Duration::from_secs(30),
        || async {
            let manifest = app.admin_get("/api/v1/admin/media").await;
            (manifest["files"].as_array().map(Vec::len) == Some(1)).then_some(())
        },
    )
    .await;
    let manifest = app.admin_get("/api/v1/admin/media").await;
    assert_eq!(manifest["files"][0]["path"], "dropped.txt", "{manifest}");
    assert_eq!(
        raw_status(app.port, "GET", "/media/leak.txt", b"").await,
        404
    );
    assert_eq!(
        raw_status(app.port, "GET", "/media/dropped.txt", b"").await,
        200
    );
}

#[actix_web::test]
async fn uploads_over_the_limit_are_413_and_leave_nothing() {
    let app = spawn_app().await; // media.max_file_bytes = 1 MiB
    let (status, body) = upload(&app, "big.mp4", vec![7u8; 1_048_577]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["error"]["code"], "payload-too-large");
    // Without a Content-Length the limit holds while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..20).map(|_| Ok(vec![1u8; 65_536])).collect();
    let response = reqwest::Client::new()
        .put(app.url("/api/v1/admin/media/big.mp4"))
        .bearer_auth(ADMIN)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(response) = response {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    } // (the server may also close the connection mid-upload)
    let (status, _) = upload(&app, "fits.mp4", vec![7u8; 1_048_576]).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<String> = std::fs::read_dir(app.media_dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["fits.mp4"], "temporary files left behind");
    refused(
        &app,
        Method::GET,
        "/api/v1/admin/media",
        DISPLAY,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

async fn player(api: &ApiClient) -> Value {
    let response = api
        .request(
            Method::GET,
            "/api/v1/branches/main/players/lobby",
            Some(DISPLAY),
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("player json")
}

fn shown(view: &Value) -> Vec<(String, bool)> {
    view["playlist"]
        .as_array()
        .expect("playlist")
        .iter()
        .map(|i| {
            (
                i["media"].as_str().expect("media").to_owned(),
                i["present"] == true,
            )
        })
        .collect()
}

async fn put_player(api: &ApiClient, playlist: Value) -> reqwest::Response {
    api.request(
        Method::PUT,
        "/api/v1/admin/branches/main/players/lobby",
        Some(ADMIN),
        Some(json!({"name": "Lobby", "playlist": playlist})),
    )
    .await
}

#[actix_web::test]
async fn players_show_presence_switch_only_when_complete_and_honour_windows() {
    let app = spawn_app().await;
    app.put_branch("main", json!({"name": "Main", "timezone": "Europe/Lisbon"}))
        .await;
    upload(&app, "a.png", b"aaaa".to_vec()).await;
    let first = put_player(&app, json!([{"media": "a.png", "duration_s": 10}])).await;
    assert_eq!(first.status(), StatusCode::OK);
    let view = player(&app).await;
    assert_eq!(view["player"], "lobby");
    assert_eq!(view["name"], "Lobby");
    assert_eq!(view["playlist"][0]["url"], "/media/a.png");
    assert_eq!(view["playlist"][0]["sha256"], sha256_hex(b"aaaa"));
    assert_eq!(shown(&view), [("a.png".to_owned(), true)]);

    // A new playlist whose file is not here yet: the player keeps the old one.
    let window_past = json!({"until": "2000-01-01"});
    put_player(
        &app,
        json!([{"media": "a.png", "duration_s": 10}, {"media": "b.png", "duration_s": 5},
               {"media": "a.png", "duration_s": 3, "window": window_past}]),
    )
    .await;
    assert_eq!(shown(&player(&app).await), [("a.png".to_owned(), true)]);
    upload(&app, "b.png", b"bbbb".to_vec()).await;
    // Switched; the item whose window closed in 2000 is not played.
    assert_eq!(
        shown(&player(&app).await),
        [("a.png".to_owned(), true), ("b.png".to_owned(), true)]
    );
    // Deleted at the library: shown as not present, never as a broken file.
    app.admin_delete("/api/v1/admin/media/b.png").await;
    assert_eq!(
        shown(&player(&app).await),
        [("a.png".to_owned(), true), ("b.png".to_owned(), false)]
    );
    let branch = app.branch("main").await;
    assert_eq!(branch["players"][0]["id"], "lobby", "{branch}");

    for bad in [
        json!([{"media": "../x.png", "duration_s": 10}]),
        json!([{"media": "a.png", "duration_s": 0}]),
        json!([{"media": "a.png", "duration_s": 5, "window": {"weekdays": ["funday"]}}]),
    ] {
        let response = put_player(&app, bad.clone()).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid-body").await;
    }
    refused(
        &app,
        Method::GET,
        "/api/v1/branches/main/players/nope",
        DISPLAY,
        StatusCode::NOT_FOUND,
        "unknown-player",
    )
    .await;
    let deleted = app
        .admin_delete("/api/v1/admin/branches/main/players/lobby")
        .await;
    assert!(deleted["version"].as_u64().is_some());
    refused(
        &app,
        Method::GET,
        "/api/v1/branches/main/players/lobby",
        DISPLAY,
        StatusCode::NOT_FOUND,
        "unknown-player",
    )
    .await;
}
