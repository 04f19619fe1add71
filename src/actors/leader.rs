//! `Leader`: this node's part in the group's leader election (DESIGN.md §4).
//!
//! It runs on its own Arbiter with its own Redis connection, so a busy HTTP
//! worker or a slow ticket script cannot delay lease renewal.
//!
//! - A follower tries to take the lease every `renew_interval_ms` × a random
//!   factor in [0.25, 0.5) (jitter keeps standbys from retrying in lockstep),
//!   and also right when the lease it saw would expire (the acquire script
//!   returns its PTTL), so a dead leader is replaced within about the lease
//!   TTL and a released lease within half a renew interval. Taking the lease
//!   yields a new epoch, the fencing token.
//! - A leader renews every `renew_interval_ms` (compare, then PEXPIRE). It
//!   steps down when no renewal has succeeded within `renew_deadline_ms`,
//!   measured on the monotonic clock from the moment the last successful
//!   renewal was *sent*: the lease was extended at or after that moment, so
//!   stepping down at `deadline < ttl` after it is always before the lease can
//!   have expired, whatever happened to the reply. A watchdog checks this
//!   every 50 ms, independent of replies that may never come.
//! - On shutdown it deletes the lease (compare-and-delete) so a standby
//!   takes over at once.
//! - Right after taking the lease it raises the fence of every branch this
//!   node serves (and, at each renewal, of branches added since), so from
//!   then on the previous leader's branch writes are refused even where the
//!   new leader has written nothing yet (`store::fenced`).
//!
//! Subscribers get [`LeadershipGained`] and [`LeadershipLost`]. Stepping down
//! here is a courtesy that stops work early; safety comes from the epoch
//! checks inside every leader-only script.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::node::NodeContext;
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::settings::LeaderSettings;
use crate::store::cluster::LeaseHolder;
use crate::store::{Store, StoreError};

const WATCHDOG: Duration = Duration::from_millis(50);
/// How soon a renewal that failed (error or timeout) is tried again.
const RENEW_RETRY: Duration = Duration::from_millis(100);
/// A standby wakes this many ms (drawn at random) after the lease it saw
/// would expire, so standbys do not all try at the same instant.
const EXPIRY_WAKE_JITTER_MS: std::ops::RangeInclusive<u64> = 2..=25;

/// This node became the group's leader with this epoch.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct LeadershipGained {
    pub epoch: u64,
}

/// This node is no longer the leader.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub struct LeadershipLost;

/// What the rest of the node may read about leadership without asking.
#[derive(Clone, Default)]
pub struct LeaderStatus(Arc<StatusInner>);

#[derive(Default)]
struct StatusInner {
    leading: AtomicBool,
    epoch: AtomicU64,
}

impl LeaderStatus {
    pub fn is_leader(&self) -> bool {
        self.0.leading.load(Ordering::SeqCst)
    }

    /// The epoch held now, or the last one held (0: never led).
    pub fn epoch(&self) -> u64 {
        self.0.epoch.load(Ordering::SeqCst)
    }

    fn set(&self, leading: bool, epoch: u64) {
        self.0.epoch.store(epoch, Ordering::SeqCst);
        self.0.leading.store(leading, Ordering::SeqCst);
    }
}

enum State {
    Follower,
    Leading {
        holder: LeaseHolder,
        /// When the last successful renewal (or the acquisition) was sent.
        renewed_at: Instant,
    },
    Stopped,
}

/// The actor.
pub struct Leader {
    /// Read for the branches this node serves (fences); its store is not
    /// used: the leader has its own connection, `store`.
    node: NodeContext,
    store: Store,
    group: Id,
    node_id: String,
    timing: LeaderSettings,
    state: State,
    status: LeaderStatus,
    metrics: Arc<Metrics>,
    gained: Vec<Recipient<LeadershipGained>>,
    lost: Vec<Recipient<LeadershipLost>>,
    in_flight: bool,
    next_attempt: Option<SpawnHandle>,
    /// Branches whose fence this term has raised.
    fenced_branches: HashSet<Id>,
    raising_fences: bool,
}

impl Leader {
    /// Opens the leader's own Redis connection; call it on the leader's
    /// Arbiter.
    pub fn new(node: &NodeContext) -> Leader {
        let settings = &node.settings;
        let store = node
            .store
            .own_connection()
            .expect("the URL was accepted by the main connection");
        Leader {
            node: node.clone(),
            store,
            group: node.group.clone(),
            node_id: node.node_id.clone(),
            timing: settings.leader.clone(),
            state: State::Follower,
            status: node.leader_status.clone(),
            metrics: node.metrics.clone(),
            gained: Vec::new(),
            lost: Vec::new(),
            in_flight: false,
            next_attempt: None,
            fenced_branches: HashSet::new(),
            raising_fences: false,
        }
    }

