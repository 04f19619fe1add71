//! Statistics rollups: which figures one ticket event adds to, in which hour
//! and business day of the branch's time zone (DESIGN.md §7, API.md
//! "Statistics"), and the reference model of applying events.
//!
//! [`event_ops`] turns an event into a list of [`Op`]s on abstract rollup
//! keys; the store's apply script executes them (each event at most once,
//! against a watermark) and never decides a figure itself, so every KPI rule
//! lives here once. [`Rollups`] applies the same ops in memory: the model the
//! store is tested against.
//!
//! Layout of one branch's day (`RollupKey::Day`): fields
//! `<HH>|s|<service>|<metric>` per local hour and service, and
//! `c|<counter>|<metric>` per counter and day, and `t|<metric>` day totals
//! of [`TOTAL_METRICS`] (so the summary reads a few fields, not the day).
//! Live state: `RollupKey::Waiting(service)` per service (member
//! `<service>|<ticket>`, score = issue ms, so the summary reads its count
//! and head only) and
//! `RollupKey::Current` (counter → `<called ms>|<service>|<ticket>`).
//!
//! Counting rules: `issued` in the hour of issue; `called`, the wait
//! (first call − issue) and SLA in the hour of the first call only (a recall,
//! or a call after a transfer, is not a first call); `served`/`no_show` in
//! the hour the ticket ended; service time per transaction (call → finish,
//! or call → transfer: a transfer starts a new transaction), counted where
//! it ended; `transferred` under the service the ticket left; `closed` for
//! tickets still open at the day close; a counter's idle time while its
//! services had tickets waiting (`idle_ms`, [`super::counter_idle`]) in the
//! day(s) it lies in, at each call.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::counter_idle::idle_by_day;
use super::kpi::bucket_of;
pub use super::stats_fold::Folded;
use super::ticket::{business_day, utc_offset_s, EventKind};
use super::{Branch, TicketEvent};

/// Rollup keys of one branch, resolved to Redis names by the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RollupKey {
    /// One business day (days since 1970-01-01, local).
    Day(i64),
    /// Tickets of one service waiting now.
    Waiting(String),
    /// Each counter's open transaction.
    Current,
}

/// One change to a rollup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Incr {
        key: RollupKey,
        field: String,
        by: i64,
    },
    Max {
        key: RollupKey,
        field: String,
        value: i64,
    },
    ZAdd {
        key: RollupKey,
        member: String,
        score: i64,
    },
    ZRem {
        key: RollupKey,
        member: String,
    },
    HSet {
        key: RollupKey,
        field: String,
        value: String,
    },
    HDel {
        key: RollupKey,
        field: String,
    },
}

/// A Redis stream id `<ms>-<seq>`: the identity of an event within its
/// outbox's history, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return None;
        }
        let id = StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        };
        // The apply script compares ids as Lua numbers (doubles): exact below 2^53.
        (id.ms < 1 << 53 && id.seq < 1 << 53).then_some(id)
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// `POST /api/v1/mirror/stats` body: one branch's outbox events, in stream
/// order, from a slave group's leader.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsBatch {
    pub group: String,
    /// The slave group's epoch; a lower one than the master has seen is refused.
    pub epoch: u64,
    /// The outbox's source identity (changes when its history does).
    pub source: String,
    /// The branch whose outbox this is (an addition to API.md: one outbox,
    /// one watermark, one `applied_through`).
    pub branch: String,
    /// Every event of the outbox up to this instant (ms) is in this batch or
    /// an earlier one: the master's `complete_through`.
    #[serde(default)]
    pub through_ms: i64,
    /// The batch holds every event of the source after this stream id
    /// (`"0-0"`: from its start); a master whose watermark is below it
    /// applies nothing and answers its watermark, so the sender resends
    /// from there (an addition to API.md; absent: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The sender no longer holds the events between the master's watermark
    /// and `after`: this many are lost. The master records them once.
    #[serde(default)]
    pub lost: u64,
    pub events: Vec<ShippedEvent>,
}

