//! The HTTP client a slave group's leader uses to reach its master group
//! (API.md "Peer protocol"). It tries the configured master URLs in turn,
//! starting with the one that answered last, so one master node down is not
//! an outage.
//!
//! [`open_blob`] is the one way any node asks any other node (master or a
//! member of its own group) for a media blob from an offset.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::domain::media::Manifest;
use crate::domain::stats::{StatsAck, StatsBatch};
use crate::domain::{Branch, Id};
use crate::settings::{Secret, SecretUrl};

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
    urls: Vec<SecretUrl>,
    token: Secret,
    preferred: usize,
}

/// How long connecting to one master URL may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle connection to the master is kept for the next poll.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// How long past the long-poll's own wait a reply may take before the link
/// counts as hung.
const POLL_GRACE: Duration = Duration::from_secs(3);
/// How long one statistics batch may take at the master.
const STATS_TIMEOUT: Duration = Duration::from_secs(10);

impl UpstreamClient {
    pub fn new(urls: Vec<SecretUrl>, token: Secret) -> UpstreamClient {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .unwrap_or_default();
        UpstreamClient {
            client,
            urls: urls
                .into_iter()
                .map(|u| SecretUrl::new(u.expose().trim_end_matches('/')))
                .collect(),
            token,
            preferred: 0,
        }
    }

    /// The URL that answered last (it prints with credentials masked).
    pub fn current_url(&self) -> Option<&SecretUrl> {
        self.urls.get(self.preferred)
    }

    /// Sends the request `build` makes (from the client and a master's base
    /// URL) to each master in turn, starting with the one that answered
    /// last, until one answers with success or 304; returns the answer and
    /// the (masked) base URL it came from. A 4xx is our request's fault
    /// (token, group, epoch): every master node would say the same, so it is
    /// returned at once.
    async fn in_turn(
        &mut self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, String), UpstreamError> {
        let mut failures = Vec::new();
        for attempt in 0..self.urls.len() {
            let index = (self.preferred + attempt) % self.urls.len();
            let base = &self.urls[index];
            let response = build(&self.client, base.expose())
                .bearer_auth(self.token.expose())
                .send()
                .await;
            match response {
                Ok(r) if r.status().is_success() || r.status() == StatusCode::NOT_MODIFIED => {
                    self.preferred = index;
                    return Ok((r, base.to_string()));
                }
                Ok(r) if r.status().is_client_error() => {
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    return Err(UpstreamError::Refused { status, body });
                }
                Ok(r) => failures.push(format!("{base}: {}", r.status())),
                // Errors name the masked base URL, never the one with
                // credentials that reqwest would print.
                Err(e) => failures.push(format!("{base}: {}", e.without_url())),
            }
        }
        Err(UpstreamError::Unreachable(failures.join("; ")))
    }

    /// Long-polls for a configuration newer than `since`: `Some` when there
    /// is one, `None` when `wait_s` passed without a change.
    pub async fn fetch_config(
        &mut self,
        group: &Id,
        since: u64,
        wait_s: u64,
    ) -> Result<Option<ConfigSnapshotBody>, UpstreamError> {
        let (response, base) = self
            .in_turn(|client, base| {
                client
                    .get(format!(
                        "{base}/api/v1/mirror/config?group={group}&since={since}&wait_s={wait_s}"
                    ))
                    .timeout(Duration::from_secs(wait_s) + POLL_GRACE)
            })
            .await?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        response
            .json::<ConfigSnapshotBody>()
            .await
            .map(Some)
            .map_err(|e| unreadable(&base, e))
    }

    /// Ships one batch of statistics; the master's acknowledgement. A 409
    /// (`stale-epoch`) comes back as [`UpstreamError::Refused`].
    pub async fn post_stats(&mut self, batch: &StatsBatch) -> Result<StatsAck, UpstreamError> {
        let (response, base) = self
            .in_turn(|client, base| {
                client
                    .post(format!("{base}/api/v1/mirror/stats"))
                    .json(batch)
                    .timeout(STATS_TIMEOUT)
            })
            .await?;
        response
            .json::<StatsAck>()
            .await
            .map_err(|e| unreadable(&base, e))
    }
}

fn unreadable(base: &str, e: reqwest::Error) -> UpstreamError {
    UpstreamError::Unreachable(format!("{base}: unreadable body: {}", e.without_url()))
}

impl UpstreamClient {
    /// The master's media manifest, checked against its version. A 304 is
    /// not expected here (no conditional request is sent); a manifest that
    /// does not match its version is refused like an unreadable one, and
    /// the distributor retries with back-off.
    pub async fn fetch_manifest(&mut self) -> Result<Manifest, UpstreamError> {
        let (response, base) = self
            .in_turn(|client, base| {
                client
                    .get(format!("{base}/api/v1/mirror/media/manifest"))
                    .timeout(Duration::from_secs(10))
            })
            .await?;
        let manifest = response
            .json::<Manifest>()
            .await
            .map_err(|e| unreadable(&base, e))?;
        if manifest.is_consistent() {
            Ok(manifest)
        } else {
            Err(UpstreamError::Unreachable(format!(
                "{base}: manifest does not match its version"
            )))
        }
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
            match open_blob(
                &self.client,
                base.expose(),
                self.token.expose(),
                sha256,
                range,
            )
            .await
            {
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
    // What errors show: the URL with any credentials masked.
    let shown = crate::settings::secret::mask_url(&url);
    let offset = range.offset;
    let last = range.last.map(|l| l.to_string()).unwrap_or_default();
    let response = client
        .get(&url)
        .bearer_auth(token)
        .header(reqwest::header::RANGE, format!("bytes={offset}-{last}"))
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable(format!("{shown}: {}", e.without_url())))?;
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
            body: shown,
        }),
        s => Err(UpstreamError::Unreachable(format!(
            "{shown}: {s}, content-range start {starts_at:?} for offset {offset}"
        ))),
    }
}
