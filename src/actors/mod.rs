//! Thin actix actors, started once per node (never inside the per-worker
//! `HttpServer::new` closure).
//!
//! - [`TicketQueue`]: one per branch this node serves; fronts the ticket
//!   operations and runs each as one store script.
//! - [`ConfigView`]: keeps the node's view of the configuration current and
//!   starts, updates and stops the ticket queues to match it.
//! - [`EventHub`]: the node's one Redis subscriber; fans ticket events out to
//!   live displays (SSE) and configuration changes to the config view.
//! - [`Leader`]: the group's leader election, on its own Arbiter; tells
//!   singleton actors when this node gains or loses leadership.
//! - [`DayCloser`]: the leader's end-of-business-day close, fenced.
//! - [`ConfigMirror`]: on a slave group's leader, mirrors the master's
//!   configuration into the group's Redis.
//! - [`MediaDistributor`]: the master's library scan; on slave nodes the
//!   media mirror (leader from the master, the others from their group),
//!   with [`MediaHandle`] as what this node holds, for the HTTP layer.
//! - [`Membership`]: heartbeats this node into the group's member list.
//! - [`StatsAggregator`]: on every group's leader, applies its branches'
//!   outboxes to the group's statistics rollups.
//! - [`StatsShipper`]: on a slave group's leader, ships the outboxes to the
//!   master, which applies them exactly once.
//!
//! [`node::start`] starts them all over one [`NodeContext`]; a leader-only
//! actor is one line there.
//!
//! Actors hold no state that Redis does not also hold: a node can be killed
//! at any moment and another serves the same requests.

pub mod config_mirror;
pub mod config_view;
pub mod day_closer;
pub mod event_hub;
pub mod leader;
pub mod media_distributor;
pub mod media_fetch;
pub mod media_handle;
pub mod membership;
pub mod node;
pub mod stats_aggregator;
pub mod stats_shipper;
pub mod ticket_queue;

pub use config_mirror::ConfigMirror;
pub use config_view::{ConfigHandle, ConfigView};
pub use day_closer::DayCloser;
pub use event_hub::{EventHub, LiveEvent};
pub use leader::{Leader, LeaderStatus};
pub use media_distributor::MediaDistributor;
pub use media_handle::MediaHandle;
pub use membership::Membership;
pub use node::{NodeActors, NodeContext};
pub use stats_aggregator::StatsAggregator;
pub use stats_shipper::StatsShipper;
pub use ticket_queue::{LostStorePolicy, QueueError, TicketQueue, TicketQueues};
