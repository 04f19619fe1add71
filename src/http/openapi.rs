//! `GET /api/v1/openapi.json`: the OpenAPI 3 document, generated from the
//! handlers' annotations and the types they exchange, so it cannot drift
//! from the code. Also the source of the `Allow` header of 405 answers
//! ([`allowed_methods`]).
//!
//! **Adding an endpoint.** Annotate it with `#[utoipa::path]`, list it in
//! [`ApiDoc`], and compose its `responses(...)` from its own success and
//! 404 answers plus the shared sets below: [`TokenErrors`] on every
//! token-protected operation, [`BadInput`] where it parses a path id or a
//! query, [`BodyErrors`] where it reads a body, [`MasterOnly`] for
//! administration, [`Unavailable`] where it needs Redis. Path and query
//! parameters named like identifiers get their `pattern` from [`IdPatterns`];
//! any other path parameter must declare its own. The unit tests below walk
//! the whole document and fail when one of these is forgotten.

use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::{get, web, HttpResponse};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{IntoResponses, Modify, OpenApi};

use super::error::ErrorBody;
use super::{admin, branches, cluster, events, media, mirror, ops, players, stats};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json);
}

/// API.md "Conventions": identifiers of branches, services, counters,
/// players, groups and tickets.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9-]{0,62}$";

/// Parameter names that are identifiers, whether in the path or the query.
const ID_PARAMETERS: [&str; 6] = ["branch", "service", "counter", "player", "group", "id"];

/// 401 and 403: every operation that needs a token.
#[derive(IntoResponses)]
pub enum TokenErrors {
    /// No or unknown bearer token (`unauthorized`); with `WWW-Authenticate: Bearer`.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The token's role may not do this (`forbidden`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
}

/// 400: a malformed identifier in the path or a bad query.
#[derive(IntoResponses)]
pub enum BadInput {
    /// Malformed identifier (`invalid-identifier`) or query (`invalid-query`).
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// What reading a JSON body can fail with.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// Malformed identifier, JSON (`invalid-json`) or body (`invalid-body`).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// The body did not arrive in time (`request-timeout`).
    #[response(status = 408)]
    Timeout(ErrorBody),
    /// The body is larger than `http.max_json_bytes` (`payload-too-large`).
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Not `application/json` (`unsupported-media-type`), or compressed
    /// (`unsupported-content-encoding`).
    #[response(status = 415)]
    Unsupported(ErrorBody),
}

/// 409 of administration.
#[derive(IntoResponses)]
pub enum MasterOnly {
    /// This node is a slave, which serves a mirror (`read-only-replica`), or
    /// concurrent writes kept winning the compare-and-swap (`write-contention`).
    #[response(status = 409)]
    ReadOnly(ErrorBody),
}

/// 503 while the group's Redis does not answer or is loading its data, the
/// configuration is not loaded yet, or the node is overloaded.
#[derive(IntoResponses)]
pub enum Unavailable {
    /// `redis-unavailable`, `store-loading`, `not-ready` or `node-busy`.
    #[response(status = 503)]
    Unavailable(ErrorBody),
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

/// Sets [`ID_PATTERN`] on every parameter named in [`ID_PARAMETERS`].
pub struct IdPatterns;

impl Modify for IdPatterns {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for (_, operation) in operations_mut(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if !ID_PARAMETERS.contains(&parameter.name.as_str()) {
                        continue;
                    }
                    if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                        schema.pattern = Some(ID_PATTERN.to_owned());
                        schema.max_length = Some(63);
                    }
                }
            }
        }
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("OPTIONS", item.options.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.map(|op| (method, op)))
}

/// Lists the IANA time zones a branch's `timezone` may name, so the
/// document says exactly what is accepted.
struct TimeZoneNames;

