//! The peer protocol a master serves to slave groups (API.md "Peer
//! protocol"): `GET /api/v1/mirror/config` long-poll.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, PeerRole};
use super::error::ApiError;
use super::openapi::{BadInput, MasterOnly, TokenErrors, Unavailable};
use super::AppState;
use crate::domain::{Branch, Id};

/// Longest long-poll a slave may ask for.
const MAX_WAIT_S: u64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(mirror_config);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MirrorQuery {
    /// The slave group asking.
    group: String,
    /// The version the slave holds.
    #[serde(default)]
    since: u64,
    /// How long to wait for a newer version (0–30 s).
    #[serde(default)]
    #[param(maximum = 30)]
    wait_s: u64,
}

/// The configuration of one group's branches at one version.
#[derive(Serialize, ToSchema)]
pub struct GroupConfig<'a> {
    pub version: u64,
    pub branches: Vec<&'a Branch>,
}

#[utoipa::path(tag = "peer", security(("bearer" = [])), params(MirrorQuery),
    responses((status = 200, body = GroupConfig), (status = 304, description = "nothing newer within wait_s"), TokenErrors, BadInput, MasterOnly, Unavailable))]
#[get("/api/v1/mirror/config")]
async fn mirror_config(
    _: Authorized<PeerRole>,
    state: web::Data<AppState>,
    query: web::Query<MirrorQuery>,
) -> Result<HttpResponse, ApiError> {
    state.require_master()?;
    let group = Id::parse(&query.group)?;
    if query.wait_s > MAX_WAIT_S {
        return Err(ApiError::InvalidQuery(format!(
            "wait_s must be 0 to {MAX_WAIT_S}"
        )));
    }
    // Subscribe before looking, so a change between the look and the wait
    // is not missed.
    let mut versions = state.config.versions();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait_s);
    loop {
        let snapshot = state.snapshot()?;
        // Answer when this group's branches changed after `since`; other
        // groups' changes do not wake it. A version below `since` means the
        // master lost data: answer at once, and the slave reports it instead
        // of waiting forever.
        let changed_at = snapshot.group_changed_at.get(&group).copied().unwrap_or(0);
        if changed_at > query.since || snapshot.version < query.since {
            let branches = snapshot
                .group_branches(&group)
                .map(|b| b.as_ref())
                .collect();
            return Ok(HttpResponse::Ok().json(GroupConfig {
                version: snapshot.version,
                branches,
            }));
        }
        match tokio::time::timeout_at(deadline, versions.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(HttpResponse::NotModified().finish()),
        }
    }
}
