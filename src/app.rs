//! Wiring: Redis (embedded or configured), the actors, and the HTTP server.
//!
//! [`Application::build`] binds the listener (port 0 works, for tests) and
//! starts the actors once; [`Application::run_until_stopped`] serves until
//! SIGINT/SIGTERM, then stops the embedded Redis, which flushes its AOF.

use std::sync::Arc;

use actix::Actor;
use actix_web::{dev::Server, web, App, HttpServer};
use anyhow::Context as _;

use crate::actors::config_view::LoadNow;
use crate::actors::event_hub::SetConfigListener;
use crate::actors::{ConfigHandle, ConfigView, EventHub, TicketQueues};
use crate::http::{self, AppState, Tokens};
use crate::metrics::Metrics;
use crate::settings::{Role, Settings};
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
        let is_master = settings.node.role == Role::Master;
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

        let state = web::Data::new(AppState {
            node_id: settings.node_id(),
            role: settings.node.role,
            group,
            store,
            config,
            queues,
            hub,
            config_view,
            metrics,
            tokens: Tokens::from_settings(&settings.auth),
        });
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
        .shutdown_timeout(5);
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
        Ok(Application {
            port,
            server: server.run(),
            redis_url,
            embedded,
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

    /// Serves until the server is stopped (SIGINT/SIGTERM), then stops the
    /// embedded Redis.
    pub async fn run_until_stopped(mut self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some(mut redis) = self.embedded.take() {
            redis.stop();
        }
        result
    }
}
