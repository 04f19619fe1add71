//! Following the group's Redis master through Sentinel: asking the
//! sentinels where it is, and noticing at once when a request says it may
//! have moved.
//!
//! Two things wake the resolver (the task in
//! [`Store::follow_sentinels`](super::Store)): its poll
//! (`redis.sentinel_poll_ms`, 200 ms by default), and a request that failed
//! with `READONLY` (the master it went to was demoted to a replica) or with
//! a lost connection (the master is down). Every command goes through a
//! [`WatchedConn`], which sees those failures and wakes the resolver
//! without waiting for the poll. The resolver then asks every sentinel and
//! moves only when a majority names another master.
//!
//! [`client`] makes every Redis client of the store: the password
//! (`redis.password`, `redis.sentinel_password`) and TLS (`rediss://`,
//! `redis.sentinel_tls`, `redis.tls_ca_file`) are applied there.
//!
//! Owns the sentinel protocol, the wake-up and client construction; knows nothing of keys,
//! scripts or what a node does with a failover (it reports
//! [`FailoverSignal`]s to an observer, which counts them).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::Notify;

use super::group_commit::GroupCommit;
use super::{StoreError, StoreResult};
use crate::settings::{RedisSettings, Secret};

/// Why a failed request makes the resolver look at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suspicion {
    /// The master answered `READONLY`: it is a replica now.
    ReadOnly,
    /// The connection to the master was lost or refused.
    ConnectionLost,
}

/// What woke the resolver before it moved to another master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Its regular poll.
    Poll,
    /// A request that failed (see [`Suspicion`]).
    Request,
}

/// What following the sentinels reports (the node counts these in its
/// metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverSignal {
    /// A request failed in a way that says the master may have moved; the
    /// resolver was woken.
    Suspected(Suspicion),
    /// This connection moved to another master; what woke the resolver.
    Moved(Wake),
}

/// Receives [`FailoverSignal`]s; called on the request's task, so it must
/// be quick (increment a counter).
pub type FailoverObserver = Arc<dyn Fn(FailoverSignal) + Send + Sync>;

/// The bell a failed request rings, shared by a handle's connections and
/// its resolver task.
pub(crate) struct Watch {
    wake: Notify,
    observer: FailoverObserver,
}

impl Watch {
    pub(crate) fn new(observer: FailoverObserver) -> Arc<Watch> {
        Arc::new(Watch {
            wake: Notify::new(),
            observer,
        })
    }

    /// Wakes the resolver when a request failed in a way that says the
    /// master may have moved.
    fn saw_error(&self, error: &RedisError) {
        if let Some(suspicion) = suspicion(error) {
            self.suspect(suspicion);
        }
    }

    /// A server's error arrives as a reply value (the caller turns it into
    /// an error later): `READONLY` is one.
    fn saw_reply(&self, value: &Value) {
        if let Value::ServerError(e) = value {
            if e.kind() == Some(redis::ServerErrorKind::ReadOnly) {
                self.suspect(Suspicion::ReadOnly);
            }
        }
    }

    /// Many failing requests at once wake the resolver once: `Notify` keeps
    /// at most one pending wake-up.
    fn suspect(&self, suspicion: Suspicion) {
        (self.observer)(FailoverSignal::Suspected(suspicion));
        self.wake.notify_one();
    }

    pub(crate) fn report(&self, signal: FailoverSignal) {
        (self.observer)(signal);
    }

    /// Waits for the next poll or a failed request, whichever comes first.
    pub(crate) async fn next(&self, poll: Duration) -> Wake {
        tokio::select! {
            _ = tokio::time::sleep(poll) => Wake::Poll,
            _ = self.wake.notified() => Wake::Request,
        }
    }
}

fn suspicion(error: &RedisError) -> Option<Suspicion> {
    if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly) {
        Some(Suspicion::ReadOnly)
    } else if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
    {
        Some(Suspicion::ConnectionLost)
    } else {
        None
    }
}

/// A connection whose failures are watched (with Sentinel; with a plain
/// URL there is nothing to re-resolve and `watch` is `None`). Cheap to
/// clone, like the multiplexed connection inside.
#[derive(Clone)]
pub(crate) struct WatchedConn {
    inner: ConnectionManager,
    watch: Option<Arc<Watch>>,
    /// Durability `replicated`: the group commit of this writer connection.
    commit: Option<Arc<GroupCommit>>,
    /// Durability `replicated`: the Redis client id (`CLIENT ID`) of the
    /// connection the last command went over, asked in the same pipeline,
    /// so a `WAIT` is only trusted when it ran on that very connection.
    client_id: Option<i64>,
}

impl WatchedConn {
    pub(crate) fn new(inner: ConnectionManager, watch: Option<Arc<Watch>>) -> WatchedConn {
        WatchedConn {
            inner,
            watch,
            commit: None,
            client_id: None,
        }
    }

    /// A writer connection whose changes `commit` confirms.
    pub(crate) fn committing(mut self, commit: Arc<GroupCommit>) -> WatchedConn {
        self.commit = Some(commit);
        self
    }

    pub(crate) fn commit(&self) -> Option<&Arc<GroupCommit>> {
        self.commit.as_ref()
    }

