//! Prometheus metrics of one node, served at `GET /metrics`.
//!
//! Counters and histograms are updated where things happen (HTTP middleware,
//! ticket queues); gauges that mirror Redis state (queue lengths, outbox
//! length) are refreshed when `/metrics` is scraped.
//!
//! The registry encodes OpenMetrics; [`Metrics::encode`] serves that to
//! scrapers that ask for it and the Prometheus text format 0.0.4 to the
//! rest, so what is sent is what the `Content-Type` says.

use std::collections::HashSet;
use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BranchLabels {
    pub branch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub branch: String,
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WokenByLabels {
    pub woken_by: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~1.6 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Requests refused before routing because they were not HTTP (a bad
/// request line or header, a head too large). The HTTP library reports
/// those only through its log, so `logging` counts them here; one count per
/// process, like the log it comes from.
static MALFORMED_REQUESTS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// Counts one malformed request (see [`MALFORMED_REQUESTS`]).
pub fn count_malformed_request() {
    MALFORMED_REQUESTS.inc();
}

/// The two text formats `/metrics` can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what Prometheus and promtool read.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: OpenMetrics when it names
    /// it, else Prometheus text.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_latency: HistogramFamily<RouteLabels>,
    tickets_issued: Family<BranchLabels, Counter>,
    tickets_called: Family<BranchLabels, Counter>,
    pub queue_waiting: Family<QueueLabels, Gauge>,
    pub outbox_length: Family<BranchLabels, Gauge>,
    pub config_version: Gauge,
    pub redis_up: Gauge,
    pub leader: Gauge,
    pub epoch: Gauge,
    pub lease_renew_seconds: Histogram,
    pub members: Gauge,
    pub fenced_writes_rejected: Counter,
    pub day_closes: Counter,
    pub upstream_connected: Gauge,
    pub mirror_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub stats_events_applied: Counter,
    pub stats_events_lost: Counter,
    pub stats_backlog_events: Gauge,
    pub stats_lag_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub outbox_oldest_age_seconds: Family<BranchLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub media: MediaMetrics,
    requests_expired: Counter,
    pub replication_timeouts: Counter,
    pub embedded_redis_restarts: Counter,
    pub store_lost: Gauge,
    pub event_streams: Gauge,
    redis_resolve_wakeups: Family<ReasonLabels, Counter>,
    redis_master_moves: Family<WokenByLabels, Counter>,
    /// Not exported: the live count of ticket changes that media transfers
    /// yield to (`blobs::pace`).
    pub ticket_load: crate::blobs::pace::TicketLoad,
}

/// The media library and its mirror.
#[derive(Default)]
pub struct MediaMetrics {
    /// Blob bytes this node served to peers (`turnus_media_blob_bytes_sent_total`).
    pub blob_bytes_sent: Counter,
    /// Blob bytes this node downloaded.
    pub blob_bytes_received: Counter,
    /// Downloads thrown away for a wrong size or sha256, and held blobs
    /// that failed re-verification.
    pub blobs_rejected: Counter,
    /// Files of the wanted manifest not complete on this node.
    pub files_missing: Gauge,
    pub bytes_missing: Gauge,
}

impl MediaMetrics {
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "media_blob_bytes_sent",
            "Media blob bytes served to peer nodes",
            self.blob_bytes_sent.clone(),
        );
        registry.register(
            "media_blob_bytes_received",
            "Media blob bytes downloaded by this node",
            self.blob_bytes_received.clone(),
        );
        registry.register(
            "media_blobs_rejected",
            "Media blobs discarded for a wrong size or sha256",
            self.blobs_rejected.clone(),
        );
        registry.register(
            "media_files_missing",
            "Files of the wanted media manifest not yet complete on this node",
            self.files_missing.clone(),
        );
        registry.register(
            "media_bytes_missing",
            "Bytes of the wanted media manifest not yet complete on this node",
            self.bytes_missing.clone(),
        );
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("turnus");
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_latency: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let tickets_issued = Family::<BranchLabels, Counter>::default();
        let tickets_called = Family::<BranchLabels, Counter>::default();
        let queue_waiting = Family::<QueueLabels, Gauge>::default();
        let outbox_length = Family::<BranchLabels, Gauge>::default();
        let config_version = Gauge::default();
        let redis_up = Gauge::default();
        let leader = Gauge::default();
        let epoch = Gauge::default();
        let lease_renew_seconds = latency_histogram();
        let members = Gauge::default();
        let fenced_writes_rejected = Counter::default();
        let day_closes = Counter::default();
        registry.register(
            "leader",
            "1 while this node is its group's leader",
            leader.clone(),
        );
        registry.register(
            "epoch",
            "Fencing epoch this node holds or last held",
            epoch.clone(),
        );
        registry.register(
            "lease_renew_seconds",
            "Leader lease renewal round trip",
            lease_renew_seconds.clone(),
        );
        registry.register(
            "members",
            "Live members of this node's group",
            members.clone(),
        );
        registry.register(
            "fenced_writes_rejected",
            "Leader-only writes of this node refused because a newer epoch exists",
            fenced_writes_rejected.clone(),
        );
        registry.register(
            "day_closes",
            "Business days closed by this node",
            day_closes.clone(),
        );
        let upstream_connected = Gauge::default();
        let mirror_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "upstream_connected",
            "Slave: 1 while the group's leader reaches the master group",
            upstream_connected.clone(),
        );
        registry.register(
            "mirror_lag_seconds",
            "Slave: seconds since the group last heard from the master (its mirror is at most this old)",
            mirror_lag_seconds.clone(),
        );
        let stats_events_applied = Counter::default();
        let stats_events_lost = Counter::default();
        registry.register(
            "stats_events_lost",
            "Master: ticket events a slave declared lost (this store needed them after a restore and no outbox held them any more)",
            stats_events_lost.clone(),
        );
        let stats_backlog_events = Gauge::default();
        let stats_lag_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        let outbox_oldest_age_seconds =
            Family::<BranchLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "stats_events_applied",
            "Ticket events this node applied to statistics rollups (each counted once)",
            stats_events_applied.clone(),
        );
        registry.register(
            "stats_backlog_events",
            "Slave: ticket events not yet acknowledged by the master",
            stats_backlog_events.clone(),
        );
        registry.register(
            "stats_lag_seconds",
            "Master: age of the oldest branch watermark (complete_through)",
            stats_lag_seconds.clone(),
        );
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest event still in the branch's outbox",
            outbox_oldest_age_seconds.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            http_latency.clone(),
        );
        registry.register(
            "tickets_issued",
            "Tickets issued by this node",
            tickets_issued.clone(),
        );
        registry.register(
            "tickets_called",
            "Tickets called by this node",
            tickets_called.clone(),
        );
        registry.register(
            "queue_waiting",
            "Tickets waiting per service",
            queue_waiting.clone(),
        );
        registry.register(
            "outbox_length",
            "Ticket events in the branch's outbox stream",
            outbox_length.clone(),
        );
        registry.register(
            "config_version",
            "Configuration version this node serves",
            config_version.clone(),
        );
        registry.register(
            "redis_up",
            "1 when the group's Redis answers",
            redis_up.clone(),
        );
        let media = MediaMetrics::default();
        media.register(&mut registry);
        let requests_expired = Counter::default();
        let replication_timeouts = Counter::default();
        let embedded_redis_restarts = Counter::default();
        let store_lost = Gauge::default();
        registry.register(
            "store_lost",
            "1 while the group's Redis is not the store this node knew (it lost data) and has not been adopted",
            store_lost.clone(),
        );
        registry.register(
            "requests_expired",
            "Ticket and counter requests refused because they outlived their deadline before their turn",
            requests_expired.clone(),
        );
        registry.register(
            "replication_timeouts",
            "Ticket changes not confirmed by enough replicas in time (durability replicated; answered 503)",
            replication_timeouts.clone(),
        );
        registry.register(
            "embedded_redis_restarts",
            "Times this node restarted its embedded redis-server after it died",
            embedded_redis_restarts.clone(),
        );
        registry.register(
            "http_malformed_requests",
            "Connections refused with 400 or 431 before routing: not a valid HTTP request",
            MALFORMED_REQUESTS.clone(),
        );
        let redis_resolve_wakeups = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "redis_resolve_wakeups",
            "Requests that met READONLY (reason read-only) or a lost connection (connection-lost) and so asked the sentinels at once where the master is",
            redis_resolve_wakeups.clone(),
        );
        let redis_master_moves = Family::<WokenByLabels, Counter>::default();
        registry.register(
            "redis_master_moves",
            "Times a connection of this node moved to a new Redis master, by what made it look: its poll or a failed request",
            redis_master_moves.clone(),
        );
        let event_streams = Gauge::default();
        registry.register(
            "event_streams",
            "Server-Sent Event streams open on this node",
            event_streams.clone(),
        );
        Metrics {
            event_streams,
            redis_resolve_wakeups,
            redis_master_moves,
            registry,
            media,
            requests_expired,
            replication_timeouts,
            embedded_redis_restarts,
            store_lost,
            http_requests,
            http_latency,
            tickets_issued,
            tickets_called,
            queue_waiting,
            outbox_length,
            config_version,
            redis_up,
            leader,
            epoch,
            lease_renew_seconds,
            members,
            fenced_writes_rejected,
            day_closes,
            upstream_connected,
            mirror_lag_seconds,
            stats_events_applied,
            stats_events_lost,
            stats_backlog_events,
            stats_lag_seconds,
            outbox_oldest_age_seconds,
            ticket_load: Default::default(),
        }
    }

    pub fn ticket_issued(&self, branch: &str) {
        self.tickets_issued
            .get_or_create(&BranchLabels {
                branch: branch.to_owned(),
            })
            .inc();
    }

    pub fn ticket_called(&self, branch: &str) {
        self.tickets_called
            .get_or_create(&BranchLabels {
                branch: branch.to_owned(),
            })
            .inc();
    }

    pub fn request_expired(&self) {
        self.requests_expired.inc();
    }

    /// A request that made the node ask the sentinels at once; `reason` is
    /// `read-only` or `connection-lost`.
    pub fn redis_resolve_wakeup(&self, reason: &'static str) {
        self.redis_resolve_wakeups
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// A connection moved to a new Redis master; `woken_by` is `poll` or
    /// `request`.
    pub fn redis_master_moved(&self, woken_by: &'static str) {
        self.redis_master_moves
            .get_or_create(&WokenByLabels {
                woken_by: woken_by.to_owned(),
            })
            .inc();
    }

    /// The registry in `format`.
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        match format {
            Format::OpenMetrics => out,
            Format::Prometheus => openmetrics_to_prometheus(&out),
        }
    }
}

/// OpenMetrics text as Prometheus text 0.0.4: a counter family `x` (whose
/// samples are `x_total`) is named `x_total` in its HELP and TYPE lines, and
/// `# UNIT` and `# EOF` lines, which 0.0.4 does not know, go.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| line.strip_prefix(prefix).map(|rest| (prefix, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counter_families_by_their_samples() {
        let metrics = Metrics::new();
        metrics.ticket_issued("main");
        let text = metrics.encode(Format::Prometheus);
        assert!(
            text.contains("# TYPE turnus_tickets_issued_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP turnus_tickets_issued_total Tickets issued"),
            "{text}"
        );
        assert!(
            text.contains("turnus_tickets_issued_total{branch=\"main\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        let open = metrics.encode(Format::OpenMetrics);
        assert!(
            open.contains("# TYPE turnus_tickets_issued counter\n") && open.ends_with("# EOF\n")
        );
    }

    #[test]
    fn the_accept_header_chooses_the_format() {
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )),
            Format::OpenMetrics
        );
    }
}
