//! `StatsAggregator`: on every group's leader, applies the outboxes of the
//! branches this group serves to the rollups in the group's own Redis.
//!
//! On the master group this is how the master's own branches reach the
//! statistics (no HTTP); on a slave group it gives a branch its figures even
//! while the master is unreachable. Each round reads a batch per branch
//! after the last applied id, turns the events into rollup ops
//! (`domain::stats::event_ops`) and applies them against the outbox's
//! watermark, so a crash between read and apply, or two leaders for a
//! moment, counts nothing twice. Then it trims the outbox below what every
//! consumer has (on a slave, the master's acknowledgement too), fenced.
//!
//! The loop runs as a task that follows this node's leadership through a
//! watch channel; [`LeaderLoop`] is shared with the
//! [`StatsShipper`](super::StatsShipper).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use super::leader::{LeadershipGained, LeadershipLost};
use super::NodeContext;
use crate::domain::stats::{event_ops, StreamId};
use crate::domain::{Branch, Id};
use crate::settings::StatsSettings;
use crate::store::stats::{EventOps, OutboxRead, Sender, Trim};
use crate::store::{Store, StoreError};

/// How often an idle branch's watermark time is moved forward.
pub const IDLE_REPORT: Duration = Duration::from_secs(1);

/// A loop task that runs while this node leads, with the epoch it holds.
pub struct LeaderLoop {
    leadership: watch::Sender<Option<u64>>,
    task: Option<actix_rt::task::JoinHandle<()>>,
}

impl LeaderLoop {
    /// Starts `body` with a receiver of the leadership (`Some(epoch)` while
    /// leading).
    pub fn start<F, Fut>(body: F) -> LeaderLoop
    where
        F: FnOnce(watch::Receiver<Option<u64>>) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        let (leadership, receiver) = watch::channel(None);
        LeaderLoop {
            leadership,
            task: Some(actix_rt::spawn(body(receiver))),
        }
    }

    pub fn set(&self, epoch: Option<u64>) {
        self.leadership.send_replace(epoch);
    }
}

impl Drop for LeaderLoop {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits until the leadership changes or `pause` passes.
pub async fn pause_or_change(leadership: &mut watch::Receiver<Option<u64>>, pause: Duration) {
    let _ = tokio::time::timeout(pause, leadership.changed()).await;
}

/// Every event of the outbox up to this instant is in `read` or before it:
/// the read time when the batch was not full, else just before its last
/// event's millisecond (more events of that millisecond may follow).
pub fn through_ms(read: &OutboxRead, batch_max: usize) -> i64 {
    match read.events.last() {
        Some((id, _)) if read.events.len() >= batch_max => id.ms as i64 - 1,
        _ => read.read_ms - 1,
    }
}

/// The ops of each event read, by the branch's rules.
pub fn ops_of(branch: &Branch, read: &OutboxRead) -> Vec<EventOps> {
    read.events
        .iter()
        .map(|(id, event)| EventOps {
            id: *id,
            ops: event_ops(branch, event),
        })
        .collect()
}

pub struct StatsAggregator {
    worker: LeaderLoop,
}

struct Worker {
    node: NodeContext,
    store: Store,
    settings: StatsSettings,
    /// Branch → (source, last applied id) as far as this term knows.
    cursors: HashMap<Id, (String, StreamId)>,
    /// When each branch's watermark time was last moved without events.
    last_idle_report: HashMap<Id, Instant>,
}

impl StatsAggregator {
    pub fn new(node: &NodeContext) -> Self {
        let worker = Worker {
            node: node.clone(),
            store: node.store.clone(),
            settings: node.settings.stats.clone(),
            cursors: HashMap::new(),
            last_idle_report: HashMap::new(),
        };
        StatsAggregator {
            worker: LeaderLoop::start(|leadership| worker.run(leadership)),
        }
    }
}

impl Worker {
    async fn run(mut self, mut leadership: watch::Receiver<Option<u64>>) {
        let poll = Duration::from_millis(self.settings.poll_interval_ms);
        loop {
            let Some(epoch) = *leadership.borrow_and_update() else {
                self.cursors.clear();
                if leadership.changed().await.is_err() {
                    return;
                }
                continue;
            };
            match self.round(epoch).await {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => pause_or_change(&mut leadership, poll).await,
                Err(StoreError::Fenced { held, current }) => {
                    self.node.metrics.fenced_writes_rejected.inc();
                    tracing::warn!(held, current, "outbox trim refused: a newer leader exists");
                    // Wait for our own leadership to be taken away (or renewed).
                    pause_or_change(&mut leadership, poll * 10).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot aggregate statistics");
                    pause_or_change(&mut leadership, poll * 5).await;
                }
            }
        }
    }

    /// One batch per branch; `true` when some branch has more waiting.
    async fn round(&mut self, epoch: u64) -> Result<bool, StoreError> {
        let batch_max = self.settings.batch_max_events;
        let mut busy = false;
        let (group, is_master) = (self.node.group.clone(), self.node.is_master());
        for branch in self.node.served_branches() {
            let cursor = self.cursors.get(&branch.id).cloned();
            let read = self
                .store
                .read_outbox(&branch.id, cursor.as_ref().map(|c| c.1), batch_max)
                .await?;
            if cursor
                .as_ref()
                .is_some_and(|(source, _)| *source != read.source)
            {
                // The outbox's history changed under us: start it over.
                self.cursors.remove(&branch.id);
                busy = true;
                continue;
            }
            // An idle branch's `complete_through` moves once a second, not
            // on every poll (each move is a write).
            if read.events.is_empty()
                && self
                    .last_idle_report
                    .get(&branch.id)
                    .is_some_and(|at| at.elapsed() < IDLE_REPORT)
            {
                continue;
            }
            if read.events.is_empty() {
                self.last_idle_report
                    .insert(branch.id.clone(), Instant::now());
            }
            let outcome = self
                .store
                .apply_stats(
                    &branch.id,
                    Sender::Local { group: &group },
                    &read.source,
                    through_ms(&read, batch_max),
                    &ops_of(&branch, &read),
                )
                .await?;
            if let crate::store::stats::ApplyOutcome::Applied {
                through, applied, ..
            } = outcome
            {
                self.node.metrics.stats_events_applied.inc_by(applied);
                if let Some(through) = through {
                    self.cursors
                        .insert(branch.id.clone(), (read.source.clone(), through));
                }
            }
            if !read.events.is_empty() {
                self.store
                    .trim_outbox(
                        &branch.id,
                        epoch,
                        &read.source,
                        Trim {
                            ship: !is_master,
                            retention_ms: self.settings.outbox_retention_ms(is_master),
                            ..Trim::default()
                        },
                    )
                    .await?;
            }
            busy |= read.events.len() >= batch_max;
        }
        Ok(busy)
    }
}

impl Actor for StatsAggregator {
    type Context = Context<Self>;
}

impl Handler<LeadershipGained> for StatsAggregator {
    type Result = ();
    fn handle(&mut self, msg: LeadershipGained, _: &mut Context<Self>) {
        self.worker.set(Some(msg.epoch));
    }
}

impl Handler<LeadershipLost> for StatsAggregator {
    type Result = ();
    fn handle(&mut self, _: LeadershipLost, _: &mut Context<Self>) {
        self.worker.set(None);
    }
}
