//! The configuration as one node sees it at one version: every branch,
//! which of them a node serves, and per slave group the version at which
//! its branches last changed (the master's long-poll wakes only those).
//! Pure data: loading and storing it is `store::config`'s.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Branch;
use crate::domain::Id;

/// The configuration as one node sees it at one version.
#[derive(Debug, Clone, Default)]
pub struct ConfigSnapshot {
    /// The organisation-wide configuration version; 0 before any write.
    pub version: u64,
    pub branches: BTreeMap<Id, Arc<Branch>>,
    /// Slave group → the version at which its branches last changed, as far
    /// as this node has seen (see [`ConfigSnapshot::track_group_changes`]).
    pub group_changed_at: BTreeMap<Id, u64>,
}

impl ConfigSnapshot {
    /// The branches whose tickets a node of `group` serves (the master
    /// group's when `is_master`): the one place that answers "which branches
    /// does this node serve" (see [`Branch::served_by`]).
    pub fn served_by<'a>(
        &'a self,
        group: &'a Id,
        is_master: bool,
    ) -> impl Iterator<Item = &'a Arc<Branch>> + 'a {
        self.branches
            .values()
            .filter(move |b| b.served_by(group, is_master))
    }

    /// The branches a slave group serves.
    pub fn group_branches<'a>(
        &'a self,
        group: &'a Id,
    ) -> impl Iterator<Item = &'a Arc<Branch>> + 'a {
        self.branches
            .values()
            .filter(move |b| b.group.as_ref() == Some(group))
    }

    /// Carries the per-group change versions over from `previous`, marking
    /// every slave group whose branches differ (or all of them, without a
    /// previous snapshot) as changed at this version. The master's long-poll
    /// uses it to wake only the groups a change concerns.
    pub fn track_group_changes(&mut self, previous: Option<&ConfigSnapshot>) {
        let mut groups: std::collections::BTreeSet<Id> = self
            .branches
            .values()
            .filter_map(|b| b.group.clone())
            .collect();
        if let Some(p) = previous {
            groups.extend(p.branches.values().filter_map(|b| b.group.clone()));
            self.group_changed_at = p.group_changed_at.clone();
        }
        for group in groups {
            let changed = match previous {
                None => true,
                Some(p) => !self.group_branches(&group).eq(p.group_branches(&group)),
            };
            if changed {
                self.group_changed_at.insert(group, self.version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::edit::tests::{branch, id};

    #[test]
    fn group_changes_are_tracked_per_group() {
        let mut north = branch();
        north.group = Some(id("north"));
        let snapshot = |version: u64, branches: Vec<Branch>| ConfigSnapshot {
            version,
            branches: branches
                .into_iter()
                .map(|b| (b.id.clone(), Arc::new(b)))
                .collect(),
            group_changed_at: BTreeMap::new(),
        };
        let mut first = snapshot(3, vec![north.clone()]);
        first.track_group_changes(None);
        assert_eq!(first.group_changed_at.get("north"), Some(&3));

        // A change elsewhere leaves the north group's version alone.
        let mut elsewhere = branch();
        elsewhere.id = id("other");
        let mut second = snapshot(4, vec![north.clone(), elsewhere]);
        second.track_group_changes(Some(&first));
        assert_eq!(second.group_changed_at.get("north"), Some(&3));

        // Moving the branch out of the group is a change of the group.
        let mut moved = north.clone();
        moved.group = Some(id("south"));
        let mut third = snapshot(5, vec![moved]);
        third.track_group_changes(Some(&second));
        assert_eq!(third.group_changed_at.get("north"), Some(&5));
        assert_eq!(third.group_changed_at.get("south"), Some(&5));
    }
}
