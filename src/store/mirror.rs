//! The slave side of the configuration mirror: applying snapshots and
//! recording the upstream link, both fenced leader-only writes.

use super::{keys, Store, StoreError, StoreResult};
use crate::domain::{Branch, Id};

/// What applying a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MirrorOutcome {
    Applied(u64),
    /// The group already holds this version or a newer one.
    Stale(u64),
}

/// The slave group's link to the master, as its leader last recorded it.
#[derive(Debug, Clone, Default)]
pub struct UpstreamRecord {
    pub connected: bool,
    pub last_contact_ms: Option<i64>,
    pub master: String,
}

impl Store {
    /// Replaces the group's configuration with `branches` at `version`, if
    /// newer than what it holds, under the caller's epoch.
    pub async fn apply_mirror(
        &self,
        group: &Id,
        epoch: u64,
        version: u64,
        branches: &[Branch],
    ) -> StoreResult<MirrorOutcome> {
        let mut args = vec![version.to_string()];
        for branch in branches {
            args.push(branch.id.to_string());
            args.push(serde_json::to_string(branch)?);
        }
        let reply = self
            .run_fenced(
                &self.scripts().mirror_apply,
                keys::group_prefix(group),
                epoch,
                &args,
            )
            .await?;
        let number = |s: &str| {
            s.parse()
                .map_err(|_| StoreError::Corrupt(format!("version {s:?}")))
        };
        match reply.as_slice() {
            [applied, v] if applied == "applied" => Ok(MirrorOutcome::Applied(number(v)?)),
            [stale, v] if stale == "stale" => Ok(MirrorOutcome::Stale(number(v)?)),
            other => Err(StoreError::Corrupt(format!(
                "mirror_apply replied {other:?}"
            ))),
        }
    }

    /// Records the link state; `contacted` stamps the last contact time.
    pub async fn record_upstream(
        &self,
        group: &Id,
        epoch: u64,
        connected: bool,
        contacted: bool,
        master: &str,
    ) -> StoreResult<()> {
        let args = [
            u8::from(connected).to_string(),
            u8::from(contacted).to_string(),
            master.to_owned(),
        ];
        self.run_fenced(
            &self.scripts().upstream_status,
            keys::group_prefix(group),
            epoch,
            &args,
        )
        .await
        .map(|_| ())
    }

    /// The link state as recorded.
    pub async fn upstream(&self, group: &Id) -> StoreResult<UpstreamRecord> {
        let mut conn = self.conn();
        let (connected, last, master): (Option<String>, Option<i64>, Option<String>) =
            redis::cmd("HMGET")
                .arg(keys::group_upstream(group))
                .arg("connected")
                .arg("last_contact_ms")
                .arg("master")
                .query_async(&mut conn)
                .await?;
        Ok(UpstreamRecord {
            connected: connected.as_deref() == Some("1"),
            last_contact_ms: last,
            master: master.unwrap_or_default(),
        })
    }
}
