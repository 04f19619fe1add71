//! Operational endpoints without a token: `/healthz`, `/readyz`, `/metrics`.

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::actors::ticket_queue::GetQueues;
use crate::domain::config::ConfigSnapshot;
use crate::domain::Id;
use crate::metrics::{BranchLabels, Format, QueueLabels};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

#[derive(Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

#[utoipa::path(tag = "ops", responses((status = 200, body = Status)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

#[utoipa::path(tag = "ops", responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let redis = state.store.ping().await;
    state.metrics.redis_up.set(i64::from(redis.is_ok()));
    if let Err(e) = redis {
        tracing::debug!(error = %e, "not ready: redis");
        return Err(ApiError::NotReady(
            "the group's Redis does not answer".into(),
        ));
    }
    if let Some(why) = state.store.memory().lost() {
        return Err(ApiError::StoreLost(why));
    }
    state.snapshot()?;
    if state.stall.recovering(std::time::Instant::now()) {
        return Err(ApiError::NotReady(
            "this node was stalled a moment ago; ticket requests read now are refused as possibly stale".into(),
        ));
    }
    Ok(HttpResponse::Ok().json(Status { status: "ready" }))
}

#[utoipa::path(tag = "ops", responses((status = 200, content_type = "text/plain",
    description = "Prometheus text format 0.0.4; OpenMetrics 1.0.0 when `Accept` names application/openmetrics-text")))]
#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    refresh_gauges(&state).await;
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    HttpResponse::Ok()
        .content_type(format.content_type())
        .body(state.metrics.encode(format))
}

/// Gauges that mirror Redis are read at scrape time; a failure leaves the
/// previous value and shows in `redis_up`.
async fn refresh_gauges(state: &AppState) {
    let up = state.store.ping().await.is_ok();
    state.metrics.redis_up.set(i64::from(up));
    let Some(snapshot) = state.config.current() else {
        return;
    };
    if !up {
        return;
    }
    if state.role == crate::settings::NodeRole::Slave {
        if let Ok(record) = state.store.upstream(&state.group).await {
            state
                .metrics
                .upstream_connected
                .set(i64::from(record.connected));
            if let Some(last) = record.last_contact_ms {
                let lag_ms = chrono::Utc::now().timestamp_millis() - last;
                state
                    .metrics
                    .mirror_lag_seconds
                    .set(lag_ms.max(0) as f64 / 1000.0);
            }
        }
    }
    let served: Vec<&Id> = state.served(&snapshot).map(|b| &b.id).collect();
    // All branches at once: the requests share the multiplexed connection,
    // so they go out pipelined instead of one round trip after another.
    let queue_reads = served.iter().map(|id| async move {
        let queue = state.queues.get(id.as_str())?;
        queue.send(GetQueues).await.ok()?.ok()
    });
    let (queues, outbox_lens) = futures::join!(
        futures::future::join_all(queue_reads),
        state.store.outbox_lens(&served)
    );
    for (id, queues) in served.iter().zip(queues) {
        for q in queues.into_iter().flatten() {
            state
                .metrics
                .queue_waiting
                .get_or_create(&QueueLabels {
                    branch: id.to_string(),
                    service: q.service,
                })
                .set(q.waiting as i64);
        }
    }
    if let Ok(lens) = outbox_lens {
        for (id, len) in served.iter().zip(&lens) {
            state
                .metrics
                .outbox_length
                .get_or_create(&BranchLabels {
                    branch: id.to_string(),
                })
                .set(*len as i64);
        }
    }
    if state.role == crate::settings::NodeRole::Slave {
        // Not acknowledged by the master (the outbox also keeps
        // acknowledged events for the retention).
        if let Ok(backlogs) = state.store.stats_backlogs(&served).await {
            let backlog: u64 = backlogs.iter().sum();
            state.metrics.stats_backlog_events.set(backlog as i64);
        }
    }
    refresh_stats_gauges(state, &snapshot, &served).await;
}

/// The age of each served branch's oldest outbox event, and on the master
/// the statistics lag: the age of the oldest branch watermark.
async fn refresh_stats_gauges(state: &AppState, snapshot: &ConfigSnapshot, served: &[&Id]) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    if let Ok(oldest) = state.store.outbox_oldest(served).await {
        for (id, oldest) in served.iter().zip(oldest) {
            let age_ms = oldest.map_or(0, |t| (now_ms - t).max(0));
            state
                .metrics
                .outbox_oldest_age_seconds
                .get_or_create(&BranchLabels {
                    branch: id.to_string(),
                })
                .set(age_ms as f64 / 1000.0);
        }
    }
    if state.role != crate::settings::NodeRole::Master {
        return;
    }
    let all: Vec<Id> = snapshot.branches.keys().cloned().collect();
    if let Ok(throughs) = state.store.stats_through(&all).await {
        // Branches that never reported have no watermark yet; the oldest
        // of the others is the lag.
        if let Some(oldest) = throughs.into_iter().flatten().min() {
            state
                .metrics
                .stats_lag_seconds
                .set((now_ms - oldest).max(0) as f64 / 1000.0);
        }
    }
}
