//! Every error the API answers with, and the one place that maps it to a
//! status and a stable code (API.md "Conventions"). 5xx bodies say nothing
//! about internals; the cause chain goes to the log.
//!
//! Both maps here — store/queue/actor errors to [`ApiError`], and
//! [`ApiError`] to status and code — are exhaustive matches without a
//! catch-all arm, so a new error variant cannot compile until someone decides
//! its status.

use actix_web::error::PayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::actors::QueueError;
use crate::domain::DomainError;
use crate::store::config::UpdateError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the body does not fit: {0}")]
    InvalidBody(String),
    #[error("{0}")]
    InvalidId(String),
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    #[error("{0}")]
    InvalidIdempotencyKey(String),
    #[error("{0}")]
    UnknownServiceInRow(String),
    #[error("missing or unknown bearer token")]
    Unauthorized,
    #[error("this token's role may not do this")]
    Forbidden,
    #[error("{0}")]
    UnknownBranch(String),
    #[error("{0}")]
    UnknownService(String),
    #[error("{0}")]
    UnknownCounter(String),
    #[error("{0}")]
    UnknownTicket(String),
    #[error("{0}")]
    UnknownPlayer(String),
    #[error("{0}")]
    InvalidMediaPath(String),
    #[error("{0}")]
    UnknownMedia(String),
    #[error("the requested range is not within the file ({0} bytes)")]
    RangeNotSatisfiable(u64),
    #[error("not enough free disk space for this file")]
    InsufficientStorage,
    #[error("no such resource")]
    NotFound,
    #[error("{0}")]
    NoCurrentTicket(String),
    #[error("{0}")]
    NotWaiting(String),
    #[error("this node serves a mirror of the configuration; administer it on the master group")]
    ReadOnlyReplica,
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("this Idempotency-Key was already used for a different request; use a new key for a new request")]
    IdempotencyKeyReused,
    #[error("{0}")]
    RequestExpired(String),
    #[error("the change was made but fewer than {wanted} replicas confirmed it within {timeout_ms} ms; retry with the same Idempotency-Key")]
    ReplicationTimeout { wanted: u32, timeout_ms: u64 },
    #[error("compressed request bodies are not accepted; send the body without Content-Encoding")]
    CompressedBody,
    #[error("this path does not answer this method; it answers {0}")]
    MethodNotAllowed(String),
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("this token holds {0} event streams already; close one first")]
    TooManyStreams(usize),
    #[error("fenced: this node holds epoch {held}, the group is at epoch {current}")]
    Fenced { held: u64, current: u64 },
    #[error(
        "stale epoch: the batch carries epoch {held}, this group has shipped under epoch {highest}"
    )]
    StaleEpoch { held: u64, highest: u64 },
    #[error("the configuration was changed concurrently too often; try again")]
    WriteContention(#[source] StoreError),
    #[error("{0}")]
    NotReady(String),
    #[error("{0}; the group's numbering and epochs continue above what the nodes saw. Slave groups adopt the store by themselves once mirrored; on a master group an operator adopts it with POST /api/v1/cluster/store/adopt")]
    StoreLost(String),
    #[error("the group's Redis is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("the group's Redis is loading its data after a restart; try again shortly")]
    StoreLoading(#[source] StoreError),
    #[error("this node is too busy to take the request; try again")]
    NodeBusy(#[source] actix::MailboxError),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The error body of API.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, kebab-case.
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// Status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid-json"),
            InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid-body"),
            InvalidId(_) => (StatusCode::BAD_REQUEST, "invalid-identifier"),
            InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid-query"),
            InvalidIdempotencyKey(_) => (StatusCode::BAD_REQUEST, "invalid-idempotency-key"),
            UnknownServiceInRow(_) => (StatusCode::BAD_REQUEST, "unknown-service"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            UnknownBranch(_) => (StatusCode::NOT_FOUND, "unknown-branch"),
            UnknownService(_) => (StatusCode::NOT_FOUND, "unknown-service"),
            UnknownCounter(_) => (StatusCode::NOT_FOUND, "unknown-counter"),
            UnknownTicket(_) => (StatusCode::NOT_FOUND, "unknown-ticket"),
            UnknownPlayer(_) => (StatusCode::NOT_FOUND, "unknown-player"),
            InvalidMediaPath(_) => (StatusCode::BAD_REQUEST, "invalid-media-path"),
            UnknownMedia(_) => (StatusCode::NOT_FOUND, "unknown-media"),
            RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, "range-not-satisfiable"),
            InsufficientStorage => (StatusCode::INSUFFICIENT_STORAGE, "insufficient-storage"),
            NotFound => (StatusCode::NOT_FOUND, "not-found"),
            NoCurrentTicket(_) => (StatusCode::CONFLICT, "no-current-ticket"),
            NotWaiting(_) => (StatusCode::CONFLICT, "not-waiting"),
            ReadOnlyReplica => (StatusCode::CONFLICT, "read-only-replica"),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
            IdempotencyKeyReused => (StatusCode::CONFLICT, "idempotency-key-reused"),
            RequestExpired(_) => (StatusCode::SERVICE_UNAVAILABLE, "request-expired"),
            ReplicationTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, "replication-timeout"),
            CompressedBody => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-content-encoding",
            ),
            MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "request-timeout"),
            TooManyStreams(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-streams"),
            Fenced { .. } => (StatusCode::CONFLICT, "fenced"),
            StaleEpoch { .. } => (StatusCode::CONFLICT, "stale-epoch"),
            WriteContention(_) => (StatusCode::CONFLICT, "write-contention"),
            NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not-ready"),
            StoreLost(_) => (StatusCode::SERVICE_UNAVAILABLE, "store-lost"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis-unavailable"),
            StoreLoading(_) => (StatusCode::SERVICE_UNAVAILABLE, "store-loading"),
            NodeBusy(_) => (StatusCode::SERVICE_UNAVAILABLE, "node-busy"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // The body stays opaque; the whole cause chain goes to the log.
            let causes = cause_chain(self);
            if status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(code, %causes, "request failed");
            } else {
                tracing::warn!(code, %causes, "request refused for now");
            }
        }
        let mut response = HttpResponse::build(status);
        match self {
            // RFC 9110 11.6.1 and RFC 6750 3: say which scheme is expected.
            ApiError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="turnus""#));
            }
            ApiError::MethodNotAllowed(allow) => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            // RFC 7694 3: the encodings this server accepts.
            ApiError::CompressedBody => {
                response.insert_header((header::ACCEPT_ENCODING, "identity"));
            }
            // The rest of the body may still be on its way: do not read it.
            ApiError::BodyTimeout => {
                response.force_close();
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        })
    }
}

