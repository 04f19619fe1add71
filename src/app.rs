//! Wiring: Redis (embedded or configured), the actors, and the HTTP server.
//!
//! [`Application::build`] binds the listener (port 0 works, for tests) and
//! starts the actors once; [`Application::run_until_stopped`] serves until
//! SIGINT/SIGTERM, then stops the embedded Redis, which flushes its AOF.

use std::sync::Arc;

use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context as _;

use crate::actors::config_view::LoadNow;
use crate::actors::leader::Release;
use crate::actors::membership::Leave;
use crate::actors::node::{self, NodeActors, NodeContext};
use crate::actors::{ConfigHandle, LeaderStatus, LostStorePolicy, MediaHandle, TicketQueues};
use crate::http::{self, AppState, Tokens};
use crate::metrics::Metrics;
use crate::settings::{NodeRole, Settings};
use crate::store::embedded::EmbeddedRedis;
use crate::store::sentinel::{FailoverObserver, FailoverSignal, Suspicion, Wake};
use crate::store::Store;

/// How a node is started beyond its settings.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Import the demo configuration into an empty installation.
    pub demo: bool,
}

/// A built node: bound, actors running, ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    redis_url: String,
    embedded: Option<EmbeddedRedis>,
    actors: NodeActors,
}

impl Application {
    pub async fn build(settings: Settings, options: StartOptions) -> anyhow::Result<Application> {
        // The port first: a node that cannot serve must not start Redis,
        // join the member list or take the group's leader lease. The
        // advertised URL (membership) needs the port too.
        let listener = listen(&settings.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.http.listen))?;
        let port = listener.local_addr().context("no bound address")?.port();
        let metrics = Arc::new(Metrics::new());
        let sentinel = !settings.redis.sentinels.is_empty();
        let embedded = if settings.redis.url.is_empty() && !sentinel {
            let counted = metrics.clone();
            Some(EmbeddedRedis::start(
                &settings.redis.embedded_binary,
                &settings.node.data_dir,
                &settings.redis.embedded_appendfsync,
                Arc::new(move || {
                    counted.embedded_redis_restarts.inc();
                }),
            )?)
        } else {
            None
        };
        let store = if sentinel {
            Store::connect_sentinel(&settings.redis, failover_observer(metrics.clone()))
                .await
                .context("redis.sentinels")?
        } else {
            let url = embedded
                .as_ref()
                .map(EmbeddedRedis::url)
                .unwrap_or_else(|| settings.redis.url.expose().to_owned());
            Store::connect(&url, &settings.redis).context("redis.url")?
        };
        let redis_url = store.url();
        let group = settings.group();

        if options.demo {
            match store.config_version(&group).await {
                Ok(0) => {
                    let version = crate::demo::import(&store, &group, crate::demo::DEMO).await?;
                    tracing::info!(version, "imported the demo configuration");
                }
                Ok(_) => tracing::info!("configuration present; demo import skipped"),
                Err(e) => tracing::warn!(error = %e, "cannot check for the demo import"),
            }
        }

