//! Ticket operations: one Lua script each, run on the branch's keys.

use std::collections::HashMap;

use redis::{Script, ScriptInvocation, Value};

use super::{keys, pairs, strings, Store, StoreError, StoreResult};
use crate::domain::{EventKind, Id, IdempotencyKey, MatrixEntry, TicketEvent};

/// How a called ticket ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Served,
    NoShow,
}

/// What the waiting-time estimate needs, read atomically with the ticket.
#[derive(Debug, Clone, Default)]
pub struct QueueContext {
    pub now_ms: i64,
    /// Service → moving average service time in seconds.
    pub service_time_s: HashMap<String, f64>,
    /// Counter → when it last called, ms.
    pub last_call_ms: HashMap<String, i64>,
}

impl QueueContext {
    fn new(now_ms: i64, times: Vec<String>, seen: Vec<String>) -> QueueContext {
        QueueContext {
            now_ms,
            service_time_s: pairs(times)
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect(),
            last_call_ms: pairs(seen)
                .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
                .collect(),
        }
    }
}

/// A ticket with its queue position (0-based rank, when waiting).
#[derive(Debug, Clone)]
pub struct TicketView {
    pub event: TicketEvent,
    pub rank: Option<u64>,
    pub context: QueueContext,
}

/// One service's queue.
#[derive(Debug, Clone)]
pub struct QueueHead {
    pub waiting: u64,
    /// Issue time of the oldest waiting ticket, ms.
    pub oldest_ms: Option<i64>,
}

/// The issue script's arguments, from the branch's configuration.
pub struct IssueArgs<'a> {
    pub service: &'a str,
    pub prefix: &'a str,
    pub first: u32,
    pub last: u32,
    pub utc_offset_s: i32,
}

fn rank(raw: i64) -> Option<u64> {
    u64::try_from(raw).ok()
}

/// Starts an invocation of a ticket operation's script (one wrapped by
/// `lua/lib/once.lua`): the branch prefix, then the client's
/// `Idempotency-Key` ('' for none) and the request's fingerprint, which the
/// script compares when the key comes again.
fn once<'a>(
    script: &'a Script,
    branch: &Id,
    key: Option<&IdempotencyKey>,
    fingerprint: &[&str],
) -> ScriptInvocation<'a> {
    let mut invocation = script.key(keys::branch_prefix(branch));
    invocation
        .arg(key.map_or("", IdempotencyKey::as_str))
        .arg(fingerprint.join("\n"));
    invocation
}

impl Store {
    /// Issues a ticket; the event is already in the outbox when this returns.
    pub async fn issue(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        args: IssueArgs<'_>,
    ) -> StoreResult<TicketView> {
        let mut conn = self.write_conn();
        let (floor_day, floor_nth) = self.memory().sequence_floor(branch.as_str(), args.service);
        let (ev, raw_rank, times, seen): (String, i64, Vec<String>, Vec<String>) =
            once(&self.scripts().issue, branch, key, &["issue", args.service])
                .arg(args.service)
                .arg(args.prefix)
                .arg(args.first)
                .arg(args.last)
                .arg(args.utc_offset_s)
                .arg(floor_day)
                .arg(floor_nth)
                .arg(self.memory().ticket_id_floor(branch.as_str()))
                .invoke_async(&mut conn)
                .await?;
        // Noted before the WAIT: the ticket exists even if it times out.
        self.memory().note_event(branch.as_str(), &ev);
        self.confirm(&mut conn).await?;
        let event: TicketEvent = serde_json::from_str(&ev)?;
        let context = QueueContext::new(event.ts_ms, times, seen);
        Ok(TicketView {
            event,
            rank: rank(raw_rank),
            context,
        })
    }