/// `error: cause: cause …`, for the log.
fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => ApiError::Unavailable(e),
            StoreError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused,
            StoreError::ReplicationTimeout {
                wanted, timeout_ms, ..
            } => ApiError::ReplicationTimeout { wanted, timeout_ms },
            StoreError::Loading(_) => ApiError::StoreLoading(e),
            StoreError::Fenced { held, current } => ApiError::Fenced { held, current },
            StoreError::Contention { .. } => ApiError::WriteContention(e),
            StoreError::Redis(_) | StoreError::Corrupt(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<PayloadError> for ApiError {
    /// For handlers that read a raw body: the edge's body deadline shows
    /// here as `TimedOut`.
    fn from(e: PayloadError) -> Self {
        match e {
            PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                ApiError::BodyTimeout
            }
            PayloadError::Overflow => ApiError::InvalidBody("the body is too large".into()),
            other => ApiError::InvalidBody(other.to_string()),
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::InvalidId { .. } => ApiError::InvalidId(e.to_string()),
            DomainError::Invalid { .. } => ApiError::InvalidBody(e.to_string()),
            DomainError::UnknownServiceInRow { .. } => ApiError::UnknownServiceInRow(e.to_string()),
            DomainError::InvalidMediaPath { .. } => ApiError::InvalidMediaPath(e.to_string()),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::UnknownService { .. } => ApiError::UnknownService(e.to_string()),
            QueueError::UnknownCounter { .. } => ApiError::UnknownCounter(e.to_string()),
            QueueError::NoCurrentTicket { .. } => ApiError::NoCurrentTicket(e.to_string()),
            QueueError::Expired { .. } => ApiError::RequestExpired(e.to_string()),
            QueueError::NotWaiting { .. } => ApiError::NotWaiting(e.to_string()),
            QueueError::StoreLost(why) => ApiError::StoreLost(why),
            QueueError::Store(store) => store.into(),
        }
    }
}

impl From<UpdateError<ApiError>> for ApiError {
    fn from(e: UpdateError<ApiError>) -> Self {
        match e {
            UpdateError::Store(store) => store.into(),
            UpdateError::Rejected(api) => api,
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    /// The actor's mailbox is closed (it stopped, e.g. its branch was just
    /// removed) or the message timed out in a full mailbox: a transient
    /// refusal, not a bug.
    fn from(e: actix::MailboxError) -> Self {
        ApiError::NodeBusy(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_actor_failures_get_deliberate_statuses() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                StoreError::Fenced {
                    held: 1,
                    current: 2,
                }
                .into(),
                409,
                "fenced",
            ),
            (
                StoreError::Contention { attempts: 16 }.into(),
                409,
                "write-contention",
            ),
            (
                StoreError::Corrupt("bad reply".into()).into(),
                500,
                "internal",
            ),
            (actix::MailboxError::Closed.into(), 503, "node-busy"),
            (actix::MailboxError::Timeout.into(), 503, "node-busy"),
        ];
        for (error, status, code) in cases {
            let (got_status, got_code) = error.status_and_code();
            assert_eq!((got_status.as_u16(), got_code), (status, code), "{error:?}");
        }
    }

    #[test]
    fn a_5xx_keeps_its_cause_for_the_log_but_not_in_the_body() {
        let error = ApiError::from(StoreError::Corrupt("bad reply from close_day".into()));
        assert!(cause_chain(&error).contains("bad reply from close_day"));
        assert!(!error.to_string().contains("close_day"));
    }
}
