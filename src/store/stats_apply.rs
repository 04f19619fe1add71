//! Applying a batch of statistics events to a branch's rollups
//! (`lua/stats_apply.lua`): the events above the source's watermark, their
//! ops folded (`domain::stats::Folded`), in scripts bounded by their op
//! count, each atomic with its part of the watermark; a run the script finds
//! at or below the watermark is sent again without what is already counted.
//!
//! It never decides a figure (`domain::stats::event_ops` does) and builds
//! no key name (`keys`).

use std::collections::HashMap;

use super::stats::{ApplyOutcome, EventOps, Sender, ROLLUP_TTL_S};
use super::{keys, strings, Store, StoreError, StoreResult};
use crate::domain::stats::{Folded, Op, RollupKey, StreamId};
use crate::domain::Id;

/// Most folded ops one apply script runs. Redis runs one script at a
/// time, so a long apply would hold up every ticket script behind it: a
/// batch with more goes in several scripts, each atomic with its part of
/// the watermark. About 1 µs of Redis time per op (README, Performance).
pub const APPLY_MAX_OPS: usize = 1_000;

/// A run of consecutive fresh events and their folded ops: one script.
struct Run {
    first: StreamId,
    last: StreamId,
    count: usize,
    folded: Folded,
}

/// The events above `after`, keeping stream order strictly increasing (an
/// event not above the one before it is a duplicate within the batch).
fn fresh(events: &[EventOps], after: Option<StreamId>) -> Vec<&EventOps> {
    let mut mark = after;
    events
        .iter()
        .filter(|e| {
            let keep = mark.is_none_or(|m| e.id > m);
            if keep {
                mark = Some(e.id);
            }
            keep
        })
        .collect()
}

/// Consecutive runs of events whose folded ops stay within `max_ops` (an
/// event's own ops are never split).
fn runs(events: &[&EventOps], max_ops: usize) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut current: Option<Run> = None;
    for event in events {
        let run = current.get_or_insert_with(|| Run {
            first: event.id,
            last: event.id,
            count: 0,
            folded: Folded::default(),
        });
        run.folded.add(&event.ops);
        run.last = event.id;
        run.count += 1;
        if run.folded.len() >= max_ops {
            runs.extend(current.take());
        }
    }
    runs.extend(current);
    runs
}

/// The script's opcode of an op, its key and its values (in the order the
/// Redis command takes them).
fn encoded(op: &Op) -> (&'static str, &RollupKey, [Option<String>; 2]) {
    match op {
        Op::Incr { key, field, by } => ("I", key, [Some(field.clone()), Some(by.to_string())]),
        Op::Max { key, field, value } => ("M", key, [Some(field.clone()), Some(value.to_string())]),
        Op::ZAdd { key, member, score } => {
            ("Z", key, [Some(score.to_string()), Some(member.clone())])
        }
        Op::ZRem { key, member } => ("R", key, [Some(member.clone()), None]),
        Op::HSet { key, field, value } => ("S", key, [Some(field.clone()), Some(value.clone())]),
        Op::HDel { key, field } => ("D", key, [Some(field.clone()), None]),
    }
}

/// The apply script's ARGV for one run (or none: bookkeeping only).
fn run_argv(sender: Sender<'_>, source: &str, through_ms: i64, run: Option<&Run>) -> Vec<String> {
    let (group, epoch, after, lost) = match sender {
        Sender::Local { group } => (group, 0, None, 0),
        Sender::Peer {
            group,
            epoch,
            after,
            lost,
        } => (group, epoch.max(1), after, lost),
    };
    let id = |f: fn(&Run) -> StreamId| run.map(|r| f(r).to_string()).unwrap_or_default();
    let mut argv = vec![
        epoch.to_string(),
        group.to_string(),
        source.to_owned(),
        through_ms.to_string(),
        ROLLUP_TTL_S.to_string(),
        after.map(|a| a.to_string()).unwrap_or_default(),
        lost.to_string(),
        id(|r| r.first),
        id(|r| r.last),
        run.map_or(0, |r| r.count).to_string(),
    ];
    // Ops grouped by opcode and key, in the order first seen.
    let mut groups: Vec<(&str, &RollupKey, Vec<String>)> = Vec::new();
    let mut index: HashMap<(&str, &RollupKey), usize> = HashMap::new();
    for op in run.map_or(&[][..], |r| r.folded.ops()) {
        let (code, key, values) = encoded(op);
        let at = *index.entry((code, key)).or_insert_with(|| {
            groups.push((code, key, Vec::new()));
            groups.len() - 1
        });
        groups[at].2.extend(values.into_iter().flatten());
    }
    for (code, key, values) in groups {
        let per_op = if matches!(code, "R" | "D") { 1 } else { 2 };
        argv.push(code.to_owned());
        argv.push(keys::rollup_suffix(key));
        argv.push((values.len() / per_op).to_string());
        argv.extend(values);
    }
    argv
}

