//! Statistics in Redis: reading a branch's outbox with its source identity,
//! trimming the outbox below what every consumer has (fenced), and reading
//! rollups back. Applying batches exactly once against a per-source
//! watermark is `stats_apply.rs`; the types both share are here.
//!
//! What an event adds is decided by `domain::stats::event_ops`; this module
//! never decides a figure.

use std::collections::HashMap;

pub use super::stats_apply::{apply_argv, APPLY_MAX_OPS};
use super::{keys, pairs, Store, StoreError, StoreResult};
use crate::domain::stats::{total_field, Op, RollupKey, StreamId, TOTAL_METRICS};
use crate::domain::{Id, TicketEvent};

/// Day rollups live this long after their first event: over the 400 days
/// the issue asks for, with room for a late backlog.
pub const ROLLUP_TTL_S: u64 = 410 * 86_400;

/// Events read from an outbox.
#[derive(Debug, Clone)]
pub struct OutboxRead {
    /// The outbox's source identity (changes when its history does).
    pub source: String,
    /// Redis time of the read.
    pub read_ms: i64,
    /// The last event of this source trimmed from the outbox, and how many
    /// were trimmed: a reader asked for events at or below it can no
    /// longer have them.
    pub trimmed: Option<StreamId>,
    pub trimmed_count: u64,
    /// Stream id and event, oldest first.
    pub events: Vec<(StreamId, TicketEvent)>,
}

/// One event's ops, ready for the apply script.
#[derive(Debug, Clone)]
pub struct EventOps {
    pub id: StreamId,
    pub ops: Vec<Op>,
}

/// Who sends a batch.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// This group's own outbox, applied in place.
    Local { group: &'a Id },
    /// A slave group's leader, under its epoch. The batch holds every event
    /// of its source after `after` (`None`: not checked); `lost` events
    /// between this store's watermark and `after` are declared gone.
    Peer {
        group: &'a Id,
        epoch: u64,
        after: Option<StreamId>,
        lost: u64,
    },
}

/// What applying a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The source's watermark now (None: nothing ever applied), how many
    /// events of this batch were new, how many of the source this store
    /// has accounted for (applied or declared lost), and the loss this
    /// batch recorded.
    Applied {
        through: Option<StreamId>,
        applied: u64,
        counted: u64,
        lost: u64,
    },
    /// This store's watermark is below the batch's `after` and no loss was
    /// declared: nothing applied; the sender resends from `through`.
    Behind {
        through: Option<StreamId>,
        counted: u64,
    },
    /// The group has shipped under a higher epoch than this one.
    StaleEpoch { highest: u64 },
}

/// What an outbox trim may remove.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trim {
    /// The master's acknowledgement now (its watermark), and how many
    /// events of the source it has accounted for.
    pub acked: Option<StreamId>,
    pub counted: Option<u64>,
    /// A slave group: the master must have an event before it goes.
    pub ship: bool,
    /// Events younger than this stay.
    pub retention_ms: u64,
}

/// A branch's statistics bookkeeping.
#[derive(Debug, Clone, Default)]
pub struct StatsMeta {
    pub through_ms: Option<i64>,
    pub last_report_ms: Option<i64>,
    pub applied: u64,
    /// Events of the branch the master needed and no slave held any more.
    pub lost: u64,
}

/// Which branch the summary reads, for which business day and services.
#[derive(Debug, Clone)]
pub struct LiveWanted {
    pub branch: Id,
    pub today: i64,
    /// The branch's configured services (each has its own waiting set).
    pub services: Vec<String>,
}

/// What the summary needs of one branch, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct BranchLive {
    /// Today's totals: metric → value (absent: nothing counted yet).
    pub day: HashMap<String, i64>,
    /// Service → (tickets waiting, issue ms of the oldest); only services
    /// with tickets waiting.
    pub waiting: HashMap<String, (u64, i64)>,
    /// counter → `<called ms>|<service>|<ticket>`.
    pub current: HashMap<String, String>,
    pub meta: StatsMeta,
    /// Time of the oldest event still in this Redis's outbox of the branch.
    pub outbox_oldest_ms: Option<i64>,
}

/// Entries as `XRANGE` returns them.
type OutboxEntries = Vec<(String, Vec<String>)>;

/// Adds `XRANGE outbox - + COUNT 1` (the oldest entry) to a pipeline.
fn first_outbox_entry(pipe: &mut redis::Pipeline, branch: &Id) {
    pipe.cmd("XRANGE")
        .arg(keys::branch_outbox(branch))
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1);
}

/// The time (ms, from its stream id) of the first entry, if any.
fn first_entry_ms(entries: OutboxEntries) -> Option<i64> {
    entries
        .first()
        .and_then(|(id, _)| StreamId::parse(id))
        .map(|id| id.ms as i64)
}

