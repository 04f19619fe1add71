//! Branch operations (API.md "Branch operations"): tickets, counters,
//! queues, display. Each handler checks the role, parses identifiers and
//! asks the branch's [`TicketQueue`](crate::actors::TicketQueue).

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Authorized, DisplayRole, KioskRole, OperatorRole};
use super::error::{ApiError, ErrorBody};
use super::request::Tagged;
use super::AppState;
use crate::actors::ticket_queue::{
    CallNext, FinishCurrent, GetDisplay, GetQueues, GetTicket, IssueTicket, Recall, Transfer,
};
use crate::domain::{Branch, DisplayBoard, Id, QueueStatus, RequestTag, Ticket};
use crate::store::Outcome;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_branch)
        .service(issue_ticket)
        .service(get_ticket)
        .service(call_next)
        .service(recall)
        .service(finish)
        .service(no_show)
        .service(transfer)
        .service(queues)
        .service(display);
}

/// Body of `POST /tickets` and `POST /transfer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceChoice {
    #[schema(value_type = String, example = "loans")]
    pub service: Id,
}

/// A branch's configuration as this node sees it.
#[derive(Serialize, ToSchema)]
pub struct BranchView<'a> {
    #[serde(flatten)]
    pub branch: &'a Branch,
    pub config_version: u64,
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, body = BranchView), (status = 404, body = ErrorBody)))]
#[get("/api/v1/branches/{branch}")]
async fn get_branch(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.queue(&path)?; // served here, or the right 404
    let snapshot = state.snapshot()?;
    let branch = snapshot
        .branches
        .get(path.as_str())
        .ok_or_else(|| ApiError::UnknownBranch(format!("no branch {path}")))?;
    Ok(HttpResponse::Ok().json(BranchView {
        branch,
        config_version: snapshot.version,
    }))
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")), request_body = ServiceChoice,
    responses((status = 201, body = Ticket), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/tickets")]
async fn issue_ticket(
    _: Authorized<KioskRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<ServiceChoice>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path)?;
    let ticket = queue
        .send(IssueTicket {
            service: body.into_inner().service,
            tag,
        })
        .await??;
    Ok(HttpResponse::Created().json(ticket))
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
#[get("/api/v1/branches/{branch}/tickets/{id}")]
async fn get_ticket(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path.0)?;
    let id = Id::parse(&path.1)?;
    let ticket = queue.send(GetTicket { id: id.clone() }).await??;
    let ticket = ticket.ok_or_else(|| ApiError::UnknownTicket(format!("no ticket {id}")))?;
    Ok(HttpResponse::Ok().json(ticket))
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    responses((status = 200, body = Ticket), (status = 204, description = "nothing is waiting for this counter"),
        (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/counters/{counter}/call")]
async fn call_next(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path.0)?;
    let counter = Id::parse(&path.1)?;
    Ok(match queue.send(CallNext { counter, tag }).await?? {
        Some(ticket) => HttpResponse::Ok().json(ticket),
        None => HttpResponse::NoContent().finish(),
    })
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/counters/{counter}/recall")]
async fn recall(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path.0)?;
    let counter = Id::parse(&path.1)?;
    let ticket = queue.send(Recall { counter, tag }).await??;
    Ok(HttpResponse::Ok().json(ticket))
}

async fn end_current(
    state: &AppState,
    path: &(String, String),
    outcome: Outcome,
    tag: RequestTag,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path.0)?;
    let counter = Id::parse(&path.1)?;
    let ticket = queue
        .send(FinishCurrent {
            counter,
            outcome,
            tag,
        })
        .await??;
    Ok(HttpResponse::Ok().json(ticket))
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/counters/{counter}/finish")]
async fn finish(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    end_current(&state, &path, Outcome::Served, tag).await
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/counters/{counter}/no-show")]
async fn no_show(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    end_current(&state, &path, Outcome::NoShow, tag).await
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")), request_body = ServiceChoice,
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
#[post("/api/v1/branches/{branch}/counters/{counter}/transfer")]
async fn transfer(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<ServiceChoice>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path.0)?;
    let counter = Id::parse(&path.1)?;
    let service = body.into_inner().service;
    let ticket = queue
        .send(Transfer {
            counter,
            service,
            tag,
        })
        .await??;
    Ok(HttpResponse::Ok().json(ticket))
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, body = [QueueStatus]), (status = 404, body = ErrorBody)))]
#[get("/api/v1/branches/{branch}/queues")]
async fn queues(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path)?;
    Ok(HttpResponse::Ok().json(queue.send(GetQueues).await??))
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, body = DisplayBoard), (status = 404, body = ErrorBody)))]
#[get("/api/v1/branches/{branch}/display")]
async fn display(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path)?;
    Ok(HttpResponse::Ok().json(queue.send(GetDisplay).await??))
}
