//! The only code that speaks Redis: the connection, key names, Lua scripts,
//! and the embedded `redis-server` the default installation runs.
//!
//! Every state change is one Lua script, so it is atomic and carries its own
//! outbox event. Key names are built in [`keys`] and nowhere else. Callers
//! get typed results and a [`StoreError`]; they never see a Redis type.

pub mod cluster;
pub mod config;
pub mod embedded;
pub mod fenced;
pub mod keys;
pub mod media;
pub mod mirror;
pub mod tickets;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use crate::settings::RedisSettings;

pub use tickets::{Outcome, QueueContext, QueueHead, TicketView};

/// What can go wrong talking to Redis.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis cannot be reached or did not answer in time.
    #[error("redis is unavailable")]
    Unavailable(#[source] redis::RedisError),
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
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
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

const PRELUDE: &str = include_str!("lua/prelude.lua");

fn branch_script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

/// The Lua scripts, hashed once at start-up and run by EVALSHA.
pub(crate) struct Scripts {
    pub issue: Script,
    pub call: Script,
    pub finish: Script,
    pub recall: Script,
    pub transfer: Script,
    pub ticket: Script,
    pub queues: Script,
    pub display: Script,
    pub config_put: Script,
    pub config_load: Script,
    pub lease_acquire: Script,
    pub lease_renew: Script,
    pub lease_release: Script,
    pub heartbeat: Script,
    pub leave: Script,
    pub cluster_state: Script,
    pub fence_probe: Script,
    pub raise_fence: Script,
    pub close_day: Script,
    pub mirror_apply: Script,
    pub upstream_status: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let (mirror_apply, upstream_status) = mirror::scripts();
        Scripts {
            issue: branch_script(include_str!("lua/issue.lua")),
            call: branch_script(include_str!("lua/call.lua")),
            finish: branch_script(include_str!("lua/finish.lua")),
            recall: branch_script(include_str!("lua/recall.lua")),
            transfer: branch_script(include_str!("lua/transfer.lua")),
            ticket: branch_script(include_str!("lua/ticket.lua")),
            queues: branch_script(include_str!("lua/queues.lua")),
            display: branch_script(include_str!("lua/display.lua")),
            config_put: Script::new(include_str!("lua/config_put.lua")),
            config_load: Script::new(include_str!("lua/config_load.lua")),
            lease_acquire: Script::new(include_str!("lua/lease_acquire.lua")),
            lease_renew: Script::new(include_str!("lua/lease_renew.lua")),
            lease_release: Script::new(include_str!("lua/lease_release.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            leave: Script::new(include_str!("lua/leave.lua")),
            cluster_state: Script::new(include_str!("lua/cluster_state.lua")),
            fence_probe: fenced::group_fenced(include_str!("lua/fence_probe.lua")),
            raise_fence: fenced::branch_fenced(include_str!("lua/raise_fence.lua")),
            close_day: fenced::branch_fenced(include_str!("lua/close_day.lua")),
            mirror_apply,
            upstream_status,
        }
    }
}

/// The full text of a script by name, for `turnus script NAME` (the
/// benchmark loads the issue script into `redis-benchmark` with it).
pub fn script_source(name: &str) -> Option<String> {
    let body = match name {
        "issue" => include_str!("lua/issue.lua"),
        "call" => include_str!("lua/call.lua"),
        _ => return None,
    };
    Some(format!("{PRELUDE}\n{body}"))
}

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
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
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

/// A received pub/sub message: channel and payload.
pub struct Message {
    pub channel: String,
    pub payload: String,
}

impl Message {
    pub fn from_redis(msg: &redis::Msg) -> Message {
        Message {
            channel: msg.get_channel_name().to_owned(),
            payload: msg.get_payload::<String>().unwrap_or_default(),
        }
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

impl Store {
    /// Subscribes to `patterns` and `channels` on a dedicated connection
    /// (pub/sub cannot share the multiplexed one). The stream ends when the
    /// connection drops.
    pub async fn subscribe(
        &self,
        patterns: &[String],
        channels: &[String],
    ) -> StoreResult<futures::stream::BoxStream<'static, Message>> {
        use futures::StreamExt;
        let mut pubsub = self.client.get_async_pubsub().await?;
        for pattern in patterns {
            pubsub.psubscribe(pattern).await?;
        }
        for channel in channels {
            pubsub.subscribe(channel).await?;
        }
        Ok(pubsub
            .into_on_message()
            .map(|msg| Message::from_redis(&msg))
            .boxed())
    }
}
