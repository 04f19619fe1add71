//! Counter idle time where it runs: the ticket scripts (Lua, real Redis,
//! injected clock) keep when each counter became free and since when each
//! queue has had tickets; `domain::stats::event_ops` turns a call event into
//! the counter's `idle_ms`. Random timelines of issues, calls, finishes,
//! no-shows, transfers, recalls and long silences are checked against a
//! brute-force model that walks the recorded states back from each call
//! (`domain::counter_idle` states the rule).

use std::cell::RefCell;
use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use turnus::domain::estimate::OPEN_COUNTER_WINDOW_MS;
use turnus::domain::stats::{event_ops, Op};
use turnus::domain::{Branch, TicketEvent};

use crate::support::redis::RedisServer;
use crate::support::scripts::ScriptRunner;

const SERVICES: [&str; 2] = ["loans", "cash"];
/// Counter → its row (services, in priority order).
const COUNTERS: [(&str, &[&str]); 3] = [
    ("c0", &["loans"]),
    ("c1", &["loans", "cash"]),
    ("c2", &["cash"]),
];

#[derive(Debug, Clone)]
enum Step {
    Issue(usize),
    Call(usize),
    Finish(usize),
    NoShow(usize),
    Transfer(usize, usize),
    Recall(usize),
    /// The day close, for tickets issued more than this many seconds ago.
    Close(i64),
}

fn step() -> impl Strategy<Value = (Step, i64)> {
    let counter = 0..COUNTERS.len();
    let action = prop_oneof![
        4 => (0..SERVICES.len()).prop_map(Step::Issue),
        4 => counter.clone().prop_map(Step::Call),
        2 => counter.clone().prop_map(Step::Finish),
        1 => counter.clone().prop_map(Step::NoShow),
        1 => (counter.clone(), 0..SERVICES.len()).prop_map(|(c, s)| Step::Transfer(c, s)),
        1 => counter.prop_map(Step::Recall),
        1 => prop_oneof![Just(0i64), 1i64..900].prop_map(Step::Close),
    ];
    // Seconds before the step; now and then a silence over the open window.
    let gap = prop_oneof![9 => 1i64..400, 1 => 1_700i64..2_200];
    (action, gap)
}

/// The model's state after an event: which counters are busy, with the
/// issue time of their ticket, and the issue times waiting in each queue.
#[derive(Debug, Clone, Default)]
struct State {
    busy: BTreeMap<usize, i64>,
    queued: [Vec<i64>; 2],
}

fn branch() -> Branch {
    let counters: Vec<_> = COUNTERS
        .iter()
        .map(|(id, row)| {
            let services: Vec<_> = row
                .iter()
                .enumerate()
                .map(|(p, s)| serde_json::json!({"service": s, "priority": p + 1}))
                .collect();
            serde_json::json!({"id": id, "name": id, "services": services})
        })
        .collect();
    let services: Vec<_> = SERVICES
        .iter()
        .map(|s| serde_json::json!({"id": s, "name": s, "prefix": "A", "target_wait_s": 300, "first": 1, "last": 999}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "id": "b1", "name": "B", "timezone": "Europe/Lisbon",
        "services": services, "counters": counters
    }))
    .expect("branch document")
}

fn row_of(counter: usize) -> Vec<usize> {
    COUNTERS[counter]
        .1
        .iter()
        .map(|s| SERVICES.iter().position(|x| x == s).expect("a service"))
        .collect()
}

/// The idle time the model expects at a call of `counter` at `now`:
/// `history` holds (time, state after the event at that time).
fn expected_idle(
    history: &[(i64, State)],
    counter: usize,
    now: i64,
    free_mark: Option<i64>,
) -> i64 {
    if free_mark
        .filter(|f| now - f <= OPEN_COUNTER_WINDOW_MS)
        .is_none()
    {
        return 0;
    };
    // When the counter's free stretch began (walking states back).
    let mut free_from = None;
    for (t, state) in history.iter().rev() {
        if state.busy.contains_key(&counter) {
            break;
        }
        free_from = Some(*t);
    }
    let Some(free_from) = free_from else { return 0 };
    // The earliest start of a stretch of one of its queues still running.
    let waiting_from = row_of(counter)
        .into_iter()
        .filter_map(|s| {
            let mut from = None;
            for (t, state) in history.iter().rev() {
                if state.queued[s].is_empty() {
                    break;
                }
                from = Some(*t);
            }
            from
        })
        .min();
    let Some(waiting_from) = waiting_from else {
        return 0;
    };
    (now - free_from.max(waiting_from)).max(0)
}

fn idle_in(ops: &[Op], counter: &str) -> i64 {
    ops.iter()
        .map(|op| match op {
            Op::Incr { field, by, .. } if *field == format!("c|{counter}|idle_ms") => *by,
            _ => 0,
        })
        .sum()
}

fn events_of(reply: &[String]) -> Vec<TicketEvent> {
    reply
        .iter()
        .filter(|e| e.starts_with('{'))
        .map(|e| serde_json::from_str(e).expect("event JSON"))
        .collect()
}

