//! `GET /api/v1/branches/{branch}/events`: Server-Sent Events for live
//! displays. Each event's name is the ticket event type (or
//! `config-changed`), its data the ticket as JSON. A comment line every
//! fifteen seconds keeps proxies from closing an idle stream.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{get, web, HttpResponse};
use futures::StreamExt;
use tokio_stream::wrappers::{errors::BroadcastStreamRecvError, BroadcastStream, IntervalStream};

use super::auth::{Authorized, DisplayRole};
use super::error::{ApiError, ErrorBody};
use super::AppState;
use crate::actors::event_hub::Subscribe;

const KEEPALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(branch_events);
}

#[utoipa::path(tag = "branch", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", description = "ticket-issued, ticket-called, \
        ticket-recalled, ticket-served, ticket-no-show, ticket-transferred, config-changed"),
        (status = 404, body = ErrorBody)))]
#[get("/api/v1/branches/{branch}/events")]
async fn branch_events(
    _: Authorized<DisplayRole>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.queue(&path)?;
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
    let mut interval = tokio::time::interval(KEEPALIVE);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let keepalive = IntervalStream::new(interval).map(|_| Bytes::from_static(b": keepalive\n\n"));
    let hello =
        futures::stream::once(async { Bytes::from_static(b"retry: 3000\n: connected\n\n") });
    let stream = hello
        .chain(futures::stream::select(events, keepalive))
        .map(Ok::<_, actix_web::Error>);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}
