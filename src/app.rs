//! Wiring: Redis (embedded or configured), the actors, and the HTTP server.
//!
//! [`Application::build`] binds the listener (port 0 works, for tests) and
//! starts the actors once; [`Application::run_until_stopped`] serves until
//! SIGINT/SIGTERM, then stops the embedded Redis, which flushes its AOF.

use std::sync::Arc;

use actix::{Actor, Addr, Arbiter};
use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context as _;

use crate::actors::config_view::LoadNow;
use crate::actors::event_hub::SetConfigListener;
use crate::actors::leader::{Release, SubscribeLeadership};
use crate::actors::media_distributor::MirrorContext;
use crate::actors::media_handle::MediaSource;
use crate::actors::membership::Leave;
use crate::actors::{
    ConfigHandle, ConfigMirror, ConfigView, DayCloser, EventHub, Leader, LeaderStatus,
    MediaDistributor, MediaHandle, Membership, TicketQueues,
};
use crate::http::{self, AppState, Tokens};
use crate::metrics::Metrics;
use crate::settings::{NodeRole, Settings};
use crate::store::embedded::EmbeddedRedis;
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
    leader: Addr<Leader>,
    leader_arbiter: Arbiter,
    media_arbiter: Arbiter,
    membership: Addr<Membership>,
}

impl Application {
    pub async fn build(settings: Settings, options: StartOptions) -> anyhow::Result<Application> {
        let embedded = if settings.redis.url.is_empty() {
            Some(EmbeddedRedis::start(
                &settings.redis.embedded_binary,
                &settings.node.data_dir,
                &settings.redis.embedded_appendfsync,
            )?)
        } else {
            None
        };
        let redis_url = embedded
            .as_ref()
            .map(EmbeddedRedis::url)
            .unwrap_or_else(|| settings.redis.url.clone());
        let store = Store::connect(&redis_url, &settings.redis).context("redis.url")?;
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

        let metrics = Arc::new(Metrics::new());
        let config = ConfigHandle::default();
        let queues = TicketQueues::default();
        let is_master = settings.node.role == NodeRole::Master;
        match store.ensure_noeviction().await {
            Ok(policy) if policy == "noeviction" => {}
            Ok(policy) => tracing::error!(
                %policy,
                "the group's Redis may evict keys (maxmemory-policy {policy}) and refused CONFIG SET; \
                 set maxmemory-policy noeviction, or the fencing epoch and the outbox can be lost"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check maxmemory-policy (Redis down?)"),
        }
        let hub = EventHub::new(store.clone(), &group).start();
        let config_view = ConfigView::new(
            store.clone(),
            group.clone(),
            is_master,
            config.clone(),
            queues.clone(),
            hub.clone(),
            metrics.clone(),
        )
        .start();
        hub.do_send(SetConfigListener(config_view.clone().recipient()));
        // Serve with the configuration loaded when Redis is up; if it is
        // not, the view keeps trying and /readyz says 503 meanwhile.
        let _ = config_view.send(LoadNow).await;

        let node_id = settings.node_id();
        let leader_status = LeaderStatus::default();
        // The leader gets its own thread and Redis connection so nothing on
        // the HTTP or ticket path can delay lease renewal.
        let leader_arbiter = Arbiter::new();
        let leader = {
            let (url, redis, group, node, timing, status, metrics) = (
                redis_url.clone(),
                settings.redis.clone(),
                group.clone(),
                node_id.clone(),
                settings.leader.clone(),
                leader_status.clone(),
                metrics.clone(),
            );
            Leader::start_in_arbiter(&leader_arbiter.handle(), move |_| {
                let store = Store::connect(&url, &redis)
                    .expect("the URL was accepted by the main connection");
                Leader::new(store, group, node, timing, status, metrics)
            })
        };
        let day_closer = DayCloser::new(
            store.clone(),
            group.clone(),
            is_master,
            config.clone(),
            metrics.clone(),
        )
        .start();
        leader.do_send(SubscribeLeadership {
            gained: day_closer.clone().recipient(),
            lost: day_closer.recipient(),
        });
        let (media, media_arbiter) =
            start_media(&settings, &redis_url, &group, &node_id, &metrics, &leader)?;
        if settings.node.role == NodeRole::Slave {
            let upstream = crate::upstream::UpstreamClient::new(
                settings.upstream.master_urls.clone(),
                settings.upstream.token.clone(),
            );
            let mirror =
                ConfigMirror::new(store.clone(), group.clone(), upstream, metrics.clone()).start();
            leader.do_send(SubscribeLeadership {
                gained: mirror.clone().recipient(),
                lost: mirror.recipient(),
            });
        }

        let state = web::Data::new(AppState {
            node_id: node_id.clone(),
            role: settings.node.role,
            group,
            store: store.clone(),
            config,
            queues,
            hub,
            config_view,
            metrics,
            tokens: Tokens::from_settings(&settings.auth),
            leader: leader_status,
            media,
            media_settings: settings.media.clone(),
        });
        let store_for_membership = store;
        let json_limit = settings.http.max_json_bytes;
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(http::json_config(json_limit))
                .app_data(http::query_config())
                .wrap(http::middleware::RequestMetrics)
                .configure(http::configure)
                .default_service(web::to(http::not_found))
        })
        .shutdown_timeout(5)
        // Signals are ours: on SIGTERM the lease goes first, then the drain.
        .disable_signals();
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let server = server
            .bind(&settings.http.listen)
            .with_context(|| format!("cannot listen on {}", settings.http.listen))?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .context("no bound address")?;
        let advertise = if settings.http.advertise_url.is_empty() {
            let host = settings
                .http
                .listen
                .rsplit_once(':')
                .map_or("127.0.0.1", |(h, _)| h);
            format!("http://{host}:{port}")
        } else {
            settings.http.advertise_url.clone()
        };
        let membership =
            Membership::new(store_for_membership, settings.group(), node_id, advertise).start();
        Ok(Application {
            port,
            server: server.run(),
            redis_url,
            embedded,
            leader,
            leader_arbiter,
            media_arbiter,
            membership,
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
                let _ = self.leader.send(Release).await;
                let _ = self.membership.send(Leave).await;
                // The server future must be polled for the stop command to
                // be processed, so drive both together.
                let ((), result) = futures::join!(handle.stop(true), server);
                result
            }
        };
        self.leader_arbiter.stop();
        self.media_arbiter.stop();
        if let Some(mut redis) = self.embedded.take() {
            redis.stop();
        }
        result
    }
}