impl Modify for TimeZoneNames {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(input))) = components.schemas.get_mut("BranchInput") {
            if let Some(RefOr::T(Schema::Object(zone))) = input.properties.get_mut("timezone") {
                zone.enum_values = Some(
                    chrono_tz::TZ_VARIANTS
                        .iter()
                        .map(|tz| tz.name().into())
                        .collect(),
                );
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "turnus", description = "Queue management server: the API kiosks, counters, displays, dashboards and peer nodes use."),
    modifiers(&BearerAuth, &IdPatterns, &TimeZoneNames),
    paths(
        ops::healthz, ops::readyz, ops::metrics,
        admin::list_branches, admin::get_branch, admin::put_branch, admin::delete_branch,
        admin::put_service, admin::delete_service, admin::put_counter, admin::delete_counter,
        admin::config_version,
        branches::get_branch, branches::issue_ticket, branches::get_ticket, branches::call_next,
        branches::recall, branches::finish, branches::no_show, branches::transfer,
        branches::queues, branches::display,
        events::branch_events,
        cluster::cluster, cluster::fence_check, cluster::adopt_store,
        mirror::mirror_config, mirror::mirror_stats,
        stats::branch_stats, stats::summary,
        media::list_media, media::put_media, media::delete_media, media::serve_media,
        media::mirror_manifest, media::mirror_blob,
        players::put_player, players::delete_player, players::get_player,
    )
)]
pub struct ApiDoc;

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// Every documented path with the methods it answers (GET implies HEAD).
static ROUTES: LazyLock<Vec<(ResourceDef, String)>> = LazyLock::new(|| {
    let mut document = DOCUMENT.clone();
    document
        .paths
        .paths
        .iter_mut()
        .map(|(path, item)| {
            let mut methods: Vec<&str> = operations_mut(item).map(|(m, _)| m).collect();
            if methods.contains(&"GET") && !methods.contains(&"HEAD") {
                methods.push("HEAD");
            }
            (ResourceDef::new(path.as_str()), methods.join(", "))
        })
        .collect()
});

/// The `Allow` value for `path` when it is a documented path (answered
/// with some other method), else `None`.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .find(|(pattern, _)| pattern.is_match(path))
        .map(|(_, allow)| allow.as_str())
}

#[get("/api/v1/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(&*DOCUMENT)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn operations() -> Vec<(String, &'static str, Operation)> {
        let mut document = ApiDoc::openapi();
        let mut all = Vec::new();
        for (path, item) in document.paths.paths.iter_mut() {
            for (method, operation) in operations_mut(item) {
                all.push((path.clone(), method, operation.clone()));
            }
        }
        all
    }

    fn statuses(operation: &Operation) -> Vec<&str> {
        operation
            .responses
            .responses
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn operation_ids_are_unique() {
        let mut seen = HashSet::new();
        for (path, method, operation) in operations() {
            let id = operation.operation_id.clone().unwrap_or_default();
            assert!(!id.is_empty(), "{method} {path} has no operation id");
            assert!(seen.insert(id.clone()), "operation id {id} used twice");
        }
    }

    #[test]
    fn token_protected_operations_list_401_and_403() {
        let mut protected = 0;
        for (path, method, operation) in operations() {
            if operation.security.as_ref().is_none_or(Vec::is_empty) {
                continue;
            }
            protected += 1;
            let listed = statuses(&operation);
            for needed in ["401", "403"] {
                assert!(
                    listed.contains(&needed),
                    "{method} {path} needs a token but does not list {needed}: {listed:?}"
                );
            }
        }
        assert!(protected > 20, "only {protected} protected operations");
    }

    #[test]
    fn operations_with_a_body_or_parameters_list_their_errors() {
        for (path, method, operation) in operations() {
            let listed = statuses(&operation);
            let needs: &[&str] = match (&operation.request_body, &operation.parameters) {
                (Some(_), _) => &["400", "408", "413", "415"],
                (None, Some(p)) if !p.is_empty() => &["400"],
                _ => &[],
            };
            for needed in needs {
                assert!(
                    listed.contains(needed),
                    "{method} {path} does not list {needed}: {listed:?}"
                );
            }
            if path.starts_with("/api/v1/admin/") {
                assert!(listed.contains(&"409"), "{method} {path}: 409 on slaves");
            }
        }
    }

    #[test]
    fn every_path_parameter_has_a_pattern() {
        for (path, method, operation) in operations() {
            for parameter in operation.parameters.iter().flatten() {
                if !matches!(
                    parameter.parameter_in,
                    utoipa::openapi::path::ParameterIn::Path
                ) {
                    continue;
                }
                let pattern = match &parameter.schema {
                    Some(RefOr::T(Schema::Object(schema))) => schema.pattern.clone(),
                    _ => None,
                };
                assert!(
                    pattern.is_some(),
                    "{method} {path}: path parameter {} has no pattern",
                    parameter.name
                );
            }
        }
    }

    #[test]
    fn allowed_methods_come_from_the_document() {
        assert_eq!(allowed_methods("/healthz"), Some("GET, HEAD"));
        assert_eq!(
            allowed_methods("/api/v1/admin/branches/main"),
            Some("GET, PUT, DELETE, HEAD")
        );
        assert_eq!(allowed_methods("/api/v1/nothing"), None);
    }
}
