//! Middleware of the HTTP edge, outermost first:
//!
//! - [`RequestMetrics`]: a count per method, route pattern and status, and a
//!   latency histogram per route pattern. Every label value comes from a
//!   closed set (known methods, matched route patterns, `other`,
//!   `unmatched`), so no request can grow the metric set.
//! - [`edge_guard`]: refuses compressed request bodies (415), bounds the
//!   time a body may take to arrive (408), and answers `HEAD` for every
//!   `GET` route.
//!
//! Neither knows anything about tickets or configuration.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{web, Error, HttpMessage};
use futures::{Stream, StreamExt};

use super::error::ApiError;
use super::AppState;
use crate::metrics::{RequestLabels, RouteLabels};

pub struct RequestMetrics;

impl<S, B> Transform<S, ServiceRequest> for RequestMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestMetricsService {
            service: Rc::new(service),
        }))
    }
}

pub struct RequestMetricsService<S> {
    service: Rc<S>,
}

/// The `method` label: a standard method's name, anything else `other`
/// (a method is any token a client invents, up to the header size limit).
pub fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, name)| name)
}

impl<S, B> Service<ServiceRequest> for RequestMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        // Taken before the inner service runs: the edge guard serves HEAD
        // as GET.
        let method = method_label(req.method());
        let service = self.service.clone();
        Box::pin(async move {
            let res = service.call(req).await?;
            let request = res.request();
            if let Some(state) = request.app_data::<web::Data<AppState>>() {
                // A matched pattern is one of the routes this binary has.
                let route = request
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_owned());
                state
                    .metrics
                    .http_latency
                    .get_or_create(&RouteLabels {
                        route: route.clone(),
                    })
                    .observe(started.elapsed().as_secs_f64());
                state
                    .metrics
                    .http_requests
                    .get_or_create(&RequestLabels {
                        method: method.to_owned(),
                        route,
                        status: res.status().as_u16(),
                    })
                    .inc();
            }
            Ok(res)
        })
    }
}

/// How long a request body may take to arrive: `timeout`, plus one second
/// for every `min_bytes_per_s` bytes received so far. A client sending at a
/// fair rate is never cut; one trickling bytes is, after about `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    pub timeout: Duration,
    pub min_bytes_per_s: u64,
}

impl BodyDeadline {
    fn after(&self, started: Instant, received: u64) -> Instant {
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_s as f64);
        started + self.timeout + earned
    }
}

/// See the module doc.
pub async fn edge_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let deadline = state.edge.body_deadline;
        let payload = req.take_payload();
        let bounded: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(DeadlineBody::new(payload, deadline));
        req.set_payload(Payload::from(bounded));
    }
    if let Some(encoding) = req.headers().get(header::CONTENT_ENCODING) {
        // Inflating before the size limit would let 48 KiB cost 50 MB; no
        // client of this API needs to compress what it sends.
        if !encoding.as_bytes().eq_ignore_ascii_case(b"identity") {
            drain(req.take_payload()).await;
            return Ok(req.error_response(ApiError::CompressedBody));
        }
    }
    let head = req.method() == Method::HEAD;
    if head {
        // Every GET route answers HEAD (RFC 9110 9.3.2): the connection
        // still knows the request was HEAD and sends no body bytes.
        req.head_mut().method = Method::GET;
    }
    let res = next.call(req).await?;
    Ok(res.map_body(|_, body| {
        // An endless body (an event stream) would never end under HEAD.
        if head && matches!(body.size(), BodySize::Stream) {
            BoxBody::new(())
        } else {
            body.boxed()
        }
    }))
}

/// Most of a refused body read (not inflated) and dropped before the
/// answer, so a client still sending gets the answer instead of a reset
/// (closing a socket with unread bytes resets it). Larger bodies are cut.
const DRAIN_LIMIT: usize = 1 << 20;

/// Reads and drops up to [`DRAIN_LIMIT`] bytes of `payload` (which is
/// under its [`BodyDeadline`]).
async fn drain(mut payload: Payload) {
    let mut drained = 0;
    while let Some(Ok(chunk)) = payload.next().await {
        drained += chunk.len();
        if drained > DRAIN_LIMIT {
            break;
        }
    }
}

/// A request body that fails with `TimedOut` once its [`BodyDeadline`]
/// passes.
struct DeadlineBody {
    inner: Payload,
    deadline: BodyDeadline,
    started: Instant,
    received: u64,
    timer: Pin<Box<tokio::time::Sleep>>,
    finished: bool,
}

impl DeadlineBody {
    fn new(inner: Payload, deadline: BodyDeadline) -> DeadlineBody {
        let started = Instant::now();
        DeadlineBody {
            inner,
            deadline,
            started,
            received: 0,
            timer: Box::pin(tokio::time::sleep_until(deadline.after(started, 0).into())),
            finished: false,
        }
    }
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.received += chunk.len() as u64;
                let next = this.deadline.after(this.started, this.received);
                this.timer.as_mut().reset(next.into());
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.finished = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_closed_set() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
        let invented = Method::from_bytes(&[b'X'; 4096]).expect("a token is a method");
        assert_eq!(method_label(&invented), "other");
        assert_eq!(
            method_label(&Method::from_bytes(b"get").expect("token")),
            "other"
        );
    }

    #[test]
    fn a_fair_rate_earns_time_and_a_trickle_does_not() {
        let deadline = BodyDeadline {
            timeout: Duration::from_secs(10),
            min_bytes_per_s: 1000,
        };
        let t0 = Instant::now();
        assert_eq!(deadline.after(t0, 0), t0 + Duration::from_secs(10));
        // 1 MB earns 1000 s more: an upload at any rate above 1000 B/s
        // keeps ahead of its deadline.
        assert_eq!(
            deadline.after(t0, 1_000_000),
            t0 + Duration::from_secs(1010)
        );
        // A byte a second for 60 s earned 60 ms.
        assert_eq!(
            deadline.after(t0, 60),
            t0 + Duration::from_secs(10) + Duration::from_millis(60)
        );
    }
}