    /// Raises the fence of every served branch this term has not fenced
    /// yet: all of them right after taking the lease, later any branch
    /// added since.
    fn raise_fences(&mut self, ctx: &mut Context<Self>) {
        let State::Leading { holder, .. } = &self.state else {
            return;
        };
        if self.raising_fences {
            return;
        }
        let epoch = holder.epoch;
        let unfenced: Vec<Id> = self
            .node
            .served_branches()
            .iter()
            .filter(|b| !self.fenced_branches.contains(&b.id))
            .map(|b| b.id.clone())
            .collect();
        if unfenced.is_empty() {
            return;
        }
        self.raising_fences = true;
        let store = self.store.clone();
        // All at once: the writes go out pipelined on one connection.
        let raises = unfenced.into_iter().map(move |branch| {
            let store = store.clone();
            async move {
                let result = store.raise_branch_fence(&branch, epoch).await;
                (branch, result)
            }
        });
        ctx.spawn(
            futures::future::join_all(raises)
                .into_actor(self)
            .map(move |raised, leader, _| {
                leader.raising_fences = false;
                if leader.status.epoch() != epoch || !leader.status.is_leader() {
                    return; // a later term starts its own set
                }
                for (branch, result) in raised {
                    match result {
                        Ok(()) => {
                            leader.fenced_branches.insert(branch);
                        }
                        Err(StoreError::Fenced { held, current }) => {
                            leader.metrics.fenced_writes_rejected.inc();
                            tracing::warn!(%branch, held, current, "a newer leader fenced this branch");
                        }
                        Err(e) => {
                            tracing::warn!(%branch, error = %e, "cannot raise the branch fence")
                        }
                    }
                }
            }),
        );
    }

    fn ttl_ms(&self) -> u64 {
        self.timing.lease_ttl_ms
    }

    fn deadline(&self) -> Duration {
        Duration::from_millis(self.timing.renew_deadline_ms)
    }

    fn schedule(&mut self, ctx: &mut Context<Self>, after: Duration) {
        if let Some(handle) = self.next_attempt.take() {
            ctx.cancel_future(handle);
        }
        self.next_attempt = Some(ctx.run_later(after, |leader, ctx| {
            leader.next_attempt = None;
            leader.attempt(ctx);
        }));
    }

    fn jittered_retry(&self) -> Duration {
        let base = self.timing.renew_interval_ms as f64;
        Duration::from_millis((base * (0.25 + fastrand::f64() * 0.25)) as u64)
    }

    fn attempt(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight {
            return;
        }
        match &self.state {
            State::Stopped => {}
            State::Follower => self.try_acquire(ctx),
            State::Leading { holder, .. } => {
                let holder = holder.clone();
                self.renew(ctx, holder);
            }
        }
    }

    fn try_acquire(&mut self, ctx: &mut Context<Self>) {
        self.in_flight = true;
        let (store, group, node, ttl) = (
            self.store.clone(),
            self.group.clone(),
            self.node_id.clone(),
            self.ttl_ms(),
        );
        let sent_at = Instant::now();
        let timeout = self.deadline();
        ctx.spawn(
            async move { tokio::time::timeout(timeout, store.acquire_lease(&group, &node, ttl)).await }
                .into_actor(self)
                .map(move |result, leader, ctx| {
                    leader.in_flight = false;
                    if !matches!(leader.state, State::Follower) {
                        return;
                    }
                    match result {
                        Ok(Ok(Ok(epoch))) => {
                            let holder = LeaseHolder {
                                node: leader.node_id.clone(),
                                epoch,
                            };
                            leader.become_leader(ctx, holder, sent_at);
                        }
                        Ok(Ok(Err((_holder, expires_in_ms)))) => {
                            // Wake when the lease would expire (a few ms
                            // later, jittered), or at the regular retry.
                            let at_expiry = Duration::from_millis(expires_in_ms + fastrand::u64(EXPIRY_WAKE_JITTER_MS));
                            let retry = leader.jittered_retry().min(at_expiry);
                            leader.schedule(ctx, retry);
                            return;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "lease acquisition failed"),
                        Err(_) => tracing::debug!("lease acquisition timed out"),
                    }
                    if matches!(leader.state, State::Follower) {
                        let retry = leader.jittered_retry();
                        leader.schedule(ctx, retry);
                    }
                }),
        );
    }

