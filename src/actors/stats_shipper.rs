//! `StatsShipper`: on a slave group's leader, ships every branch's outbox
//! to the master group (`POST /api/v1/mirror/stats`), one way, exactly once.
//!
//! Exactly once is the master's job (it applies against a per-source
//! watermark), so the shipper may resend freely: after a lost answer, a
//! leader change or a restart it starts again from what the outbox still
//! holds, and from then on it ships from the master's watermark as each
//! answer gives it, never from its own memory. Each batch says which event
//! it continues from (`after`); a master whose watermark is below that (its
//! store was restored from an older backup) applies nothing and answers its
//! watermark, and the shipper sends again from there. The outbox keeps
//! acknowledged events for `stats.outbox_retention_s`, so such a master is
//! refilled exactly; events it needs that were trimmed already are declared
//! lost in the next batch (`lost`), which the master records once and
//! reports (`stats-gap`), never silently. The outbox is trimmed only up to
//! what the master acknowledged (and the local aggregator applied), in a
//! fenced script, so a deposed leader trims nothing. A `409 stale-epoch`
//! from the master means this node was deposed: it stops until it leads
//! again.
//!
//! Pace: one batch (≤ `stats.batch_max_events`) per branch per round, so
//! a branch's backlog after an outage interleaves with the other branches'
//! live events, and a backlog drains at most at `stats.drain_events_per_s`.
//! While no master node answers it backs off like the
//! [`ConfigMirror`](super::ConfigMirror). An idle branch is still reported
//! about once a second (an empty batch), so the master's `complete_through`
//! and `last_report` keep moving.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use super::config_mirror::MAX_BACKOFF;
use super::leader::{LeadershipGained, LeadershipLost};
use super::stats_aggregator::{pause_or_change, through_ms, LeaderLoop, IDLE_REPORT};
use super::NodeContext;
use crate::domain::stats::{ShippedEvent, StatsBatch, StreamId};
use crate::domain::Id;
use crate::settings::StatsSettings;
use crate::store::stats::Trim;
use crate::store::{Store, StoreError};
use crate::upstream::{UpstreamClient, UpstreamError};

const MIN_BACKOFF: Duration = Duration::from_millis(250);

pub struct StatsShipper {
    worker: LeaderLoop,
}

struct Worker {
    node: NodeContext,
    store: Store,
    peer: UpstreamClient,
    settings: StatsSettings,
    /// Branch → what the master last answered, in this term.
    acked: HashMap<Id, MasterMark>,
    last_report: HashMap<Id, Instant>,
}

/// What the master answered for one branch's outbox.
#[derive(Debug, Clone)]
struct MasterMark {
    source: String,
    /// The master's watermark of the source (None: it has nothing).
    through: Option<StreamId>,
    /// Events of the source the master has accounted for.
    counted: u64,
    /// The master's store identity.
    store: Option<String>,
    /// The master was behind the batch: send the next one at once.
    behind: bool,
}

/// Why a round stopped.
enum Stop {
    Upstream(UpstreamError),
    /// The master has seen a newer epoch of this group, or our trim was fenced.
    Deposed(String),
    Store(StoreError),
}

impl StatsShipper {
    pub fn new(node: &NodeContext) -> Self {
        let upstream = &node.settings.upstream;
        let worker = Worker {
            node: node.clone(),
            store: node.store.clone(),
            peer: UpstreamClient::new(upstream.master_urls.clone(), upstream.token.clone()),
            settings: node.settings.stats.clone(),
            acked: HashMap::new(),
            last_report: HashMap::new(),
        };
        StatsShipper {
            worker: LeaderLoop::start(|leadership| worker.run(leadership)),
        }
    }
}

impl Worker {
    async fn run(mut self, mut leadership: watch::Receiver<Option<u64>>) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        let mut backoff = MIN_BACKOFF;
        // The epoch the master refused: wait for a newer one.
        let mut deposed: Option<u64> = None;
        loop {
            let current = *leadership.borrow_and_update();
            let Some(epoch) = current.filter(|e| Some(*e) != deposed) else {
                self.acked.clear();
                if leadership.changed().await.is_err() {
                    return;
                }
                continue;
            };
            let started = Instant::now();
            match self.round(epoch).await {
                Ok(shipped) => {
                    backoff = MIN_BACKOFF;
                    if shipped == 0 {
                        pause_or_change(&mut leadership, poll).await;
                    } else {
                        // Bounded drain: a full round of n events takes at
                        // least n / rate seconds, its own work included
                        // (sleeping the whole n / rate after the work held
                        // a drain well below the rate).
                        let pace = shipped as f64 / self.settings.drain_events_per_s as f64;
                        let rest = Duration::from_secs_f64(pace).saturating_sub(started.elapsed());
                        tokio::time::sleep(rest).await;
                    }
                }
                Err(Stop::Deposed(why)) => {
                    self.node.metrics.fenced_writes_rejected.inc();
                    tracing::warn!(epoch, %why, "statistics shipping stopped: a newer leader exists");
                    deposed = Some(epoch);
                }
                Err(Stop::Upstream(e)) => {
                    let jittered = backoff.mul_f64(0.8 + fastrand::f64() * 0.4);
                    tracing::warn!(error = %e, retry_in = ?jittered, "cannot ship statistics");
                    pause_or_change(&mut leadership, jittered).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(Stop::Store(e)) => {
                    tracing::warn!(error = %e, "cannot read the outbox");
                    pause_or_change(&mut leadership, poll * 5).await;
                }
            }
        }
    }

