//! Folding a batch's rollup ops ([`Op`]) into one op per field or member,
//! so the store sends, and Redis runs, a few ops per key instead of every
//! event's. Pure; the end state equals applying the ops one by one
//! (`stats_tests.rs` checks it against [`Rollups`](super::stats::Rollups)).
//! Deciding which ops an event makes is `stats::event_ops`, not here.

use std::collections::HashMap;

use super::stats::{Op, RollupKey};

/// Ops of a run of events folded into at most one op per field or member,
/// with the end state of applying them one by one ([`Rollups::apply`]):
/// increments add up, a max keeps the largest, and for a sorted-set member
/// or a hash field set or deleted several times the last change wins. A
/// field is only ever incremented, only maxed, or only set (the layout in
/// this module's docs), so the folded ops may run in any order. The store
/// sends these instead of every event's ops: a batch of a busy branch
/// touches a few day fields many times.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    ops: Vec<Op>,
    /// key → per class of op (incr, max, sorted-set member, hash field):
    /// field or member → index in `ops`. Looked up by reference, so a field
    /// seen before costs no allocation.
    index: HashMap<RollupKey, [HashMap<String, usize>; 4]>,
}

impl Folded {
    pub fn add(&mut self, ops: &[Op]) {
        for op in ops {
            let (key, name, class) = match op {
                Op::Incr { key, field, .. } => (key, field, 0),
                Op::Max { key, field, .. } => (key, field, 1),
                Op::ZAdd { key, member, .. } | Op::ZRem { key, member } => (key, member, 2),
                Op::HSet { key, field, .. } | Op::HDel { key, field } => (key, field, 3),
            };
            if !self.index.contains_key(key) {
                self.index.insert(key.clone(), Default::default());
            }
            let Some(names) = self.index.get_mut(key).map(|classes| &mut classes[class]) else {
                continue;
            };
            let Some(&at) = names.get(name.as_str()) else {
                names.insert(name.clone(), self.ops.len());
                self.ops.push(op.clone());
                continue;
            };
            match (&mut self.ops[at], op) {
                (Op::Incr { by, .. }, Op::Incr { by: more, .. }) => *by += more,
                (Op::Max { value, .. }, Op::Max { value: other, .. }) => {
                    *value = (*value).max(*other);
                }
                (kept, later) => *kept = later.clone(),
            }
        }
    }

    /// How many ops the fold holds (what applying it costs).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
}
