//! `Membership`: heartbeats this node into the group's member list, which
//! `GET /api/v1/cluster` shows. A member silent for [`EXPIRY`] drops out.

use std::time::Duration;

use actix::prelude::*;

use super::node::NodeContext;
use crate::domain::Id;
use crate::store::Store;

pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Five missed heartbeats.
pub const EXPIRY: Duration = Duration::from_secs(5);

pub struct Membership {
    store: Store,
    group: Id,
    node: String,
    addr: String,
    left: bool,
}

impl Membership {
    pub fn new(node: &NodeContext) -> Self {
        Membership {
            store: node.store.clone(),
            group: node.group.clone(),
            node: node.node_id.clone(),
            addr: node.advertise_url.clone(),
            left: false,
        }
    }

    fn beat(&mut self, ctx: &mut Context<Self>) {
        if self.left {
            return;
        }
        let (store, group, node, addr) = (
            self.store.clone(),
            self.group.clone(),
            self.node.clone(),
            self.addr.clone(),
        );
        ctx.spawn(
            async move {
                if let Err(e) = store
                    .heartbeat(&group, &node, &addr, EXPIRY.as_millis() as u64)
                    .await
                {
                    tracing::debug!(error = %e, "heartbeat failed");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for Membership {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.beat(ctx);
        ctx.run_interval(HEARTBEAT, |m, ctx| m.beat(ctx));
    }
}

/// Leave the member list (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

impl Handler<Leave> for Membership {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Leave, _: &mut Context<Self>) -> Self::Result {
        self.left = true;
        let (store, group, node) = (self.store.clone(), self.group.clone(), self.node.clone());
        Box::pin(async move {
            let _ = store.leave(&group, &node).await;
        })
    }
}
