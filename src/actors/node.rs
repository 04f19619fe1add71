//! The node context and the one function that starts a node's actors.
//!
//! [`NodeContext`] is everything an actor of this node may need, built once
//! by `app.rs`; every actor's constructor takes it. [`start`] starts them
//! all, in dependency order, once per node. A leader-only actor (one that
//! works only while this node leads the group) is one line in [`start`]:
//! `actors.leader_only(Thing::new(node))` starts it and subscribes it to
//! [`LeadershipGained`] / [`LeadershipLost`].
//!
//! This module owns the wiring between actors; it must not hold business
//! rules or talk to Redis itself.

use std::sync::Arc;

use actix::prelude::*;

use super::config_view::ConfigView;
use super::leader::{LeadershipGained, LeadershipLost, SubscribeLeadership};
use super::{
    ConfigHandle, ConfigMirror, DayCloser, EventHub, Leader, LeaderStatus, MediaDistributor,
    MediaHandle, Membership, StatsAggregator, StatsShipper, TicketQueues,
};
use crate::domain::{Branch, Id};
use crate::metrics::Metrics;
use crate::settings::{NodeRole, Settings};
use crate::store::Store;

/// What the actors of one node share. Cheap to clone.
#[derive(Clone)]
pub struct NodeContext {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub group: Id,
    pub node_id: String,
    pub role: NodeRole,
    /// The URL other nodes and operators reach this node at.
    pub advertise_url: String,
    pub config: ConfigHandle,
    pub queues: TicketQueues,
    pub metrics: Arc<Metrics>,
    pub leader_status: LeaderStatus,
    /// What this node holds of the media library (see `media_handle`).
    pub media: MediaHandle,
}

impl NodeContext {
    pub fn is_master(&self) -> bool {
        self.role == NodeRole::Master
    }

    /// The branches this node serves in the configuration it holds now.
    pub fn served_branches(&self) -> Vec<Arc<Branch>> {
        self.config
            .current()
            .map(|s| {
                s.served_by(&self.group, self.is_master())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An actor that works only while this node leads the group.
pub trait LeaderOnly:
    Actor<Context = Context<Self>> + Handler<LeadershipGained> + Handler<LeadershipLost>
{
}

impl<A> LeaderOnly for A where
    A: Actor<Context = Context<A>> + Handler<LeadershipGained> + Handler<LeadershipLost>
{
}

/// The running actors of a node.
pub struct NodeActors {
    pub hub: Addr<EventHub>,
    pub config_view: Addr<ConfigView>,
    pub leader: Addr<Leader>,
    /// The Leader's own thread.
    pub leader_arbiter: Arbiter,
    pub membership: Addr<Membership>,
    /// The MediaDistributor's own thread (hashing and file writes).
    pub media_arbiter: Arbiter,
}

impl NodeActors {
    /// Starts `actor` and has the leader tell it when this node gains or
    /// loses leadership (at once, if it leads already).
    pub fn leader_only<A: LeaderOnly>(&self, actor: A) -> Addr<A> {
        let addr = actor.start();
        self.leader.do_send(SubscribeLeadership {
            gained: addr.clone().recipient(),
            lost: addr.clone().recipient(),
        });
        addr
    }
}

/// Starts every actor of the node, once. Call it from a running actix system.
pub fn start(node: &NodeContext) -> NodeActors {
    // The hub tells the view about configuration changes and the view tells
    // displays through the hub: create the view's context first so both get
    // each other's address at construction (no setter after start).
    let view_context = Context::<ConfigView>::new();
    let hub = EventHub::new(node, view_context.address().recipient()).start();
    let config_view = view_context.run(ConfigView::new(node, hub.clone()));

    // The leader gets its own thread and Redis connection so nothing on the
    // HTTP or ticket path can delay lease renewal.
    let leader_arbiter = Arbiter::new();
    let leader = {
        let node = node.clone();
        Leader::start_in_arbiter(&leader_arbiter.handle(), move |_| Leader::new(&node))
    };
    let membership = Membership::new(node).start();
    // The media distributor hashes and writes files: its own thread, so the
    // ticket queues never wait for it. On slaves it mirrors differently
    // while this node leads, so it hears about leadership too.
    let media_arbiter = Arbiter::new();
    let media = {
        let node = node.clone();
        MediaDistributor::start_in_arbiter(&media_arbiter.handle(), move |_| {
            MediaDistributor::new(&node)
        })
    };
    leader.do_send(SubscribeLeadership {
        gained: media.clone().recipient(),
        lost: media.recipient(),
    });
    let actors = NodeActors {
        hub,
        config_view,
        leader,
        leader_arbiter,
        membership,
        media_arbiter,
    };

    actors.leader_only(DayCloser::new(node));
    actors.leader_only(StatsAggregator::new(node));
    if node.role == NodeRole::Slave {
        actors.leader_only(ConfigMirror::new(node));
        actors.leader_only(StatsShipper::new(node));
    }
    actors
}
