//! `StatsShipper`: on a slave group's leader, ships every branch's outbox
//! to the master group (`POST /api/v1/mirror/stats`), one way, exactly once.
//!
//! Exactly once is the master's job (it applies against a per-source
//! watermark), so the shipper may resend freely: after a lost answer, a
//! leader change or a restart it starts again from what the outbox still
//! holds. It only has to never lose anything: the outbox is trimmed only up
//! to what the master acknowledged (and the local aggregator applied), in a
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
    /// Branch → (source, the master's acknowledgement) in this term.
    acked: HashMap<Id, (String, Option<StreamId>)>,
    last_report: HashMap<Id, Instant>,
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
            match self.round(epoch).await {
                Ok(shipped) => {
                    backoff = MIN_BACKOFF;
                    if shipped == 0 {
                        pause_or_change(&mut leadership, poll).await;
                    } else {
                        // Bounded drain: a full round of n events takes at
                        // least n / rate seconds.
                        let pace = shipped as f64 / self.settings.drain_events_per_s as f64;
                        tokio::time::sleep(Duration::from_secs_f64(pace)).await;
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
        let batch_max = self.settings.batch_max_events;
        let mut shipped = 0;
        for branch in self.node.served_branches() {
            let known = self.acked.get(&branch.id).cloned();
            let after = known.as_ref().and_then(|k| k.1);
            let read = self
                .store
                .read_outbox(&branch.id, after, batch_max)
                .await
                .map_err(Stop::Store)?;
            if known
                .as_ref()
                .is_some_and(|(source, _)| *source != read.source)
            {
                self.acked.remove(&branch.id);
                continue;
            }
            let due = self
                .last_report
                .get(&branch.id)
                .is_none_or(|at| at.elapsed() >= IDLE_REPORT);
            if read.events.is_empty() && !due {
                continue;
            }
            let batch = StatsBatch {
                group: self.node.group.to_string(),
                epoch,
                source: read.source.clone(),
                branch: branch.id.to_string(),
                through_ms: through_ms(&read, batch_max),
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
                Err(UpstreamError::Refused { status: 409, body }) => {
                    return Err(Stop::Deposed(body))
                }
                Err(e) => return Err(Stop::Upstream(e)),
            };
            self.last_report.insert(branch.id.clone(), Instant::now());
            let acked = ack.applied_through.as_deref().and_then(StreamId::parse);
            self.acked
                .insert(branch.id.clone(), (read.source.clone(), acked.or(after)));
            shipped += read.events.len();
            if acked.is_some() {
                match self
                    .store
                    .trim_outbox(&branch.id, epoch, &read.source, acked, true)
                    .await
                {
                    Ok(_) => {}
                    Err(StoreError::Fenced { held, current }) => {
                        return Err(Stop::Deposed(format!("trim fenced: {held} < {current}")))
                    }
                    Err(e) => return Err(Stop::Store(e)),
                }
            }
        }
        Ok(shipped)
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
