//! `ConfigView`: this node's view of the group's configuration.
//!
//! It loads the configuration from the group's Redis at start, again when
//! the [`EventHub`](super::EventHub) relays a change notification, and checks
//! the version once a second in case a notification was missed (pub/sub is
//! at-most-once). A snapshot is only ever replaced by one of a higher
//! version, so no node serves an older configuration after a newer one.
//! After each change it reconciles the ticket queues and tells live
//! displays of the affected branches (`config-changed`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;

use super::event_hub::{EventHub, LiveEvent, PublishLocal};
use super::node::NodeContext;
use super::ticket_queue::TicketQueues;
use crate::domain::config::ConfigSnapshot;
use crate::domain::{Branch, EventKind, Id};
use crate::metrics::Metrics;
use crate::store::Store;

const VERSION_CHECK: Duration = Duration::from_secs(1);

/// The current snapshot, shared with HTTP handlers. `None` until the first
/// load succeeds (the node is not ready until then). Long-polls wait on
/// [`ConfigHandle::versions`] instead of asking Redis in a loop.
#[derive(Clone)]
pub struct ConfigHandle {
    inner: Arc<RwLock<Option<Arc<ConfigSnapshot>>>>,
    version: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for ConfigHandle {
    fn default() -> Self {
        ConfigHandle {
            inner: Arc::default(),
            version: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl ConfigHandle {
    pub fn current(&self) -> Option<Arc<ConfigSnapshot>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notified with the version each time the snapshot changes.
    pub fn versions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.version.subscribe()
    }

    fn replace(&self, snapshot: Arc<ConfigSnapshot>) {
        let version = snapshot.version;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot);
        self.version.send_replace(version);
    }
}

/// The actor.
pub struct ConfigView {
    store: Store,
    group: Id,
    is_master: bool,
    handle: ConfigHandle,
    queues: TicketQueues,
    hub: Addr<EventHub>,
    metrics: Arc<Metrics>,
    loading: bool,
}

impl ConfigView {
    pub fn new(node: &NodeContext, hub: Addr<EventHub>) -> Self {
        ConfigView {
            store: node.store.clone(),
            group: node.group.clone(),
            is_master: node.is_master(),
            handle: node.config.clone(),
            queues: node.queues.clone(),
            hub,
            metrics: node.metrics.clone(),
            loading: false,
        }
    }

    fn current_version(&self) -> Option<u64> {
        self.handle.current().map(|s| s.version)
    }

    /// Loads the configuration and applies it; resolves to whether it loaded.
    fn load(&mut self) -> impl ActorFuture<Self, Output = bool> + 'static {
        let (store, group) = (self.store.clone(), self.group.clone());
        async move { store.load_config(&group).await }
            .into_actor(self)
            .map(|result, view, _| match result {
                Ok(snapshot) => {
                    view.apply(snapshot);
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load configuration");
                    false
                }
            })
    }

    /// A background reload; at most one runs at a time.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        if self.loading {
            return;
        }
        self.loading = true;
        let load = self.load().map(|_, view, _| view.loading = false);
        ctx.spawn(load);
    }

    fn apply(&mut self, mut snapshot: ConfigSnapshot) {
        let previous = self.handle.current();
        snapshot.track_group_changes(previous.as_deref());
        if let Some(p) = previous.as_ref().filter(|p| p.version > snapshot.version) {
            if !self.is_master {
                // A mirror never goes back to an older configuration.
                return;
            }
            // On the master the group's Redis is the source of truth; a
            // lower version means it lost data (no persistence, restored
            // backup). Serve what it has, loudly.
            tracing::error!(
                served = p.version,
                stored = snapshot.version,
                "the configuration version went backwards: the group's Redis lost data"
            );
        }
        let served: HashMap<Id, Arc<Branch>> = snapshot
            .served_by(&self.group, self.is_master)
            .map(|b| (b.id.clone(), b.clone()))
            .collect();
        let changed: Vec<Id> = match &previous {
            None => Vec::new(),
            Some(p) => {
                let mut ids: Vec<Id> = p
                    .branches
                    .iter()
                    .filter(|(id, old)| snapshot.branches.get(*id) != Some(*old))
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.extend(
                    snapshot
                        .branches
                        .keys()
                        .filter(|id| !p.branches.contains_key(*id))
                        .cloned(),
                );
                ids
            }
        };
        let version = snapshot.version;
        self.handle.replace(Arc::new(snapshot));
        self.queues.reconcile(&served, &self.store, &self.metrics);
        self.metrics.config_version.set(version as i64);
        if previous.as_ref().map(|p| p.version) != Some(version) {
            tracing::info!(version, branches = served.len(), "configuration loaded");
        }
        for branch in changed {
            self.hub.do_send(PublishLocal {
                branch: branch.to_string(),
                event: LiveEvent {
                    kind: EventKind::ConfigChanged,
                    data: format!("{{\"branch\":\"{branch}\",\"config_version\":{version}}}"),
                },
            });
        }
    }
}

impl Actor for ConfigView {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.reload(ctx);
        ctx.run_interval(VERSION_CHECK, |view, ctx| {
            let Some(known) = view.current_version() else {
                view.reload(ctx);
                return;
            };
            let (store, group) = (view.store.clone(), view.group.clone());
            ctx.spawn(
                async move { store.config_version(&group).await }
                    .into_actor(view)
                    .map(move |result, view, ctx| {
                        if matches!(result, Ok(v) if v != known) {
                            view.reload(ctx);
                        }
                    }),
            );
        });
    }
}

/// The configuration changed (or may have): load it again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConfigChanged;

impl Handler<ConfigChanged> for ConfigView {
    type Result = ();
    fn handle(&mut self, _: ConfigChanged, ctx: &mut Context<Self>) {
        self.reload(ctx);
    }
}

/// Load now and answer when done (used at start-up and after imports).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct LoadNow;

impl Handler<LoadNow> for ConfigView {
    type Result = ResponseActFuture<Self, bool>;
    fn handle(&mut self, _: LoadNow, _: &mut Context<Self>) -> Self::Result {
        Box::pin(self.load())
    }
}