    fn become_leader(&mut self, ctx: &mut Context<Self>, holder: LeaseHolder, sent_at: Instant) {
        let epoch = holder.epoch;
        tracing::info!(epoch, node = %self.node_id, "became leader");
        self.state = State::Leading {
            holder,
            renewed_at: sent_at,
        };
        self.status.set(true, epoch);
        self.metrics.leader.set(1);
        self.metrics.epoch.set(epoch as i64);
        self.fenced_branches.clear();
        self.raise_fences(ctx);
        for subscriber in &self.gained {
            subscriber.do_send(LeadershipGained { epoch });
        }
        let interval = Duration::from_millis(self.timing.renew_interval_ms);
        self.schedule(ctx, interval);
    }

    fn renew(&mut self, ctx: &mut Context<Self>, holder: LeaseHolder) {
        self.in_flight = true;
        let (store, group, ttl) = (self.store.clone(), self.group.clone(), self.ttl_ms());
        let sent_at = Instant::now();
        let epoch = holder.epoch;
        ctx.spawn(
            async move {
                let result = tokio::time::timeout(
                    Duration::from_millis(ttl),
                    store.renew_lease(&group, &holder, ttl),
                )
                .await;
                (result, sent_at.elapsed())
            }
            .into_actor(self)
            .map(move |(result, took), leader, ctx| {
                leader.in_flight = false;
                let State::Leading { holder, renewed_at } = &mut leader.state else {
                    return;
                };
                if holder.epoch != epoch {
                    return;
                }
                match result {
                    Ok(Ok(true)) => {
                        *renewed_at = sent_at;
                        leader
                            .metrics
                            .lease_renew_seconds
                            .observe(took.as_secs_f64());
                        let interval = Duration::from_millis(leader.timing.renew_interval_ms);
                        leader.schedule(ctx, interval.saturating_sub(took));
                        leader.raise_fences(ctx);
                    }
                    Ok(Ok(false)) => leader.step_down(ctx, "the lease is held by another node"),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "lease renewal failed");
                        leader.schedule(ctx, RENEW_RETRY);
                    }
                    Err(_) => {
                        tracing::warn!("lease renewal timed out");
                        leader.schedule(ctx, RENEW_RETRY);
                    }
                }
            }),
        );
    }

    fn step_down(&mut self, ctx: &mut Context<Self>, why: &str) {
        if let Some(holder) = self.relinquish(State::Follower) {
            tracing::warn!(epoch = holder.epoch, why, "stepping down as leader");
            let retry = self.jittered_retry();
            self.schedule(ctx, retry);
        }
    }

    /// Moves to `next`; if this node was leading, marks it no longer leader
    /// everywhere (status, metric, subscribers) and returns the lease it held.
    fn relinquish(&mut self, next: State) -> Option<LeaseHolder> {
        let State::Leading { holder, .. } = std::mem::replace(&mut self.state, next) else {
            return None;
        };
        self.status.set(false, holder.epoch);
        self.metrics.leader.set(0);
        for subscriber in &self.lost {
            subscriber.do_send(LeadershipLost);
        }
        Some(holder)
    }
}

impl Actor for Leader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(WATCHDOG, |leader, ctx| {
            if let State::Leading { renewed_at, .. } = &leader.state {
                if renewed_at.elapsed() >= leader.deadline() {
                    leader.step_down(ctx, "no renewal within the renew deadline");
                }
            }
        });
        self.schedule(ctx, Duration::ZERO);
    }
}

/// Subscribe to leadership changes. A subscriber that joins while this node
/// leads is told at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SubscribeLeadership {
    pub gained: Recipient<LeadershipGained>,
    pub lost: Recipient<LeadershipLost>,
}

impl Handler<SubscribeLeadership> for Leader {
    type Result = ();
    fn handle(&mut self, msg: SubscribeLeadership, _: &mut Context<Self>) {
        if let State::Leading { holder, .. } = &self.state {
            msg.gained.do_send(LeadershipGained {
                epoch: holder.epoch,
            });
        }
        self.gained.push(msg.gained);
        self.lost.push(msg.lost);
    }
}

/// Give the lease up and stop competing (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Release;

impl Handler<Release> for Leader {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, _: Release, ctx: &mut Context<Self>) -> Self::Result {
        if let Some(handle) = self.next_attempt.take() {
            ctx.cancel_future(handle);
        }
        let holder = self.relinquish(State::Stopped);
        let (store, group) = (self.store.clone(), self.group.clone());
        Box::pin(
            async move {
                if let Some(holder) = holder {
                    match store.release_lease(&group, &holder).await {
                        Ok(true) => {
                            tracing::info!(epoch = holder.epoch, "released the leader lease")
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot release the leader lease"),
                    }
                }
            }
            .into_actor(self),
        )
    }
}