        match store.ensure_noeviction().await {
            Ok(policy) if policy == "noeviction" => {}
            Ok(policy) => tracing::error!(
                %policy,
                "the group's Redis may evict keys (maxmemory-policy {policy}) and refused CONFIG SET; \
                 set maxmemory-policy noeviction, or the fencing epoch and the outbox can be lost"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check maxmemory-policy (Redis down?)"),
        }

        let advertise_url = advertise_url(&settings, port);

        let media = MediaHandle::open(&settings).with_context(|| {
            format!(
                "media: library_dir {} / data_dir {}",
                settings.media.library_dir.display(),
                settings.node.data_dir.display()
            )
        })?;
        let settings = Arc::new(settings);
        let node = NodeContext {
            settings: settings.clone(),
            store: store.clone(),
            group,
            node_id: settings.node_id(),
            role: settings.node.role,
            advertise_url,
            config: ConfigHandle::default(),
            queues: TicketQueues::new(match settings.node.role {
                NodeRole::Master => LostStorePolicy::Refuse,
                NodeRole::Slave => LostStorePolicy::Serve,
            }),
            metrics,
            leader_status: LeaderStatus::default(),
            media,
        };
        let actors = node::start(&node);
        // Serve with the configuration loaded when Redis is up; if it is
        // not, the view keeps trying and /readyz says 503 meanwhile.
        let _ = actors.config_view.send(LoadNow).await;

        let state = web::Data::new(AppState {
            node_id: node.node_id.clone(),
            role: node.role,
            group: node.group.clone(),
            links: http::ticket_link::TicketLinks::new(store.clone(), node.group.clone()),
            store,
            config: node.config.clone(),
            queues: node.queues.clone(),
            hub: actors.hub.clone(),
            config_view: actors.config_view.clone(),
            metrics: node.metrics.clone(),
            tokens: Tokens::from_settings(&settings.auth),
            leader: node.leader_status.clone(),
            media: node.media.clone(),
            media_settings: settings.media.clone(),
            stall: crate::stall::StallWatch::start().context("cannot start the stall watch")?,
            request_deadline_ms: settings.http.request_deadline_ms,
            edge: http::EdgeLimits::new(&settings.http, &node.metrics),
        });
        let json_limit = settings.http.max_json_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(http::json_config(json_limit))
                .app_data(http::query_config())
                .wrap(actix_web::middleware::from_fn(http::middleware::edge_guard))
                .wrap(http::middleware::RequestMetrics)
                .configure(http::configure)
                .configure(crate::web::configure)
                .default_service(web::to(http::not_found))
        })
        .shutdown_timeout(5)
        // Signals are ours: on SIGTERM the lease goes first, then the drain.
        .disable_signals();
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server
            .listen(listener)
            .with_context(|| format!("cannot serve on {}", settings.http.listen))?;
        Ok(Application {
            port,
            server: server.run(),
            redis_url,
            embedded,
            actors,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Redis this node uses (the embedded one's URL when embedded).
    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// Serves until SIGINT or SIGTERM. Then, in this order: gives up the
    /// leader lease (a standby takes over at once), leaves the member list,
    /// drains HTTP connections, and stops the embedded Redis (flushing its AOF).
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        let result = tokio::select! {
            result = &mut server => result,
            () = shutdown_signal() => {
                tracing::info!("stopping");
                // A second signal means "now": skip the graceful drain.
                actix_rt::spawn(async {
                    shutdown_signal().await;
                    tracing::warn!("second signal: exiting at once");
                    std::process::exit(1);
                });
                let _ = self.actors.leader.send(Release).await;
                let _ = self.actors.membership.send(Leave).await;
                // The server future must be polled for the stop command to
                // be processed, so drive both together.
                let ((), result) = futures::join!(handle.stop(true), server);
                result
            }
        };
        self.actors.leader_arbiter.stop();
        self.actors.media_arbiter.stop();
        if let Some(mut redis) = self.embedded.take() {
            redis.stop();
        }
        result
    }
}

/// Counts what following the sentinels notices in the node's metrics.
fn failover_observer(metrics: Arc<Metrics>) -> FailoverObserver {
    Arc::new(move |signal| match signal {
        FailoverSignal::Suspected(Suspicion::ReadOnly) => metrics.redis_resolve_wakeup("read-only"),
        FailoverSignal::Suspected(Suspicion::ConnectionLost) => {
            metrics.redis_resolve_wakeup("connection-lost")
        }
        FailoverSignal::Moved(Wake::Poll) => metrics.redis_master_moved("poll"),
        FailoverSignal::Moved(Wake::Request) => metrics.redis_master_moved("request"),
    })
}

/// How many connections may wait to be accepted (actix-web's default).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds the HTTP listener (port 0 picks a free one) before anything else
/// starts, so the actors know the bound port.
async fn listen(address: &str) -> std::io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket
            .bind(addr)
            .and_then(|()| socket.listen(LISTEN_BACKLOG))
        {
            Ok(listener) => return listener.into_std(),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

/// The URL this node tells the group it is reached at: the configured one,
/// or the listen host with the bound port.
fn advertise_url(settings: &Settings, port: u16) -> String {
    if !settings.http.advertise_url.is_empty() {
        return settings.http.advertise_url.clone();
    }
    let host = settings
        .http
        .listen
        .rsplit_once(':')
        .map_or("127.0.0.1", |(h, _)| h);
    format!("http://{host}:{port}")
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
