//! Differential property tests: the rules that Lua holds for atomicity,
//! run in the real scripts on a real Redis with generated inputs, against
//! their Rust reference models in `turnus::domain`.
//!
//! - numbering: ranges, wrap, zero padding, and the restart at each business
//!   day, with issue times around local midnights and daylight-saving
//!   changes in several zones (`domain::ticket`);
//! - the matrix choice: priorities, ties by issue time (including equal
//!   issue times), and transfers keeping their place (`domain::matrix`);
//! - the moving average of service times the estimate uses
//!   (`domain::estimate::ewma`);
//! - calling by number: only a ticket of the same business day
//!   (`domain::ticket::business_day`) and of the counter's services.
//!
//! The scripts are the production text with only the clock swapped for one
//! that takes "now" as an extra argument (`ScriptRunner`).

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use turnus::domain::estimate::ewma;
use turnus::domain::matrix::{choose, ordered_row};
use turnus::domain::ticket::{
    business_day, day_date, format_number, sequence_number, utc_offset_s,
};
use turnus::domain::{Id, MatrixEntry};

use crate::support::id;
use crate::support::redis::RedisServer;
use crate::support::scripts::ScriptRunner;

/// Cases per property: enough to hit wraps, ties and DST days every run,
/// small enough that the three properties take a few seconds.
const CASES: u32 = 64;

/// Zones with DST on either hemisphere, half-hour and 45-minute offsets, and
/// none at all.
const ZONES: [&str; 8] = [
    "Europe/Lisbon",
    "America/New_York",
    "America/Sao_Paulo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Asia/Kolkata",
    "UTC",
];

