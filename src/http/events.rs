//! `GET /api/v1/branches/{branch}/events`: Server-Sent Events for live
//! displays. Each event's name is the ticket event type (or
//! `config-changed`), its data the ticket as JSON.
//!
//! A comment line every `http.sse_heartbeat_ms` (2 s) keeps proxies from
//! closing an idle stream and, as a write to a closed connection fails,
//! lets the node notice a client that has gone within two heartbeats.
//! One token may hold at most `http.max_streams_per_token` streams
//! ([`StreamSlots`]); more are refused with 429.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use futures::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream, IntervalStream};

use super::auth::{bearer_token, Authorized, DisplayRole};
use super::error::{ApiError, ErrorBody};
use super::openapi::{BadInput, TokenErrors, Unavailable};
use super::AppState;
use crate::actors::event_hub::Subscribe;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(branch_events);
}

/// Open event streams per token, shared by every worker of a node.
#[derive(Clone)]
pub struct StreamSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
    gauge: Gauge,
}

/// One open stream; gives its slot back when the stream is dropped (the
/// client went away, or the node stops).
pub struct StreamSlot {
    slots: StreamSlots,
    token: String,
}

impl StreamSlots {
    pub fn new(limit: usize, gauge: Gauge) -> StreamSlots {
        StreamSlots {
            limit,
            open: Arc::default(),
            gauge,
        }
    }

    /// A slot for `token`, or `TooManyStreams` when it holds `limit`.
    pub fn acquire(&self, token: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(token.to_owned()).or_default();
        if *count >= self.limit {
            return Err(ApiError::TooManyStreams(self.limit));
        }
        *count += 1;
        self.gauge.inc();
        Ok(StreamSlot {
            slots: self.clone(),
            token: token.to_owned(),
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.token) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.token);
            }
        }
        self.slots.gauge.dec();
    }
}

#[utoipa::path(tag = "branch", operation_id = "branch_events", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "ticket-issued, ticket-called, \
        ticket-recalled, ticket-served, ticket-no-show, ticket-transferred, config-changed"),
        TokenErrors, BadInput, Unavailable,
        (status = 404, body = ErrorBody, description = "branch not served here"),
        (status = 429, body = ErrorBody, description = "this token holds `http.max_streams_per_token` streams already")))]
#[get("/api/v1/branches/{branch}/events")]
async fn branch_events(
    _: Authorized<DisplayRole>,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.queue(&path)?;
    let token = bearer_token(&req).ok_or(ApiError::Unauthorized)?;
    let slot = state.edge.streams.acquire(token)?;
    let receiver = state
        .hub
        .send(Subscribe {
            branch: path.into_inner(),
        })
        .await?;
    let events = BroadcastStream::new(receiver).map(|item| match item {
        Ok(event) => Bytes::from(format!("event: {}\ndata: {}\n\n", event.kind, event.data)),
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            Bytes::from(format!(": {missed} events skipped, re-read /display\n\n"))
        }
    });
    let heartbeat = state.edge.sse_heartbeat;
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let keepalive = IntervalStream::new(interval).map(|_| Bytes::from_static(b":\n\n"));
    let hello =
        futures::stream::once(async { Bytes::from_static(b"retry: 3000\n: connected\n\n") });
    let stream = hello
        .chain(futures::stream::select(events, keepalive))
        .map(move |chunk| {
            // The slot lives exactly as long as the stream.
            let _held = &slot;
            Ok::<_, actix_web::Error>(chunk)
        });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
