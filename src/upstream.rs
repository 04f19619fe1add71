//! The HTTP client a slave group's leader uses to reach its master group
//! (API.md "Peer protocol"). It tries the configured master URLs in turn,
//! starting with the one that answered last, so one master node down is not
//! an outage.
//!
//! [`open_blob`] is the one way any node asks any other node (master or a
//! member of its own group) for a media blob from an offset.

use std::time::Duration;

use serde::Deserialize;

use crate::domain::media::Manifest;
use crate::domain::{Branch, Id};

/// Why no master node answered.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no master node answered: {0}")]
    Unreachable(String),
    #[error("the master refused the request: {status} {body}")]
    Refused { status: u16, body: String },
}

/// `GET /api/v1/mirror/config` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigSnapshotBody {
    pub version: u64,
    pub branches: Vec<Branch>,
}

#[derive(Clone)]
pub struct UpstreamClient {
    client: reqwest::Client,
    urls: Vec<String>,
    token: String,
    preferred: usize,
}

/// How long connecting to one master URL may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle connection to the master is kept for the next poll.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// How long past the long-poll's own wait a reply may take before the link
/// counts as hung.
const POLL_GRACE: Duration = Duration::from_secs(3);

impl UpstreamClient {
    pub fn new(urls: Vec<String>, token: String) -> UpstreamClient {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .unwrap_or_default();
        UpstreamClient {
            client,
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            token,
            preferred: 0,
        }
    }

    /// The URL that answered last.
    pub fn current_url(&self) -> Option<&str> {
        self.urls.get(self.preferred).map(String::as_str)
    }

    /// Long-polls for a configuration newer than `since`: `Some` when there
    /// is one, `None` when `wait_s` passed without a change.
    pub async fn fetch_config(
        &mut self,
        group: &Id,
        since: u64,
        wait_s: u64,
    ) -> Result<Option<ConfigSnapshotBody>, UpstreamError> {
        let mut failures = Vec::new();
        for attempt in 0..self.urls.len() {
            let index = (self.preferred + attempt) % self.urls.len();
            let url = format!(
                "{}/api/v1/mirror/config?group={group}&since={since}&wait_s={wait_s}",
                self.urls[index]
            );
            let response = self
                .client
                .get(&url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(wait_s) + POLL_GRACE)
                .send()
                .await;
            match response {
                Ok(r) if r.status() == reqwest::StatusCode::NOT_MODIFIED => {
                    self.preferred = index;
                    return Ok(None);
                }
                Ok(r) if r.status().is_success() => {
                    self.preferred = index;
                    return r.json::<ConfigSnapshotBody>().await.map(Some).map_err(|e| {
                        UpstreamError::Unreachable(format!("{url}: unreadable body: {e}"))
                    });
                }
                Ok(r) if r.status().is_client_error() => {
                    // Our request is wrong (token, group): every master
                    // node will say the same.
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    return Err(UpstreamError::Refused { status, body });
                }
                Ok(r) => failures.push(format!("{}: {}", self.urls[index], r.status())),
                Err(e) => failures.push(format!("{}: {e}", self.urls[index])),
            }
        }
        Err(UpstreamError::Unreachable(failures.join("; ")))
    }
}

impl UpstreamClient {
    /// The master's media manifest, checked against its version.
    pub async fn fetch_manifest(&mut self) -> Result<Manifest, UpstreamError> {
        let mut failures = Vec::new();
        for attempt in 0..self.urls.len() {
            let index = (self.preferred + attempt) % self.urls.len();
            let url = format!("{}/api/v1/mirror/media/manifest", self.urls[index]);
            let response = self
                .client
                .get(&url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() => match r.json::<Manifest>().await {
                    Ok(m) if m.is_consistent() => {
                        self.preferred = index;
                        return Ok(m);
                    }
                    Ok(_) => failures.push(format!("{url}: manifest does not match its version")),
                    Err(e) => failures.push(format!("{url}: unreadable manifest: {e}")),
                },
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    return Err(UpstreamError::Refused { status, body });
                }
                Ok(r) => failures.push(format!("{url}: {}", r.status())),
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        Err(UpstreamError::Unreachable(failures.join("; ")))
    }

    /// Bytes `offset..=last` of a blob, from the first master node that
    /// has it.
    pub async fn open_blob(
        &mut self,
        sha256: &str,
        offset: u64,
        last: u64,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut failures = Vec::new();
        for attempt in 0..self.urls.len() {
            let index = (self.preferred + attempt) % self.urls.len();
            let base = &self.urls[index];
            let range = BlobRange {
                offset,
                last: Some(last),
                complete_only: false,
            };
            match open_blob(&self.client, base, &self.token, sha256, range).await {
                Ok(r) => {
                    self.preferred = index;
                    return Ok(r);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(UpstreamError::Unreachable(failures.join("; ")))
    }

    /// The HTTP client, shared with requests to the group's own nodes.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Which bytes of a blob to ask for.
#[derive(Debug, Clone, Copy)]
pub struct BlobRange {
    pub offset: u64,
    /// The last byte wanted; `None`: to the end.
    pub last: Option<u64>,
    /// Ask a slave node not to offer a copy still growing there.
    pub complete_only: bool,
}

/// Asks the node at `base_url` for blob `sha256` from byte `range.offset`
/// (HTTP Range). Only an answer that starts exactly there is accepted: 206
/// with a matching `Content-Range`, or 200 when the offset is 0.
pub async fn open_blob(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
    sha256: &str,
    range: BlobRange,
) -> Result<reqwest::Response, UpstreamError> {
    let query = if range.complete_only {
        "?complete=1"
    } else {
        ""
    };
    let url = format!("{base_url}/api/v1/mirror/media/blobs/{sha256}{query}");
    let offset = range.offset;
    let last = range.last.map(|l| l.to_string()).unwrap_or_default();
    let response = client
        .get(&url)
        .bearer_auth(token)
        .header(reqwest::header::RANGE, format!("bytes={offset}-{last}"))
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(format!("{url}: {e}")))?;
    let status = response.status();
    let starts_at = response
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.parse::<u64>().ok());
    match status {
        reqwest::StatusCode::PARTIAL_CONTENT if starts_at == Some(offset) => Ok(response),
        reqwest::StatusCode::OK if offset == 0 => Ok(response),
        s if s.is_client_error() => Err(UpstreamError::Refused {
            status: s.as_u16(),
            body: url,
        }),
        s => Err(UpstreamError::Unreachable(format!(
            "{url}: {s}, content-range start {starts_at:?} for offset {offset}"
        ))),
    }
}