/// One event of a batch: its stream id and the event as the outbox holds it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippedEvent {
    #[schema(example = "1763766000000-0")]
    pub id: String,
    #[schema(value_type = Object)]
    pub event: TicketEvent,
}

/// `POST /api/v1/mirror/stats` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsAck {
    /// The source's watermark on the master: everything up to it is counted
    /// (null before anything was).
    pub applied_through: Option<String>,
    /// Events of the source the master has accounted for: applied, or
    /// declared lost (an addition to API.md).
    #[serde(default)]
    pub counted: u64,
    /// The master group's store identity (an addition: a change tells the
    /// slave the master's data was replaced).
    #[serde(default)]
    pub store: Option<String>,
}

/// The business day and local hour (0–23) of an instant in a zone.
pub fn day_and_hour(tz: Tz, ts_ms: i64) -> (i64, u32) {
    let at = super::ticket::from_ms(ts_ms);
    let day = business_day(at.timestamp(), utc_offset_s(tz, at));
    (day, at.with_timezone(&tz).hour())
}

/// The UTC instant a local hour of a local date starts (the earlier one
/// when a daylight-saving change repeats it; a skipped hour has none).
pub fn hour_start(tz: Tz, date: NaiveDate, hour: u32) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&date.and_hms_opt(hour, 0, 0)?) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => None,
    }
}

struct Emit<'a> {
    ops: Vec<Op>,
    tz: Tz,
    ev: &'a TicketEvent,
}

impl Emit<'_> {
    /// Adds to a service figure in the event's hour (and to the day total
    /// of the metrics the summary shows).
    fn service(&mut self, service: &str, metric: &str, by: i64) {
        let (day, hour) = day_and_hour(self.tz, self.ev.ts_ms);
        if TOTAL_METRICS.contains(&metric) {
            self.ops.push(Op::Incr {
                key: RollupKey::Day(day),
                field: total_field(metric),
                by,
            });
        }
        self.ops.push(Op::Incr {
            key: RollupKey::Day(day),
            field: format!("{hour:02}|s|{service}|{metric}"),
            by,
        });
    }

    fn service_max(&mut self, service: &str, metric: &str, value: i64) {
        let (day, hour) = day_and_hour(self.tz, self.ev.ts_ms);
        self.ops.push(Op::Max {
            key: RollupKey::Day(day),
            field: format!("{hour:02}|s|{service}|{metric}"),
            value,
        });
    }

    /// Adds to a counter figure of the event's day.
    fn counter(&mut self, counter: &str, metric: &str, by: i64) {
        let (day, _) = day_and_hour(self.tz, self.ev.ts_ms);
        self.ops.push(Op::Incr {
            key: RollupKey::Day(day),
            field: format!("c|{counter}|{metric}"),
            by,
        });
    }

    /// A transaction at `counter` for `service` that started at `called_ms`
    /// ended now.
    fn transaction(&mut self, service: &str, counter: Option<&str>, called_ms: Option<i64>) {
        let Some(called_ms) = called_ms else { return };
        let took = (self.ev.ts_ms - called_ms).max(0);
        self.service(service, "service_sum_ms", took);
        self.service(service, "service_n", 1);
        if let Some(counter) = counter {
            self.counter(counter, "service_sum_ms", took);
            self.counter(counter, "service_n", 1);
            self.ops.push(Op::HDel {
                key: RollupKey::Current,
                field: counter.to_owned(),
            });
        }
    }

    /// The waiting-set key and member of this event's ticket in `service`.
    fn waiting(&self, service: &str) -> (RollupKey, String) {
        (
            RollupKey::Waiting(service.to_owned()),
            format!("{service}|{}", self.ev.id),
        )
    }
}

