//! `ApiClient`: typed helpers for the HTTP API of one node, plus a raw
//! `request` for tests that look at errors.
//!
//! The response types here are written from API.md, not borrowed from the
//! server's own structs, so a renamed field in `src/` breaks a test instead
//! of passing silently.

use chrono::{DateTime, Utc};
use reqwest::{Method, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ADMIN, DISPLAY, KIOSK, OPERATOR};

/// How long a `try_*` request may take before it counts as failed.
const TRY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The value of an unlabelled metric in Prometheus text format (`None` when
/// absent). Counters carry their `_total` suffix here.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(' '))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| value.trim().parse().ok())
}

/// A ticket as API.md shows it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Ticket {
    pub id: String,
    pub branch: String,
    pub service: String,
    pub number: String,
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub called_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub counter: Option<String>,
    #[serde(default)]
    pub position: Option<u64>,
    #[serde(default)]
    pub estimated_wait_s: Option<u64>,
}

/// One line of `GET /queues`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct QueueStatus {
    pub service: String,
    pub waiting: u64,
    pub longest_wait_s: u64,
    pub estimated_wait_s: u64,
}

/// One line of `GET /display`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CalledEntry {
    pub number: String,
    pub counter: String,
    pub called_at: DateTime<Utc>,
}

/// `GET /api/v1/cluster`: the group as its Redis saw it at one instant.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ClusterView {
    pub node: String,
    pub role: String,
    pub group: String,
    pub leader: Option<String>,
    pub epoch: u64,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MemberView {
    pub id: String,
    pub addr: String,
    pub last_seen_ms: u64,
}

/// The error body of API.md.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// A client for one node.
#[derive(Clone)]
pub struct ApiClient {
    pub base_url: String,
    pub http: reqwest::Client,
}

