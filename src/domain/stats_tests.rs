//! Crafted timelines for the statistics rules, and properties over random
//! ticket lives.

use super::*;
use crate::domain::kpi::Acc;
use crate::domain::ticket::EventKind;
use crate::domain::{Id, TicketStatus};
use chrono::TimeZone;
use proptest::prelude::*;

fn branch(tz: &str) -> Branch {
    let mut b = Branch::create(
        Id::parse("b1").expect("id"),
        crate::domain::config::BranchInput {
            name: "B".into(),
            timezone: tz.into(),
            group: None,
            close_time: None,
            alerts: None,
        },
    )
    .expect("branch");
    for (id, prefix) in [("loans", "L"), ("cash", "C")] {
        b.put_service(
            Id::parse(id).expect("id"),
            crate::domain::config::ServiceInput {
                name: id.into(),
                prefix: prefix.into(),
                target_wait_s: Some(600),
                first: None,
                last: None,
            },
        )
        .expect("service");
    }
    b
}

/// A UTC instant in ms.
fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid")
        .timestamp_millis()
}

fn ev(kind: &str, service: &str, ts_ms: i64, issued_ms: i64) -> TicketEvent {
    TicketEvent {
        kind: serde_json::from_value(serde_json::Value::String(kind.into())).expect("event kind"),
        id: "7".into(),
        service: service.into(),
        number: "L001".into(),
        status: TicketStatus::Waiting,
        issued_ms,
        called_ms: None,
        finished_ms: None,
        counter: None,
        from_service: None,
        from_counter: None,
        from_called_ms: None,
        first_call: false,
        counter_free_ms: None,
        waiting_since_ms: None,
        ts_ms,
    }
}

fn called(service: &str, counter: &str, ts: i64, issued: i64, first: bool) -> TicketEvent {
    TicketEvent {
        counter: Some(counter.into()),
        called_ms: Some(ts),
        first_call: first,
        ..ev("ticket-called", service, ts, issued)
    }
}

fn apply_all(b: &Branch, events: &[TicketEvent]) -> Rollups {
    let mut r = Rollups::default();
    for e in events {
        r.apply(&event_ops(b, e));
    }
    r
}

/// Everything of one day summed over hours and services.
fn day_total(r: &Rollups, day: i64) -> (Acc, DayFigures) {
    let fields = r
        .hashes
        .get(&RollupKey::Day(day))
        .cloned()
        .unwrap_or_default();
    let figures = DayFigures::parse(
        fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.parse().expect("number"))),
    );
    let mut total = Acc::default();
    for acc in figures.hours.values() {
        total.merge(acc);
    }
    (total, figures)
}

#[test]
fn a_transfer_starts_a_new_transaction_and_no_second_first_call() {
    let b = branch("UTC");
    let t0 = at(2026, 3, 10, 10, 0, 0);
    let min = 60_000;
    let events = vec![
        ev("ticket-issued", "loans", t0, t0),
        called("loans", "c1", t0 + 5 * min, t0, true),
        TicketEvent {
            counter: Some("c1".into()),
            ..ev("ticket-recalled", "loans", t0 + 6 * min, t0)
        },
        TicketEvent {
            from_service: Some("loans".into()),
            from_counter: Some("c1".into()),
            from_called_ms: Some(t0 + 5 * min),
            ..ev("ticket-transferred", "cash", t0 + 10 * min, t0)
        },
        called("cash", "c2", t0 + 20 * min, t0, false),
        TicketEvent {
            counter: Some("c2".into()),
            called_ms: Some(t0 + 20 * min),
            ..ev("ticket-served", "cash", t0 + 30 * min, t0)
        },
    ];
    let r = apply_all(&b, &events);
    let day = day_and_hour(Tz::UTC, t0).0;
    let (total, figures) = day_total(&r, day);
    assert_eq!(
        (total.issued, total.called, total.served, total.transferred),
        (1, 1, 1, 1)
    );
    assert_eq!(
        total.wait_sum_ms,
        5 * min,
        "the wait ends at the first call"
    );
    assert_eq!(total.sla, 1);
    assert_eq!(total.service_n, 2, "call → transfer, call → finish");
    assert_eq!(total.service_sum_ms, 5 * min + 10 * min);
    let loans = &figures.hours[&(10, "loans".to_owned())];
    assert_eq!((loans.called, loans.transferred, loans.served), (1, 1, 0));
    let cash = &figures.hours[&(10, "cash".to_owned())];
    assert_eq!(
        (cash.called, cash.served, cash.service_sum_ms),
        (0, 1, 10 * min)
    );
    assert_eq!(figures.counters["c1"].called, 1);
    assert_eq!(figures.counters["c2"].called, 1);
    assert_eq!(figures.counters["c2"].service_sum_ms, 10 * min);
    assert!(r.zsets.is_empty(), "nothing waits: {:?}", r.zsets);
    assert!(
        !r.hashes.contains_key(&RollupKey::Current),
        "no open transaction"
    );
}