fn meta_of(fields: HashMap<String, String>) -> StatsMeta {
    let number = |name: &str| fields.get(name).and_then(|v| v.parse().ok());
    StatsMeta {
        through_ms: number("through_ms"),
        last_report_ms: number("last_report_ms"),
        applied: number("applied").map_or(0, |n: i64| n.max(0) as u64),
        lost: number("lost").map_or(0, |n: i64| n.max(0) as u64),
    }
}

impl Store {
    /// Up to `count` events of the branch's outbox after `after` (from the
    /// start when `None`), with the outbox's source identity.
    pub async fn read_outbox(
        &self,
        branch: &Id,
        after: Option<StreamId>,
        count: usize,
    ) -> StoreResult<OutboxRead> {
        let fresh_source: String = (0..16).map(|_| fastrand::alphanumeric()).collect();
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let source_key = keys::branch_outbox_source(branch);
        // One transaction: the source identity (created when missing: a
        // store that lost its history gets a new one, so its new events are
        // never mistaken for ones already counted), the time, what was
        // trimmed away (so a reader knows which events it can no longer
        // give), the events.
        type Trimmed = (Option<String>, Option<String>, Option<u64>);
        let (source, (secs, micros), trimmed, entries): (
            String,
            (i64, i64),
            Trimmed,
            OutboxEntries,
        ) = redis::pipe()
            .atomic()
            .cmd("SETNX")
            .arg(&source_key)
            .arg(fresh_source)
            .ignore()
            .cmd("GET")
            .arg(&source_key)
            .cmd("TIME")
            .cmd("HMGET")
            .arg(keys::branch_outbox_trimmed(branch))
            .arg("source")
            .arg("id")
            .arg("n")
            .cmd("XRANGE")
            .arg(keys::branch_outbox(branch))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn())
            .await?;
        // What was trimmed counts only for this source's history.
        let (trimmed, trimmed_count) = match trimmed {
            (Some(of), id, n) if of == source => {
                (id.as_deref().and_then(StreamId::parse), n.unwrap_or(0))
            }
            _ => (None, 0),
        };
        let mut events = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            let Some(json) = pairs(fields).find_map(|(k, v)| (k == "e").then_some(v)) else {
                continue;
            };
            let id = StreamId::parse(&id)
                .ok_or_else(|| StoreError::Corrupt(format!("stream id {id:?}")))?;
            match serde_json::from_str::<TicketEvent>(&json) {
                Ok(event) => events.push((id, event)),
                // An event no reader understands would block the outbox
                // forever; it is logged and skipped, never silently.
                Err(e) => {
                    tracing::error!(%branch, %id, error = %e, "unreadable outbox event skipped")
                }
            }
        }
        Ok(OutboxRead {
            source,
            read_ms: secs * 1000 + micros / 1000,
            trimmed,
            trimmed_count,
            events,
        })
    }

    /// Trims the outbox below what the local rollups and (when `ship`) the
    /// master have, keeping events younger than the retention; `acked` is
    /// the master's latest acknowledgement (its watermark now, which goes
    /// back when its store was restored). Fenced: only the group's current
    /// leader trims.
    pub async fn trim_outbox(
        &self,
        branch: &Id,
        epoch: u64,
        source: &str,
        trim: Trim,
    ) -> StoreResult<u64> {
        let args = [
            source.to_owned(),
            trim.acked.map(|a| a.to_string()).unwrap_or_default(),
            u8::from(trim.ship).to_string(),
            trim.retention_ms.to_string(),
            trim.counted.map(|c| c.to_string()).unwrap_or_default(),
        ];
        let reply = self
            .run_fenced(
                &self.scripts().outbox_trim,
                keys::branch_prefix(branch),
                epoch,
                &args,
            )
            .await?;
        Ok(reply.get(1).and_then(|n| n.parse().ok()).unwrap_or(0))
    }

    /// The rollups of the given business days, in that order.
    pub async fn stats_days(
        &self,
        branch: &Id,
        days: &[i64],
    ) -> StoreResult<Vec<HashMap<String, i64>>> {
        if days.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for day in days {
            pipe.cmd("HGETALL")
                .arg(keys::branch_rollup(branch, &RollupKey::Day(*day)));
        }
        let mut conn = self.conn();
        let replies: Vec<Vec<String>> = pipe.query_async(&mut conn).await?;
        Ok(replies
            .into_iter()
            .map(|flat| {
                pairs(flat)
                    .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                    .collect()
            })
            .collect())
    }

    /// The branch's statistics bookkeeping.
    pub async fn stats_meta(&self, branch: &Id) -> StoreResult<StatsMeta> {
        let mut conn = self.conn();
        let flat: Vec<String> = redis::cmd("HGETALL")
            .arg(keys::branch_stats_meta(branch))
            .query_async(&mut conn)
            .await?;
        Ok(meta_of(pairs(flat).collect()))
    }

    /// What the summary needs of each branch, pipelined in one round trip:
    /// today's day totals (`HMGET` of the `t|` fields), each service's
    /// waiting count and oldest entry (`ZCARD`, `ZRANGE 0 0 WITHSCORES`),
    /// open transactions and bookkeeping. A few values per service, never a
    /// whole waiting set or day.
    pub async fn stats_live(&self, branches: &[LiveWanted]) -> StoreResult<Vec<BranchLive>> {
        // An empty pipeline is an error in redis-rs: no branches, no reads.
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for wanted in branches {
            let branch = &wanted.branch;
            pipe.cmd("HMGET")
                .arg(keys::branch_rollup(branch, &RollupKey::Day(wanted.today)));
            for metric in TOTAL_METRICS {
                pipe.arg(total_field(metric));
            }
            for service in &wanted.services {
                let key = keys::branch_rollup(branch, &RollupKey::Waiting(service.clone()));
                pipe.cmd("ZCARD")
                    .arg(&key)
                    .cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES");
            }
            pipe.cmd("HGETALL")
                .arg(keys::branch_rollup(branch, &RollupKey::Current))
                .cmd("HGETALL")
                .arg(keys::branch_stats_meta(branch));
            first_outbox_entry(&mut pipe, branch);
        }
        let mut conn = self.conn();
        let replies: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut replies = replies.into_iter();
        fn next<T: redis::FromRedisValue + Default>(
            replies: &mut impl Iterator<Item = redis::Value>,
        ) -> T {
            replies
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .unwrap_or_default()
        }
        let mut out = Vec::with_capacity(branches.len());
        for wanted in branches {
            let totals: Vec<Option<i64>> = next(&mut replies);
            let day = TOTAL_METRICS
                .iter()
                .zip(totals)
                .filter_map(|(metric, v)| Some(((*metric).to_owned(), v?)))
                .collect();
            let mut waiting = HashMap::new();
            for service in &wanted.services {
                let count: u64 = next(&mut replies);
                let head: Vec<(String, f64)> = next(&mut replies);
                if let Some((_, score)) = head.first().filter(|_| count > 0) {
                    waiting.insert(service.clone(), (count, *score as i64));
                }
            }
            let current = pairs(next(&mut replies)).collect();
            let meta = meta_of(pairs(next(&mut replies)).collect());
            let oldest = replies
                .next()
                .and_then(|v| redis::from_redis_value(v).ok())
                .and_then(first_entry_ms);
            out.push(BranchLive {
                day,
                waiting,
                current,
                meta,
                outbox_oldest_ms: oldest,
            });
        }
        Ok(out)
    }

    /// Each branch's `complete_through` (ms), pipelined.
    pub async fn stats_through(&self, branches: &[Id]) -> StoreResult<Vec<Option<i64>>> {
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for branch in branches {
            pipe.cmd("HGET")
                .arg(keys::branch_stats_meta(branch))
                .arg("through_ms");
        }
        let mut conn = self.conn();
        Ok(pipe.query_async(&mut conn).await?)
    }

    /// Slave: each branch's events the master has not acknowledged, in one
    /// round trip. The outbox keeps acknowledged events for the retention,
    /// so this is its length less the acknowledged events it still holds:
    /// what the master accounted for (`<source>|counted`, recorded with each
    /// acknowledgement) less what was trimmed. A master restored from an
    /// older backup accounts for fewer, and the backlog grows accordingly.
    pub async fn stats_backlogs(&self, branches: &[&Id]) -> StoreResult<Vec<u64>> {
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for branch in branches {
            pipe.cmd("XLEN")
                .arg(keys::branch_outbox(branch))
                .cmd("GET")
                .arg(keys::branch_outbox_source(branch))
                .cmd("HGETALL")
                .arg(keys::branch_stats_shipped(branch))
                .cmd("HMGET")
                .arg(keys::branch_outbox_trimmed(branch))
                .arg("source")
                .arg("n");
        }
        type Reply = (
            u64,
            Option<String>,
            HashMap<String, String>,
            (Option<String>, Option<u64>),
        );
        let mut conn = self.conn();
        let replies: Vec<Reply> = pipe.query_async(&mut conn).await?;
        Ok(replies
            .into_iter()
            .map(|(len, source, shipped, (trimmed_source, trimmed))| {
                let Some(source) = source else { return len };
                let counted: u64 = shipped
                    .get(&format!("{source}|counted"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let trimmed = if trimmed_source.as_deref() == Some(source.as_str()) {
                    trimmed.unwrap_or(0)
                } else {
                    0
                };
                len - counted.saturating_sub(trimmed).min(len)
            })
            .collect())
    }

    /// The time (ms) of the oldest event in each branch's outbox, in the
    /// order given, in one round trip.
    pub async fn outbox_oldest(&self, branches: &[&Id]) -> StoreResult<Vec<Option<i64>>> {
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for branch in branches {
            first_outbox_entry(&mut pipe, branch);
        }
        let mut conn = self.conn();
        let replies: Vec<OutboxEntries> = pipe.query_async(&mut conn).await?;
        Ok(replies.into_iter().map(first_entry_ms).collect())
    }
}
