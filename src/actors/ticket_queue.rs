//! `TicketQueue`: one actor per served branch. It holds the branch's current
//! configuration, checks every request against it, and runs the operation as
//! one atomic store script. Handlers return their futures to actix without
//! holding the actor, so requests to one branch run concurrently; the Lua
//! scripts, not the actor, are what make each operation atomic.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;

use crate::domain::estimate::{estimate_wait_s, open_counters};
use crate::domain::matrix::ordered_row;
use crate::domain::ticket::{from_ms, utc_offset_s};
use crate::domain::{
    Branch, CalledEntry, DisplayBoard, EventKind, Id, QueueStatus, RequestTag, Ticket, TicketEvent,
    TicketStatus,
};
use crate::metrics::Metrics;
use crate::store::tickets::IssueArgs;
use crate::store::{Outcome, QueueContext, Store, StoreError, TicketView};

/// Why a ticket operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("branch {branch} has no service {service}")]
    UnknownService { branch: String, service: String },
    #[error("branch {branch} has no counter {counter}")]
    UnknownCounter { branch: String, counter: String },
    #[error("counter {counter} has no current ticket")]
    NoCurrentTicket { counter: String },
    /// The request waited longer than its deadline before its turn came;
    /// it was not performed.
    #[error("the request waited {waited_ms} ms before its turn (limit {limit_ms} ms) and was not performed; retry it with the same Idempotency-Key")]
    Expired { waited_ms: u128, limit_ms: u128 },
    #[error("no ticket {number} is waiting today in a service of counter {counter}")]
    NotWaiting { number: String, counter: String },
    /// A master group's store lost its data and no operator has adopted it
    /// yet: nothing is written to it (the reason says what was noticed).
    #[error("{0}")]
    StoreLost(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type QueueResult<T> = Result<T, QueueError>;

/// The actor.
pub struct TicketQueue {
    branch: Arc<Branch>,
    store: Store,
    metrics: Arc<Metrics>,
    policy: LostStorePolicy,
}

/// What ticket changes do while the store is marked lost (see
/// [`crate::store::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostStorePolicy {
    /// A master group: refuse them (503 `store-lost`) until an operator
    /// adopts the store, who first restores what the group's configuration
    /// and state should be; tickets issued into a store nobody checked
    /// would be built on whatever it holds now.
    Refuse,
    /// A slave group: go on (above the floors the node remembers); the
    /// group adopts the store by itself once its configuration is mirrored
    /// again.
    Serve,
}

impl TicketQueue {
    /// What a handler's future needs, owned: the branch as configured when
    /// the message arrived, the store and what a change passes first.
    fn handles(&self) -> (Arc<Branch>, Store, Gate) {
        (
            self.branch.clone(),
            self.store.clone(),
            Gate {
                metrics: self.metrics.clone(),
                policy: self.policy,
            },
        )
    }

    pub fn new(
        branch: Arc<Branch>,
        store: Store,
        metrics: Arc<Metrics>,
        policy: LostStorePolicy,
    ) -> Self {
        TicketQueue {
            branch,
            store,
            metrics,
            policy,
        }
    }
}

impl Actor for TicketQueue {
    type Context = Context<Self>;
}

/// Issue a ticket for a service.
#[derive(Message)]
#[rtype(result = "QueueResult<Ticket>")]
pub struct IssueTicket {
    pub service: Id,
    pub tag: RequestTag,
}

/// Finish the counter's current ticket as served, then call the next one.
#[derive(Message)]
#[rtype(result = "QueueResult<Option<Ticket>>")]
pub struct CallNext {
    pub counter: Id,
    pub tag: RequestTag,
}

/// Finish the counter's current ticket as served, then call the waiting
/// ticket with this printed number (`A042`).
#[derive(Message)]
#[rtype(result = "QueueResult<Ticket>")]
pub struct CallNumber {
    pub counter: Id,
    pub number: String,
    pub tag: RequestTag,
}

/// Announce the counter's current ticket again.
#[derive(Message)]
#[rtype(result = "QueueResult<Ticket>")]
pub struct Recall {
    pub counter: Id,
    pub tag: RequestTag,
}

/// End the counter's current ticket.
#[derive(Message)]
#[rtype(result = "QueueResult<Ticket>")]
pub struct FinishCurrent {
    pub counter: Id,
    pub outcome: Outcome,
    pub tag: RequestTag,
}

