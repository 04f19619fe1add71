//! The only code that speaks Redis: the connection, key names, Lua scripts,
//! and the embedded `redis-server` the default installation runs. Scripts
//! are assembled in [`scripts`] and nowhere else.
//!
//! Every state change is one Lua script, so it is atomic and carries its own
//! outbox event. Key names are built in [`keys`] and nowhere else. Callers
//! get typed results and a [`StoreError`]; they never see a Redis type.

pub mod cluster;
pub mod config;
pub mod connection;
pub mod embedded;
pub mod fenced;
pub mod group_commit;
pub mod keys;
pub mod links;
pub mod media;
pub mod memory;
pub mod mirror;
pub mod scripts;
pub mod sentinel;
pub mod stats;
pub mod stats_apply;
pub mod tickets;

use redis::Value;

use crate::domain::Id;

pub use connection::Store;
pub use scripts::script_source;
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
    /// An `Idempotency-Key` came again with a different request than the
    /// one it was first used for.
    #[error("this Idempotency-Key was used for another request")]
    IdempotencyKeyReused,
    /// Durability `replicated`: the change is made on the master but fewer
    /// than `wanted` replicas confirmed it in time.
    #[error("{acked} of {wanted} replicas confirmed the change within {timeout_ms} ms")]
    ReplicationTimeout {
        acked: u32,
        wanted: u32,
        timeout_ms: u64,
    },
    /// A compare-and-swap lost to concurrent writers this many times in a
    /// row; nothing was written. Trying again later can succeed.
    #[error("gave up after {attempts} concurrent modifications")]
    Contention { attempts: usize },
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::BusyLoading) {
            StoreError::Loading(e)
        } else if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
            // The master was demoted (a failover): the resolver is looking
            // for the new one; a retry shortly after succeeds.
            StoreError::Unavailable(e)
        } else if e.is_io_error()
            || e.is_timeout()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_unrecoverable_error()
        {
            StoreError::Unavailable(e)
        } else if e.code() == Some("IDEMPOTENCY_KEY_REUSED") {
            StoreError::IdempotencyKeyReused
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
const RECONNECT_MAX_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

impl Store {
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
        let memory = self.memory().clone();
        let mut pubsub = self.client().get_async_pubsub().await?;
        pubsub.psubscribe(keys::all_branch_events_pattern()).await?;
        pubsub.subscribe(&config_channel).await?;
        Ok(pubsub
            .into_on_message()
            .filter_map(move |msg| {
                let channel = msg.get_channel_name();
                let notice = if channel == config_channel {
                    Some(Notice::ConfigChanged)
                } else {
                    keys::branch_of_events_channel(channel).map(|branch| {
                        let payload = msg.get_payload::<String>().unwrap_or_default();
                        // Every node's numbers and ids raise this node's floors.
                        memory.note_event(branch, &payload);
                        Notice::TicketEvent {
                            branch: branch.to_owned(),
                            payload,
                        }
                    })
                };
                futures::future::ready(notice)
            })
            .boxed())
    }
}
