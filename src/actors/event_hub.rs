//! `EventHub`: the node's one Redis subscriber.
//!
//! It pattern-subscribes to every branch's event channel and to the group's
//! configuration channel. Ticket events are turned into the API's ticket JSON
//! once, then fanned out to the live displays (SSE streams) of that branch
//! through a broadcast channel; configuration notifications go to the
//! [`ConfigView`](super::ConfigView). When the subscription drops (Redis
//! restarted, network cut) it reconnects with a delay; displays miss what was
//! published meanwhile, as pub/sub promises no more — the ticket state itself
//! is in Redis and a display re-reads it on `GET /display`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::broadcast;

use super::config_view::ConfigChanged;
use super::node::NodeContext;
use crate::domain::Id;
use crate::domain::{EventKind, TicketEvent};
use crate::store::{Notice, Store};

const RECONNECT_DELAY: Duration = Duration::from_secs(1);
const CHANNEL_CAPACITY: usize = 256;

/// One event for live displays: the SSE event name and its JSON data.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub kind: EventKind,
    pub data: String,
}

/// The actor.
pub struct EventHub {
    store: Store,
    group: Id,
    config_listener: Recipient<ConfigChanged>,
    branches: HashMap<String, broadcast::Sender<Arc<LiveEvent>>>,
}

impl EventHub {
    /// `config_listener` is told of every configuration change notice.
    pub fn new(node: &NodeContext, config_listener: Recipient<ConfigChanged>) -> Self {
        EventHub {
            store: node.store.clone(),
            group: node.group.clone(),
            config_listener,
            branches: HashMap::new(),
        }
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (store, group) = (self.store.clone(), self.group.clone());
        ctx.spawn(
            async move { store.subscribe_notices(&group).await }
                .into_actor(self)
                .map(|result, hub, ctx| match result {
                    Ok(stream) => {
                        tracing::debug!("subscribed to ticket and configuration events");
                        ctx.add_stream(stream);
                        // Anything published while we were not subscribed is lost;
                        // make the configuration view look for itself.
                        hub.notify_config();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot subscribe to events; retrying");
                        ctx.run_later(RECONNECT_DELAY, |hub, ctx| hub.connect(ctx));
                    }
                }),
        );
    }

    fn notify_config(&self) {
        self.config_listener.do_send(ConfigChanged);
    }

    fn publish(&mut self, branch: &str, event: LiveEvent) {
        if let Some(sender) = self.branches.get(branch) {
            if sender.send(Arc::new(event)).is_err() {
                // No receiver left: forget the channel.
                self.branches.remove(branch);
            }
        }
    }
}

impl Actor for EventHub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.connect(ctx);
    }
}

impl StreamHandler<Notice> for EventHub {
    fn handle(&mut self, notice: Notice, _: &mut Context<Self>) {
        let (branch, payload) = match notice {
            Notice::ConfigChanged => {
                self.notify_config();
                return;
            }
            Notice::TicketEvent { branch, payload } => (branch, payload),
        };
        if !self.branches.contains_key(&branch) {
            return; // nobody is watching this branch on this node
        }
        match serde_json::from_str::<TicketEvent>(&payload) {
            Ok(event) => {
                let ticket = event.ticket(&branch);
                let data = serde_json::to_string(&ticket).unwrap_or_default();
                self.publish(
                    &branch,
                    LiveEvent {
                        kind: event.kind,
                        data,
                    },
                );
            }
            Err(e) => tracing::warn!(error = %e, %branch, "unreadable ticket event"),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        tracing::warn!("event subscription ended; reconnecting");
        ctx.run_later(RECONNECT_DELAY, |hub, ctx| hub.connect(ctx));
    }
}

/// Subscribe to one branch's live events.
#[derive(Message)]
#[rtype(result = "broadcast::Receiver<Arc<LiveEvent>>")]
pub struct Subscribe {
    pub branch: String,
}

impl Handler<Subscribe> for EventHub {
    type Result = MessageResult<Subscribe>;
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) -> Self::Result {
        let sender = self
            .branches
            .entry(msg.branch)
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
        MessageResult(sender.subscribe())
    }
}

/// An event that originates on this node (such as `config-changed`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PublishLocal {
    pub branch: String,
    pub event: LiveEvent,
}

impl Handler<PublishLocal> for EventHub {
    type Result = ();
    fn handle(&mut self, msg: PublishLocal, _: &mut Context<Self>) {
        self.publish(&msg.branch, msg.event);
    }
}
