//! The slave group's wanted media manifest: swapped in by the leader under
//! its epoch (a deposed leader cannot bring an old manifest back), read by
//! every node of the group, which then fetches what it lacks.

use super::{keys, Store, StoreError, StoreResult};
use crate::domain::media::Manifest;
use crate::domain::Id;

impl Store {
    /// Makes `manifest` the group's wanted one; `Ok(false)` when it already
    /// was.
    pub async fn swap_media_manifest(
        &self,
        group: &Id,
        epoch: u64,
        manifest: &Manifest,
    ) -> StoreResult<bool> {
        let reply = self
            .run_fenced(
                &self.scripts().media_swap,
                keys::group_prefix(group),
                epoch,
                &[manifest.version.clone(), serde_json::to_string(manifest)?],
            )
            .await?;
        match reply.first().map(String::as_str) {
            Some("swapped") => Ok(true),
            Some("same") => Ok(false),
            _ => Err(StoreError::Corrupt(format!("media_swap replied {reply:?}"))),
        }
    }

    /// The version of the group's wanted manifest (one short GET, for
    /// polling); `None` before the first swap.
    pub async fn media_version(&self, group: &Id) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        Ok(redis::cmd("GET")
            .arg(keys::group_media_version(group))
            .query_async(&mut conn)
            .await?)
    }

    /// The group's wanted manifest; `None` before the first swap (or after
    /// the group's Redis lost it: then nothing held may be deleted).
    pub async fn media_manifest(&self, group: &Id) -> StoreResult<Option<Manifest>> {
        let mut conn = self.conn();
        let json: Option<String> = redis::cmd("GET")
            .arg(keys::group_media_manifest(group))
            .query_async(&mut conn)
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let manifest: Manifest = serde_json::from_str(&json)?;
        if !manifest.is_consistent() {
            return Err(StoreError::Corrupt(
                "stored media manifest does not match its version".into(),
            ));
        }
        Ok(Some(manifest))
    }
}
