//! The media library over HTTP: administration of the library (master),
//! `GET /media/{path}` on every node, and the blob side of the peer
//! protocol (`/api/v1/mirror/media/…`).
//!
//! Paths are checked by [`MediaPath`] before anything touches a file: an
//! invalid one is 400 on upload and 404 on serving (a player asking for
//! `../x` learns nothing). Uploads stream to disk chunk by chunk; nothing
//! holds a whole file in memory.

use actix_web::{delete, get, put, route, web, HttpRequest, HttpResponse};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{AdminRole, Authorized, PeerRole};
use super::error::{ApiError, ErrorBody};
use super::files::{respond, span, Follow};
use super::openapi::{BadInput, BodyErrors, MasterOnly, TokenErrors};
use super::AppState;
use crate::blobs::pace::BusyPace;
use crate::domain::media::{content_type, is_blob_id, Manifest, ManifestEntry, MediaPath};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_media)
        .service(put_media)
        .service(delete_media)
        .service(serve_media)
        .service(mirror_manifest)
        .service(mirror_blob);
}

/// `PUT /api/v1/admin/media/{path}` answer.
#[derive(Serialize, ToSchema)]
pub struct Stored {
    #[serde(flatten)]
    pub entry: ManifestEntry,
    /// The library's manifest version after the change.
    pub version: String,
}

/// `DELETE /api/v1/admin/media/{path}` answer.
#[derive(Serialize, ToSchema)]
pub struct MediaVersion {
    pub version: String,
}

fn library(state: &AppState) -> Result<&std::sync::Arc<crate::blobs::Library>, ApiError> {
    state.require_master()?;
    state
        .media
        .library()
        .ok_or_else(|| ApiError::Internal("master node without a library".into()))
}

/// The `{path}` tail of the request, as actix decoded it, validated.
fn media_path(req: &HttpRequest) -> Result<MediaPath, ApiError> {
    Ok(MediaPath::parse(req.match_info().query("path"))?)
}

fn io_error(what: &str, e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("{what}: {e}").into())
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Manifest), TokenErrors, MasterOnly))]
#[get("/api/v1/admin/media")]
async fn list_media(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(library(&state)?.manifest().as_ref()))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    params(("path" = String, Path, description = "media path; no '..', '.', empty segments, '%', '\\' or control characters", pattern = r"^[^/.%\\][^%\\]*$")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = Stored), TokenErrors, BodyErrors, MasterOnly,
        (status = 507, body = ErrorBody, description = "not enough free disk space (`insufficient-storage`)")))]
#[put("/api/v1/admin/media/{path:.*}")]
async fn put_media(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    req: HttpRequest,
    mut body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let library = library(&state)?.clone();
    let path = media_path(&req)?;
    let max = state.media_settings.max_file_bytes;
    let announced = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > max) {
        return Err(ApiError::PayloadTooLarge(max as usize));
    }
    let free = crate::blobs::free_bytes(library.root()).map_err(|e| io_error("statvfs", e))?;
    if free < announced.unwrap_or(0) + state.media_settings.min_free_bytes {
        return Err(ApiError::InsufficientStorage);
    }
    let mut upload = library.begin_upload(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => ApiError::InvalidMediaPath(format!("{path}: {e}")),
        _ => io_error("begin upload", e),
    })?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::InvalidBody(format!("upload broke off: {e}")))?;
        if upload.written() + chunk.len() as u64 > max {
            return Err(ApiError::PayloadTooLarge(max as usize));
        }
        // Page-cache writes of one chunk: short enough for a worker thread.
        upload
            .write(&chunk)
            .map_err(|e| io_error("write upload", e))?;
    }
    let finishing = library.clone();
    let entry = web::block(move || finishing.finish_upload(upload))
        .await
        .map_err(|e| ApiError::Internal(e.to_string().into()))?
        .map_err(|e| io_error("finish upload", e))?;
    tracing::info!(path = %entry.path, size = entry.size, sha256 = %entry.sha256, "media stored");
    let version = library.manifest().version.clone();
    Ok(HttpResponse::Ok().json(Stored { entry, version }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    params(("path" = String, Path, pattern = r"^[^/.%\\][^%\\]*$")),
    responses((status = 200, body = MediaVersion), TokenErrors, BadInput, MasterOnly,
        (status = 404, body = ErrorBody, description = "no such file (`unknown-media`)")))]