    /// One batch per branch; how many events were shipped.
    async fn round(&mut self, epoch: u64) -> Result<usize, Stop> {
        let mut shipped = 0;
        for branch in self.node.served_branches() {
            shipped += self.ship_branch(&branch.id, epoch).await?;
        }
        Ok(shipped)
    }

    /// One batch of one branch's outbox, from where the master's watermark
    /// says (not from what this node remembers shipping: a master restored
    /// from a backup answers with its older watermark, and the events after
    /// it are sent again from the outbox, which keeps acknowledged events
    /// for `stats.outbox_retention_s`). Events the master needs that the
    /// outbox no longer holds are declared lost in the batch, so the master
    /// records and reports them once; never skipped silently.
    async fn ship_branch(&mut self, branch: &Id, epoch: u64) -> Result<usize, Stop> {
        let batch_max = self.settings.batch_max_events;
        let known = self.acked.get(branch).cloned();
        let master_mark = known.as_ref().and_then(|k| k.through);
        let read = self
            .store
            .read_outbox(branch, master_mark, batch_max)
            .await
            .map_err(Stop::Store)?;
        if known.as_ref().is_some_and(|k| k.source != read.source) {
            self.acked.remove(branch);
            return Ok(0);
        }
        let due = self
            .last_report
            .get(branch)
            .is_none_or(|at| at.elapsed() >= IDLE_REPORT);
        if read.events.is_empty() && !due && known.as_ref().is_none_or(|k| !k.behind) {
            return Ok(0);
        }
        // The batch holds every event after `after`: after the master's
        // watermark, or after what was trimmed when the outbox no longer
        // reaches back that far (or before the master answered at all).
        let (after, lost) = match (known.as_ref(), read.trimmed) {
            (Some(k), Some(trimmed)) if k.through.is_none_or(|t| t < trimmed) => {
                let lost = read.trimmed_count.saturating_sub(k.counted).max(1);
                tracing::error!(%branch, lost, master_through = ?k.through, %trimmed,
                    "the master needs statistics events this outbox no longer holds: declaring them lost");
                (trimmed, lost)
            }
            (Some(k), _) => (k.through.unwrap_or(StreamId { ms: 0, seq: 0 }), 0),
            (None, trimmed) => (trimmed.unwrap_or(StreamId { ms: 0, seq: 0 }), 0),
        };
        let batch = StatsBatch {
            group: self.node.group.to_string(),
            epoch,
            source: read.source.clone(),
            branch: branch.to_string(),
            through_ms: through_ms(&read, batch_max),
            after: Some(after.to_string()),
            lost,
            events: read
                .events
                .iter()
                .map(|(id, event)| ShippedEvent {
                    id: id.to_string(),
                    event: event.clone(),
                })
                .collect(),
        };
        let ack = match self.peer.post_stats(&batch).await {
            Ok(ack) => ack,
            Err(UpstreamError::Refused { status: 409, body }) => return Err(Stop::Deposed(body)),
            Err(e) => return Err(Stop::Upstream(e)),
        };
        self.last_report.insert(branch.clone(), Instant::now());
        let through = ack.applied_through.as_deref().and_then(StreamId::parse);
        if ack.store.is_some() && known.as_ref().is_some_and(|k| k.store != ack.store) {
            tracing::warn!(%branch, master_store = ?ack.store, master_through = ?through,
                "the master's store changed: shipping from its watermark");
        }
        // Behind: the master's watermark is below what the batch continued
        // from; nothing was applied and the next batch starts from it.
        let behind = lost == 0 && through.unwrap_or(StreamId { ms: 0, seq: 0 }) < after;
        self.acked.insert(
            branch.clone(),
            MasterMark {
                source: read.source.clone(),
                through,
                counted: ack.counted,
                store: ack.store.clone(),
                behind,
            },
        );
        if behind {
            tracing::warn!(%branch, master_through = ?through, %after,
                "the master's statistics are behind what it had acknowledged: resending");
            return Ok(0);
        }
        if through.is_some() {
            let retention_ms = self.settings.outbox_retention_ms(false);
            match self
                .store
                .trim_outbox(
                    branch,
                    epoch,
                    &read.source,
                    Trim {
                        acked: through,
                        counted: Some(ack.counted),
                        ship: true,
                        retention_ms,
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(StoreError::Fenced { held, current }) => {
                    return Err(Stop::Deposed(format!("trim fenced: {held} < {current}")))
                }
                Err(e) => return Err(Stop::Store(e)),
            }
        }
        Ok(read.events.len())
    }
}

impl Actor for StatsShipper {
    type Context = Context<Self>;
}

impl Handler<LeadershipGained> for StatsShipper {
    type Result = ();
    fn handle(&mut self, msg: LeadershipGained, _: &mut Context<Self>) {
        self.worker.set(Some(msg.epoch));
    }
}

impl Handler<LeadershipLost> for StatsShipper {
    type Result = ();
    fn handle(&mut self, _: LeadershipLost, _: &mut Context<Self>) {
        self.worker.set(None);
    }
}