    /// Finishes the counter's current ticket as served, then calls the next
    /// by the matrix rule. Returns the events in order; the last one is
    /// `ticket-called` when a ticket was called.
    pub async fn call(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        counter: &Id,
        ordered_row: &[MatrixEntry],
    ) -> StoreResult<Vec<TicketEvent>> {
        let mut conn = self.write_conn();
        let mut invocation = once(
            &self.scripts().call,
            branch,
            key,
            &["call", counter.as_str()],
        );
        invocation.arg(counter.as_str());
        for entry in ordered_row {
            invocation.arg(entry.service.as_str()).arg(entry.priority);
        }
        let events: Vec<String> = invocation.invoke_async(&mut conn).await?;
        self.confirm(&mut conn).await?;
        events
            .iter()
            .map(|e| serde_json::from_str(e).map_err(StoreError::from))
            .collect()
    }

    /// Calls the waiting ticket with this printed number (issued today, in
    /// one of `services`), after finishing the counter's current ticket as
    /// served. `None`, with nothing changed, when no such ticket waits.
    /// Returns the events in order; the last one is `ticket-called`.
    pub async fn call_number(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        counter: &Id,
        number: &str,
        utc_offset_s: i32,
        services: &[&str],
    ) -> StoreResult<Option<Vec<TicketEvent>>> {
        let mut conn = self.write_conn();
        let mut invocation = once(
            &self.scripts().call_number,
            branch,
            key,
            &["call-number", counter.as_str(), number],
        );
        invocation
            .arg(counter.as_str())
            .arg(number)
            .arg(utc_offset_s);
        for service in services {
            invocation.arg(*service);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut conn).await?;
        self.confirm(&mut conn).await?;
        match reply.split_first() {
            Some((status, events)) if status == "ok" => Ok(Some(
                events
                    .iter()
                    .map(|e| serde_json::from_str(e).map_err(StoreError::from))
                    .collect::<StoreResult<_>>()?,
            )),
            Some((status, _)) if status == "not-waiting" => Ok(None),
            _ => Err(StoreError::Corrupt(format!("unexpected reply {reply:?}"))),
        }
    }

    /// Ends the counter's current ticket; `None` when it has none.
    pub async fn finish(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        counter: &Id,
        outcome: Outcome,
    ) -> StoreResult<Option<TicketEvent>> {
        let (status, kind) = match outcome {
            Outcome::Served => ("served", EventKind::TicketServed.as_str()),
            Outcome::NoShow => ("no_show", EventKind::TicketNoShow.as_str()),
        };
        let mut conn = self.write_conn();
        let reply: Value = once(
            &self.scripts().finish,
            branch,
            key,
            &["finish", counter.as_str(), status],
        )
        .arg(counter.as_str())
        .arg(status)
        .arg(kind)
        .invoke_async(&mut conn)
        .await?;
        self.confirm(&mut conn).await?;
        status_and_event(reply)
    }

    /// Announces the counter's current ticket again; `None` when it has none.
    pub async fn recall(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        counter: &Id,
    ) -> StoreResult<Option<TicketEvent>> {
        let mut conn = self.write_conn();
        let reply: Value = once(
            &self.scripts().recall,
            branch,
            key,
            &["recall", counter.as_str()],
        )
        .arg(counter.as_str())
        .invoke_async(&mut conn)
        .await?;
        self.confirm(&mut conn).await?;
        status_and_event(reply)
    }