/// Send the counter's current ticket back to waiting in another service.
#[derive(Message)]
#[rtype(result = "QueueResult<Ticket>")]
pub struct Transfer {
    pub counter: Id,
    pub service: Id,
    pub tag: RequestTag,
}

/// Read one ticket.
#[derive(Message)]
#[rtype(result = "QueueResult<Option<Ticket>>")]
pub struct GetTicket {
    pub id: Id,
}

/// Read every service's queue.
#[derive(Message)]
#[rtype(result = "QueueResult<Vec<QueueStatus>>")]
pub struct GetQueues;

/// Read the display board.
#[derive(Message)]
#[rtype(result = "QueueResult<DisplayBoard>")]
pub struct GetDisplay;

/// The branch's configuration changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BranchChanged(pub Arc<Branch>);

impl Handler<BranchChanged> for TicketQueue {
    type Result = ();
    fn handle(&mut self, msg: BranchChanged, _: &mut Context<Self>) {
        self.branch = msg.0;
    }
}

impl Handler<IssueTicket> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Ticket>>;

    fn handle(&mut self, msg: IssueTicket, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let service = branch
                .service(msg.service.as_str())
                .ok_or_else(|| unknown_service(&branch, &msg.service))?;
            gate.admit(&msg.tag, &store)?;
            let args = IssueArgs {
                service: service.id.as_str(),
                prefix: &service.prefix,
                first: service.first,
                last: service.last,
                utc_offset_s: utc_offset_s(branch.tz(), Utc::now()),
            };
            let view = store
                .issue(&branch.id, msg.tag.key.as_ref(), args)
                .await
                .map_err(|e| counted(e, &gate.metrics))?;
            gate.metrics.ticket_issued(branch.id.as_str());
            Ok(with_estimate(&branch, view))
        })
    }
}

impl Handler<CallNext> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Option<Ticket>>>;

    fn handle(&mut self, msg: CallNext, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let counter = branch
                .counter(msg.counter.as_str())
                .ok_or_else(|| unknown_counter(&branch, &msg.counter))?;
            let row = ordered_row(&counter.services);
            gate.admit(&msg.tag, &store)?;
            let key = msg.tag.key.as_ref();
            let events = store
                .call(&branch.id, key, &counter.id, &row)
                .await
                .map_err(|e| counted(e, &gate.metrics))?;
            Ok(called_ticket(&branch, &gate.metrics, events))
        })
    }
}

/// The ticket a call script called (its last event, when that is
/// `ticket-called`), counted in the metrics.
fn called_ticket(branch: &Branch, metrics: &Metrics, events: Vec<TicketEvent>) -> Option<Ticket> {
    let called = events
        .into_iter()
        .last()
        .filter(|e| e.kind == EventKind::TicketCalled)
        .map(|e| e.ticket(branch.id.as_str()));
    if called.is_some() {
        metrics.ticket_called(branch.id.as_str());
    }
    called
}

impl Handler<CallNumber> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Ticket>>;

    fn handle(&mut self, msg: CallNumber, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let counter = branch
                .counter(msg.counter.as_str())
                .ok_or_else(|| unknown_counter(&branch, &msg.counter))?;
            let services: Vec<&str> = counter
                .services
                .iter()
                .map(|e| e.service.as_str())
                .collect();
            let offset = utc_offset_s(branch.tz(), Utc::now());
            gate.admit(&msg.tag, &store)?;
            let key = msg.tag.key.as_ref();
            let events = store
                .call_number(&branch.id, key, &counter.id, &msg.number, offset, &services)
                .await
                .map_err(|e| counted(e, &gate.metrics))?
                .ok_or_else(|| QueueError::NotWaiting {
                    number: msg.number.clone(),
                    counter: counter.id.to_string(),
                })?;
            called_ticket(&branch, &gate.metrics, events).ok_or_else(|| {
                QueueError::Store(StoreError::Corrupt("call by number without a call".into()))
            })
        })
    }
}

impl Handler<Recall> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Ticket>>;

    fn handle(&mut self, msg: Recall, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let counter = known_counter(&branch, &msg.counter)?;
            gate.admit(&msg.tag, &store)?;
            let key = msg.tag.key.as_ref();
            let event = store
                .recall(&branch.id, key, &counter)
                .await
                .map_err(|e| counted(e, &gate.metrics))?;
            event
                .map(|e| e.ticket(branch.id.as_str()))
                .ok_or_else(|| no_current_ticket(&counter))
        })
    }
}

