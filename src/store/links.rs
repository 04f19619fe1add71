//! The group's secret for customers' ticket links (see `domain::link`).
//!
//! Created once per group with `SET NX`, so every node of the group signs
//! and checks links with the same secret whichever node created it. It is
//! random (the OS generator), 32 bytes, stored as hex. Owns only that one
//! key; it never reads or writes tickets.

use redis::AsyncCommands;

use super::{keys, Store, StoreError, StoreResult};
use crate::domain::Id;

impl Store {
    /// The group's link secret, created now if the group has none yet.
    pub async fn link_secret(&self, group: &Id) -> StoreResult<Vec<u8>> {
        let key = keys::group_link_secret(group);
        let mut fresh = [0u8; 32];
        getrandom::getrandom(&mut fresh).map_err(|e| {
            StoreError::Corrupt(format!("no random bytes for the link secret: {e}"))
        })?;
        let fresh: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
        let mut conn = self.conn();
        // NX: the first node to get here sets it; everyone reads the winner.
        let _: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&fresh)
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        let stored: Option<String> = conn.get(&key).await?;
        let stored = stored.ok_or_else(|| StoreError::Corrupt("link secret vanished".into()))?;
        Ok(stored.into_bytes())
    }
}
