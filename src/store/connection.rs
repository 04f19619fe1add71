//! The connection to the group's Redis: a URL (the embedded default or a
//! configured one) or a master found through Redis Sentinel; the hot path's
//! one multiplexed connection; and durability `replicated` (`WAIT`).
//!
//! With Sentinel, a resolver task asks the sentinels for the master's
//! address (every `redis.sentinel_poll_ms`, and at once when a request met
//! `READONLY` or a lost connection, see [`super::sentinel`]) and, when it
//! moved (a failover), swaps in connections to the new master. A request in
//! flight on the old master fails (503; the client retries with its
//! `Idempotency-Key`), the next one goes to the new master. Leadership stays
//! correct across a promotion because epochs only go up (the lease script
//! takes a floor, see [`super::memory`]).
//!
//! Owns connections; knows nothing of keys or scripts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::group_commit::GroupCommit;
use super::memory::StoreMemory;
use super::scripts::Scripts;
use super::sentinel::{self, FailoverObserver, FailoverSignal, Watch, WatchedConn};
use super::{StoreError, StoreResult};
use crate::settings::{Durability, RedisSettings};

/// A handle on the group's Redis. Cheap to clone: every clone shares one
/// multiplexed connection, so concurrent requests are pipelined on one
/// socket instead of each checking a connection out of a pool.
#[derive(Clone)]
pub struct Store {
    target: Target,
    settings: Arc<RedisSettings>,
    link: Arc<RwLock<Arc<Link>>>,
    scripts: Arc<Scripts>,
    memory: StoreMemory,
    /// With Sentinel: what this handle's failed requests ring to wake its
    /// resolver.
    watch: Option<Arc<Watch>>,
}

/// Where the group's Redis is.
#[derive(Clone)]
enum Target {
    Url,
    Sentinel {
        sentinels: Vec<String>,
        master_name: String,
        observer: FailoverObserver,
    },
}

/// The connections to one Redis address.
struct Link {
    url: String,
    client: redis::Client,
    conn: ConnectionManager,
    replicated: Option<Replicated>,
}

/// Durability `replicated`: ticket changes go over writer connections of
/// their own, and concurrent changes on one share a `WAIT` (see
/// [`super::group_commit`]); reads and other work keep the main connection,
/// which a `WAIT` would block.
struct Replicated {
    writers: Vec<Arc<GroupCommit>>,
    next: AtomicUsize,
}

/// Writer connections for `replicated` ticket changes: while one is blocked
/// in its `WAIT`, changes go on over the others, and each `WAIT` confirms
/// every change that got its reply on its connection before it.
const REPLICATED_WRITERS: usize = 4;

impl Link {
    /// Connects lazily: nothing is sent until the first command.
    /// `redis.password` applies (only with Sentinel: the settings check
    /// refuses it beside `redis.url`, whose password is in the URL).
    fn open(url: &str, settings: &RedisSettings) -> StoreResult<Link> {
        let client = sentinel::client(url, &settings.password, &settings.tls_ca_file)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_millis(settings.response_timeout_ms)))
            .set_connection_timeout(Some(Duration::from_millis(settings.connect_timeout_ms)))
            .set_number_of_retries(super::RECONNECT_RETRIES)
            .set_max_delay(super::RECONNECT_MAX_DELAY);
        let conn = client
            .get_connection_manager_lazy(config.clone())
            .map_err(StoreError::Redis)?;
        let replicated = match settings.durability {
            Durability::Async => None,
            Durability::Replicated => {
                // WAIT blocks for up to its timeout: the reply must be
                // allowed that long on top of the usual.
                let config = config.set_response_timeout(Some(Duration::from_millis(
                    settings.response_timeout_ms + settings.replication_timeout_ms,
                )));
                let writers = (0..REPLICATED_WRITERS)
                    .map(|_| {
                        let conn = client.get_connection_manager_lazy(config.clone())?;
                        Ok(Arc::new(GroupCommit::new(
                            conn,
                            settings.min_replicas,
                            settings.replication_timeout_ms,
                        )))
                    })
                    .collect::<redis::RedisResult<_>>()
                    .map_err(StoreError::Redis)?;
                Some(Replicated {
                    writers,
                    next: AtomicUsize::new(0),
                })
            }
        };
        Ok(Link {
            url: url.to_owned(),
            client,
            conn,
            replicated,
        })
    }
}

impl Store {
    /// Connects lazily to `url`: the node starts (and `/readyz` says 503)
    /// even when Redis is down, and the connection manager reconnects by
    /// itself.
    pub fn connect(url: &str, settings: &RedisSettings) -> StoreResult<Store> {
        Ok(Store::new(
            Target::Url,
            Link::open(url, settings)?,
            settings,
            StoreMemory::default(),
        ))
    }