impl Handler<FinishCurrent> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Ticket>>;

    fn handle(&mut self, msg: FinishCurrent, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let counter = known_counter(&branch, &msg.counter)?;
            gate.admit(&msg.tag, &store)?;
            let key = msg.tag.key.as_ref();
            let event = store
                .finish(&branch.id, key, &counter, msg.outcome)
                .await
                .map_err(|e| counted(e, &gate.metrics))?;
            event
                .map(|e| e.ticket(branch.id.as_str()))
                .ok_or_else(|| no_current_ticket(&counter))
        })
    }
}

impl Handler<Transfer> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Ticket>>;

    fn handle(&mut self, msg: Transfer, _: &mut Context<Self>) -> Self::Result {
        let (branch, store, gate) = self.handles();
        Box::pin(async move {
            let counter = known_counter(&branch, &msg.counter)?;
            if branch.service(msg.service.as_str()).is_none() {
                return Err(unknown_service(&branch, &msg.service));
            }
            gate.admit(&msg.tag, &store)?;
            let key = msg.tag.key.as_ref();
            let view = store
                .transfer(&branch.id, key, &counter, &msg.service)
                .await
                .map_err(|e| counted(e, &gate.metrics))?;
            view.map(|v| with_estimate(&branch, v))
                .ok_or_else(|| no_current_ticket(&counter))
        })
    }
}

impl Handler<GetTicket> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Option<Ticket>>>;

    fn handle(&mut self, msg: GetTicket, _: &mut Context<Self>) -> Self::Result {
        let (branch, store) = (self.branch.clone(), self.store.clone());
        Box::pin(async move {
            let view = store.ticket(&branch.id, msg.id.as_str()).await?;
            Ok(view.map(|v| with_estimate(&branch, v)))
        })
    }
}

impl Handler<GetQueues> for TicketQueue {
    type Result = ResponseFuture<QueueResult<Vec<QueueStatus>>>;

    fn handle(&mut self, _: GetQueues, _: &mut Context<Self>) -> Self::Result {
        let (branch, store) = (self.branch.clone(), self.store.clone());
        Box::pin(async move {
            let services: Vec<&str> = branch.services.iter().map(|s| s.id.as_str()).collect();
            let (heads, context) = store.queues(&branch.id, &services).await?;
            Ok(services
                .iter()
                .zip(heads)
                .map(|(service, head)| QueueStatus {
                    service: (*service).to_owned(),
                    waiting: head.waiting,
                    longest_wait_s: head
                        .oldest_ms
                        .map(|oldest| u64::try_from((context.now_ms - oldest) / 1000).unwrap_or(0))
                        .unwrap_or(0),
                    estimated_wait_s: estimate(&branch, service, head.waiting + 1, &context),
                })
                .collect())
        })
    }
}

impl Handler<GetDisplay> for TicketQueue {
    type Result = ResponseFuture<QueueResult<DisplayBoard>>;

    fn handle(&mut self, _: GetDisplay, _: &mut Context<Self>) -> Self::Result {
        let (branch, store) = (self.branch.clone(), self.store.clone());
        Box::pin(async move {
            let called = store
                .display(&branch.id)
                .await?
                .into_iter()
                .map(|(number, counter, announced_ms, id)| CalledEntry {
                    id,
                    number,
                    counter,
                    called_at: from_ms(announced_ms),
                })
                .collect();
            Ok(DisplayBoard { called })
        })
    }
}

/// What a ticket change passes before its script runs.
struct Gate {
    metrics: Arc<Metrics>,
    policy: LostStorePolicy,
}

impl Gate {
    /// Refuses a change while the store is lost and the policy says so, and
    /// a request whose turn came after its deadline (a node that was paused,
    /// or a Redis that answered slowly, must not perform what the client has
    /// already given up on).
    /// An admitted change counts towards the node's ticket load, which
    /// media transfers yield to.
    fn admit(&self, tag: &RequestTag, store: &Store) -> QueueResult<()> {
        if self.policy == LostStorePolicy::Refuse {
            if let Some(why) = store.memory().lost() {
                return Err(QueueError::StoreLost(why));
            }
        }
        expire(tag, &self.metrics)?;
        self.metrics.ticket_load.change();
        Ok(())
    }
}

