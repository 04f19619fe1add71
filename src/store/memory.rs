//! What a node remembers about its group's Redis, so that a store that lost
//! data (restarted empty, restored from an old backup, a Sentinel promotion
//! that missed the last writes) is noticed instead of trusted (DESIGN.md §4):
//!
//! - the store's identity (`store-id`, a random token written once): when it
//!   disappears or changes, the node marks the store lost (`/readyz` 503
//!   `store-lost`, `turnus_store_lost`, a log line) until it is adopted;
//! - the highest leader epoch it has seen, passed into the lease script as a
//!   floor, so an epoch is never handed out twice;
//! - per branch and service, the highest ticket sequence of the current
//!   business day it has seen (its own answers and every node's
//!   `ticket-issued` events), passed into the issue script as a floor, so a
//!   number is never given twice in a day; likewise the highest ticket id
//!   per branch, so an old id never names a new ticket.
//!
//! Shared by every [`Store`](super::Store) handle of the node (the leader's
//! own connection included). Lives in memory: a node restarted after the
//! loss knows nothing, its peers do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

/// Where a ticket's number stands in its day's sequence, as the issue script
/// writes it into the event (`seq_day`, `seq_nth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SequenceMark {
    pub seq_day: i64,
    pub seq_nth: u64,
}

#[derive(Debug, Default)]
struct Memory {
    identity: Option<String>,
    lost: Option<String>,
    max_epoch: u64,
    /// (branch, service) → (business day, highest sequence count).
    sequences: HashMap<(String, String), (i64, u64)>,
    /// branch → highest ticket id.
    ids: HashMap<String, u64>,
}

/// The node's memory of its store. Cheap to clone.
#[derive(Clone, Default)]
pub struct StoreMemory {
    inner: Arc<Mutex<Memory>>,
}

impl StoreMemory {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The identity this node trusts, if it has seen one.
    pub fn identity(&self) -> Option<String> {
        self.with(|m| m.identity.clone())
    }

    /// Trust `id` from now on; the store is not lost (any more).
    pub(crate) fn trust(&self, id: String) {
        self.with(|m| {
            if m.lost.take().is_some() {
                tracing::warn!(store_id = %id, "the group's Redis was adopted; trusting it again");
            }
            m.identity = Some(id);
        });
    }

    /// Marks the store lost, saying why (logged once).
    pub(crate) fn mark_lost(&self, why: String) {
        self.with(|m| {
            if m.lost.is_none() {
                tracing::error!(
                    reason = %why,
                    "the group's Redis lost its data; numbering and epochs continue above what this node saw"
                );
            }
            m.lost = Some(why);
        });
    }

    /// Why the store is not trusted, while it is not.
    pub fn lost(&self) -> Option<String> {
        self.with(|m| m.lost.clone())
    }

    pub(crate) fn note_epoch(&self, epoch: u64) {
        self.with(|m| m.max_epoch = m.max_epoch.max(epoch));
    }

    pub(crate) fn max_epoch(&self) -> u64 {
        self.with(|m| m.max_epoch)
    }

    pub(crate) fn note_sequence(&self, branch: &str, service: &str, mark: SequenceMark) {
        self.with(|m| {
            let entry = m
                .sequences
                .entry((branch.to_owned(), service.to_owned()))
                .or_insert((mark.seq_day, 0));
            if mark.seq_day > entry.0 {
                *entry = (mark.seq_day, mark.seq_nth);
            } else if mark.seq_day == entry.0 {
                entry.1 = entry.1.max(mark.seq_nth);
            }
        });
    }

    pub(crate) fn note_ticket_id(&self, branch: &str, id: &str) {
        if let Ok(id) = id.parse::<u64>() {
            self.with(|m| {
                let highest = m.ids.entry(branch.to_owned()).or_insert(0);
                *highest = (*highest).max(id);
            });
        }
    }

    pub(crate) fn ticket_id_floor(&self, branch: &str) -> u64 {
        self.with(|m| m.ids.get(branch).copied().unwrap_or(0))
    }

    /// Notes the sequence and id a ticket event carries (any node's).
    pub(crate) fn note_event(&self, branch: &str, json: &str) {
        // Plain optional fields, not a flattened `SequenceMark`: flatten
        // buffers the whole event before reading it, and this runs twice
        // for every ticket change (its reply and the group's notice).
        #[derive(Deserialize)]
        struct Seen {
            id: String,
            service: String,
            seq_day: Option<i64>,
            seq_nth: Option<u64>,
        }
        if let Ok(seen) = serde_json::from_str::<Seen>(json) {
            self.note_ticket_id(branch, &seen.id);
            if let (Some(seq_day), Some(seq_nth)) = (seen.seq_day, seen.seq_nth) {
                self.note_sequence(branch, &seen.service, SequenceMark { seq_day, seq_nth });
            }
        }
    }

    /// The floor for the issue script: (day, highest count seen that day).
    pub(crate) fn sequence_floor(&self, branch: &str, service: &str) -> (i64, u64) {
        self.with(|m| {
            m.sequences
                .get(&(branch.to_owned(), service.to_owned()))
                .copied()
                .unwrap_or((0, 0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(seq_day: i64, seq_nth: u64) -> SequenceMark {
        SequenceMark { seq_day, seq_nth }
    }

    #[test]
    fn the_floor_is_the_highest_count_of_the_latest_day() {
        let memory = StoreMemory::default();
        assert_eq!(memory.sequence_floor("b", "s"), (0, 0));
        memory.note_sequence("b", "s", mark(10, 5));
        memory.note_sequence("b", "s", mark(10, 3)); // an older event, late
        assert_eq!(memory.sequence_floor("b", "s"), (10, 5));
        memory.note_sequence("b", "s", mark(11, 1)); // a new day restarts
        memory.note_sequence("b", "s", mark(10, 9)); // yesterday's, ignored
        assert_eq!(memory.sequence_floor("b", "s"), (11, 1));
        assert_eq!(memory.sequence_floor("b", "other"), (0, 0));
    }

    #[test]
    fn an_event_raises_the_id_floor_and_with_its_mark_the_sequence_floor() {
        let memory = StoreMemory::default();
        memory.note_event(
            "b",
            r#"{"type":"ticket-issued","id":"42","service":"s","number":"A005","seq_day":10,"seq_nth":5,"ts_ms":1}"#,
        );
        assert_eq!(
            (memory.ticket_id_floor("b"), memory.sequence_floor("b", "s")),
            (42, (10, 5))
        );
        // A call carries no mark: the id counts, the sequence is untouched.
        memory.note_event(
            "b",
            r#"{"type":"ticket-called","id":"43","service":"s","seq_day":11,"ts_ms":2}"#,
        );
        assert_eq!(
            (memory.ticket_id_floor("b"), memory.sequence_floor("b", "s")),
            (43, (10, 5))
        );
    }

    #[test]
    fn lost_until_trusted_again() {
        let memory = StoreMemory::default();
        memory.trust("one".into());
        assert_eq!(memory.lost(), None);
        memory.mark_lost("gone".into());
        assert_eq!(memory.lost().as_deref(), Some("gone"));
        memory.trust("two".into());
        assert_eq!(
            (memory.lost(), memory.identity()),
            (None, Some("two".into()))
        );
        memory.note_epoch(7);
        memory.note_epoch(3);
        assert_eq!(memory.max_epoch(), 7);
    }
}