/// What one event adds to the branch's rollups. `branch` supplies the time
/// zone and each service's target wait (the SLA).
pub fn event_ops(branch: &Branch, ev: &TicketEvent) -> Vec<Op> {
    let mut e = Emit {
        ops: Vec::new(),
        tz: branch.tz(),
        ev,
    };
    let service = ev.service.as_str();
    let counter = ev.counter.as_deref();
    match ev.kind {
        EventKind::TicketIssued => {
            e.service(service, "issued", 1);
            let (key, member) = e.waiting(service);
            e.ops.push(Op::ZAdd {
                key,
                member,
                score: ev.issued_ms,
            });
        }
        EventKind::TicketCalled => {
            let (key, member) = e.waiting(service);
            e.ops.push(Op::ZRem { key, member });
            if let Some(counter) = counter {
                e.counter(counter, "called", 1);
                for (day, ms) in
                    idle_by_day(e.tz, ev.ts_ms, ev.counter_free_ms, ev.waiting_since_ms)
                {
                    e.ops.push(Op::Incr {
                        key: RollupKey::Day(day),
                        field: format!("c|{counter}|idle_ms"),
                        by: ms,
                    });
                }
                e.ops.push(Op::HSet {
                    key: RollupKey::Current,
                    field: counter.to_owned(),
                    value: format!("{}|{service}|{}", ev.ts_ms, ev.id),
                });
            }
            if ev.first_call {
                let wait = (ev.ts_ms - ev.issued_ms).max(0);
                let target_ms = branch
                    .service(service)
                    .map_or(i64::MAX, |s| i64::from(s.target_wait_s) * 1000);
                e.service(service, "called", 1);
                e.service(service, "wait_sum_ms", wait);
                e.service_max(service, "wait_max_ms", wait);
                e.service(service, &format!("h{}", bucket_of(wait)), 1);
                if wait <= target_ms {
                    e.service(service, "sla", 1);
                }
            }
        }
        EventKind::TicketServed | EventKind::TicketNoShow => {
            let metric = if ev.kind == EventKind::TicketServed {
                "served"
            } else {
                "no_show"
            };
            e.service(service, metric, 1);
            if let Some(counter) = counter {
                e.counter(counter, metric, 1);
            }
            // A no-show is no service: its transaction ends without a time.
            let called = if metric == "served" {
                ev.called_ms
            } else {
                None
            };
            e.transaction(service, counter, called);
            if let (Some(counter), None) = (counter, called) {
                e.ops.push(Op::HDel {
                    key: RollupKey::Current,
                    field: counter.to_owned(),
                });
            }
        }
        EventKind::TicketTransferred => {
            let from = ev.from_service.as_deref().unwrap_or(service);
            e.service(from, "transferred", 1);
            e.transaction(from, ev.from_counter.as_deref(), ev.from_called_ms);
            let (key, member) = e.waiting(service);
            e.ops.push(Op::ZAdd {
                key,
                member,
                score: ev.issued_ms,
            });
        }
        EventKind::TicketClosed => {
            e.service(service, "closed", 1);
            match (ev.called_ms, counter) {
                (Some(_), Some(counter)) => e.ops.push(Op::HDel {
                    key: RollupKey::Current,
                    field: counter.to_owned(),
                }),
                _ => {
                    let (key, member) = e.waiting(service);
                    e.ops.push(Op::ZRem { key, member });
                }
            }
        }
        // ticket-recalled and anything newer: no figure changes.
        _ => {}
    }
    e.ops
}

/// The reference model: rollups in memory, changed by the same ops the
/// store's script applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollups {
    pub hashes: BTreeMap<RollupKey, BTreeMap<String, String>>,
    pub zsets: BTreeMap<RollupKey, BTreeMap<String, i64>>,
}

