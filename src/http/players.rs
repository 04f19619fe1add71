//! Media player profiles: `PUT/DELETE /api/v1/admin/branches/{b}/players/{p}`
//! (master; part of the branch's configuration document, so mirrored with
//! it) and `GET /api/v1/branches/{b}/players/{p}`, the playlist a player
//! shows now on this node, each item saying whether this node holds its file.

use actix_web::{delete, get, put, web, HttpResponse};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::{changed, unknown_branch, update, Version, Versioned};
use super::auth::{AdminRole, Authorized, DisplayRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, BodyErrors, MasterOnly, TokenErrors, Unavailable};
use super::AppState;
use crate::domain::media::{Player, PlayerInput, Window};
use crate::domain::Id;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(put_player)
        .service(delete_player)
        .service(get_player);
}

fn unknown_player(branch: &Id, player: &Id) -> ApiError {
    ApiError::UnknownPlayer(format!("branch {branch} has no player {player}"))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = PlayerInput,
    params(("branch" = String, Path),
        ("player" = String, Path)),
    responses((status = 200, body = Versioned<Player>), TokenErrors, BodyErrors, MasterOnly, Unavailable,
        (status = 404, body = ErrorBody, description = "no such branch")))]
#[put("/api/v1/admin/branches/{branch}/players/{player}")]
async fn put_player(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Json<PlayerInput>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, player_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let input = body.into_inner();
    let (version, branch) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        branch.put_player(player_id.clone(), input.clone())?;
        Ok(Some(branch))
    })
    .await?;
    let branch = changed(version, branch)?;
    let item = branch
        .player(player_id.as_str())
        .cloned()
        .ok_or_else(|| ApiError::Internal("player vanished".into()))?;
    Ok(HttpResponse::Ok().json(Versioned { version, item }))
}

#[utoipa::path(tag = "admin", security(("bearer" = [])),
    params(("branch" = String, Path),
        ("player" = String, Path)),
    responses((status = 200, body = Version), TokenErrors, BadInput, MasterOnly, Unavailable,
        (status = 404, body = ErrorBody, description = "no such branch or player")))]
#[delete("/api/v1/admin/branches/{branch}/players/{player}")]
async fn delete_player(
    _: Authorized<AdminRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, player_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    let (version, _) = update(&state, &branch_id, |current| {
        let mut branch = current.ok_or_else(|| unknown_branch(&branch_id))?;
        if !branch.remove_player(player_id.as_str()) {
            return Err(unknown_player(&branch_id, &player_id));
        }
        Ok(Some(branch))
    })
    .await?;
    Ok(HttpResponse::Ok().json(Version { version }))
}

/// A player's playlist as this node plays it now.
#[derive(Serialize, ToSchema)]
pub struct PlayerView {
    pub player: String,
    pub name: String,
    /// The items whose window is open now (in the branch's time zone).
    pub playlist: Vec<PlayItem>,
}

#[derive(Serialize, ToSchema)]
pub struct PlayItem {
    pub media: String,
    pub duration_s: u32,
    /// Where this node serves the file: `/media/<path>`.
    #[schema(example = "/media/ads/spring.png")]
    pub url: String,
    /// The content's sha256, null while the library does not list the file.
    pub sha256: Option<String>,
    /// False while this node does not hold the complete file: skip it.
    pub present: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    params(("branch" = String, Path),
        ("player" = String, Path)),
    responses((status = 200, body = PlayerView), TokenErrors, BadInput, Unavailable,
        (status = 404, body = ErrorBody, description = "branch not served here, or no such player")))]
#[get("/api/v1/branches/{branch}/players/{player}")]
async fn get_player(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (branch_id, player_id) = (Id::parse(&path.0)?, Id::parse(&path.1)?);
    state.queue(branch_id.as_str())?; // served here, or the right 404
    let snapshot = state.snapshot()?;
    let branch = snapshot
        .branches
        .get(&branch_id)
        .ok_or_else(|| unknown_branch(&branch_id))?;
    let player = branch
        .player(player_id.as_str())
        .ok_or_else(|| unknown_player(&branch_id, &player_id))?;
    let playlist =
        state
            .media
            .playlist_to_play(branch_id.as_str(), player_id.as_str(), &player.playlist);
    let manifest = state.media.manifest();
    let now = Utc::now().with_timezone(&branch.tz()).naive_local();
    let playlist = playlist
        .into_iter()
        .filter(|item| item.plays_at(now))
        .map(|item| {
            let sha256 = manifest.get(&item.media).map(|e| e.sha256.clone());
            let present = sha256.as_deref().is_some_and(|s| state.media.is_present(s));
            PlayItem {
                url: format!("/media/{}", item.media),
                media: item.media,
                duration_s: item.duration_s,
                sha256,
                present,
                window: item.window,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(PlayerView {
        player: player.id.to_string(),
        name: player.name.clone(),
        playlist,
    }))
}
