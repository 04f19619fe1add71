//! Group membership and the leader lease (DESIGN.md §4).
//!
//! The lease is `SET lease "<node>|<epoch>" NX PX ttl` with the epoch from
//! `INCR epoch` in the same script, so every holder has its own epoch, the
//! fencing token [`fenced`](super::fenced) writes are checked against.

use super::{keys, strings, Store, StoreError, StoreResult};
use crate::domain::Id;

/// A lease holder: `node|epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub node: String,
    pub epoch: u64,
}

impl LeaseHolder {
    pub fn parse(value: &str) -> Option<LeaseHolder> {
        let (node, epoch) = value.rsplit_once('|')?;
        Some(LeaseHolder {
            node: node.to_owned(),
            epoch: epoch.parse().ok()?,
        })
    }

    /// The value stored in the lease key.
    pub fn value(&self) -> String {
        format!("{}|{}", self.node, self.epoch)
    }
}

/// One live member of the group.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub addr: String,
    /// Milliseconds since its last heartbeat.
    pub last_seen_ms: u64,
}

/// The group as Redis sees it at one instant.
#[derive(Debug, Clone)]
pub struct ClusterState {
    pub leader: Option<LeaseHolder>,
    pub epoch: u64,
    pub members: Vec<Member>,
}

impl Store {
    /// Takes the lease if free: `Ok(epoch)`, or `Err((holder, ms until
    /// the lease expires unless renewed))` when held.
    pub async fn acquire_lease(
        &self,
        group: &Id,
        node: &str,
        ttl_ms: u64,
    ) -> StoreResult<Result<u64, (Option<LeaseHolder>, u64)>> {
        let mut conn = self.conn();
        let (taken, value, pttl): (i64, String, i64) = self
            .scripts()
            .lease_acquire
            .key(keys::group_prefix(group))
            .arg(node)
            .arg(ttl_ms)
            .arg(self.memory().max_epoch())
            .invoke_async(&mut conn)
            .await?;
        if taken == 1 {
            let epoch = value
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("epoch {value:?}")))?;
            self.memory().note_epoch(epoch);
            Ok(Ok(epoch))
        } else {
            let holder = LeaseHolder::parse(&value);
            if let Some(holder) = &holder {
                self.memory().note_epoch(holder.epoch);
            }
            Ok(Err((holder, u64::try_from(pttl).unwrap_or(0))))
        }
    }

    /// Extends the lease; false when it is no longer ours.
    pub async fn renew_lease(
        &self,
        group: &Id,
        holder: &LeaseHolder,
        ttl_ms: u64,
    ) -> StoreResult<bool> {
        let mut conn = self.conn();
        let renewed: i64 = self
            .scripts()
            .lease_renew
            .key(keys::group_prefix(group))
            .arg(holder.value())
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Deletes the lease if it is still ours.
    pub async fn release_lease(&self, group: &Id, holder: &LeaseHolder) -> StoreResult<bool> {
        let mut conn = self.conn();
        let released: i64 = self
            .scripts()
            .lease_release
            .key(keys::group_prefix(group))
            .arg(holder.value())
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }

    /// Records this node as alive; members silent for `expiry_ms` drop out.
    pub async fn heartbeat(
        &self,
        group: &Id,
        node: &str,
        addr: &str,
        expiry_ms: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: i64 = self
            .scripts()
            .heartbeat
            .key(keys::group_prefix(group))
            .arg(node)
            .arg(addr)
            .arg(expiry_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes this node from the member list (graceful shutdown).
    pub async fn leave(&self, group: &Id, node: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: i64 = self
            .scripts()
            .leave
            .key(keys::group_prefix(group))
            .arg(node)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Leader, epoch and live members, read atomically.
    pub async fn cluster_state(&self, group: &Id, expiry_ms: u64) -> StoreResult<ClusterState> {
        let mut conn = self.conn();
        let (lease, epoch, now_ms, flat): (String, String, i64, Vec<String>) = self
            .scripts()
            .cluster_state
            .key(keys::group_prefix(group))
            .arg(expiry_ms)
            .invoke_async(&mut conn)
            .await?;
        let members = flat
            .chunks(3)
            .filter(|c| c.len() == 3)
            .map(|c| Member {
                id: c[0].clone(),
                addr: c[1].clone(),
                last_seen_ms: c[2]
                    .parse::<i64>()
                    .map(|seen| u64::try_from(now_ms - seen).unwrap_or(0))
                    .unwrap_or(0),
            })
            .collect();
        let epoch = epoch.parse().unwrap_or(0);
        self.memory().note_epoch(epoch);
        Ok(ClusterState {
            leader: LeaseHolder::parse(&lease),
            epoch,
            members,
        })
    }

    /// Checks the store's identity against the one this node remembers
    /// (see [`super::memory`]) and records the outcome there: trusted, or
    /// lost with the reason.
    pub async fn check_identity(&self, group: &Id) -> StoreResult<Option<String>> {
        let (status, id) = self.identity_script(group, "check").await?;
        match status.as_str() {
            "ok" => self.memory().trust(id),
            "lost" => self.memory().mark_lost(
                "the group's Redis no longer has the identity this node knew: it lost its data (restarted empty?)".into(),
            ),
            _ => self.memory().mark_lost(format!(
                "the group's Redis has another identity ({id}) than this node knew: restored from a backup, or another store?"
            )),
        }
        Ok(self.memory().lost())
    }

    /// Trusts the store as it is now (an operator's `turnus store adopt`,
    /// or a slave group that mirrored its configuration again), and lets
    /// every node that remembers the same old identity follow.
    pub async fn adopt(&self, group: &Id) -> StoreResult<String> {
        let (_, id) = self.identity_script(group, "adopt").await?;
        self.memory().trust(id.clone());
        Ok(id)
    }

    async fn identity_script(&self, group: &Id, mode: &str) -> StoreResult<(String, String)> {
        let mut conn = self.conn();
        let candidate = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let reply = strings(
            self.scripts()
                .store_identity
                .key(keys::group_prefix(group))
                .arg(self.memory().identity().unwrap_or_default())
                .arg(candidate)
                .arg(mode)
                .invoke_async(&mut conn)
                .await?,
        )?;
        match reply.as_slice() {
            [status, id] => Ok((status.clone(), id.clone())),
            other => Err(StoreError::Corrupt(format!("store identity {other:?}"))),
        }
    }

    /// Makes sure Redis never evicts keys (the epoch, the lease, the
    /// outbox). Returns the policy in force afterwards.
    pub async fn ensure_noeviction(&self) -> StoreResult<String> {
        let mut conn = self.conn();
        let policy: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await?;
        let current = policy.get(1).cloned().unwrap_or_default();
        if current == "noeviction" {
            return Ok(current);
        }
        // Managed Redis services may refuse CONFIG SET; the caller warns.
        let set: Result<(), _> = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("noeviction")
            .query_async(&mut conn)
            .await;
        Ok(if set.is_ok() {
            "noeviction".to_owned()
        } else {
            current
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trip() {
        let h = LeaseHolder::parse("node-a|42").expect("parses");
        assert_eq!(
            h,
            LeaseHolder {
                node: "node-a".into(),
                epoch: 42
            }
        );
        assert_eq!(h.value(), "node-a|42");
        assert_eq!(LeaseHolder::parse(""), None);
        assert_eq!(LeaseHolder::parse("x|y"), None);
    }
}