/// The apply script's ARGV for a whole batch in one script, all of it
/// taken as fresh (public for the benchmark, which runs the same script with
/// `redis-benchmark`).
pub fn apply_argv(
    sender: Sender<'_>,
    source: &str,
    through_ms: i64,
    events: &[EventOps],
) -> Vec<String> {
    let fresh = fresh(events, None);
    let run = runs(&fresh, usize::MAX).pop();
    run_argv(sender, source, through_ms, run.as_ref())
}

/// The apply script's answer.
enum Applied {
    Ok {
        through: Option<StreamId>,
        applied: u64,
        counted: u64,
        lost: u64,
    },
    /// The run starts at or below the source's watermark (nothing done).
    Overlap(StreamId),
    /// The watermark is below the batch's `after` (nothing done).
    Behind {
        through: Option<StreamId>,
        counted: u64,
    },
    Stale(u64),
}

impl Store {
    /// Applies a batch to the branch's rollups: each event whose id is above
    /// the source's watermark, once, atomically with the watermark.
    ///
    /// The events go folded (`domain::stats::Folded`), in scripts of at
    /// most [`APPLY_MAX_OPS`] ops; a script whose first event is not above
    /// the watermark changes nothing and says where the watermark is, and
    /// the events above it are sent again (a resend, or an overlap).
    pub async fn apply_stats(
        &self,
        branch: &Id,
        sender: Sender<'_>,
        source: &str,
        through_ms: i64,
        events: &[EventOps],
    ) -> StoreResult<ApplyOutcome> {
        let mut after = None;
        'attempt: loop {
            let runs = runs(&fresh(events, after), APPLY_MAX_OPS);
            let mut outcome = None;
            for (k, run) in runs
                .iter()
                .map(Some)
                .chain(runs.is_empty().then_some(None))
                .enumerate()
            {
                // Before the last run, later events of the batch are not in.
                let upto = match run {
                    Some(run) if k + 1 < runs.len() => through_ms.min(run.last.ms as i64 - 1),
                    _ => through_ms,
                };
                match self
                    .run_apply(branch, run_argv(sender, source, upto, run))
                    .await?
                {
                    Applied::Ok {
                        through,
                        applied,
                        counted,
                        lost,
                    } => {
                        let (before_applied, before_lost) = match outcome {
                            Some(ApplyOutcome::Applied { applied, lost, .. }) => (applied, lost),
                            _ => (0, 0),
                        };
                        outcome = Some(ApplyOutcome::Applied {
                            through,
                            applied: before_applied + applied,
                            counted,
                            lost: before_lost + lost,
                        });
                    }
                    Applied::Overlap(mark) if run.is_some() => {
                        after = Some(mark);
                        continue 'attempt;
                    }
                    Applied::Overlap(mark) => {
                        return Err(StoreError::Corrupt(format!(
                            "stats_apply: overlap at {mark} without events"
                        )))
                    }
                    Applied::Behind { through, counted } => {
                        return Ok(ApplyOutcome::Behind { through, counted })
                    }
                    Applied::Stale(highest) => return Ok(ApplyOutcome::StaleEpoch { highest }),
                }
            }
            return outcome.ok_or_else(|| StoreError::Corrupt("stats_apply: no answer".into()));
        }
    }

    async fn run_apply(&self, branch: &Id, argv: Vec<String>) -> StoreResult<Applied> {
        let mut invocation = self.scripts().stats_apply.key(keys::branch_prefix(branch));
        invocation.arg(argv);
        let reply = strings(invocation.invoke_async(&mut self.conn()).await?)?;
        let id = |text: &str| {
            StreamId::parse(text)
                .ok_or_else(|| StoreError::Corrupt(format!("stats_apply watermark {text:?}")))
        };
        let number = |text: &String| text.parse().unwrap_or(0);
        match reply.as_slice() {
            [ok, through, applied, counted, lost] if ok == "ok" => Ok(Applied::Ok {
                through: StreamId::parse(through),
                applied: number(applied),
                counted: number(counted),
                lost: number(lost),
            }),
            [overlap, mark] if overlap == "overlap" => Ok(Applied::Overlap(id(mark)?)),
            [behind, through, counted] if behind == "behind" => Ok(Applied::Behind {
                through: StreamId::parse(through),
                counted: number(counted),
            }),
            [stale, highest] if stale == "stale-epoch" => {
                Ok(Applied::Stale(highest.parse().unwrap_or(0)))
            }
            other => Err(StoreError::Corrupt(format!(
                "stats_apply replied {other:?}"
            ))),
        }
    }
}
