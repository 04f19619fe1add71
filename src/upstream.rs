//! The HTTP client a slave group's leader uses to reach its master group
//! (API.md "Peer protocol"). It tries the configured master URLs in turn,
//! starting with the one that answered last, so one master node down is not
//! an outage.

use std::time::Duration;

use serde::Deserialize;

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
            let base = &self.urls[index];
            let url = format!(
                "{}/api/v1/mirror/config?group={group}&since={since}&wait_s={wait_s}",
                base.expose()
            );
            let response = self
                .client
                .get(&url)
                .bearer_auth(self.token.expose())
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
                        // Errors name the masked base URL, never the one
                        // with credentials that reqwest would print.
                        UpstreamError::Unreachable(format!(
                            "{base}: unreadable body: {}",
                            e.without_url()
                        ))
                    });
                }
                Ok(r) if r.status().is_client_error() => {
                    // Our request is wrong (token, group): every master
                    // node will say the same.
                    let status = r.status().as_u16();
                    let body = r.text().await.unwrap_or_default();
                    return Err(UpstreamError::Refused { status, body });
                }
                Ok(r) => failures.push(format!("{base}: {}", r.status())),
                Err(e) => failures.push(format!("{base}: {}", e.without_url())),
            }
        }
        Err(UpstreamError::Unreachable(failures.join("; ")))
    }
}