fn expire(tag: &RequestTag, metrics: &Metrics) -> QueueResult<()> {
    let now = Instant::now();
    if !tag.expired_at(now) {
        return Ok(());
    }
    metrics.request_expired();
    let waited: Duration = now.saturating_duration_since(tag.received);
    tracing::warn!(
        waited_ms = waited.as_millis(),
        "request outlived its deadline; refused"
    );
    Err(QueueError::Expired {
        waited_ms: waited.as_millis(),
        limit_ms: tag.max_age.as_millis(),
    })
}

/// A ticket change's store error, counted when the metrics track it.
fn counted(e: StoreError, metrics: &Metrics) -> QueueError {
    if let StoreError::ReplicationTimeout { .. } = e {
        metrics.replication_timeouts.inc();
    }
    QueueError::Store(e)
}

fn unknown_service(branch: &Branch, service: &Id) -> QueueError {
    QueueError::UnknownService {
        branch: branch.id.to_string(),
        service: service.to_string(),
    }
}

fn unknown_counter(branch: &Branch, counter: &Id) -> QueueError {
    QueueError::UnknownCounter {
        branch: branch.id.to_string(),
        counter: counter.to_string(),
    }
}

fn no_current_ticket(counter: &Id) -> QueueError {
    QueueError::NoCurrentTicket {
        counter: counter.to_string(),
    }
}

fn known_counter(branch: &Branch, counter: &Id) -> QueueResult<Id> {
    branch
        .counter(counter.as_str())
        .map(|c| c.id.clone())
        .ok_or_else(|| unknown_counter(branch, counter))
}

/// The API ticket of a view, with position and estimate while it waits.
fn with_estimate(branch: &Branch, view: TicketView) -> Ticket {
    let mut ticket = view.event.ticket(branch.id.as_str());
    if ticket.status == TicketStatus::Waiting {
        if let Some(rank) = view.rank {
            let position = rank + 1;
            ticket.position = Some(position);
            ticket.estimated_wait_s =
                Some(estimate(branch, &ticket.service, position, &view.context));
        }
    }
    ticket
}

fn estimate(branch: &Branch, service: &str, position: u64, context: &QueueContext) -> u64 {
    let serving: Vec<Option<i64>> = branch
        .counters_serving(service)
        .map(|c| context.last_call_ms.get(c.as_str()).copied())
        .collect();
    let counters = open_counters(&serving, context.now_ms);
    estimate_wait_s(
        position,
        context.service_time_s.get(service).copied(),
        counters,
    )
}

/// The running ticket queues of this node, by branch. HTTP handlers look
/// queues up here; [`ConfigView`](super::ConfigView) keeps it in step with
/// the configuration.
#[derive(Clone)]
pub struct TicketQueues {
    inner: Arc<RwLock<HashMap<Id, Addr<TicketQueue>>>>,
    policy: LostStorePolicy,
}

impl TicketQueues {
    /// No queues yet; each one started later follows `policy`.
    pub fn new(policy: LostStorePolicy) -> TicketQueues {
        TicketQueues {
            inner: Arc::default(),
            policy,
        }
    }

    pub fn get(&self, branch: &str) -> Option<Addr<TicketQueue>> {
        let map = self.inner.read().unwrap_or_else(|e| e.into_inner());
        map.get(branch).cloned()
    }

    /// Starts queues for newly served branches, hands changed configuration
    /// to running ones and stops those no longer served.
    pub(crate) fn reconcile(
        &self,
        served: &HashMap<Id, Arc<Branch>>,
        store: &Store,
        metrics: &Arc<Metrics>,
    ) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the last address stops a queue's actor; requests already
        // sent to it still finish.
        map.retain(|id, _| {
            let keep = served.contains_key(id);
            if !keep {
                tracing::info!(branch = %id, "no longer serving branch");
            }
            keep
        });
        for (id, branch) in served {
            match map.get(id) {
                Some(addr) => addr.do_send(BranchChanged(branch.clone())),
                None => {
                    tracing::info!(branch = %id, "serving branch");
                    let queue = TicketQueue::new(
                        branch.clone(),
                        store.clone(),
                        metrics.clone(),
                        self.policy,
                    );
                    let addr = queue.start();
                    map.insert(id.clone(), addr);
                }
            }
        }
    }
}
