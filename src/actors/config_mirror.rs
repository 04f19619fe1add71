//! `ConfigMirror`: on a slave group's leader, keeps the group's configuration
//! a mirror of the master's (DESIGN.md §2).
//!
//! While this node leads, it long-polls the master group for a version above
//! the one in the group's Redis, applies each newer snapshot through a fenced
//! script (which also refuses anything not newer than what is stored, so
//! the group never goes back a version, whoever leads), and records the link
//! state for `GET /api/v1/cluster`. The apply publishes the change, so every
//! node's [`ConfigView`](super::ConfigView) reloads within milliseconds.
//! When no master node answers it backs off exponentially (with jitter) up to
//! [`MAX_BACKOFF`]: no busy loop while the link is down, and it catches up by
//! itself when it returns. Tickets never wait for any of this.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::leader::{LeadershipGained, LeadershipLost};
use super::node::NodeContext;
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::store::mirror::MirrorOutcome;
use crate::store::{Store, StoreError};
use crate::upstream::{UpstreamClient, UpstreamError};

/// How long one long-poll waits at the master. Short enough that a
/// connection that hangs without being reset is noticed within about
/// 13 s (the request times out 3 s after the wait).
pub const LONG_POLL_S: u64 = 10;
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Cap of the back-off while no master answers, so a healed link is used
/// within a few seconds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct ConfigMirror {
    store: Store,
    group: Id,
    peer: Option<UpstreamClient>,
    metrics: Arc<Metrics>,
    epoch: Option<u64>,
    /// Bumped on every leadership change, so a poll started under an old
    /// leadership does nothing when it returns.
    generation: u64,
    backoff: Duration,
    polling: bool,
}

/// What one round of polling ended with.
enum Round {
    /// Applied, unchanged or already had it: poll again at once.
    Contact,
    /// No master node answered, or the master refused.
    Failed(UpstreamError),
    /// The group has a newer leader.
    Fenced,
    /// Our own Redis failed.
    Store(StoreError),
}

impl ConfigMirror {
    pub fn new(node: &NodeContext) -> Self {
        let upstream = &node.settings.upstream;
        let peer = UpstreamClient::new(upstream.master_urls.clone(), upstream.token.clone());
        ConfigMirror {
            store: node.store.clone(),
            group: node.group.clone(),
            peer: Some(peer),
            metrics: node.metrics.clone(),
            epoch: None,
            generation: 0,
            backoff: MIN_BACKOFF,
            polling: false,
        }
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        let Some(epoch) = self.epoch else { return };
        if self.polling {
            return;
        }
        let Some(mut peer) = self.peer.take() else {
            return;
        };
        self.polling = true;
        let generation = self.generation;
        let (store, group, metrics) =
            (self.store.clone(), self.group.clone(), self.metrics.clone());
        ctx.spawn(
            async move {
                let round = mirror_round(&store, &group, epoch, &mut peer, &metrics).await;
                (round, peer)
            }
            .into_actor(self)
            .map(move |(round, peer), mirror, ctx| {
                mirror.peer = Some(peer);
                mirror.polling = false;
                if mirror.generation != generation {
                    mirror.poll(ctx);
                    return;
                }
                match round {
                    Round::Contact => {
                        mirror.backoff = MIN_BACKOFF;
                        mirror.poll(ctx);
                    }
                    Round::Failed(e) => {
                        tracing::warn!(error = %e, retry_in = ?mirror.backoff, "cannot reach the master group");
                        mirror.retry_later(ctx);
                    }
                    Round::Store(e) => {
                        tracing::warn!(error = %e, "cannot apply the mirrored configuration");
                        mirror.retry_later(ctx);
                    }
                    Round::Fenced => {
                        mirror.metrics.fenced_writes_rejected.inc();
                        tracing::warn!("mirror write refused: a newer leader exists");
                        mirror.epoch = None;
                    }
                }
            }),
        );
    }

    fn retry_later(&mut self, ctx: &mut Context<Self>) {
        let jittered = self.backoff.mul_f64(0.8 + fastrand::f64() * 0.4);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let generation = self.generation;
        ctx.run_later(jittered, move |mirror, ctx| {
            if mirror.generation == generation {
                mirror.poll(ctx);
            }
        });
    }
}

/// One long-poll and whatever it brings.
async fn mirror_round(
    store: &Store,
    group: &Id,
    epoch: u64,
    peer: &mut UpstreamClient,
    metrics: &Metrics,
) -> Round {
    let since = match store.config_version(group).await {
        Ok(v) => v,
        Err(e) => return Round::Store(e),
    };
    let fetched = peer.fetch_config(group, since, LONG_POLL_S).await;
    // Stored and shown in /api/v1/cluster, so the masked form.
    let master = peer
        .current_url()
        .map(ToString::to_string)
        .unwrap_or_default();
    let snapshot = match fetched {
        Ok(snapshot) => snapshot,
        Err(e) => {
            metrics.upstream_connected.set(0);
            return match store
                .record_upstream(group, epoch, false, false, &master)
                .await
            {
                Err(StoreError::Fenced { .. }) => Round::Fenced,
                _ => Round::Failed(e),
            };
        }
    };
    metrics.upstream_connected.set(1);
    if let Some(snapshot) = snapshot {
        match store
            .apply_mirror(group, epoch, snapshot.version, &snapshot.branches)
            .await
        {
            Ok(MirrorOutcome::Applied(v)) => {
                tracing::info!(
                    version = v,
                    branches = snapshot.branches.len(),
                    "applied mirrored configuration"
                );
            }
            Ok(MirrorOutcome::Stale(stored)) => {
                if stored > snapshot.version {
                    tracing::error!(
                        stored,
                        master = snapshot.version,
                        "the master's configuration version is below this group's: did the master lose data?"
                    );
                }
            }
            Err(StoreError::Fenced { .. }) => return Round::Fenced,
            Err(e) => return Round::Store(e),
        }
    }
    match store
        .record_upstream(group, epoch, true, true, &master)
        .await
    {
        Ok(()) => Round::Contact,
        Err(StoreError::Fenced { .. }) => Round::Fenced,
        Err(e) => Round::Store(e),
    }
}

impl Actor for ConfigMirror {
    type Context = Context<Self>;
}

impl Handler<LeadershipGained> for ConfigMirror {
    type Result = ();
    fn handle(&mut self, msg: LeadershipGained, ctx: &mut Context<Self>) {
        self.epoch = Some(msg.epoch);
        self.generation += 1;
        self.backoff = MIN_BACKOFF;
        self.poll(ctx);
    }
}

impl Handler<LeadershipLost> for ConfigMirror {
    type Result = ();
    fn handle(&mut self, _: LeadershipLost, _: &mut Context<Self>) {
        self.epoch = None;
        self.generation += 1;
    }
}