    /// Puts the counter's current ticket back to waiting in `to`'s queue at
    /// its original place; `None` when the counter has no current ticket.
    pub async fn transfer(
        &self,
        branch: &Id,
        key: Option<&IdempotencyKey>,
        counter: &Id,
        to: &Id,
    ) -> StoreResult<Option<TicketView>> {
        let mut conn = self.write_conn();
        let reply: Value = once(
            &self.scripts().transfer,
            branch,
            key,
            &["transfer", counter.as_str(), to.as_str()],
        )
        .arg(counter.as_str())
        .arg(to.as_str())
        .invoke_async(&mut conn)
        .await?;
        self.confirm(&mut conn).await?;
        let Value::Array(items) = reply else {
            return Err(StoreError::Corrupt("transfer reply is not a list".into()));
        };
        if items.len() < 5 {
            return Ok(None);
        }
        let (_, ev, raw_rank, times, seen): (String, String, i64, Vec<String>, Vec<String>) =
            redis::from_redis_value(Value::Array(items))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let event: TicketEvent = serde_json::from_str(&ev)?;
        let context = QueueContext::new(event.ts_ms, times, seen);
        Ok(Some(TicketView {
            event,
            rank: rank(raw_rank),
            context,
        }))
    }

    /// One ticket with its position; `None` when unknown (or long expired).
    pub async fn ticket(&self, branch: &Id, id: &str) -> StoreResult<Option<TicketView>> {
        let mut conn = self.conn();
        let reply: Value = self
            .scripts()
            .ticket
            .key(keys::branch_prefix(branch))
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        if matches!(&reply, Value::Array(items) if items.is_empty()) {
            return Ok(None);
        }
        let (ev, raw_rank, times, seen, now_ms): (String, i64, Vec<String>, Vec<String>, i64) =
            redis::from_redis_value(reply).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(TicketView {
            event: serde_json::from_str(&ev)?,
            rank: rank(raw_rank),
            context: QueueContext::new(now_ms, times, seen),
        }))
    }

    /// The queues of `services`, in that order, with the estimate context.
    pub async fn queues(
        &self,
        branch: &Id,
        services: &[&str],
    ) -> StoreResult<(Vec<QueueHead>, QueueContext)> {
        let mut conn = self.conn();
        let mut invocation = self.scripts().queues.key(keys::branch_prefix(branch));
        for service in services {
            invocation.arg(*service);
        }
        let (now_ms, heads, times, seen): (i64, Vec<i64>, Vec<String>, Vec<String>) =
            invocation.invoke_async(&mut conn).await?;
        let heads = heads
            .chunks(2)
            .map(|pair| QueueHead {
                waiting: u64::try_from(pair[0]).unwrap_or(0),
                oldest_ms: pair.get(1).filter(|us| **us >= 0).map(|us| us / 1000),
            })
            .collect();
        Ok((heads, QueueContext::new(now_ms, times, seen)))
    }

    /// The latest calls, newest first: (number, counter, announced at ms,
    /// ticket id).
    pub async fn display(&self, branch: &Id) -> StoreResult<Vec<(String, String, i64, String)>> {
        let mut conn = self.conn();
        let flat: Vec<String> = self
            .scripts()
            .display
            .key(keys::branch_prefix(branch))
            .invoke_async(&mut conn)
            .await?;
        Ok(flat
            .chunks(4)
            .filter(|c| c.len() == 4)
            .map(|c| {
                (
                    c[0].clone(),
                    c[1].clone(),
                    c[2].parse().unwrap_or(0),
                    c[3].clone(),
                )
            })
            .collect())
    }
}

/// `{'ok', event}` → Some(event); `{'no-current'}` → None.
fn status_and_event(reply: Value) -> StoreResult<Option<TicketEvent>> {
    let items = strings(reply)?;
    match items.as_slice() {
        [status, ev] if status == "ok" => Ok(Some(serde_json::from_str(ev)?)),
        [status] if status == "no-current" => Ok(None),
        other => Err(StoreError::Corrupt(format!("unexpected reply {other:?}"))),
    }
}

impl Store {
    /// How many events wait in each branch's outbox, in the order given, in
    /// one round trip.
    pub async fn outbox_lens(&self, branches: &[&Id]) -> StoreResult<Vec<u64>> {
        if branches.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for branch in branches {
            pipe.cmd("XLEN").arg(keys::branch_outbox(branch));
        }
        let mut conn = self.conn();
        Ok(pipe.query_async(&mut conn).await?)
    }
}
