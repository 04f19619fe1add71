//! The peer protocol a master serves to slave groups (API.md "Peer
//! protocol"): `GET /api/v1/mirror/config` long-poll, and `POST
//! /api/v1/mirror/stats`, where a slave leader's batches of ticket events
//! are applied to the statistics exactly once.

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, PeerRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, BodyErrors, MasterOnly, TokenErrors, Unavailable};
use super::AppState;
use crate::domain::stats::{event_ops, StatsAck, StatsBatch, StreamId};
use crate::domain::{Branch, Id};
use crate::store::stats::{ApplyOutcome, EventOps, Sender};

/// Longest long-poll a slave may ask for.
const MAX_WAIT_S: u64 = 30;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(mirror_config).service(
        web::resource("/api/v1/mirror/stats")
            .app_data(super::json_config(MAX_BATCH_BYTES))
            .route(web::post().to(mirror_stats)),
    );
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

/// Largest `POST /api/v1/mirror/stats` body: 10,000 events of about 350
/// bytes. Above the API's 64 KiB JSON limit on purpose (a batch is many
/// small events; see ARCHITECTURE.md).
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most events one batch may carry.
pub const MAX_BATCH_EVENTS: usize = 10_000;

/// Checks a batch without touching anything: identifiers, epoch, source,
/// and stream ids strictly increasing. A malformed batch applies nothing.
fn validate_batch(
    batch: &StatsBatch,
) -> Result<(Id, Id, Option<StreamId>, Vec<StreamId>), ApiError> {
    let group = Id::parse(&batch.group)?;
    let branch = Id::parse(&batch.branch)?;
    let source_ok = (1..=64).contains(&batch.source.len())
        && batch
            .source
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !source_ok {
        return Err(ApiError::InvalidBody(
            "source: 1 to 64 letters, digits, '-' or '_'".into(),
        ));
    }
    if batch.epoch == 0 {
        return Err(ApiError::InvalidBody("epoch: must be above 0".into()));
    }
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::InvalidBody(format!(
            "events: at most {MAX_BATCH_EVENTS} per batch"
        )));
    }
    let after =
        match batch.after.as_deref() {
            None => None,
            Some(text) => Some(StreamId::parse(text).ok_or_else(|| {
                ApiError::InvalidBody(format!("after: {text:?} is not a stream id"))
            })?),
        };
    if batch.lost > 0 && after.is_none() {
        return Err(ApiError::InvalidBody("lost: needs after".into()));
    }
    let mut ids: Vec<StreamId> = Vec::with_capacity(batch.events.len());
    for (i, shipped) in batch.events.iter().enumerate() {
        let id = StreamId::parse(&shipped.id).ok_or_else(|| {
            ApiError::InvalidBody(format!(
                "events[{i}].id: {:?} is not a stream id",
                shipped.id
            ))
        })?;
        if ids
            .last()
            .or(after.as_ref())
            .is_some_and(|prev| *prev >= id)
        {
            return Err(ApiError::InvalidBody(format!(
                "events[{i}].id: ids must increase ({} after {})",
                id,
                ids.last().map(ToString::to_string).unwrap_or_default()
            )));
        }
        ids.push(id);
    }
    Ok((group, branch, after, ids))
}

#[utoipa::path(post, path = "/api/v1/mirror/stats", tag = "peer", security(("bearer" = [])),
    request_body = StatsBatch,
    responses((status = 200, body = StatsAck, description = "applied, or already applied: idempotent"),
        (status = 404, body = ErrorBody, description = "unknown branch"),
        (status = 409, body = ErrorBody, description = "`stale-epoch`: a newer leader of the group has shipped (nothing applied); `read-only-replica` on a slave"),
        TokenErrors, BodyErrors, Unavailable))]
async fn mirror_stats(
    _: Authorized<PeerRole>,
    state: web::Data<AppState>,
    batch: web::Json<StatsBatch>,
) -> Result<HttpResponse, ApiError> {
    state.require_master()?;
    let (group, branch_id, after, ids) = validate_batch(&batch)?;
    let snapshot = state.snapshot()?;
    let branch = snapshot
        .branches
        .get(&branch_id)
        .ok_or_else(|| ApiError::UnknownBranch(format!("no branch {branch_id}")))?;
    let events: Vec<EventOps> = ids
        .into_iter()
        .zip(&batch.events)
        .map(|(id, shipped)| EventOps {
            id,
            ops: event_ops(branch, &shipped.event),
        })
        .collect();
    let outcome = state
        .store
        .apply_stats(
            &branch_id,
            Sender::Peer {
                group: &group,
                epoch: batch.epoch,
                after,
                lost: batch.lost,
            },
            &batch.source,
            batch.through_ms,
            &events,
        )
        .await?;
    match outcome {
        ApplyOutcome::Applied {
            through,
            applied,
            counted,
            lost,
        } => {
            state.metrics.stats_events_applied.inc_by(applied);
            if lost > 0 {
                state.metrics.stats_events_lost.inc_by(lost);
                tracing::error!(branch = %branch_id, %group, lost,
                    "statistics events lost: this store needed them and the slave no longer holds them");
            }
            Ok(HttpResponse::Ok().json(StatsAck {
                applied_through: through.map(|t| t.to_string()),
                counted,
                store: state.store.memory().identity(),
            }))
        }
        ApplyOutcome::Behind { through, counted } => {
            tracing::warn!(branch = %branch_id, %group, through = ?through, after = ?after,
                "statistics batch continues above this store's watermark: asking for a resend");
            Ok(HttpResponse::Ok().json(StatsAck {
                applied_through: through.map(|t| t.to_string()),
                counted,
                store: state.store.memory().identity(),
            }))
        }
        ApplyOutcome::StaleEpoch { highest } => Err(ApiError::StaleEpoch {
            held: batch.epoch,
            highest,
        }),
    }
}
