//! The HTTP edge: one file per resource, each with a `configure()`.
//!
//! Handlers stay thin: check the role, parse identifiers, send a message to
//! an actor or call a store function, map the answer. This is the only
//! module that uses actix-web types.

pub mod admin;
pub mod auth;
pub mod branches;
pub mod cluster;
pub mod error;
pub mod events;
pub mod files;
pub mod media;
pub mod middleware;
pub mod mirror;
pub mod openapi;
pub mod ops;
pub mod players;
pub mod request;
pub mod stats;
pub mod ticket_link;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::error::JsonPayloadError;
use actix_web::web;

use crate::actors::{
    ConfigHandle, ConfigView, EventHub, LeaderStatus, MediaHandle, TicketQueue, TicketQueues,
};
use crate::domain::config::ConfigSnapshot;
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::settings::{HttpSettings, MediaSettings, NodeRole};
use crate::store::Store;
pub use auth::Tokens;
pub use error::ApiError;

/// Everything handlers share; one per node, cloned into every worker.
pub struct AppState {
    pub node_id: String,
    pub role: NodeRole,
    pub group: Id,
    pub store: Store,
    pub config: ConfigHandle,
    pub queues: TicketQueues,
    pub hub: Addr<EventHub>,
    pub config_view: Addr<ConfigView>,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    pub leader: LeaderStatus,
    pub media: MediaHandle,
    pub media_settings: MediaSettings,
    /// Dates requests back over a stall of this process.
    pub stall: crate::stall::StallWatch,
    /// `http.request_deadline_ms`.
    pub request_deadline_ms: u64,
    pub edge: EdgeLimits,
    pub links: ticket_link::TicketLinks,
}

/// The limits of the HTTP edge from `[http]`, shared by every worker.
#[derive(Clone)]
pub struct EdgeLimits {
    pub body_deadline: middleware::BodyDeadline,
    pub sse_heartbeat: Duration,
    pub streams: events::StreamSlots,
}

impl EdgeLimits {
    pub fn new(http: &HttpSettings, metrics: &Metrics) -> EdgeLimits {
        EdgeLimits {
            body_deadline: middleware::BodyDeadline {
                timeout: Duration::from_millis(http.body_timeout_ms),
                min_bytes_per_s: http.body_min_bytes_per_s,
            },
            sse_heartbeat: Duration::from_millis(http.sse_heartbeat_ms),
            streams: events::StreamSlots::new(
                http.max_streams_per_token,
                metrics.event_streams.clone(),
            ),
        }
    }
}

impl AppState {
    /// The configuration, or 503 until the first load.
    pub fn snapshot(&self) -> Result<Arc<ConfigSnapshot>, ApiError> {
        self.config
            .current()
            .ok_or_else(|| ApiError::NotReady("configuration not loaded yet".into()))
    }

    /// The ticket queue of a branch this node serves.
    pub fn queue(&self, branch: &str) -> Result<Addr<TicketQueue>, ApiError> {
        let id = Id::parse(branch)?;
        if let Some(queue) = self.queues.get(id.as_str()) {
            return Ok(queue);
        }
        let snapshot = self.snapshot()?;
        Err(match snapshot.branches.get(id.as_str()) {
            Some(b) => ApiError::UnknownBranch(format!(
                "branch {id} is served by group {}, not by this node's group {}",
                b.group.as_ref().map_or("(master)", |g| g.as_str()),
                self.group
            )),
            None => ApiError::UnknownBranch(format!("no branch {id}")),
        })
    }

    /// The branches this node serves in `snapshot`.
    pub fn served<'a>(
        &'a self,
        snapshot: &'a ConfigSnapshot,
    ) -> impl Iterator<Item = &'a Arc<crate::domain::Branch>> + 'a {
        snapshot.served_by(&self.group, self.role == NodeRole::Master)
    }

    /// Administration is accepted by master nodes only.
    pub fn require_master(&self) -> Result<(), ApiError> {
        match self.role {
            NodeRole::Master => Ok(()),
            NodeRole::Slave => Err(ApiError::ReadOnlyReplica),
        }
    }
}

/// Maps JSON extractor failures to the API's errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| {
            let api = match err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::PayloadTooLarge(limit),
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    ApiError::InvalidBody(e.to_string())
                }
                JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(e.to_string()),
                JsonPayloadError::Payload(payload) => payload.into(),
                other => ApiError::InvalidJson(other.to_string()),
            };
            api.into()
        })
}

/// Maps query-string failures to 400.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::InvalidQuery(err.to_string()).into())
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    ops::configure(cfg);
    openapi::configure(cfg);
    admin::configure(cfg);
    branches::configure(cfg);
    events::configure(cfg);
    cluster::configure(cfg);
    mirror::configure(cfg);
    stats::configure(cfg);
    media::configure(cfg);
    players::configure(cfg);
}

/// The answer to a request no route took: 405 with `Allow` when the path
/// is one of the API's and only the method is wrong, else 404.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    match openapi::allowed_methods(req.path()) {
        Some(allow) => Err(ApiError::MethodNotAllowed(allow.to_owned())),
        None => Err(ApiError::NotFound),
    }
}
