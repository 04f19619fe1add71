//! `spawn_app()`: the real [`Application`] built in-process on port 0 with
//! its own fresh [`RedisServer`], for tests that need one node and a quick
//! start. Run it inside `#[actix_web::test]`: the node's actors live on the
//! test's thread, so a test must wait with `.await`, never by blocking.

use std::collections::HashMap;
use std::ops::Deref;

use turnus::app::{Application, StartOptions};
use turnus::settings::Settings;

use super::api::ApiClient;
use super::proxy::Proxy;
use super::redis::RedisServer;
use super::token_env;

pub struct TestApp {
    pub api: ApiClient,
    #[allow(dead_code)] // for tests that build URLs by hand
    pub port: u16,
    pub redis: RedisServer,
    /// The node's media library directory (removed on drop).
    pub media_dir: tempfile::TempDir,
}

impl Deref for TestApp {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

/// The environment a test node is configured with.
pub fn test_env(redis_url: &str) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = token_env().into_iter().collect();
    for (key, value) in [
        ("TURNUS__NODE__ID", "test-node"),
        ("TURNUS__HTTP__LISTEN", "127.0.0.1:0"),
        ("TURNUS__HTTP__WORKERS", "2"),
        ("TURNUS__REDIS__URL", redis_url),
        ("TURNUS__MEDIA__MAX_FILE_BYTES", "1048576"),
        ("TURNUS__MEDIA__SCAN_INTERVAL_MS", "100"),
    ] {
        env.insert(key.to_owned(), value.to_owned());
    }
    env
}

/// Builds and starts a node against a fresh Redis.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Like [`spawn_app`], with more `TURNUS__*` settings.
pub async fn spawn_app_with(settings: &[(&str, &str)]) -> TestApp {
    let redis = RedisServer::start();
    let url = redis.url();
    start_with(redis, &url, settings).await
}

/// Like [`spawn_app`], but the node reaches its Redis through a [`Proxy`]
/// the test can cut and heal.
pub async fn spawn_app_behind_proxy() -> (TestApp, Proxy) {
    let redis = RedisServer::start();
    let proxy = Proxy::start(([127, 0, 0, 1], redis.port()).into()).await;
    let url = format!("redis://127.0.0.1:{}/", proxy.port());
    (start(redis, &url).await, proxy)
}

async fn start(redis: RedisServer, redis_url: &str) -> TestApp {
    start_with(redis, redis_url, &[]).await
}

async fn start_with(redis: RedisServer, redis_url: &str, extra: &[(&str, &str)]) -> TestApp {
    init_logging();
    let media_dir = tempfile::tempdir().expect("a temp media library");
    let mut env = test_env(redis_url);
    env.insert(
        "TURNUS__MEDIA__LIBRARY_DIR".to_owned(),
        media_dir.path().display().to_string(),
    );
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let settings = Settings::load(None, &env).expect("test settings load");
    let app = Application::build(settings, StartOptions::default())
        .await
        .expect("the application builds");
    let port = app.port();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        api: ApiClient::new(format!("http://127.0.0.1:{port}")),
        port,
        redis,
        media_dir,
    }
}

/// Node logs go to the test output when `TEST_LOG` is set.
fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
            .with_test_writer()
            .try_init();
    }
}