impl Rollups {
    pub fn apply(&mut self, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Incr { key, field, by } => {
                    let slot = self.hash(key).entry(field.clone()).or_default();
                    *slot = (slot.parse::<i64>().unwrap_or(0) + by).to_string();
                }
                Op::Max { key, field, value } => {
                    let slot = self.hash(key).entry(field.clone()).or_default();
                    if slot.parse::<i64>().map_or(true, |v| *value > v) {
                        *slot = value.to_string();
                    }
                }
                Op::HSet { key, field, value } => {
                    self.hash(key).insert(field.clone(), value.clone());
                }
                Op::HDel { key, field } => {
                    self.hash(key).remove(field);
                }
                Op::ZAdd { key, member, score } => {
                    self.zsets
                        .entry(key.clone())
                        .or_default()
                        .insert(member.clone(), *score);
                }
                Op::ZRem { key, member } => {
                    self.zsets.entry(key.clone()).or_default().remove(member);
                }
            }
        }
        self.hashes.retain(|_, h| !h.is_empty());
        self.zsets.retain(|_, z| !z.is_empty());
    }

    fn hash(&mut self, key: &RollupKey) -> &mut BTreeMap<String, String> {
        self.hashes.entry(key.clone()).or_default()
    }
}

/// One business day's fields as read back, parsed into accumulators.
#[derive(Debug, Clone, Default)]
pub struct DayFigures {
    /// (local hour, service) → figures.
    pub hours: BTreeMap<(u32, String), super::kpi::Acc>,
    pub counters: BTreeMap<String, super::kpi::Acc>,
}

impl DayFigures {
    /// Parses a day hash; malformed fields are skipped.
    pub fn parse<'a>(fields: impl IntoIterator<Item = (&'a str, i64)>) -> DayFigures {
        let mut day = DayFigures::default();
        for (field, value) in fields {
            let parts: Vec<&str> = field.split('|').collect();
            match parts.as_slice() {
                [hour, "s", service, metric] => {
                    if let Ok(hour) = hour.parse::<u32>() {
                        day.hours
                            .entry((hour, (*service).to_owned()))
                            .or_default()
                            .add(metric, value);
                    }
                }
                ["c", counter, metric] => day
                    .counters
                    .entry((*counter).to_owned())
                    .or_default()
                    .add(metric, value),
                _ => {}
            }
        }
        day
    }
}

/// The day's totals over every hour and service, without building the
/// per-hour figures (the summary reads a thousand branches at once).
pub fn day_totals<'a>(fields: impl IntoIterator<Item = (&'a str, i64)>) -> super::kpi::Acc {
    let mut total = super::kpi::Acc::default();
    for (field, value) in fields {
        let mut parts = field.splitn(4, '|');
        if let (Some(_hour), Some("s"), Some(_service), Some(metric)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            total.add(metric, value);
        }
    }
    total
}

/// The day-total metrics the summary shows, kept as `t|<metric>` fields of
/// the day besides the per-hour ones.
pub const TOTAL_METRICS: [&str; 5] = ["issued", "called", "served", "no_show", "sla"];

/// The day field holding a metric's day total.
pub fn total_field(metric: &str) -> String {
    format!("t|{metric}")
}

/// The day's totals from its `t|<metric>` fields, as (metric, value).
pub fn totals_of<'a>(values: impl IntoIterator<Item = (&'a str, i64)>) -> super::kpi::Acc {
    let mut total = super::kpi::Acc::default();
    for (metric, value) in values {
        total.add(metric, value);
    }
    total
}

/// Live figures from the waiting set: per service, how many wait and since
/// when the oldest waits (ms). Members look like `<service>|<ticket>`.
pub fn waiting_by_service<'a>(
    members: impl IntoIterator<Item = (&'a str, i64)>,
) -> HashMap<String, (u64, i64)> {
    let mut out: HashMap<String, (u64, i64)> = HashMap::new();
    for (member, issued_ms) in members {
        let Some((service, _)) = member.split_once('|') else {
            continue;
        };
        let slot = out.entry(service.to_owned()).or_insert((0, i64::MAX));
        slot.0 += 1;
        slot.1 = slot.1.min(issued_ms);
    }
    out
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
