//! Branch operations (API.md "Branch operations"): tickets, counters,
//! queues, display. Each handler checks the role, parses identifiers and
//! asks the branch's [`TicketQueue`](crate::actors::TicketQueue).

use actix_web::http::header;
use actix_web::{get, post, web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{authorize, Authorized, DisplayRole, KioskRole, OperatorRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, BodyErrors, TokenErrors, Unavailable};
use super::request::Tagged;
use super::AppState;
use crate::actors::ticket_queue::{
    CallNext, CallNumber, FinishCurrent, GetDisplay, GetQueues, GetTicket, IssueTicket, Recall,
    Transfer,
};
use crate::domain::ticket::is_ticket_number;
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
    #[schema(value_type = String, example = "loans", pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub service: Id,
}

/// Body of `POST /call` (optional): call this waiting ticket instead of the
/// next one by the matrix rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallChoice {
    /// The printed number, e.g. `A042`; absent: the next by the matrix rule.
    #[schema(example = "A042", pattern = "^[A-Z]{1,2}[0-9]{1,10}$")]
    pub number: Option<String>,
}

/// The answer to the kiosk: the ticket and the customer's link to it.
#[derive(Serialize, ToSchema)]
pub struct IssuedTicket {
    #[serde(flatten)]
    pub ticket: Ticket,
    /// `/t/{branch}/{id}?k={key}`: the customer's virtual-ticket page.
    #[schema(example = "/t/main/42?k=3a3fe71680c5b0a177d6e92f048a4627")]
    pub link: String,
}

/// `?k=`: a ticket link's key, instead of a bearer token.
#[derive(Debug, Deserialize)]
pub struct LinkKey {
    pub k: Option<String>,
}

/// A branch's configuration as this node sees it.
#[derive(Serialize, ToSchema)]
pub struct BranchView<'a> {
    #[serde(flatten)]
    pub branch: &'a Branch,
    pub config_version: u64,
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, body = BranchView), (status = 404, body = ErrorBody, description = "branch not served here"), TokenErrors, BadInput, Unavailable))]
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
    responses((status = 201, body = IssuedTicket), (status = 404, body = ErrorBody, description = "branch not served here, or no such service"), (status = 409, body = ErrorBody, description = "idempotency-key-reused"), TokenErrors, BodyErrors, Unavailable))]
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
    let branch = Id::parse(&path)?;
    let link = state.links.link(&branch, &ticket.id).await?;
    Ok(HttpResponse::Created().json(IssuedTicket { ticket, link }))
}

#[utoipa::path(tag = "branch", security(("bearer" = []), ()),
    params(
        ("branch" = String, Path),
        ("id" = String, Path),
        ("k" = Option<String>, Query, pattern = "^[0-9a-f]{32}$",
            description = "the key of the customer's link: opens this ticket without a token"),
    ),
    responses((status = 200, body = Ticket),
        (status = 404, body = ErrorBody, description = "branch not served here, unknown ticket, or a key that does not open it"),
        TokenErrors, BadInput, Unavailable))]
#[get("/api/v1/branches/{branch}/tickets/{id}")]
async fn get_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    key: web::Query<LinkKey>,
) -> Result<HttpResponse, ApiError> {
    let branch = Id::parse(&path.0)?;
    let id = Id::parse(&path.1)?;
    match &key.k {
        Some(k) => state.links.check(&branch, &id, k).await?,
        None => authorize::<DisplayRole>(&req).map(drop)?,
    }
    let queue = state.queue(&path.0)?;
    let ticket = queue.send(GetTicket { id: id.clone() }).await??;
    let ticket = ticket.ok_or_else(|| ApiError::UnknownTicket(format!("no ticket {id}")))?;
    Ok(HttpResponse::Ok().json(ticket))
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    request_body(content = Option<CallChoice>, description = "optional: call this waiting ticket by its number"),
    responses((status = 200, body = Ticket), (status = 204, description = "nothing is waiting for this counter"),
        (status = 404, body = ErrorBody, description = "branch not served here, or no such counter"),
        (status = 409, body = ErrorBody, description = "not-waiting: no such ticket waits today in a service of this counter; idempotency-key-reused"),
        TokenErrors, BodyErrors, Unavailable))]
#[post("/api/v1/branches/{branch}/counters/{counter}/call")]
async fn call_next(
    _: Authorized<OperatorRole>,
    Tagged(tag): Tagged,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, actix_web::Error> {
    let queue = state.queue(&path.0)?;
    let counter = Id::parse(&path.1).map_err(ApiError::from)?;
    // The body is optional: read it as JSON (the app's limits and error
    // mapping) only when there is one.
    let number = if has_body(&req) {
        let choice = web::Json::<CallChoice>::from_request(&req, &mut payload.into_inner()).await?;
        choice.into_inner().number
    } else {
        None
    };
    let called = match number {
        None => queue
            .send(CallNext { counter, tag })
            .await
            .map_err(ApiError::from)?,
        Some(number) if !is_ticket_number(&number) => {
            return Err(ApiError::InvalidBody(format!(
                "number {number:?} is not a ticket number such as A042"
            ))
            .into())
        }
        Some(number) => queue
            .send(CallNumber {
                counter,
                number,
                tag,
            })
            .await
            .map_err(ApiError::from)?
            .map(Some),
    };
    Ok(match called.map_err(ApiError::from)? {
        Some(ticket) => HttpResponse::Ok().json(ticket),
        None => HttpResponse::NoContent().finish(),
    })
}

fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

#[utoipa::path(tag = "counter", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat it on a retry: within 24 h the first answer comes back and nothing changes again. 1-255 visible ASCII characters.")),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody, description = "branch not served here, or no such counter"), (status = 409, body = ErrorBody, description = "no-current-ticket, or idempotency-key-reused"), TokenErrors, BadInput, Unavailable))]
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
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody, description = "branch not served here, or no such counter"), (status = 409, body = ErrorBody, description = "no-current-ticket, or idempotency-key-reused"), TokenErrors, BadInput, Unavailable))]
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
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody, description = "branch not served here, or no such counter"), (status = 409, body = ErrorBody, description = "no-current-ticket, or idempotency-key-reused"), TokenErrors, BadInput, Unavailable))]
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
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody, description = "branch not served here, or no such counter or service"), (status = 409, body = ErrorBody, description = "no-current-ticket, or idempotency-key-reused"), TokenErrors, BodyErrors, Unavailable))]
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
    responses((status = 200, body = [QueueStatus]), (status = 404, body = ErrorBody, description = "branch not served here"), TokenErrors, BadInput, Unavailable))]
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
    responses((status = 200, body = DisplayBoard), (status = 404, body = ErrorBody, description = "branch not served here"), TokenErrors, BadInput, Unavailable))]
#[get("/api/v1/branches/{branch}/display")]
async fn display(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let queue = state.queue(&path)?;
    Ok(HttpResponse::Ok().json(queue.send(GetDisplay).await??))
}