/// A counter's day as its call events carry it (F = when it became free,
/// W = since when its services had a ticket waiting): an idle stretch, a
/// recall (adds nothing), a lunch break longer than the open window (the
/// counter counts as closed), and a stretch over local midnight split
/// between the two days.
#[test]
fn counter_idle_time_over_a_crafted_day() {
    let b = branch("Europe/Lisbon");
    let tz = b.tz();
    let min = 60_000;
    let t0 = at(2026, 3, 10, 9, 0, 0); // 09:00 local (UTC+0 in March)
    let call = |ts: i64, free: Option<i64>, since: Option<i64>| TicketEvent {
        counter_free_ms: free,
        waiting_since_ms: since,
        ..called("loans", "c1", ts, since.unwrap_or(ts), true)
    };
    let recall = TicketEvent {
        counter: Some("c1".into()),
        ..ev("ticket-recalled", "loans", t0 + 20 * min, t0)
    };
    let midnight = at(2026, 3, 11, 0, 0, 0);
    let events = vec![
        // Opens at 09:00 (first call ever: nothing known before).
        call(t0, None, Some(t0)),
        // Free from 09:10, a ticket waits from 09:12, called at 09:15: 3 min.
        call(t0 + 15 * min, Some(t0 + 10 * min), Some(t0 + 12 * min)),
        recall,
        // Lunch: free from 12:00, back and calling at 13:00 (silent > 30 min).
        call(t0 + 240 * min, Some(t0 + 180 * min), Some(t0 + 200 * min)),
        // Late shift: free from 23:50, tickets since 23:40, call at 00:05.
        call(
            midnight + 5 * min,
            Some(midnight - 10 * min),
            Some(midnight - 20 * min),
        ),
    ];
    assert!(
        event_ops(&b, &events[2]).is_empty(),
        "a recall adds nothing"
    );
    let r = apply_all(&b, &events);
    let day = day_and_hour(tz, t0).0;
    let (_, today) = day_total(&r, day);
    let (_, tomorrow) = day_total(&r, day + 1);
    assert_eq!(today.counters["c1"].idle_ms, 3 * min + 10 * min);
    assert_eq!(tomorrow.counters["c1"].idle_ms, 5 * min);
    assert_eq!(today.counters["c1"].called, 3);
    assert_eq!(
        today.counters["c1"].counter_kpis().idle_while_waiting_s,
        780
    );
}

#[test]
fn day_and_hour_follow_the_branch_time_zone() {
    // 02:30 UTC on 10 March is 23:30 on 9 March in São Paulo (UTC-3).
    let b = branch("America/Sao_Paulo");
    let issued = at(2026, 3, 10, 2, 30, 0);
    let call = at(2026, 3, 10, 3, 10, 0); // 00:10 local, the next day
    let r = apply_all(
        &b,
        &[
            ev("ticket-issued", "loans", issued, issued),
            called("loans", "c1", call, issued, true),
        ],
    );
    let tz: Tz = "America/Sao_Paulo".parse().expect("tz");
    let (d1, h1) = day_and_hour(tz, issued);
    let (d2, h2) = day_and_hour(tz, call);
    assert_eq!((d2 - d1, h1, h2), (1, 23, 0));
    let (first, f1) = day_total(&r, d1);
    let (second, f2) = day_total(&r, d2);
    assert_eq!((first.issued, first.called), (1, 0));
    assert_eq!((second.issued, second.called), (0, 1));
    assert!(f1.hours.contains_key(&(23, "loans".to_owned())));
    assert!(f2.hours.contains_key(&(0, "loans".to_owned())));
    assert_eq!(second.wait_sum_ms, 40 * 60_000);
    assert_eq!(second.sla, 0, "40 minutes is over the 10-minute target");
    assert_eq!(
        hour_start(tz, crate::domain::ticket::day_date(d1), 23).map(|t| t.timestamp_millis()),
        Some(at(2026, 3, 10, 2, 0, 0))
    );
}

