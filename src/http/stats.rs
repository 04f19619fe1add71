//! Statistics (API.md "Statistics"): `GET /api/v1/stats/branches/{branch}`
//! (JSON or CSV) and `GET /api/v1/stats/summary`. A master answers for
//! every branch, as far as its groups have shipped; a slave for its own
//! branches from its local rollups, current even while the master is away.

use std::sync::Arc;

use actix_web::{get, web, HttpResponse};
use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, DisplayRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, TokenErrors, Unavailable};
use super::AppState;
use crate::domain::stats_report::{
    branch_report, counters_csv, day_number, report_csv, summary_branch, BranchReport, LiveInput,
    SummaryBranch,
};
use crate::domain::{Branch, Id};
use crate::settings::NodeRole;
use crate::store::stats::LiveWanted;

/// Longest range one request may ask for, in days.
pub const MAX_RANGE_DAYS: i64 = 400;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(branch_stats).service(summary);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// First local business day, `YYYY-MM-DD`; default the branch's today.
    from: Option<String>,
    /// Last local business day, `YYYY-MM-DD`; default the branch's today.
    to: Option<String>,
    /// `json` (default) or `csv` (the hours, one row per hour and service).
    format: Option<String>,
    /// With `format=csv`: `hours` (default) or `counters` (one row per
    /// counter, with its idle time; an addition to API.md).
    rows: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Summary {
    pub branches: Vec<SummaryBranch>,
}

impl AppState {
    /// The branches whose statistics this node answers for: every branch on
    /// a master, its own group's on a slave.
    fn stats_branches(&self) -> Result<Vec<Arc<Branch>>, ApiError> {
        let snapshot = self.snapshot()?;
        Ok(snapshot
            .branches
            .values()
            .filter(|b| self.role == NodeRole::Master || b.served_by(&self.group, false))
            .cloned()
            .collect())
    }
}

fn today(branch: &Branch) -> NaiveDate {
    Utc::now().with_timezone(&branch.tz()).date_naive()
}

fn parse_date(name: &str, value: Option<&str>, default: NaiveDate) -> Result<NaiveDate, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            ApiError::InvalidQuery(format!("{name}: {text:?} is not a date such as 2026-03-31"))
        }),
    }
}

#[utoipa::path(tag = "stats", security(("bearer" = [])),
    params(("branch" = String, Path, description = "branch id"), StatsQuery),
    responses((status = 200, body = BranchReport, description = "JSON, or text/csv with format=csv (one row per hour and service; with rows=counters one row per counter: counter,called,served,no_show,avg_service_s,idle_while_waiting_s)"),
        (status = 404, body = ErrorBody, description = "unknown branch (or, on a slave, not this group's)"),
        TokenErrors, BadInput, Unavailable))]
#[get("/api/v1/stats/branches/{branch}")]
async fn branch_stats(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<StatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = Id::parse(&path)?;
    let csv = match query.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::InvalidQuery(format!(
                "format: {other:?} is not json or csv"
            )))
        }
    };
    let counter_rows = match query.rows.as_deref() {
        None | Some("hours") => false,
        Some("counters") if csv => true,
        Some("counters") => {
            return Err(ApiError::InvalidQuery(
                "rows=counters needs format=csv (JSON has both)".into(),
            ))
        }
        Some(other) => {
            return Err(ApiError::InvalidQuery(format!(
                "rows: {other:?} is not hours or counters"
            )))
        }
    };
    let branch = state
        .stats_branches()?
        .into_iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ApiError::UnknownBranch(format!("no statistics of branch {id} here")))?;
    let today = today(&branch);
    let from = parse_date("from", query.from.as_deref(), today)?;
    let to = parse_date("to", query.to.as_deref(), today)?;
    if from > to {
        return Err(ApiError::InvalidQuery(format!(
            "from {from} is after to {to}"
        )));
    }
    let (first, last) = (day_number(from), day_number(to));
    if last - first + 1 > MAX_RANGE_DAYS {
        return Err(ApiError::InvalidQuery(format!(
            "at most {MAX_RANGE_DAYS} days at once"
        )));
    }
    let numbers: Vec<i64> = (first..=last).collect();
    let fields = state.store.stats_days(&id, &numbers).await?;
    let days: Vec<_> = numbers.into_iter().zip(fields).collect();
    if csv {
        let body = if counter_rows {
            counters_csv(&days)
        } else {
            report_csv(&branch, &days)
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(body));
    }
    let meta = state.store.stats_meta(&id).await?;
    Ok(HttpResponse::Ok().json(branch_report(&branch, from, to, &days, meta.through_ms)))
}

#[utoipa::path(tag = "stats", security(("bearer" = [])),
    responses((status = 200, body = Summary), TokenErrors, Unavailable))]
#[get("/api/v1/stats/summary")]
async fn summary(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let branches = state.stats_branches()?;
    let wanted: Vec<LiveWanted> = branches
        .iter()
        .map(|b| LiveWanted {
            branch: b.id.clone(),
            today: day_number(today(b)),
            services: b.services.iter().map(|s| s.id.to_string()).collect(),
        })
        .collect();
    let live = state.store.stats_live(&wanted).await?;
    let now_ms = Utc::now().timestamp_millis();
    let lines = branches
        .iter()
        .zip(&live)
        .map(|(branch, live)| {
            summary_branch(
                branch,
                &LiveInput {
                    today: &live.day,
                    waiting: &live.waiting,
                    current: &live.current,
                    complete_through_ms: live.meta.through_ms,
                    last_report_ms: live.meta.last_report_ms,
                    outbox_oldest_ms: live.outbox_oldest_ms,
                    lost_events: live.meta.lost,
                },
                now_ms,
            )
        })
        .collect();
    Ok(HttpResponse::Ok().json(Summary { branches: lines }))
}
