//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the
//! handlers' annotations and the types they exchange, so it cannot drift
//! from the code.

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, branches, cluster, events, media, mirror, ops, players};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json);
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "turnus", description = "Queue management server: the API kiosks, counters, displays, dashboards and peer nodes use."),
    modifiers(&BearerAuth),
    paths(
        ops::healthz, ops::readyz, ops::metrics,
        admin::list_branches, admin::get_branch, admin::put_branch, admin::delete_branch,
        admin::put_service, admin::delete_service, admin::put_counter, admin::delete_counter,
        admin::config_version,
        branches::get_branch, branches::issue_ticket, branches::get_ticket, branches::call_next,
        branches::recall, branches::finish, branches::no_show, branches::transfer,
        branches::queues, branches::display,
        events::branch_events,
        cluster::cluster, cluster::fence_check,
        mirror::mirror_config,
        media::list_media, media::put_media, media::delete_media, media::serve_media,
        media::mirror_manifest, media::mirror_blob,
        players::put_player, players::delete_player, players::get_player,
    )
)]
pub struct ApiDoc;

#[get("/api/v1/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