#[test]
fn no_show_and_day_close_end_tickets_without_service_time() {
    let b = branch("UTC");
    let t0 = at(2026, 3, 10, 9, 0, 0);
    let mut other = ev("ticket-issued", "cash", t0, t0);
    other.id = "8".into();
    let mut closed = ev("ticket-closed", "cash", t0 + 3_600_000, t0);
    closed.id = "8".into();
    let r = apply_all(
        &b,
        &[
            ev("ticket-issued", "loans", t0, t0),
            other,
            called("loans", "c1", t0 + 1000, t0, true),
            TicketEvent {
                counter: Some("c1".into()),
                called_ms: Some(t0 + 1000),
                ..ev("ticket-no-show", "loans", t0 + 2000, t0)
            },
            closed,
        ],
    );
    let (total, _) = day_total(&r, day_and_hour(Tz::UTC, t0).0);
    assert_eq!((total.issued, total.no_show, total.closed), (2, 1, 1));
    assert_eq!((total.service_n, total.served), (0, 0));
    assert!(r.zsets.is_empty() && !r.hashes.contains_key(&RollupKey::Current));
}

#[derive(Debug, Clone)]
enum Step {
    Issue(bool),
    Call(usize),
    Recall(usize),
    Transfer(usize),
    Finish(usize, bool),
    Advance(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::Issue),
        (0usize..3).prop_map(Step::Call),
        (0usize..3).prop_map(Step::Recall),
        (0usize..3).prop_map(Step::Transfer),
        ((0usize..3), any::<bool>()).prop_map(|(c, s)| Step::Finish(c, s)),
        (1i64..4_000_000).prop_map(Step::Advance),
    ]
}

/// A small ticket machine producing the events the Lua scripts would.
fn simulate(steps: &[Step]) -> (Vec<TicketEvent>, usize, i64) {
    let services = ["loans", "cash"];
    let mut now = at(2026, 6, 1, 8, 0, 0);
    let mut waiting: Vec<(String, String, i64)> = Vec::new(); // id, service, issued
    let mut current: [Option<(String, String, i64, i64)>; 3] = Default::default();
    let mut ever_called = std::collections::HashSet::new();
    let (mut events, mut issued) = (Vec::new(), 0);
    let mut first_call_waits = 0;
    for s in steps {
        now += 1;
        match s {
            Step::Issue(cash) => {
                issued += 1;
                let service = services[usize::from(*cash)];
                let mut e = ev("ticket-issued", service, now, now);
                e.id = issued.to_string();
                waiting.push((e.id.clone(), service.into(), now));
                events.push(e);
            }
            Step::Call(c) if current[*c].is_none() && !waiting.is_empty() => {
                let (id, service, iss) = waiting.remove(0);
                let first = ever_called.insert(id.clone());
                if first {
                    first_call_waits += now - iss;
                }
                let mut e = called(&service, &format!("c{c}"), now, iss, first);
                e.id = id.clone();
                current[*c] = Some((id, service, iss, now));
                events.push(e);
            }
            Step::Recall(c) => {
                if let Some((id, service, iss, _)) = &current[*c] {
                    let mut e = ev("ticket-recalled", service, now, *iss);
                    (e.id, e.counter) = (id.clone(), Some(format!("c{c}")));
                    events.push(e);
                }
            }
            Step::Transfer(c) => {
                if let Some((id, service, iss, called_ms)) = current[*c].take() {
                    let to = if service == "loans" { "cash" } else { "loans" };
                    let mut e = ev("ticket-transferred", to, now, iss);
                    e.id = id.clone();
                    e.from_service = Some(service);
                    e.from_counter = Some(format!("c{c}"));
                    e.from_called_ms = Some(called_ms);
                    waiting.push((id, to.into(), iss));
                    waiting.sort_by_key(|w| w.2);
                    events.push(e);
                }
            }
            Step::Finish(c, served) => {
                if let Some((id, service, iss, called_ms)) = current[*c].take() {
                    let kind = if *served {
                        "ticket-served"
                    } else {
                        "ticket-no-show"
                    };
                    let mut e = ev(kind, &service, now, iss);
                    (e.id, e.counter, e.called_ms) = (id, Some(format!("c{c}")), Some(called_ms));
                    events.push(e);
                }
            }
            Step::Advance(ms) => now += ms,
            Step::Call(_) => {}
        }
    }
    (events, waiting.len(), first_call_waits)
}

