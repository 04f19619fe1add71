//! Log setup for the `turnus` binary: `RUST_LOG` (default `info`) to
//! stderr, and the one adjustment an open port needs: the HTTP library logs
//! every malformed request (protocol garbage, a head too large) at ERROR,
//! so anyone could flood the log without a token. Those events are counted
//! in `turnus_http_malformed_requests_total` instead and shown only when
//! `RUST_LOG` names `actix_http` itself.

use tracing::{Level, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Where the HTTP library reports connections it could not parse.
const DISPATCHER: &str = "actix_http::h1::dispatcher";

/// Installs the global subscriber.
pub fn init() {
    let configured = std::env::var("RUST_LOG").ok();
    let mut filter = configured
        .as_deref()
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info,actix_server=warn"));
    if !configured.is_some_and(|directives| directives.contains("actix_http")) {
        filter = filter.add_directive(
            format!("{DISPATCHER}=off")
                .parse()
                .expect("a static directive parses"),
        );
    }
    let counting = MalformedRequests.with_filter(filter_fn(|meta| {
        meta.target() == DISPATCHER && *meta.level() == Level::ERROR
    }));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(counting)
        .init();
}

/// Counts the dispatcher's ERROR events: each is one connection that sent
/// something that is not HTTP, answered 400 or 431 and closed.
struct MalformedRequests;

impl<S: Subscriber> Layer<S> for MalformedRequests {
    fn on_event(&self, _event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        crate::metrics::count_malformed_request();
    }
}
