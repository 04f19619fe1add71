//! The group's configuration: one JSON document per branch and a version,
//! changed only by compare-and-swap so concurrent administrators on
//! different nodes never overwrite each other's edits.

use redis::Value;

use super::{keys, pairs, strings, Store, StoreError, StoreResult};
use crate::domain::config::ConfigSnapshot;
use crate::domain::{Branch, Id};

/// How often a read-modify-write is retried when another writer won the race.
const CAS_ATTEMPTS: usize = 16;

/// The outcome of [`Store::update_branch`].
#[derive(Debug, thiserror::Error)]
pub enum UpdateError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change itself refused the current document.
    #[error("change refused")]
    Rejected(E),
}

impl Store {
    /// The group's whole configuration at one version.
    pub async fn load_config(&self, group: &Id) -> StoreResult<ConfigSnapshot> {
        let mut conn = self.conn();
        let (version, flat): (u64, Vec<String>) = self
            .scripts()
            .config_load
            .key(keys::group_prefix(group))
            .invoke_async(&mut conn)
            .await?;
        let mut snapshot = ConfigSnapshot {
            version,
            ..ConfigSnapshot::default()
        };
        for (id, doc) in pairs(flat) {
            let branch: Branch = serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(format!("branch {id}: {e}")))?;
            snapshot.branches.insert(branch.id.clone(), branch.into());
        }
        Ok(snapshot)
    }

    /// The configuration version alone (a cheap change check).
    pub async fn config_version(&self, group: &Id) -> StoreResult<u64> {
        let mut conn = self.conn();
        let version: Option<u64> = redis::cmd("GET")
            .arg(keys::group_version(group))
            .query_async(&mut conn)
            .await?;
        Ok(version.unwrap_or(0))
    }

    /// Reads one branch document, lets `change` compute the new one (`None`
    /// deletes), and swaps it in if nobody changed it meanwhile, retrying
    /// otherwise. Returns the new configuration version and the new document.
    pub async fn update_branch<E>(
        &self,
        group: &Id,
        branch: &Id,
        mut change: impl FnMut(Option<Branch>) -> Result<Option<Branch>, E>,
    ) -> Result<(u64, Option<Branch>), UpdateError<E>> {
        let prefix = keys::group_prefix(group);
        for _ in 0..CAS_ATTEMPTS {
            let mut conn = self.conn();
            let current: Option<String> = redis::cmd("HGET")
                .arg(keys::group_branches(group))
                .arg(branch.as_str())
                .query_async(&mut conn)
                .await
                .map_err(StoreError::from)?;
            let parsed = match &current {
                None => None,
                Some(doc) => Some(serde_json::from_str::<Branch>(doc).map_err(StoreError::from)?),
            };
            let next = change(parsed).map_err(UpdateError::Rejected)?;
            let next_doc = match &next {
                None => String::new(),
                Some(b) => serde_json::to_string(b).map_err(StoreError::from)?,
            };
            let reply: Value = self
                .scripts()
                .config_put
                .key(&prefix)
                .arg(branch.as_str())
                .arg(current.as_deref().unwrap_or(""))
                .arg(&next_doc)
                .invoke_async(&mut conn)
                .await
                .map_err(StoreError::from)?;
            match strings(reply)?.as_slice() {
                [ok, version] if ok == "ok" => {
                    let version = version
                        .parse()
                        .map_err(|_| StoreError::Corrupt(format!("version {version:?}")))?;
                    return Ok((version, next));
                }
                [conflict] if conflict == "conflict" => continue,
                other => {
                    return Err(StoreError::Corrupt(format!("config_put replied {other:?}")).into())
                }
            }
        }
        Err(StoreError::Contention {
            attempts: CAS_ATTEMPTS,
        }
        .into())
    }
}