    /// The client id of the connection the last command went over (writer
    /// connections only).
    pub(crate) fn client_id(&self) -> Option<i64> {
        self.client_id
    }

    /// A writer connection sends `CLIENT ID` in the same pipeline as each
    /// command: both run on one connection or fail together, so the id
    /// names the connection the change was made on. A transparent
    /// reconnect between the change and its `WAIT` would otherwise let a
    /// `WAIT` on the new connection, which covers none of the old one's
    /// writes, confirm a change no replica has.
    async fn identified(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        self.client_id = None;
        let mut pipeline = redis::pipe();
        pipeline.add_command(cmd.clone()).cmd("CLIENT").arg("ID");
        let mut values = self.inner.req_packed_commands(&pipeline, 0, 2).await?;
        if let (Some(Value::Int(id)), 2) = (values.last(), values.len()) {
            self.client_id = Some(*id);
        }
        values.truncate(1);
        values.pop().ok_or_else(|| {
            RedisError::from((redis::ErrorKind::Io, "no reply to a pipelined command"))
        })
    }

    fn seen(&self, result: Result<Value, RedisError>) -> Result<Value, RedisError> {
        if let Some(watch) = &self.watch {
            match &result {
                Err(e) => watch.saw_error(e),
                Ok(value) => watch.saw_reply(value),
            }
        }
        result
    }

    fn seen_all(&self, result: Result<Vec<Value>, RedisError>) -> Result<Vec<Value>, RedisError> {
        if let Some(watch) = &self.watch {
            match &result {
                Err(e) => watch.saw_error(e),
                Ok(values) => values.iter().for_each(|v| watch.saw_reply(v)),
            }
        }
        result
    }
}

impl ConnectionLike for WatchedConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = if self.commit.is_some() {
                self.identified(cmd).await
            } else {
                self.inner.req_packed_command(cmd).await
            };
            self.seen(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.seen_all(result)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// Asks every sentinel where the master is and returns the address a
/// majority of the configured sentinels gives (`redis://host:port/`), or
/// `None`. A majority, not the first answer: right after a failover a
/// sentinel that has not heard of it yet still names the old master, which
/// may be back (empty) by then; following it would split the group over two
/// masters.
pub(crate) async fn resolve(
    sentinels: &[String],
    master_name: &str,
    settings: &RedisSettings,
) -> Option<String> {
    let limit = Duration::from_millis(settings.connect_timeout_ms);
    let answers = futures::future::join_all(
        sentinels
            .iter()
            .map(|sentinel| ask_sentinel(sentinel, master_name, settings, limit)),
    )
    .await;
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for url in answers.into_iter().flatten() {
        *counts.entry(url).or_default() += 1;
    }
    counts
        .into_iter()
        .find(|(_, n)| n * 2 > sentinels.len())
        .map(|(url, _)| url)
}

async fn ask_sentinel(
    sentinel: &str,
    master_name: &str,
    settings: &RedisSettings,
    limit: Duration,
) -> Option<String> {
    let scheme = scheme(settings);
    let url = format!("{scheme}://{sentinel}/");
    let client = match client(&url, &settings.sentinel_password, &settings.tls_ca_file) {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(%sentinel, error = %e, "cannot make a client for this sentinel");
            return None;
        }
    };
    let ask = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(master_name)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    };
    match tokio::time::timeout(limit, ask).await {
        Ok(Ok(Some((host, port)))) => Some(format!("{scheme}://{host}:{port}/")),
        Ok(Ok(None)) => {
            tracing::debug!(%sentinel, "sentinel knows no such master");
            None
        }
        Ok(Err(e)) if e.kind() == redis::ErrorKind::AuthenticationFailed => {
            // Not a passing trouble: say it where an operator looks.
            tracing::warn!(%sentinel, error = %e, "sentinel refused redis.sentinel_password");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(%sentinel, error = %e, "sentinel did not answer");
            None
        }
        Err(_) => {
            tracing::debug!(%sentinel, "sentinel timed out");
            None
        }
    }
}

/// `rediss` when the sentinels (and so the masters they name) speak TLS.
fn scheme(settings: &RedisSettings) -> &'static str {
    if settings.sentinel_tls {
        "rediss"
    } else {
        "redis"
    }
}

/// A client for `url` with `password` (when set; it takes the place of one
/// in the URL). A `rediss://` URL trusts the PEM certificates in `ca_file`,
/// or the system's roots when it is empty.
pub(crate) fn client(url: &str, password: &Secret, ca_file: &str) -> StoreResult<redis::Client> {
    let mut info = url.into_connection_info().map_err(StoreError::Redis)?;
    if !password.is_empty() {
        let redis = info
            .redis_settings()
            .clone()
            .set_password(password.expose());
        info = info.set_redis_settings(redis);
    }
    let tls = matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. });
    if !tls || ca_file.is_empty() {
        return redis::Client::open(info).map_err(StoreError::Redis);
    }
    let root_cert = std::fs::read(ca_file)
        .map_err(|e| StoreError::Corrupt(format!("redis.tls_ca_file {ca_file}: {e}")))?;
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(root_cert),
    };
    redis::Client::build_with_tls(info, certificates).map_err(StoreError::Redis)
}