proptest! {
    /// Over any ticket lives: every issued ticket is counted once, first
    /// calls at most once per ticket, waits sum exactly, the waiting set
    /// matches the tickets still waiting, and the order of days does not
    /// matter for the totals.
    #[test]
    fn random_lives_add_up(steps in proptest::collection::vec(step(), 0..120)) {
        let b = branch("Europe/Lisbon");
        let (events, still_waiting, waits) = simulate(&steps);
        let r = apply_all(&b, &events);
        let mut total = Acc::default();
        for (key, fields) in &r.hashes {
            if let RollupKey::Day(_) = key {
                let f = DayFigures::parse(fields.iter().map(|(k, v)| (k.as_str(), v.parse().expect("n"))));
                f.hours.values().for_each(|a| total.merge(a));
                // The day totals the summary reads equal the sum of the
                // hourly fields, metric by metric.
                let hourly = day_totals(fields.iter().map(|(k, v)| (k.as_str(), v.parse().expect("n"))));
                let kept = totals_of(TOTAL_METRICS.iter().filter_map(|m| {
                    Some((*m, fields.get(&total_field(m))?.parse().expect("n")))
                }));
                prop_assert_eq!(
                    (kept.issued, kept.called, kept.served, kept.no_show, kept.sla),
                    (hourly.issued, hourly.called, hourly.served, hourly.no_show, hourly.sla)
                );
            }
        }
        // Each service's waiting set holds that service's tickets only.
        for (key, members) in &r.zsets {
            let RollupKey::Waiting(service) = key else { continue };
            let head = format!("{service}|");
            prop_assert!(members.keys().all(|m| m.starts_with(&head)));
        }
        let issued = events.iter().filter(|e| e.kind == EventKind::TicketIssued).count() as i64;
        let firsts = events.iter().filter(|e| e.first_call).count() as i64;
        prop_assert_eq!(total.issued, issued);
        prop_assert_eq!(total.called, firsts);
        prop_assert!(total.called <= total.issued);
        prop_assert_eq!(total.wait_sum_ms, waits);
        prop_assert_eq!(total.histogram.values().sum::<i64>(), firsts);
        let waiting_now: usize = r.zsets.iter().filter(|(k, _)| matches!(k, RollupKey::Waiting(_))).map(|(_, z)| z.len()).sum();
        prop_assert_eq!(waiting_now, still_waiting);
        let ended = events.iter().filter(|e| matches!(e.kind, EventKind::TicketServed | EventKind::TicketTransferred)).count() as i64;
        prop_assert_eq!(total.service_n, ended);
    }

    /// Folding any run of events' ops (as the store sends a batch) ends in
    /// the same rollups as applying every event's ops in turn.
    #[test]
    fn folded_batches_end_where_the_events_do(
        steps in proptest::collection::vec(step(), 0..160),
        cuts in proptest::collection::vec(1usize..40, 1..8),
    ) {
        let b = branch("Europe/Lisbon");
        let (events, _, _) = simulate(&steps);
        let one_by_one = apply_all(&b, &events);
        let mut folded = Rollups::default();
        let mut rest = events.as_slice();
        let mut sizes = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().expect("cycle")).min(rest.len());
            let mut batch = Folded::default();
            rest[..n].iter().for_each(|e| batch.add(&event_ops(&b, e)));
            prop_assert!(batch.len() <= rest[..n].iter().map(|e| event_ops(&b, e).len()).sum::<usize>());
            folded.apply(batch.ops());
            rest = &rest[n..];
        }
        prop_assert_eq!(folded, one_by_one);
    }
}
