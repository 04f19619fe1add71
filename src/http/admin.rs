//! Administration (API.md "Administration"): branches, services, counters.
//! Master nodes only; every write is a compare-and-swap of one branch
//! document and answers with the new configuration version.

use actix_web::{delete, get, put, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{AdminRole, Authorized};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, BodyErrors, MasterOnly, TokenErrors, Unavailable};
use super::AppState;
use crate::actors::config_view::LoadNow;
use crate::domain::config::{BranchInput, CounterInput, ServiceInput};
use crate::domain::{Branch, Counter, Id, Service};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_branches)
        .service(get_branch)
        .service(put_branch)
        .service(delete_branch)
        .service(put_service)
        .service(delete_service)
        .service(put_counter)
        .service(delete_counter)
        .service(config_version);
}

/// A written resource with the configuration version the write produced.
#[derive(Serialize, ToSchema)]
pub struct Versioned<T> {
    pub version: u64,
    #[serde(flatten)]
    pub item: T,
}

/// `{"version": N}`.
#[derive(Serialize, ToSchema)]
pub struct Version {
    pub version: u64,
}

/// Runs one change of one branch document and makes this node see it before
/// answering, so the administrator's next request here finds it.
pub(super) async fn update(
    state: &AppState,
    branch: &Id,
    change: impl FnMut(Option<Branch>) -> Result<Option<Branch>, ApiError>,
) -> Result<(u64, Option<Branch>), ApiError> {
    state.require_master()?;
    let result = state
        .store
        .update_branch(&state.group, branch, change)
        .await?;
    let _ = state.config_view.send(LoadNow).await;
    Ok(result)
}

pub(super) fn unknown_branch(id: &Id) -> ApiError {
    ApiError::UnknownBranch(format!("no branch {id}"))
}

pub(super) fn changed(version: u64, branch: Option<Branch>) -> Result<Branch, ApiError> {
    branch.ok_or_else(|| ApiError::Internal(format!("version {version}: document vanished").into()))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [Branch]), TokenErrors, MasterOnly, Unavailable))]
#[get("/api/v1/admin/branches")]
async fn list_branches(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.require_master()?;
    let snapshot = state.store.load_config(&state.group).await?;
    let branches: Vec<&Branch> = snapshot.branches.values().map(|b| b.as_ref()).collect();
    Ok(HttpResponse::Ok().json(branches))
}

#[utoipa::path(tag = "admin", operation_id = "admin_get_branch", security(("bearer" = [])),
    responses((status = 200, body = Branch), (status = 404, body = ErrorBody, description = "no such branch"), TokenErrors, BadInput, MasterOnly, Unavailable))]
#[get("/api/v1/admin/branches/{branch}")]
async fn get_branch(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.require_master()?;
    let id = Id::parse(&path)?;
    let snapshot = state.store.load_config(&state.group).await?;
    let branch = snapshot
        .branches
        .get(&id)
        .ok_or_else(|| unknown_branch(&id))?;
    Ok(HttpResponse::Ok().json(branch.as_ref()))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = BranchInput,
    responses((status = 200, body = Versioned<Branch>), TokenErrors, BodyErrors, MasterOnly, Unavailable))]
#[put("/api/v1/admin/branches/{branch}")]
async fn put_branch(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<BranchInput>,
) -> Result<HttpResponse, ApiError> {
    let id = Id::parse(&path)?;
    let input = body.into_inner();
    let (version, branch) = update(&state, &id, |current| {
        Ok(Some(match current {
            Some(mut branch) => {
                branch.replace_meta(input.clone())?;
                branch
            }
            None => Branch::create(id.clone(), input.clone())?,
        }))
    })
    .await?;
    let item = changed(version, branch)?;
    Ok(HttpResponse::Ok().json(Versioned { version, item }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Version), (status = 404, body = ErrorBody, description = "no such branch"), TokenErrors, BadInput, MasterOnly, Unavailable))]
#[delete("/api/v1/admin/branches/{branch}")]
async fn delete_branch(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Id::parse(&path)?;
    let (version, _) = update(&state, &id, |current| match current {
        Some(_) => Ok(None),
        None => Err(unknown_branch(&id)),
    })
    .await?;
    Ok(HttpResponse::Ok().json(Version { version }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = ServiceInput,
    responses((status = 200, body = Versioned<Service>), (status = 404, body = ErrorBody, description = "no such branch"), TokenErrors, BodyErrors, MasterOnly, Unavailable))]
#[put("/api/v1/admin/branches/{branch}/services/{service}")]
async fn put_service(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<ServiceInput>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, service_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let input = body.into_inner();
    let (version, branch) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        branch.put_service(service_id.clone(), input.clone())?;
        Ok(Some(branch))
    })
    .await?;
    let branch = changed(version, branch)?;
    let item = branch
        .service(service_id.as_str())
        .cloned()
        .ok_or_else(|| ApiError::Internal("service vanished".into()))?;
    Ok(HttpResponse::Ok().json(Versioned { version, item }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Version), (status = 404, body = ErrorBody, description = "no such branch or service"), TokenErrors, BadInput, MasterOnly, Unavailable))]
#[delete("/api/v1/admin/branches/{branch}/services/{service}")]
async fn delete_service(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, service_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let (version, _) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        if !branch.remove_service(service_id.as_str()) {
            return Err(ApiError::UnknownService(format!(
                "branch {branch_id} has no service {service_id}"
            )));
        }
        Ok(Some(branch))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Version { version }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = CounterInput,
    responses((status = 200, body = Versioned<Counter>), (status = 404, body = ErrorBody, description = "no such branch"), TokenErrors, BodyErrors, MasterOnly, Unavailable))]
#[put("/api/v1/admin/branches/{branch}/counters/{counter}")]
async fn put_counter(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<CounterInput>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, counter_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let input = body.into_inner();
    let (version, branch) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        branch.put_counter(counter_id.clone(), input.clone())?;
        Ok(Some(branch))
    })
    .await?;
    let branch = changed(version, branch)?;
    let item = branch
        .counter(counter_id.as_str())
        .cloned()
        .ok_or_else(|| ApiError::Internal("counter vanished".into()))?;
    Ok(HttpResponse::Ok().json(Versioned { version, item }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Version), (status = 404, body = ErrorBody, description = "no such branch or counter"), TokenErrors, BadInput, MasterOnly, Unavailable))]
#[delete("/api/v1/admin/branches/{branch}/counters/{counter}")]
async fn delete_counter(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, counter_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let (version, _) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        if !branch.remove_counter(counter_id.as_str()) {
            return Err(ApiError::UnknownCounter(format!(
                "branch {branch_id} has no counter {counter_id}"
            )));
        }
        Ok(Some(branch))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Version { version }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Version), TokenErrors, MasterOnly, Unavailable))]
#[get("/api/v1/admin/config/version")]
async fn config_version(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.require_master()?;
    let version = state.store.config_version(&state.group).await?;
    Ok(HttpResponse::Ok().json(Version { version }))
}