impl ApiClient {
    pub fn new(base_url: String) -> ApiClient {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("build the HTTP client");
        ApiClient { base_url, http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Any request, with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut builder = self.http.request(method.clone(), self.url(path));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
    }

    /// The administration knows no branch `id` (404 `unknown-branch`).
    pub async fn assert_no_branch(&self, id: &str) {
        let path = format!("/api/v1/admin/branches/{id}");
        let answer = self.request(Method::GET, &path, Some(ADMIN), None).await;
        assert_error(answer, StatusCode::NOT_FOUND, "unknown-branch").await;
    }

    /// A request with a body sent exactly as given, with this content type.
    pub async fn request_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut builder = self
            .http
            .request(method.clone(), self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        builder
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"))
    }

    /// Sends a request and returns the body, panicking (with the body) on
    /// any other status than `expected`.
    async fn expect<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> T {
        let response = self.request(method.clone(), path, Some(token), body).await;
        let status = response.status();
        let text = response.text().await.expect("read the body");
        assert_eq!(
            status, expected,
            "{method} {path} answered {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }

    // Administration.

    /// `PUT /admin/branches/{id}`; returns the answer (with `version`).
    pub async fn put_branch(&self, id: &str, body: Value) -> Value {
        self.expect(
            Method::PUT,
            &format!("/api/v1/admin/branches/{id}"),
            ADMIN,
            Some(body),
            StatusCode::OK,
        )
        .await
    }

    pub async fn put_service(&self, branch: &str, id: &str, body: Value) -> Value {
        let path = format!("/api/v1/admin/branches/{branch}/services/{id}");
        self.expect(Method::PUT, &path, ADMIN, Some(body), StatusCode::OK)
            .await
    }

    /// `PUT .../counters/{id}` with a matrix row of (service, priority).
    pub async fn put_counter(&self, branch: &str, id: &str, row: &[(&str, u32)]) -> Value {
        let services: Vec<Value> = row
            .iter()
            .map(|(service, priority)| json!({"service": service, "priority": priority}))
            .collect();
        let body = json!({"name": format!("Counter {id}"), "services": services});
        let path = format!("/api/v1/admin/branches/{branch}/counters/{id}");
        self.expect(Method::PUT, &path, ADMIN, Some(body), StatusCode::OK)
            .await
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.expect(Method::GET, path, ADMIN, None, StatusCode::OK)
            .await
    }

    pub async fn admin_delete(&self, path: &str) -> Value {
        self.expect(Method::DELETE, path, ADMIN, None, StatusCode::OK)
            .await
    }

    /// `GET /admin/config/version`.
    pub async fn config_version(&self) -> u64 {
        let body: Value = self.admin_get("/api/v1/admin/config/version").await;
        body["version"].as_u64().expect("version is a number")
    }

    /// Creates a branch with one service per (id, prefix) and one counter
    /// per (id, row). Returns the configuration version after the last write.
    pub async fn setup_branch(
        &self,
        branch: &str,
        services: &[(&str, &str)],
        counters: &[(&str, &[(&str, u32)])],
    ) -> u64 {
        let mut version = self
            .put_branch(
                branch,
                json!({"name": format!("Branch {branch}"), "timezone": "Europe/Lisbon"}),
            )
            .await["version"]
            .as_u64()
            .expect("version");
        for (id, prefix) in services {
            let body =
                json!({"name": format!("Service {id}"), "prefix": prefix, "target_wait_s": 600});
            version = self.put_service(branch, id, body).await["version"]
                .as_u64()
                .expect("version");
        }
        for (id, row) in counters {
            version = self.put_counter(branch, id, row).await["version"]
                .as_u64()
                .expect("version");
        }
        version
    }

    // Branch operations.

    /// `GET /branches/{b}` (display).
    pub async fn branch(&self, branch: &str) -> Value {
        self.expect(
            Method::GET,
            &format!("/api/v1/branches/{branch}"),
            DISPLAY,
            None,
            StatusCode::OK,
        )
        .await
    }

    /// Issues a ticket (kiosk); panics unless 201.
    pub async fn issue(&self, branch: &str, service: &str) -> Ticket {
        let path = format!("/api/v1/branches/{branch}/tickets");
        self.expect(
            Method::POST,
            &path,
            KIOSK,
            Some(json!({"service": service})),
            StatusCode::CREATED,
        )
        .await
    }

    /// Reads a ticket (display); panics unless 200.
    pub async fn ticket(&self, branch: &str, id: &str) -> Ticket {
        let path = format!("/api/v1/branches/{branch}/tickets/{id}");
        self.expect(Method::GET, &path, DISPLAY, None, StatusCode::OK)
            .await
    }

    /// Calls the next ticket at a counter: `Some` on 200, `None` on 204.
    pub async fn call(&self, branch: &str, counter: &str) -> Option<Ticket> {
        let path = format!("/api/v1/branches/{branch}/counters/{counter}/call");
        let response = self
            .request(Method::POST, &path, Some(OPERATOR), None)
            .await;
        let status = response.status();
        let text = response.text().await.expect("read the body");
        match status {
            StatusCode::OK => {
                Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("call: {e}: {text}")))
            }
            StatusCode::NO_CONTENT => {
                assert!(text.is_empty(), "204 with a body: {text}");
                None
            }
            other => panic!("POST {path} answered {other}: {text}"),
        }
    }

    /// `recall`, `finish` or `no-show` at a counter; panics unless 200.
    pub async fn counter_action(&self, branch: &str, counter: &str, action: &str) -> Ticket {
        let path = format!("/api/v1/branches/{branch}/counters/{counter}/{action}");
        self.expect(Method::POST, &path, OPERATOR, None, StatusCode::OK)
            .await
    }

    /// Transfers the counter's current ticket to `service`; panics unless 200.
    pub async fn transfer(&self, branch: &str, counter: &str, service: &str) -> Ticket {
        let path = format!("/api/v1/branches/{branch}/counters/{counter}/transfer");
        self.expect(
            Method::POST,
            &path,
            OPERATOR,
            Some(json!({"service": service})),
            StatusCode::OK,
        )
        .await
    }

    pub async fn queues(&self, branch: &str) -> Vec<QueueStatus> {
        let path = format!("/api/v1/branches/{branch}/queues");
        self.expect(Method::GET, &path, DISPLAY, None, StatusCode::OK)
            .await
    }

    /// The display board's lines, newest first.
    pub async fn display(&self, branch: &str) -> Vec<CalledEntry> {
        #[derive(Deserialize)]
        struct Board {
            called: Vec<CalledEntry>,
        }
        let path = format!("/api/v1/branches/{branch}/display");
        let board: Board = self
            .expect(Method::GET, &path, DISPLAY, None, StatusCode::OK)
            .await;
        board.called
    }

    // Failure-tolerant variants, for traffic that runs while nodes die:
    // `Err` (with the reason) means "not acknowledged", never a panic.

    /// Issues a ticket; `Ok` only on 201.
    pub async fn try_issue(&self, branch: &str, service: &str) -> Result<Ticket, String> {
        self.try_issue_keyed(branch, service, None).await
    }

    /// Issues a ticket with an `Idempotency-Key` (when `Some`); `Ok` only
    /// on 201.
    pub async fn try_issue_keyed(
        &self,
        branch: &str,
        service: &str,
        key: Option<&str>,
    ) -> Result<Ticket, String> {
        let path = format!("/api/v1/branches/{branch}/tickets");
        let body = json!({"service": service});
        let (status, text) = self
            .try_post(&path, KIOSK, Some(body), key)
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        if status != StatusCode::CREATED {
            return Err(format!("POST {path} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("POST {path}: {e}: {text}"))
    }

    /// Calls the next ticket at a counter: `Ok(Some)` on 200, `Ok(None)` on
    /// 204.
    pub async fn try_call(&self, branch: &str, counter: &str) -> Result<Option<Ticket>, String> {
        let path = format!("/api/v1/branches/{branch}/counters/{counter}/call");
        let response = self
            .http
            .post(self.url(&path))
            .bearer_auth(OPERATOR)
            .timeout(TRY_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        match status {
            StatusCode::OK => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("POST {path}: {e}: {text}")),
            StatusCode::NO_CONTENT => Ok(None),
            other => Err(format!("POST {path} answered {other}: {text}")),
        }
    }

    /// A POST with an optional JSON body and `Idempotency-Key`, failure
    /// tolerant: the status and body, or why there was no answer.
    pub async fn try_post(
        &self,
        path: &str,
        token: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Result<(StatusCode, String), String> {
        let mut builder = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .timeout(TRY_TIMEOUT);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        if let Some(key) = key {
            builder = builder.header("Idempotency-Key", key);
        }
        let response = builder.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, text))
    }

    // Cluster.

    /// `GET /api/v1/cluster` (display).
    pub async fn cluster(&self) -> ClusterView {
        self.expect(
            Method::GET,
            "/api/v1/cluster",
            DISPLAY,
            None,
            StatusCode::OK,
        )
        .await
    }

    /// `POST /api/v1/cluster/fence-check` (admin), answered as it comes.
    /// Sent on a new connection: right after a paused node resumes, its
    /// keep-alive timer closes idle connections, and a pooled one could be
    /// closed under this request.
    pub async fn fence_check(&self) -> Response {
        ApiClient::new(self.base_url.clone())
            .request(
                Method::POST,
                "/api/v1/cluster/fence-check",
                Some(ADMIN),
                None,
            )
            .await
    }

    /// `GET /metrics` as text, or `None` when the node does not answer.
    pub async fn metrics(&self) -> Option<String> {
        let response = self
            .http
            .get(self.url("/metrics"))
            .timeout(TRY_TIMEOUT)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// The status of `GET /readyz`, or `None` when the node does not answer.
    pub async fn readyz(&self) -> Option<StatusCode> {
        self.http
            .get(self.url("/readyz"))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .ok()
            .map(|r| r.status())
    }
}

/// Asserts an error answer: its status and its `error.code`; returns the
/// message.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> String {
    let got = response.status();
    let text = response.text().await.expect("read the body");
    assert_eq!(got, status, "expected {status} {code}, got {got}: {text}");
    let body: ErrorBody =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("error body {text:?}: {e}"));
    assert_eq!(body.error.code, code, "{text}");
    assert!(!body.error.message.is_empty(), "empty message: {text}");
    body.error.message
}
