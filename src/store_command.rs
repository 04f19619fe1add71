//! `turnus store adopt`: the operator's command after a master group's Redis
//! lost its data (README, "When the group's Redis lost its data").
//!
//! It asks a node of the group to adopt the store
//! (`POST /api/v1/cluster/store/adopt`) rather than writing to Redis
//! itself: only a node remembers the identity the store had before, and
//! the adoption must record that it replaces that one, so every other node
//! that remembers it follows at its next heartbeat. A command that wrote
//! the identity directly would know no old identity, and the other nodes
//! would go on reporting `store-lost`.
//!
//! Owns the command's HTTP call and its messages; the decision is the
//! node's (`http/cluster.rs`).

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::settings::Settings;

/// How long the node may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where to send the adoption: `url`, else the node's own address from its
/// configuration (`http.advertise_url`, else `http://<http.listen>`).
pub fn node_url(settings: &Settings, url: Option<&str>) -> String {
    if let Some(url) = url {
        return url.trim_end_matches('/').to_owned();
    }
    if !settings.http.advertise_url.is_empty() {
        return settings.http.advertise_url.trim_end_matches('/').to_owned();
    }
    let listen = &settings.http.listen;
    match listen.rsplit_once(':') {
        // A node listening on every interface answers on loopback too.
        Some(("0.0.0.0" | "[::]", port)) => format!("http://127.0.0.1:{port}"),
        _ => format!("http://{listen}"),
    }
}

#[derive(Deserialize)]
struct Adopted {
    store_id: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// Asks the node at `url` to adopt its group's store, with the first of the
/// configuration's `auth.admin_tokens`; returns the adopted identity.
pub async fn adopt(settings: &Settings, url: &str) -> anyhow::Result<String> {
    let Some(token) = settings.auth.admin_tokens.first() else {
        bail!("no admin token: set auth.admin_tokens (or TURNUS__AUTH__ADMIN_TOKENS)");
    };
    let endpoint = format!("{url}/api/v1/cluster/store/adopt");
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(token.expose())
        .timeout(TIMEOUT)
        .send()
        .await
        .with_context(|| format!("POST {endpoint}"))?;
    let status = response.status();
    let text = response.text().await.context("reading the answer")?;
    if status.is_success() {
        let adopted: Adopted = serde_json::from_str(&text)
            .with_context(|| format!("unexpected answer from {endpoint}: {text}"))?;
        return Ok(adopted.store_id);
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => bail!(
            "{endpoint} answered {status} {}: {}",
            body.error.code,
            body.error.message
        ),
        Err(_) => bail!("{endpoint} answered {status}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_url_comes_from_the_flag_then_the_configuration() {
        let mut settings = Settings::default();
        settings.http.listen = "0.0.0.0:8080".into();
        assert_eq!(node_url(&settings, None), "http://127.0.0.1:8080");
        settings.http.listen = "10.0.0.5:9000".into();
        assert_eq!(node_url(&settings, None), "http://10.0.0.5:9000");
        settings.http.advertise_url = "http://node-a:8080/".into();
        assert_eq!(node_url(&settings, None), "http://node-a:8080");
        assert_eq!(
            node_url(&settings, Some("http://other:1/")),
            "http://other:1"
        );
    }
}
