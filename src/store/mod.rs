//! The only code that speaks Redis: the connection, key names, Lua scripts,
//! and the embedded `redis-server` the default installation runs. Scripts
//! are assembled in [`scripts`] and nowhere else.
//!
//! Every state change is one Lua script, so it is atomic and carries its own
//! outbox event. Key names are built in [`keys`] and nowhere else. Callers
//! get typed results and a [`StoreError`]; they never see a Redis type.

pub mod cluster;
pub mod config;
pub mod embedded;
pub mod fenced;
pub mod keys;
pub mod links;
pub mod media;
pub mod mirror;
pub mod scripts;
pub mod tickets;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use crate::domain::Id;
use crate::settings::RedisSettings;

pub use scripts::script_source;
use scripts::Scripts;
pub use tickets::{Outcome, QueueContext, QueueHead, TicketView};

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis cannot be reached or did not answer in time.
    #[error("redis is unavailable")]
    Unavailable(#[source] redis::RedisError),
    /// Redis is up but still reading its data set after a restart (it
    /// answers `LOADING` until done).
    #[error("redis is loading its data set")]
    Loading(#[source] redis::RedisError),
    /// Redis answered with an error.
    #[error("redis command failed")]
    Redis(#[source] redis::RedisError),
    /// A reply did not have the shape the scripts promise.
    #[error("unexpected reply from redis: {0}")]
    Corrupt(String),
    /// A leader-only write was refused: the group's epoch is no longer the
    /// caller's.
    #[error("fenced: held epoch {held}, current epoch {current}")]
    Fenced { held: u64, current: u64 },
    /// A compare-and-swap lost to concurrent writers this many times in a
    /// row; nothing was written. Trying again later can succeed.
    #[error("gave up after {attempts} concurrent modifications")]
    Contention { attempts: usize },
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading) {
            StoreError::Loading(e)
        } else if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            StoreError::Unavailable(e)
        } else {
            StoreError::Redis(e)
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How often the connection manager retries a reconnect before a request
/// fails (and the caller answers 503), and the longest delay between tries.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// A handle on the group's Redis. Cheap to clone: every clone shares one
/// multiplexed connection, so concurrent requests are pipelined on one
/// socket instead of each checking a connection out of a pool.
#[derive(Clone)]
pub struct Store {
    client: redis::Client,
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
}

impl Store {
    /// Connects lazily: the node starts (and `/readyz` says 503) even when
    /// Redis is down, and the connection manager reconnects by itself.
    pub fn connect(url: &str, settings: &RedisSettings) -> StoreResult<Store> {
        let client = redis::Client::open(url).map_err(StoreError::Redis)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)))
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let conn = client
            .get_connection_manager_lazy(config)
            .map_err(StoreError::Redis)?;
        Ok(Store {
            client,
            conn,
            scripts: Arc::new(Scripts::new()),
        })
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

/// Pairs a flat `HGETALL` reply into (field, value).
pub(crate) fn pairs(flat: Vec<String>) -> impl Iterator<Item = (String, String)> {
    let mut it = flat.into_iter();
    std::iter::from_fn(move || Some((it.next()?, it.next()?)))
}

/// A script reply as a list of strings (status first).
pub(crate) fn strings(value: Value) -> StoreResult<Vec<String>> {
    redis::from_redis_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// What the node's event subscription delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The group's configuration changed (or may have).
    ConfigChanged,
    /// A ticket event of a branch, as the scripts published it (JSON).
    TicketEvent { branch: String, payload: String },
}

impl Store {
    /// Subscribes to the group's configuration changes and every branch's
    /// ticket events on a dedicated connection (pub/sub cannot share the
    /// multiplexed one). The stream ends when the connection drops.
    pub async fn subscribe_notices(
        &self,
        group: &Id,
    ) -> StoreResult<futures::stream::BoxStream<'static, Notice>> {
        use futures::StreamExt;
        let config_channel = keys::config_channel(group);
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.psubscribe(keys::all_branch_events_pattern()).await?;
        pubsub.subscribe(&config_channel).await?;
        Ok(pubsub
            .into_on_message()
            .filter_map(move |msg| {
                let channel = msg.get_channel_name();
                let notice = if channel == config_channel {
                    Some(Notice::ConfigChanged)
                } else {
                    keys::branch_of_events_channel(channel).map(|branch| Notice::TicketEvent {
                        branch: branch.to_owned(),
                        payload: msg.get_payload::<String>().unwrap_or_default(),
                    })
                };
                futures::future::ready(notice)
            })
            .boxed())
    }
}
