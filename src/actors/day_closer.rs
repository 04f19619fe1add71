//! `DayCloser`: the leader's end-of-business-day job.
//!
//! While this node leads, it checks every second whether a served branch's
//! close moment has passed (`domain::close::due_close`) and, if so, closes
//! that day through a fenced script that also records the day as closed. The
//! script is atomic and refuses a second close of the same day, so each
//! branch closes each day exactly once across the group, even when the
//! leader changes at that moment: either the old leader's script ran (and the
//! new one finds the marker) or it did not (and the new one runs it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use super::leader::{LeadershipGained, LeadershipLost};
use super::node::NodeContext;
use crate::domain::close::{due_close, parse_close_time};
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::store::fenced::CloseOutcome;
use crate::store::{Store, StoreError};

const CHECK: Duration = Duration::from_secs(1);

pub struct DayCloser {
    node: NodeContext,
    store: Store,
    metrics: Arc<Metrics>,
    epoch: Option<u64>,
    /// Branch → the last day known closed (saves a script call per second).
    closed_through: HashMap<Id, i64>,
    in_flight: bool,
}

impl DayCloser {
    pub fn new(node: &NodeContext) -> Self {
        DayCloser {
            node: node.clone(),
            store: node.store.clone(),
            metrics: node.metrics.clone(),
            epoch: None,
            closed_through: HashMap::new(),
            in_flight: false,
        }
    }

    fn fenced(&mut self, held: u64, current: u64) {
        self.metrics.fenced_writes_rejected.inc();
        tracing::warn!(
            held,
            current,
            "leader-only write refused: a newer leader exists"
        );
        if self.epoch == Some(held) {
            self.epoch = None;
        }
    }

    fn check(&mut self, ctx: &mut Context<Self>) {
        let Some(epoch) = self.epoch else { return };
        if self.in_flight {
            return;
        }
        let now = Utc::now();
        let served = self.node.served_branches();
        let due: Vec<(Id, i64, i64)> = served
            .iter()
            .filter_map(|b| {
                let close_time = parse_close_time(&b.close_time)?;
                let (day, cutoff) = due_close(now, b.tz(), close_time);
                let known = self.closed_through.get(&b.id).copied().unwrap_or(i64::MIN);
                (known < day).then(|| (b.id.clone(), day, cutoff.timestamp_micros()))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        self.in_flight = true;
        let store = self.store.clone();
        // All branches at once: the writes go out pipelined on one connection.
        let closes = due.into_iter().map(move |(branch, day, cutoff_us)| {
            let store = store.clone();
            async move {
                let result = store.close_day(&branch, epoch, day, cutoff_us).await;
                (branch, day, result)
            }
        });
        ctx.spawn(
            futures::future::join_all(closes)
                .into_actor(self)
                .map(|closed, closer, _| {
                    closer.in_flight = false;
                    for (branch, day, result) in closed {
                        match result {
                            Ok(CloseOutcome::Closed(n)) => {
                                tracing::info!(%branch, day, closed = n, "closed the business day");
                                closer.metrics.day_closes.inc();
                                closer.closed_through.insert(branch, day);
                            }
                            Ok(CloseOutcome::Already(through)) => {
                                closer.closed_through.insert(branch, through);
                            }
                            Err(StoreError::Fenced { held, current }) => {
                                closer.fenced(held, current)
                            }
                            Err(e) => {
                                tracing::warn!(%branch, error = %e, "cannot close the business day")
                            }
                        }
                    }
                }),
        );
    }
}

impl Actor for DayCloser {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(CHECK, |closer, ctx| closer.check(ctx));
    }
}

impl Handler<LeadershipGained> for DayCloser {
    type Result = ();
    fn handle(&mut self, msg: LeadershipGained, ctx: &mut Context<Self>) {
        self.epoch = Some(msg.epoch);
        self.closed_through.clear();
        self.check(ctx);
    }
}

impl Handler<LeadershipLost> for DayCloser {
    type Result = ();
    fn handle(&mut self, _: LeadershipLost, _: &mut Context<Self>) {
        self.epoch = None;
    }
}