    /// Finds the master through `settings.sentinels` (waiting up to the
    /// connect timeout for one to answer) and follows it from then on,
    /// telling `observer` what it notices.
    pub async fn connect_sentinel(
        settings: &RedisSettings,
        observer: FailoverObserver,
    ) -> StoreResult<Store> {
        let target = Target::Sentinel {
            sentinels: settings.sentinels.clone(),
            master_name: settings.master_name.clone(),
            observer,
        };
        let url = resolve(&target, settings).await.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "no sentinel of {:?} knows a master named {:?}",
                settings.sentinels, settings.master_name
            ))
        })?;
        tracing::info!(%url, master_name = %settings.master_name, "redis master found through sentinel");
        let store = Store::new(
            target,
            Link::open(&url, settings)?,
            settings,
            StoreMemory::default(),
        );
        store.follow_sentinels();
        Ok(store)
    }

    fn new(target: Target, link: Link, settings: &RedisSettings, memory: StoreMemory) -> Store {
        let watch = match &target {
            Target::Url => None,
            Target::Sentinel { observer, .. } => Some(Watch::new(observer.clone())),
        };
        Store {
            watch,
            target,
            settings: Arc::new(settings.clone()),
            link: Arc::new(RwLock::new(Arc::new(link))),
            scripts: Arc::new(Scripts::new()),
            memory,
        }
    }

    /// Another handle with its own connection (the leader's) to the same
    /// Redis, following the same sentinels, sharing this node's memory of
    /// the store.
    pub fn own_connection(&self) -> StoreResult<Store> {
        let url = self.url();
        let store = Store::new(
            self.target.clone(),
            Link::open(&url, &self.settings)?,
            &self.settings,
            self.memory.clone(),
        );
        store.follow_sentinels();
        Ok(store)
    }

    /// The address of the Redis this handle talks to now.
    pub fn url(&self) -> String {
        self.link().url.clone()
    }

    /// What this node remembers about its store (identity, floors).
    pub fn memory(&self) -> &StoreMemory {
        &self.memory
    }

    fn link(&self) -> Arc<Link> {
        self.link.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn conn(&self) -> WatchedConn {
        WatchedConn::new(self.link().conn.clone(), self.watch.clone())
    }

    pub(crate) fn client(&self) -> redis::Client {
        self.link().client.clone()
    }

    /// The connection a ticket change goes over; pass it to
    /// [`Store::confirm`] after the change.
    pub(crate) fn write_conn(&self) -> WatchedConn {
        let link = self.link();
        match &link.replicated {
            None => WatchedConn::new(link.conn.clone(), self.watch.clone()),
            Some(r) => {
                // A change sent on a connection blocked in its WAIT waits in
                // Redis until that WAIT returns: prefer one with none in
                // flight, starting from the next in turn.
                let start = r.next.fetch_add(1, Ordering::Relaxed);
                let n = r.writers.len();
                let i = (0..n)
                    .map(|k| (start + k) % n)
                    .find(|&i| !r.writers[i].waiting())
                    .unwrap_or(start % n);
                let writer = r.writers[i].clone();
                WatchedConn::new(writer.conn().clone(), self.watch.clone()).committing(writer)
            }
        }
    }

    /// Durability `replicated`: waits until `min_replicas` replicas have
    /// every write made so far on `conn` (so the caller's change too), by a
    /// `WAIT` sent after it on that connection (shared with the changes
    /// that waited at the same time), or fails with
    /// [`StoreError::ReplicationTimeout`]. `async`: nothing.
    pub(crate) async fn confirm(&self, conn: &mut WatchedConn) -> StoreResult<()> {
        let Some(commit) = conn.commit() else {
            return Ok(());
        };
        let acked = match conn.client_id() {
            Some(id) => commit.confirm(id).await?,
            // No id for the change's connection: nothing can vouch for it.
            None => 0,
        };
        let (wanted, timeout_ms) = (
            self.settings.min_replicas,
            self.settings.replication_timeout_ms,
        );
        if acked >= wanted {
            Ok(())
        } else {
            Err(StoreError::ReplicationTimeout {
                acked,
                wanted,
                timeout_ms,
            })
        }
    }

    pub(crate) fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// With Sentinel: starts the task that swaps in the new master's
    /// connections after a failover. It ends with the last clone of this
    /// handle.
    fn follow_sentinels(&self) {
        let Some(watch) = self.watch.clone() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(
                "no runtime to follow the sentinels on; this connection will not follow a failover"
            );
            return;
        };
        let slot: Weak<RwLock<Arc<Link>>> = Arc::downgrade(&self.link);
        let (target, settings) = (self.target.clone(), self.settings.clone());
        let poll = Duration::from_millis(settings.sentinel_poll_ms);
        runtime.spawn(async move {
            loop {
                let woken_by = watch.next(poll).await;
                let Some(slot) = slot.upgrade() else { return };
                let Some(url) = resolve(&target, &settings).await else {
                    continue; // no majority answered: keep what we have
                };
                let current = slot.read().unwrap_or_else(|e| e.into_inner()).url.clone();
                if url == current {
                    continue;
                }
                match Link::open(&url, &settings) {
                    Ok(link) => {
                        tracing::warn!(from = %current, to = %url, ?woken_by, "redis master moved (sentinel failover); reconnecting");
                        *slot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(link);
                        watch.report(FailoverSignal::Moved(woken_by));
                    }
                    Err(e) => tracing::warn!(error = %e, %url, "cannot open the new master"),
                }
            }
        });
    }
}

/// The master a majority of the sentinels names, or `None` (also for a
/// plain URL target).
async fn resolve(target: &Target, settings: &RedisSettings) -> Option<String> {
    let Target::Sentinel {
        sentinels,
        master_name,
        ..
    } = target
    else {
        return None;
    };
    sentinel::resolve(sentinels, master_name, settings).await
}