/// Opens this node's media (the library on a master, the blob store under
/// `<data_dir>/media` on a slave) and starts the `MediaDistributor` on its
/// own Arbiter, with its own Redis connection: hashing and file writes never
/// run on the ticket queues' thread.
fn start_media(
    settings: &Settings,
    redis_url: &str,
    group: &crate::domain::Id,
    node_id: &str,
    metrics: &Arc<Metrics>,
    leader: &Addr<Leader>,
) -> anyhow::Result<(MediaHandle, Arbiter)> {
    let arbiter = Arbiter::new();
    let media = &settings.media;
    match settings.node.role {
        NodeRole::Master => {
            let library = crate::blobs::Library::open(&media.library_dir)
                .with_context(|| format!("media.library_dir {}", media.library_dir.display()))?;
            let handle = MediaHandle::new(MediaSource::Library(Arc::new(library)));
            let (for_actor, media) = (handle.clone(), media.clone());
            MediaDistributor::start_in_arbiter(&arbiter.handle(), move |_| {
                MediaDistributor::master(for_actor, &media)
            });
            Ok((handle, arbiter))
        }
        NodeRole::Slave => {
            let dir = settings.node.data_dir.join("media");
            let store = crate::blobs::BlobStore::open(&dir)
                .with_context(|| format!("media mirror in {}", dir.display()))?;
            let handle = MediaHandle::new(MediaSource::Mirror(Arc::new(store)));
            let peer_token = settings
                .auth
                .peer_tokens
                .first()
                .cloned()
                .unwrap_or_else(|| settings.upstream.token.clone());
            let upstream = crate::upstream::UpstreamClient::new(
                settings.upstream.master_urls.clone(),
                settings.upstream.token.clone(),
            );
            let (url, redis, group, node_id, for_actor, media, metrics) = (
                redis_url.to_owned(),
                settings.redis.clone(),
                group.clone(),
                node_id.to_owned(),
                handle.clone(),
                media.clone(),
                metrics.clone(),
            );
            let distributor = MediaDistributor::start_in_arbiter(&arbiter.handle(), move |_| {
                let store = Store::connect(&url, &redis)
                    .expect("the URL was accepted by the main connection");
                MediaDistributor::slave(MirrorContext {
                    store,
                    group,
                    node_id,
                    handle: for_actor,
                    settings: media,
                    upstream,
                    peer_token,
                    metrics,
                })
            });
            leader.do_send(SubscribeLeadership {
                gained: distributor.clone().recipient(),
                lost: distributor.recipient(),
            });
            Ok((handle, arbiter))
        }
    }
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
