//! The [`Tagged`] extractor of ticket and counter POSTs: the client's
//! `Idempotency-Key` (validated; 400 `invalid-idempotency-key` otherwise)
//! and when the request arrived, dated back over a stall of this process
//! ([`crate::stall`]), with the node's request deadline.

use std::future::{ready, Ready};
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::{ApiError, AppState};
use crate::domain::{IdempotencyKey, RequestTag};

/// The header a client repeats on a retry (API.md "Retries").
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// A request's [`RequestTag`].
pub struct Tagged(pub RequestTag);

impl FromRequest for Tagged {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(tag(req).map(Tagged))
    }
}

fn tag(req: &HttpRequest) -> Result<RequestTag, ApiError> {
    let now = Instant::now();
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("application state missing".into()))?;
    let key = match req.headers().get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| invalid_key())?;
            Some(IdempotencyKey::parse(text).map_err(|_| invalid_key())?)
        }
    };
    Ok(RequestTag {
        key,
        received: state.stall.received(now),
        max_age: Duration::from_millis(state.request_deadline_ms),
    })
}

fn invalid_key() -> ApiError {
    ApiError::InvalidIdempotencyKey(format!(
        "{IDEMPOTENCY_KEY_HEADER}: use 1 to {} visible ASCII characters (no spaces)",
        crate::domain::request::IDEMPOTENCY_KEY_MAX_LEN
    ))
}
