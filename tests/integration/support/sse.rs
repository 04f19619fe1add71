//! `EventReader`: reads a Server-Sent Events body into events, with
//! deadlines.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};

use super::api::{ApiClient, Ticket};
use super::DISPLAY;

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>>>>;

/// One parsed SSE event.
#[derive(Debug)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Reads an SSE body and hands out whole events.
pub struct EventReader {
    body: Body,
    buffer: String,
}

impl EventReader {
    /// Reads the body of an answered `GET .../events`.
    pub fn new(response: reqwest::Response) -> EventReader {
        EventReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event with a name (comments and `retry:` are skipped), or
    /// `None` if none arrives within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if let Some(name) = name {
                    return Some(Event { name, data });
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk).expect("UTF-8 events")),
                Ok(Some(Err(e))) => panic!("event stream failed: {e}"),
                Ok(None) => panic!("event stream ended"),
                Err(_) => return None,
            }
        }
    }

    /// Whether a heartbeat (a block that is only the empty comment `:`)
    /// arrives within `within`; other blocks are skipped.
    pub async fn heartbeat(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block == ":\n\n" {
                    return true;
                }
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&chunk).expect("UTF-8 events")),
                Ok(Some(Err(_))) | Ok(None) | Err(_) => return false,
            }
        }
    }

    /// The next event named `name` about ticket `id`, skipping others.
    pub async fn find(&mut self, name: &str, id: &str, within: Duration) -> Option<Ticket> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.next(left).await?;
            if event.name != name {
                continue;
            }
            let ticket: Ticket = serde_json::from_str(&event.data)
                .unwrap_or_else(|e| panic!("{name} data is not a ticket ({e}): {}", event.data));
            if ticket.id == id {
                return Some(ticket);
            }
        }
    }
}

/// Opens the live events of `branch` (as a display).
pub async fn open_events(api: &ApiClient, branch: &str) -> EventReader {
    let path = format!("/api/v1/branches/{branch}/events");
    let response = api
        .request(reqwest::Method::GET, &path, Some(DISPLAY), None)
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::OK, "GET {path}");
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    EventReader::new(response)
}

/// Issues tickets until `events` shows one's `ticket-issued`, proving that
/// events flow end to end. The node subscribes to Redis on its own schedule,
/// so a ticket issued before may go unseen; every later one must not.
/// Returns the ticket that was seen and its event.
pub async fn issue_until_seen(
    api: &ApiClient,
    events: &mut EventReader,
    branch: &str,
    service: &str,
    within: Duration,
) -> (Ticket, Ticket) {
    let deadline = Instant::now() + within;
    loop {
        let ticket = api.issue(branch, service).await;
        if let Some(seen) = events
            .find("ticket-issued", &ticket.id, Duration::from_secs(1))
            .await
        {
            return (ticket, seen);
        }
        assert!(
            Instant::now() < deadline,
            "no ticket-issued event within {within:?}"
        );
    }
}
