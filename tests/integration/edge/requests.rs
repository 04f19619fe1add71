//! Findings about single requests: what a client without (or with) a
//! token can make a node do, and whether the answers are the documented
//! ones.

use std::collections::{BTreeSet, HashSet};
use std::io::Write;
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde_json::Value;

use crate::support::api::{assert_error, metric_value};
use crate::support::app::{spawn_app, spawn_app_with, TestApp};
use crate::support::raw::RawConnection;
use crate::support::{ADMIN, DISPLAY, KIOSK, OPERATOR, PEER};

async fn node_with_branch() -> TestApp {
    let app = spawn_app().await;
    app.setup_branch("main", &[("cash", "C")], &[("c1", &[("cash", 1)])])
        .await;
    app
}

#[actix_web::test]
async fn invented_methods_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    let before = app.metrics().await.expect("metrics").len();
    const SENT: usize = 100;
    for i in 0..SENT {
        let method = Method::from_bytes(format!("X{i:04}{}", "Y".repeat(2000)).as_bytes())
            .expect("a token is a method");
        let response = app.request(method, "/healthz", None, None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let text = app.metrics().await.expect("metrics");
    assert!(!text.contains("YYYY"), "an invented method became a label");
    let other = text
        .lines()
        .find(|l| {
            l.starts_with(
                r#"turnus_http_requests_total{method="other",route="/healthz",status="405"}"#,
            )
        })
        .unwrap_or_else(|| panic!("no count for method=\"other\":\n{text}"));
    assert!(other.ends_with(&format!(" {SENT}")), "{other}");
    // Two new series (count and latency of one route), not a hundred.
    assert!(
        text.len() < before + 4_096,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
}

#[actix_web::test]
async fn a_compressed_body_is_refused_with_415_before_it_is_inflated() {
    // 16 KiB of gzip that inflates to 16 MB (the audit's was 48 KiB to
    // 50 MB). Made before the node starts:
    // it takes seconds, and a pooled connection idle that long is closed.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    encoder
        .write_all(br#"{"service":"cash""#)
        .expect("compress");
    for _ in 0..16 {
        encoder.write_all(&zeros).expect("compress");
    }
    let bomb = encoder.finish().expect("compress");
    assert!(bomb.len() < 32_000, "{}", bomb.len());
    let app = node_with_branch().await;
    let issue = |encoding: &'static str, body: Vec<u8>| {
        app.http
            .post(app.url("/api/v1/branches/main/tickets"))
            .bearer_auth(KIOSK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_ENCODING, encoding)
            .body(body)
            .send()
    };
    let response = issue("gzip", bomb).await.expect("an answer");
    assert_eq!(
        response
            .headers()
            .get(header::ACCEPT_ENCODING)
            .map(|v| v.as_bytes()),
        Some(&b"identity"[..])
    );
    assert_error(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-content-encoding",
    )
    .await;
    assert!(app.queues("main").await.iter().all(|q| q.waiting == 0));
    // The same request unencoded (or declared identity) is fine.
    let plain = issue("identity", br#"{"service":"cash"}"#.to_vec())
        .await
        .expect("an answer");
    assert_eq!(plain.status(), StatusCode::CREATED);
}

/// A ticket request whose body is sent in `chunks` pieces, one every
/// `pause`; returns the raw answer.
async fn trickled_issue(
    app: &TestApp,
    body: &str,
    chunks: usize,
    pause: Duration,
) -> (u16, String, bool) {
    let mut connection = RawConnection::open(app.port).await;
    let head = format!(
        "POST /api/v1/branches/main/tickets HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KIOSK}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    connection.send(head.as_bytes()).await;
    let piece = body.len().div_ceil(chunks);
    for part in body.as_bytes().chunks(piece) {
        // Stop sending once the node has answered (it gave up waiting).
        if connection.answered_within(pause).await || !connection.send(part).await {
            break;
        }
    }
    let response = connection.response(Duration::from_secs(30)).await;
    let closed = response.header("connection") == Some("close")
        || connection.closed_within(Duration::from_secs(5)).await;
    (response.status, response.body, closed)
}

#[actix_web::test]
async fn a_trickled_body_is_cut_with_408_and_a_fair_one_earns_time() {
    let app = spawn_app_with(&[
        ("TURNUS__HTTP__BODY_TIMEOUT_MS", "1000"),
        ("TURNUS__HTTP__BODY_MIN_BYTES_PER_S", "1000"),
    ])
    .await;
    app.setup_branch("main", &[("cash", "C")], &[]).await;
    let body = format!(r#"{{"service":"cash"{}}}"#, " ".repeat(1_500));
    // 1 byte every 200 ms: 5 B/s, far below the floor.
    let (status, text, closed) =
        trickled_issue(&app, &body, body.len(), Duration::from_millis(200)).await;
    assert_eq!(status, 408, "{text}");
    assert!(text.contains(r#""code":"request-timeout""#), "{text}");
    assert!(closed, "the connection stays open after a 408");
    // The same body in 5 pieces 400 ms apart: 2 s in all, past the 1 s
    // base, but every piece of 300 bytes earned 300 ms.
    let (status, text, _) = trickled_issue(&app, &body, 5, Duration::from_millis(400)).await;
    assert_eq!(status, 201, "{text}");
}

#[actix_web::test]
async fn a_wrong_method_is_405_with_allow_and_head_is_answered() {
    let app = node_with_branch().await;
    for (method, path, allow) in [
        (Method::DELETE, "/healthz", "GET, HEAD"),
        (Method::POST, "/metrics", "GET, HEAD"),
        (
            Method::PATCH,
            "/api/v1/admin/branches/main",
            "GET, PUT, DELETE, HEAD",
        ),
        (
            Method::GET,
            "/api/v1/branches/main/counters/c1/call",
            "POST",
        ),
    ] {
        let response = app.request(method.clone(), path, Some(ADMIN), None).await;
        let got = response.headers().get(header::ALLOW).cloned();
        assert_eq!(
            got.as_ref().map(|v| v.as_bytes()),
            Some(allow.as_bytes()),
            "{method} {path}"
        );
        assert_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
        )
        .await;
    }
    let unknown = app
        .request(Method::GET, "/api/v1/nothing", None, None)
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "not-found").await;

    for path in ["/healthz", "/readyz", "/api/v1/branches/main/queues"] {
        let response = app.request(Method::HEAD, path, Some(DISPLAY), None).await;
        assert_eq!(response.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            response.bytes().await.expect("body").len(),
            0,
            "HEAD {path}"
        );
    }
    // An event stream under HEAD ends at once instead of holding a slot.
    let events = app
        .http
        .head(app.url("/api/v1/branches/main/events"))
        .bearer_auth(DISPLAY)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("HEAD events answers");
    assert_eq!(events.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_bearer_scheme_is_case_insensitive_and_401_names_it() {
    let app = node_with_branch().await;
    let with = |authorization: Option<String>| {
        let mut request = app.http.get(app.url("/api/v1/branches/main/queues"));
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.send()
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = with(Some(format!("{scheme} {DISPLAY}")))
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    for refused in [
        None,
        Some(format!("Basic {DISPLAY}")),
        Some(format!("Bearer{DISPLAY}")),
        Some("Bearer nope".to_owned()),
    ] {
        let response = with(refused.clone()).await.expect("answer");
        let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
        assert_eq!(
            challenge.as_ref().map(|v| v.as_bytes()),
            Some(&br#"Bearer realm="turnus""#[..]),
            "{refused:?}"
        );
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}

/// Fills a documented path's parameters with values of the test branch.
fn concrete(path: &str) -> String {
    path.replace("{branch}", "main")
        .replace("{counter}", "c1")
        .replace("{service}", "cash")
        .replace("{id}", "no-such-ticket")
        .replace("{player}", "p1")
}

/// Every operation of the served document, asked with every role's token
/// and with none: each answer's status is one the document lists for it;
/// each documented path answers an undocumented method with 405 and the
/// documented methods in `Allow`. A small schemathesis that runs in CI.
#[actix_web::test]
async fn every_answer_is_documented_and_every_path_refuses_other_methods() {
    let app = node_with_branch().await;
    let document: Value = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json()
        .await
        .expect("the document is JSON");
    let mut operation_ids = HashSet::new();
    let mut checked = 0;
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item");
        let mut methods: BTreeSet<String> = BTreeSet::new();
        for (method, operation) in item {
            let id = operation["operationId"].as_str().expect("an operation id");
            assert!(
                operation_ids.insert(id.to_owned()),
                "operation id {id} twice"
            );
            methods.insert(method.to_uppercase());
            let listed: Vec<&str> = operation["responses"]
                .as_object()
                .expect("responses")
                .keys()
                .map(String::as_str)
                .collect();
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let mut url = concrete(path);
            if path == "/api/v1/mirror/config" {
                url.push_str("?group=central&wait_s=0");
            }
            let body = operation.get("requestBody").map(|_| serde_json::json!({}));
            for token in [
                None,
                Some(ADMIN),
                Some(OPERATOR),
                Some(KIOSK),
                Some(DISPLAY),
                Some(PEER),
            ] {
                let response = app.request(method.clone(), &url, token, body.clone()).await;
                let status = response.status();
                assert!(
                    listed.contains(&status.as_str()),
                    "{method} {url} with {token:?} answered {status}, not in {listed:?}: {}",
                    response.text().await.unwrap_or_default()
                );
                checked += 1;
            }
            if operation.get("security").is_some() {
                assert!(
                    listed.contains(&"401") && listed.contains(&"403"),
                    "{method} {path}"
                );
            }
        }
        let other = if methods.contains("PATCH") {
            Method::TRACE
        } else {
            Method::PATCH
        };
        let response = app.request(other, &concrete(path), Some(ADMIN), None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        let allow = response.headers()[header::ALLOW]
            .to_str()
            .expect("ASCII")
            .to_owned();
        let allowed: BTreeSet<String> = allow.split(", ").map(str::to_owned).collect();
        if methods.contains("GET") {
            methods.insert("HEAD".to_owned());
        }
        assert_eq!(allowed, methods, "{path}");
    }
    assert!(checked > 100, "only {checked} requests checked");
}

#[actix_web::test]
async fn metrics_are_the_prometheus_text_they_declare() {
    let app = node_with_branch().await;
    app.issue("main", "cash").await;
    let response = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    // promtool's rules: every sample belongs to a family with HELP and TYPE,
    // counters end in _total, histograms have _bucket/_sum/_count.
    let mut families: Vec<(String, String)> = Vec::new();
    let mut helped = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(!help.trim().is_empty(), "{line}");
            helped.insert(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(helped.contains(name), "no HELP before {line}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{line}");
            }
            families.push((name.to_owned(), kind.to_owned()));
        } else if !line.is_empty() {
            let sample = line.split(['{', ' ']).next().expect("a name");
            let (family, kind) = families.last().expect("a sample after its TYPE");
            let fits = match kind.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|suffix| sample == format!("{family}{suffix}")),
                _ => sample == family,
            };
            assert!(fits, "sample {sample} under family {family} ({kind})");
        }
    }
    assert!(metric_value(&text, "turnus_redis_up").is_some(), "{text}");
    assert!(
        text.contains(r#"turnus_tickets_issued_total{branch="main"} 1"#),
        "{text}"
    );

    let open = app
        .http
        .get(app.url("/metrics"))
        .header(
            header::ACCEPT,
            "application/openmetrics-text; version=1.0.0",
        )
        .send()
        .await
        .expect("answer");
    assert!(open.headers()[header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII")
        .starts_with("application/openmetrics-text; version=1.0.0"));
    assert!(open.text().await.expect("text").ends_with("# EOF\n"));
}