/// Dates of daylight-saving changes in the zones above (2026), besides
/// random dates.
const DST_DATES: [(u32, u32); 6] = [(3, 8), (3, 29), (4, 5), (9, 27), (10, 4), (10, 25)];

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// An instant near a local midnight of `date` in `zone`, `shift_s` away.
fn near_local_midnight(zone: Tz, date: NaiveDate, shift_s: i64) -> DateTime<Utc> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight");
    let local = zone
        .from_local_datetime(&midnight)
        .earliest()
        // A zone that skips midnight itself starts the day an hour later.
        .or_else(|| {
            zone.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .expect("a valid local time near midnight");
    local.with_timezone(&Utc) + chrono::Duration::seconds(shift_s)
}

fn issue_times() -> impl Strategy<Value = (Tz, DateTime<Utc>, Vec<i64>)> {
    let zone = prop::sample::select(ZONES.to_vec()).prop_map(|z| z.parse::<Tz>().expect("zone"));
    let date = prop_oneof![
        prop::sample::select(DST_DATES.to_vec())
            .prop_map(|(m, d)| NaiveDate::from_ymd_opt(2026, m, d).expect("date")),
        (0u64..36_500).prop_map(|n| NaiveDate::from_ymd_opt(2000, 1, 1)
            .expect("date")
            .checked_add_days(chrono::Days::new(n))
            .expect("date")),
    ];
    // Start up to three hours before a local midnight; gaps up to 40 min in
    // µs, some zero (two tickets in the same microsecond).
    (
        zone,
        date,
        -3 * 3600i64..600,
        prop::collection::vec(prop_oneof![Just(0i64), 0i64..2_400_000_000], 1..40),
    )
        .prop_map(|(zone, date, shift, gaps)| (zone, near_local_midnight(zone, date, shift), gaps))
}

#[test]
fn numbering_and_business_days_match_the_reference() {
    let redis = RedisServer::start();
    let scripts = RefCell::new(ScriptRunner::connect(&redis));
    let strategy = (issue_times(), 0u32..200, 1u32..30, "[A-Z]{1,2}");
    runner()
        .run(&strategy, |((zone, start, gaps), first, span, prefix)| {
            let mut scripts = scripts.borrow_mut();
            let last = first + span - 1;
            let branch = scripts.fresh_branch();
            let mut nth_of_day: HashMap<i64, u64> = HashMap::new();
            let mut at_us = start.timestamp_micros();
            for gap in gaps {
                at_us += gap;
                let at = DateTime::from_timestamp_micros(at_us).expect("in range");
                // What the node passes: the zone's offset at that instant.
                let offset = utc_offset_s(zone, at);
                let args = [
                    "s".to_owned(),
                    prefix.clone(),
                    first.to_string(),
                    last.to_string(),
                    offset.to_string(),
                ];
                let (event, _, _, _): (String, i64, Vec<String>, Vec<String>) =
                    scripts.run("issue", &branch, &args, at_us);
                let event: Value = serde_json::from_str(&event).expect("event JSON");
                let ticket = event["id"].as_str().expect("id").to_owned();
                let day: i64 = scripts
                    .ticket_field(&branch, &ticket, "day")
                    .expect("day")
                    .parse()
                    .expect("numeric day");

                let expected_day = business_day(at.timestamp(), offset);
                prop_assert_eq!(day, expected_day, "business day at {} in {}", at, zone);
                prop_assert_eq!(
                    day_date(day),
                    at.with_timezone(&zone).date_naive(),
                    "the business day is the local date at {} in {}",
                    at,
                    zone
                );
                let nth = nth_of_day.entry(day).or_default();
                *nth += 1;
                let expected = format_number(&prefix, sequence_number(first, last, *nth), last);
                prop_assert_eq!(
                    event["number"].as_str(),
                    Some(expected.as_str()),
                    "ticket {} of day {} in [{}, {}]",
                    nth,
                    day,
                    first,
                    last
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// One step of the matrix property.
#[derive(Debug, Clone)]
enum Step {
    /// Counter `c` calls with this row (service index, priority).
    Call(Vec<(usize, u32)>),
    /// Counter `t` calls with a row of every service, then transfers the
    /// ticket it got to this service.
    CallAndTransfer(usize),
}

const SERVICES: [&str; 4] = ["s0", "s1", "s2", "s3"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => prop::collection::vec((0..SERVICES.len(), 0u32..3), 0..5).prop_map(Step::Call),
        1 => (0..SERVICES.len()).prop_map(Step::CallAndTransfer),
    ]
}

fn row(cells: &[(usize, u32)]) -> Vec<MatrixEntry> {
    let mut seen = Vec::new();
    let mut row = Vec::new();
    for (service, priority) in cells {
        if !seen.contains(service) {
            seen.push(*service);
            row.push(MatrixEntry {
                service: id(SERVICES[*service]),
                priority: *priority,
            });
        }
    }
    row
}

/// The call script's arguments for a row, ordered as production orders it.
fn call_args(counter: &str, row: &[MatrixEntry]) -> Vec<String> {
    let mut args = vec![counter.to_owned()];
    for entry in ordered_row(row) {
        args.push(entry.service.to_string());
        args.push(entry.priority.to_string());
    }
    args
}

/// The called ticket in a call script's reply: (service, issued ms).
fn called(events: &[String]) -> Option<(String, i64)> {
    let last: Value = serde_json::from_str(events.last()?).expect("event JSON");
    (last["type"] == "ticket-called").then(|| {
        (
            last["service"].as_str().expect("service").to_owned(),
            last["issued_ms"].as_i64().expect("issued_ms"),
        )
    })
}

#[test]
fn the_matrix_choice_matches_the_reference() {
    let redis = RedisServer::start();
    let scripts = RefCell::new(ScriptRunner::connect(&redis));
    // Issue times in whole ms from a small set, so ties are common.
    let tickets = prop::collection::vec((0..SERVICES.len(), 0i64..6), 0..14);
    let steps = prop::collection::vec(step(), 1..12);
    runner()
        .run(&(tickets, steps), |(tickets, steps)| {
            let mut scripts = scripts.borrow_mut();
            let branch = scripts.fresh_branch();
            let base_ms = 1_780_000_000_000i64;
            // The model: per service, the issue times (ms) still waiting.
            let mut waiting: HashMap<Id, Vec<i64>> = HashMap::new();
            for (service, at) in &tickets {
                let issued_ms = base_ms + at;
                let args = [SERVICES[*service], "A", "1", "999", "0"].map(str::to_owned);
                let _: (String, i64, Vec<String>, Vec<String>) =
                    scripts.run("issue", &branch, &args, issued_ms * 1000);
                waiting
                    .entry(id(SERVICES[*service]))
                    .or_default()
                    .push(issued_ms);
            }
            let mut now_ms = base_ms + 1_000;
            for step in steps {
                now_ms += 1_000;
                let (counter, row) = match &step {
                    Step::Call(cells) => ("c", row(cells)),
                    Step::CallAndTransfer(_) => (
                        "t",
                        row(&(0..SERVICES.len()).map(|s| (s, 0)).collect::<Vec<_>>()),
                    ),
                };
                let oldest = |s: &Id| waiting.get(s).and_then(|t| t.iter().min().copied());
                let ordered = ordered_row(&row);
                let expected = choose(&ordered, oldest).cloned();
                let expected_issued = expected.as_ref().and_then(oldest);
                let events: Vec<String> =
                    scripts.run("call", &branch, &call_args(counter, &row), now_ms * 1000);
                let got = called(&events);
                prop_assert_eq!(
                    got.clone(),
                    expected
                        .clone()
                        .map(|s| (s.to_string(), expected_issued.expect("a head"))),
                    "call with row {:?}, waiting {:?}",
                    row,
                    waiting
                );
                let Some((service, issued_ms)) = got else {
                    continue;
                };
                let queue = waiting.get_mut(&id(&service)).expect("a queue");
                let at = queue.iter().position(|t| *t == issued_ms).expect("waiting");
                queue.remove(at);
                if let Step::CallAndTransfer(to) = step {
                    now_ms += 1_000;
                    let args = ["t", SERVICES[to]].map(str::to_owned);
                    let reply: redis::Value =
                        scripts.run("transfer", &branch, &args, now_ms * 1000);
                    prop_assert!(
                        matches!(reply, redis::Value::Array(ref items) if items.len() == 5)
                    );
                    waiting.entry(id(SERVICES[to])).or_default().push(issued_ms);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_service_time_average_matches_the_reference() {
    let redis = RedisServer::start();
    let scripts = RefCell::new(ScriptRunner::connect(&redis));
    // Service durations in ms, and whether the ticket ends by `finish` or
    // by the counter's next call (both end it as served).
    let samples = prop::collection::vec((0i64..3_600_000, any::<bool>()), 1..15);
    runner()
        .run(&samples, |samples| {
            let mut scripts = scripts.borrow_mut();
            let branch = scripts.fresh_branch();
            let issue = ["s", "A", "1", "999", "0"].map(str::to_owned);
            let call = ["c", "s", "0"].map(str::to_owned);
            let finish = ["c", "served", "ticket-served"].map(str::to_owned);
            // The counter holds a ticket called at `called_ms`.
            let mut called_ms = 1_780_000_000_000i64;
            let _: (String, i64, Vec<String>, Vec<String>) =
                scripts.run("issue", &branch, &issue, called_ms * 1000);
            let _: Vec<String> = scripts.run("call", &branch, &call, called_ms * 1000);
            let mut expected: Option<f64> = None;
            for (duration_ms, by_next_call) in samples {
                // Someone waits, so the counter always has a next ticket.
                let _: (String, i64, Vec<String>, Vec<String>) =
                    scripts.run("issue", &branch, &issue, called_ms * 1000);
                let ended_ms = called_ms + duration_ms;
                if by_next_call {
                    // Serves the current ticket and calls the next at once.
                    let _: Vec<String> = scripts.run("call", &branch, &call, ended_ms * 1000);
                    called_ms = ended_ms;
                } else {
                    let _: Vec<String> = scripts.run("finish", &branch, &finish, ended_ms * 1000);
                    called_ms = ended_ms + 1;
                    let _: Vec<String> = scripts.run("call", &branch, &call, called_ms * 1000);
                }
                expected = Some(ewma(expected, duration_ms as f64 / 1000.0));
                let stored = scripts.service_time_s(&branch, "s").expect("stored");
                let want = expected.expect("one sample");
                prop_assert!(
                    (stored - want).abs() <= 1e-9 * want.abs().max(1.0),
                    "stored {} want {}",
                    stored,
                    want
                );
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Calling by number takes a waiting ticket only on the business day it was
/// issued (the day `call_number.lua` computes must be the one `issue.lua`
/// stored, by `domain::ticket::business_day`), and only in the counter's
/// services.
#[test]
fn call_by_number_takes_only_todays_ticket_of_the_counters_services() {
    let redis = RedisServer::start();
    let scripts = RefCell::new(ScriptRunner::connect(&redis));
    // A call from a moment before the issue (clock skew is not the point)
    // up to two days later, around local midnights.
    let strategy = (issue_times(), 0i64..2 * 86_400_000_000, any::<bool>());
    runner()
        .run(&strategy, |((zone, issued, _), later_us, in_row)| {
            let mut scripts = scripts.borrow_mut();
            let branch = scripts.fresh_branch();
            let issued_us = issued.timestamp_micros();
            let offset = utc_offset_s(zone, issued);
            let args = ["s", "A", "1", "999", &offset.to_string()].map(str::to_owned);
            let (event, _, _, _): (String, i64, Vec<String>, Vec<String>) =
                scripts.run("issue", &branch, &args, issued_us);
            let event: Value = serde_json::from_str(&event).expect("event JSON");
            let number = event["number"].as_str().expect("number").to_owned();

            let call_us = issued_us + later_us;
            let call_at = DateTime::from_timestamp_micros(call_us).expect("in range");
            let call_offset = utc_offset_s(zone, call_at);
            let service = if in_row { "s" } else { "other" };
            let args = ["c1", &number, &call_offset.to_string(), service].map(str::to_owned);
            let reply: Vec<String> = scripts.run("call_number", &branch, &args, call_us);

            let same_day = business_day(call_at.timestamp(), call_offset)
                == business_day(issued.timestamp(), offset);
            let expected = if same_day && in_row {
                "ok"
            } else {
                "not-waiting"
            };
            prop_assert_eq!(
                reply[0].as_str(),
                expected,
                "issued {} called {} in {}",
                issued,
                call_at,
                zone
            );
            let status = scripts.ticket_field(&branch, "1", "status");
            let expected_status = if expected == "ok" {
                "called"
            } else {
                "waiting"
            };
            prop_assert_eq!(status.as_deref(), Some(expected_status));
            Ok(())
        })
        .expect("call by number matches the business-day rule");
}
