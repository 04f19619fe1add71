//! Leader-only writes, every one checked against the fencing epoch inside
//! its Redis script (DESIGN.md §4): a leader that was paused or cut off and
//! comes back with an old epoch changes nothing and gets
//! [`StoreError::Fenced`].
//!
//! Writes to group keys compare with the group's epoch key directly. Writes
//! to a branch's keys cannot read the group epoch without leaving the branch's
//! slot, so each branch slot keeps a fence (see `lua/lib/fence_branch.lua`)
//! that a new leader raises for all its branches as soon as it takes the
//! lease. The fence preludes are added by the script builder
//! ([`super::scripts`]); they take the epoch off `ARGV`.

use redis::Script;

use super::{keys, strings, Store, StoreError, StoreResult};
use crate::domain::Id;

/// What closing a business day did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed now; this many tickets were still open.
    Closed(u64),
    /// Closed before (possibly by another leader), through this day.
    Already(i64),
}

impl Store {
    /// The one path of every leader-only write: runs `script` with
    /// `KEYS[1] = prefix` and `ARGV = [epoch, args…]`, and turns a
    /// `{'fenced', current}` reply into [`StoreError::Fenced`].
    pub(crate) async fn run_fenced(
        &self,
        script: &Script,
        prefix: String,
        epoch: u64,
        args: &[String],
    ) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        let mut invocation = script.key(prefix);
        invocation.arg(epoch);
        for arg in args {
            invocation.arg(arg);
        }
        let reply = strings(invocation.invoke_async(&mut conn).await?)?;
        match reply.as_slice() {
            [fenced, current] if fenced == "fenced" => Err(StoreError::Fenced {
                held: epoch,
                current: current.parse().unwrap_or(0),
            }),
            _ => Ok(reply),
        }
    }

    /// A leader-only no-op on the group's keys: `Ok` exactly when a real
    /// fenced write with this epoch would be accepted now.
    pub async fn fence_probe(&self, group: &Id, epoch: u64) -> StoreResult<()> {
        self.run_fenced(
            &self.scripts().fence_probe,
            keys::group_prefix(group),
            epoch,
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Raises the branch's fence to `epoch` (refused if a higher epoch has
    /// written there).
    pub async fn raise_branch_fence(&self, branch: &Id, epoch: u64) -> StoreResult<()> {
        self.run_fenced(
            &self.scripts().raise_fence,
            keys::branch_prefix(branch),
            epoch,
            &[],
        )
        .await
        .map(|_| ())
    }

    /// Closes business day `day` of a branch: tickets issued before
    /// `cutoff_us` and still open become `closed`. At most once per day.
    pub async fn close_day(
        &self,
        branch: &Id,
        epoch: u64,
        day: i64,
        cutoff_us: i64,
    ) -> StoreResult<CloseOutcome> {
        let reply = self
            .run_fenced(
                &self.scripts().close_day,
                keys::branch_prefix(branch),
                epoch,
                &[day.to_string(), cutoff_us.to_string()],
            )
            .await?;
        match reply.as_slice() {
            [closed, n] if closed == "closed" => Ok(CloseOutcome::Closed(n.parse().unwrap_or(0))),
            [already, d] if already == "already" => {
                Ok(CloseOutcome::Already(d.parse().unwrap_or(0)))
            }
            other => Err(StoreError::Corrupt(format!("close_day replied {other:?}"))),
        }
    }
}
