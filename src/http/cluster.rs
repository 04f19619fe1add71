//! `GET /api/v1/cluster`: who is in the group and who leads, as the group's
//! Redis says at one instant (so all nodes agree). `POST
//! /api/v1/cluster/fence-check`: an operator's (and the tests') way to make
//! this node attempt a leader-only write with the epoch it holds or last
//! held, to see fencing at work. `POST /api/v1/cluster/store/adopt`: an
//! operator's explicit "trust the group's Redis as it is now" after it lost
//! data (see `store::memory`).

use actix_web::{get, post, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{AdminRole, Authorized, DisplayRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{TokenErrors, Unavailable};
use super::AppState;
use crate::actors::media_handle::MediaProgress;
use crate::actors::membership::EXPIRY;
use crate::store::StoreError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(cluster)
        .service(fence_check)
        .service(adopt_store);
}

#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    pub node: String,
    #[schema(example = "master")]
    pub role: String,
    pub group: String,
    /// The leading node, or null while the lease is free.
    pub leader: Option<String>,
    /// The group's current fencing epoch.
    pub epoch: u64,
    pub members: Vec<MemberView>,
    /// Slaves only: the link to the master group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamView>,
}

#[derive(Serialize, ToSchema)]
pub struct UpstreamView {
    pub connected: bool,
    /// The configuration version this group serves.
    pub config_version: u64,
    pub last_contact: Option<chrono::DateTime<chrono::Utc>>,
    /// Ticket events not yet shipped to the master.
    pub stats_backlog: u64,
    /// This node's media mirror against the group's wanted manifest.
    pub media: MediaProgress,
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    pub addr: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct FenceCheck {
    pub accepted: bool,
    pub epoch: u64,
}

#[utoipa::path(tag = "cluster", security(("bearer" = [])),
    responses((status = 200, body = ClusterView), TokenErrors, Unavailable))]
#[get("/api/v1/cluster")]
async fn cluster(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .store
        .cluster_state(&state.group, EXPIRY.as_millis() as u64)
        .await?;
    state.metrics.members.set(view.members.len() as i64);
    let upstream = match state.role {
        crate::settings::NodeRole::Master => None,
        crate::settings::NodeRole::Slave => Some(upstream(&state).await?),
    };
    Ok(HttpResponse::Ok().json(ClusterView {
        node: state.node_id.clone(),
        role: state.role.to_string(),
        group: state.group.to_string(),
        leader: view.leader.map(|h| h.node),
        epoch: view.epoch,
        members: view
            .members
            .into_iter()
            .map(|m| MemberView {
                id: m.id,
                addr: m.addr,
                last_seen_ms: m.last_seen_ms,
            })
            .collect(),
        upstream,
    }))
}

async fn upstream(state: &AppState) -> Result<UpstreamView, ApiError> {
    let record = state.store.upstream(&state.group).await?;
    let snapshot = state.snapshot()?;
    let served: Vec<&crate::domain::Id> = state.served(&snapshot).map(|b| &b.id).collect();
    let backlog: u64 = state.store.stats_backlogs(&served).await?.iter().sum();
    Ok(UpstreamView {
        connected: record.connected,
        config_version: snapshot.version,
        last_contact: record.last_contact_ms.map(crate::domain::ticket::from_ms),
        stats_backlog: backlog,
        media: state.media.progress(),
    })
}

#[utoipa::path(tag = "cluster", security(("bearer" = [])),
    responses((status = 200, body = FenceCheck), (status = 409, body = ErrorBody, description = "fenced: a newer epoch exists"), TokenErrors, Unavailable))]
#[post("/api/v1/cluster/fence-check")]
async fn fence_check(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let epoch = state.leader.epoch();
    match state.store.fence_probe(&state.group, epoch).await {
        Ok(()) => Ok(HttpResponse::Ok().json(FenceCheck {
            accepted: true,
            epoch,
        })),
        Err(StoreError::Fenced { held, current }) => {
            state.metrics.fenced_writes_rejected.inc();
            Err(ApiError::Fenced { held, current })
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct StoreAdopted {
    /// The identity every node of the group trusts from now on.
    pub store_id: String,
}

/// After the group's Redis lost data (`/readyz` 503 `store-lost`), an
/// operator checks what is there (restore the configuration on a master
/// group), then adopts the store: every node that knew the old identity
/// trusts the current one again within a heartbeat. Numbering and epochs
/// continued above what the nodes had seen all along.
#[utoipa::path(tag = "cluster", security(("bearer" = [])),
    responses((status = 200, body = StoreAdopted), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/cluster/store/adopt")]
async fn adopt_store(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store_id = state.store.adopt(&state.group).await?;
    state.metrics.store_lost.set(0);
    tracing::warn!(%store_id, "the operator adopted the group's Redis");
    Ok(HttpResponse::Ok().json(StoreAdopted { store_id }))
}
