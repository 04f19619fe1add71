//! `Membership`: heartbeats this node into the group's member list, which
//! `GET /api/v1/cluster` shows. A member silent for [`EXPIRY`] drops out.
//!
//! With each heartbeat it also checks the store's identity
//! ([`crate::store::memory`]): a store that lost its data is marked lost
//! (`turnus_store_lost` 1, `/readyz` 503 `store-lost`). A slave group's node
//! adopts the store by itself once the group's leader has mirrored the
//! configuration into it again; a master group's nodes wait for an operator
//! (`POST /api/v1/cluster/store/adopt`).

use std::time::Duration;

use actix::prelude::*;

use std::sync::Arc;

use super::node::NodeContext;
use crate::domain::Id;
use crate::metrics::Metrics;
use crate::settings::NodeRole;
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
    role: NodeRole,
    metrics: Arc<Metrics>,
}

impl Membership {
    pub fn new(node: &NodeContext) -> Self {
        Membership {
            store: node.store.clone(),
            group: node.group.clone(),
            node: node.node_id.clone(),
            addr: node.advertise_url.clone(),
            left: false,
            role: node.role,
            metrics: node.metrics.clone(),
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
        let (role, metrics) = (self.role, self.metrics.clone());
        ctx.spawn(
            async move {
                if let Err(e) = store
                    .heartbeat(&group, &node, &addr, EXPIRY.as_millis() as u64)
                    .await
                {
                    tracing::debug!(error = %e, "heartbeat failed");
                    return;
                }
                check_store(&store, &group, role).await;
                metrics
                    .store_lost
                    .set(i64::from(store.memory().lost().is_some()));
            }
            .into_actor(self),
        );
    }
}

/// Checks the store's identity; a slave group's node adopts a lost store
/// once its configuration has been mirrored into it again.
async fn check_store(store: &Store, group: &Id, role: NodeRole) {
    let lost = match store.check_identity(group).await {
        Ok(lost) => lost,
        Err(e) => {
            tracing::debug!(error = %e, "store identity check failed");
            return;
        }
    };
    if lost.is_none() || role != NodeRole::Slave {
        return;
    }
    match store.config_version(group).await {
        Ok(version) if version > 0 => match store.adopt(group).await {
            Ok(id) => tracing::warn!(
                store_id = %id,
                version,
                "slave group: configuration mirrored again into the lost store; adopted it"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot adopt the store"),
        },
        _ => {} // the leader's mirror has not refilled it yet
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