#[test]
fn counter_idle_from_the_scripts_matches_the_model() {
    let redis = RedisServer::start();
    let scripts = RefCell::new(ScriptRunner::connect(&redis));
    let b = branch();
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let calls_with_idle = std::cell::Cell::new(0);
    runner
        .run(&prop::collection::vec(step(), 1..60), |steps| {
            let mut scripts = scripts.borrow_mut();
            let branch = scripts.fresh_branch();
            let mut now_ms = 1_780_000_000_000i64;
            let mut state = State::default();
            let mut history: Vec<(i64, State)> = vec![(now_ms, state.clone())];
            // Counter → the model's F; the day numbers the close has used.
            let mut free_mark: BTreeMap<usize, i64> = BTreeMap::new();
            let mut closed_days = 20_000;
            for (step, gap_s) in steps {
                now_ms += gap_s * 1000;
                let us = now_ms * 1000;
                let name = |c: usize| COUNTERS[c].0.to_owned();
                match step {
                    Step::Issue(s) => {
                        let args = [SERVICES[s], "A", "1", "999", "0"].map(str::to_owned);
                        let _: (String, i64, Vec<String>, Vec<String>) =
                            scripts.run("issue", &branch, &args, us);
                        state.queued[s].push(now_ms);
                    }
                    Step::Call(c) => {
                        let mut args = vec![name(c)];
                        for (p, s) in row_of(c).into_iter().enumerate() {
                            args.push(SERVICES[s].to_owned());
                            args.push((p + 1).to_string());
                        }
                        let reply: Vec<String> = scripts.run("call", &branch, &args, us);
                        // The states before the call, with the finish the
                        // call itself makes; F is then the call itself.
                        let mut past = history.clone();
                        let free = if state.busy.remove(&c).is_some() {
                            past.push((now_ms, state.clone()));
                            Some(now_ms)
                        } else {
                            free_mark.get(&c).copied()
                        };
                        let expected = expected_idle(&past, c, now_ms, free);
                        free_mark.insert(c, now_ms);
                        let events = events_of(&reply);
                        match events.iter().find(|e| e.kind.as_str() == "ticket-called") {
                            Some(ev) => {
                                let got = idle_in(&event_ops(&b, ev), &name(c));
                                prop_assert_eq!(
                                    got,
                                    expected,
                                    "call of {} at {}: {:?}",
                                    name(c),
                                    now_ms,
                                    ev
                                );
                                if got > 0 {
                                    calls_with_idle.set(calls_with_idle.get() + 1);
                                }
                                let s = SERVICES.iter().position(|x| *x == ev.service);
                                let queue = &mut state.queued[s.expect("a service")];
                                let at = queue.iter().position(|t| *t == ev.issued_ms);
                                queue.remove(at.expect("the called ticket waited"));
                                state.busy.insert(c, ev.issued_ms);
                            }
                            None => {
                                prop_assert!(row_of(c).iter().all(|s| state.queued[*s].is_empty()))
                            }
                        }
                    }
                    Step::Finish(c) | Step::NoShow(c) => {
                        let (status, kind) = match step {
                            Step::Finish(_) => ("served", "ticket-served"),
                            _ => ("no_show", "ticket-no-show"),
                        };
                        let args = [name(c), status.to_owned(), kind.to_owned()];
                        let _: Vec<String> = scripts.run("finish", &branch, &args, us);
                        if state.busy.remove(&c).is_some() {
                            free_mark.insert(c, now_ms);
                        }
                    }
                    Step::Transfer(c, to) => {
                        let args = [name(c), SERVICES[to].to_owned()];
                        let _: redis::Value = scripts.run("transfer", &branch, &args, us);
                        if let Some(issued) = state.busy.remove(&c) {
                            state.queued[to].push(issued);
                            free_mark.insert(c, now_ms);
                        }
                    }
                    Step::Recall(c) => {
                        let reply: Vec<String> = scripts.run("recall", &branch, &[name(c)], us);
                        for ev in events_of(&reply) {
                            prop_assert!(event_ops(&b, &ev).is_empty(), "a recall adds nothing");
                        }
                    }
                    Step::Close(ago_s) => {
                        // Tickets issued before the cutoff close; the rest
                        // keep waiting (or being served).
                        let cutoff_ms = now_ms - ago_s * 1000;
                        closed_days += 1;
                        let args = [
                            "1".to_owned(),
                            closed_days.to_string(),
                            (cutoff_ms * 1000).to_string(),
                        ];
                        let reply: Vec<String> = scripts.run("close_day", &branch, &args, us);
                        let before: usize =
                            state.queued.iter().map(Vec::len).sum::<usize>() + state.busy.len();
                        for queue in &mut state.queued {
                            queue.retain(|issued| *issued >= cutoff_ms);
                        }
                        let closed: Vec<usize> = state
                            .busy
                            .iter()
                            .filter(|(_, issued)| **issued < cutoff_ms)
                            .map(|(c, _)| *c)
                            .collect();
                        for c in closed {
                            state.busy.remove(&c);
                            free_mark.insert(c, now_ms);
                        }
                        let after: usize =
                            state.queued.iter().map(Vec::len).sum::<usize>() + state.busy.len();
                        prop_assert_eq!(
                            reply,
                            vec!["closed".to_owned(), (before - after).to_string()]
                        );
                    }
                }
                history.push((now_ms, state.clone()));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        calls_with_idle.get() > 10,
        "the timelines hardly produced idle time"
    );
}