#[delete("/api/v1/admin/media/{path:.*}")]
async fn delete_media(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let library = library(&state)?.clone();
    let path = media_path(&req)?;
    let removing = (library.clone(), path.clone());
    let removed = web::block(move || removing.0.delete(&removing.1))
        .await
        .map_err(|e| ApiError::Internal(e.to_string().into()))?
        .map_err(|e| io_error("delete media", e))?;
    if !removed {
        return Err(ApiError::UnknownMedia(format!("no media file {path}")));
    }
    let version = library.manifest().version.clone();
    Ok(HttpResponse::Ok().json(MediaVersion { version }))
}

#[utoipa::path(get, path = "/media/{path}", tag = "media",
    params(("path" = String, Path, pattern = r"^[^/.%\\][^%\\]*$")),
    responses((status = 200, description = "the file (ETag: its sha256); the whole file also when several ranges are asked for", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"),
        (status = 304, description = "If-None-Match matched"),
        (status = 400, description = "a request the HTTP layer cannot parse (an invalid media path is 404)"),
        (status = 404, body = ErrorBody, description = "unknown, not complete on this node, or not a valid media path (`unknown-media`)"),
        (status = 416, body = ErrorBody, description = "`range-not-satisfiable`")))]
// HEAD too: players and caches ask for size and ETag without the body
// (actix sends no body for HEAD).
#[route("/media/{path:.*}", method = "GET", method = "HEAD")]
async fn serve_media(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let not_here = || ApiError::UnknownMedia("no such media file on this node".into());
    let path = media_path(&req).map_err(|_| not_here())?;
    let (entry, file) = state
        .media
        .file_of_path(path.as_str())
        .ok_or_else(not_here)?;
    let etag = format!("\"{}\"", entry.sha256);
    let matches = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(HttpResponse::NotModified()
            .insert_header((actix_web::http::header::ETAG, etag))
            .finish());
    }
    let span = span(&req, entry.size)?;
    respond(
        file,
        span,
        &entry.sha256,
        content_type(&entry.path),
        None,
        BusyPace::of_node(&state.metrics, &state.media_settings),
        |_| {},
    )
    .await
}

#[utoipa::path(tag = "peer", security(("bearer" = [])),
    responses((status = 200, body = Manifest), TokenErrors, MasterOnly))]
#[get("/api/v1/mirror/media/manifest")]
async fn mirror_manifest(
    _: Authorized<PeerRole>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(library(&state)?.manifest().as_ref()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BlobQuery {
    /// 1: only a complete copy (a slave node otherwise offers a blob it is
    /// still downloading, sent as it arrives).
    #[serde(default)]
    complete: u8,
}

#[utoipa::path(tag = "peer", security(("bearer" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$"), BlobQuery),
    responses((status = 200, description = "the blob; the whole blob also when several ranges are asked for", content_type = "application/octet-stream"),
        (status = 206, description = "the requested range"), TokenErrors, BadInput,
        (status = 404, body = ErrorBody, description = "not on this node (`unknown-media`)"),
        (status = 416, body = ErrorBody, description = "`range-not-satisfiable`")))]
#[get("/api/v1/mirror/media/blobs/{sha256}")]
async fn mirror_blob(
    _: Authorized<PeerRole>,
    state: web::Data<AppState>,
    req: HttpRequest,
    sha256: web::Path<String>,
    query: web::Query<BlobQuery>,
) -> Result<HttpResponse, ApiError> {
    if !is_blob_id(&sha256) {
        return Err(ApiError::InvalidId(format!(
            "{:?} is not a sha256 (64 lower-case hex digits)",
            sha256.chars().take(80).collect::<String>()
        )));
    }
    let not_here = || ApiError::UnknownMedia(format!("blob {sha256} is not on this node"));
    let blob = state.media.blob_for_peer(&sha256).ok_or_else(not_here)?;
    if query.complete == 1 && blob.growing_into.is_some() {
        return Err(not_here());
    }
    let span = span(&req, blob.size)?;
    let follow = blob.growing_into.map(|complete| Follow {
        growing: blob.file.clone(),
        complete,
    });
    let metrics = state.metrics.clone();
    respond(
        blob.file,
        span,
        &sha256,
        "application/octet-stream",
        follow,
        BusyPace::of_node(&state.metrics, &state.media_settings),
        move |n| {
            metrics.media.blob_bytes_sent.inc_by(n);
        },
    )
    .await
}
