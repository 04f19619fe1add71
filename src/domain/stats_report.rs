//! What the statistics API answers, built from rollup fields as read back:
//! a branch's figures over a range of days (JSON and CSV), and one branch's
//! line of the summary with its live figures and alerts. Pure.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::kpi::{Acc, CounterKpis, Kpis};
use super::stats::{hour_start, totals_of, DayFigures};
use super::ticket::{day_date, from_ms};
use super::Branch;

/// `GET /api/v1/stats/branches/{branch}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BranchReport {
    pub branch: String,
    #[schema(value_type = String, example = "2026-11-21")]
    pub from: NaiveDate,
    #[schema(value_type = String, example = "2026-11-21")]
    pub to: NaiveDate,
    /// Every event of the branch up to this instant is in the figures.
    pub complete_through: Option<DateTime<Utc>>,
    pub total: Kpis,
    pub services: BTreeMap<String, Kpis>,
    pub counters: BTreeMap<String, CounterKpis>,
    pub hours: Vec<HourKpis>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HourKpis {
    /// Start of the local hour, in UTC.
    pub hour: DateTime<Utc>,
    #[serde(flatten)]
    pub kpis: Kpis,
}

/// The day number of a date (days since 1970-01-01).
pub fn day_number(date: NaiveDate) -> i64 {
    (date - NaiveDate::default()).num_days()
}

/// (hour start, service, figures) of every hour that has any, in order.
fn hour_rows(
    branch: &Branch,
    days: &[(i64, HashMap<String, i64>)],
) -> Vec<(DateTime<Utc>, String, Acc)> {
    let tz = branch.tz();
    let mut rows = Vec::new();
    for (day, fields) in days {
        let figures = DayFigures::parse(fields.iter().map(|(k, v)| (k.as_str(), *v)));
        for ((hour, service), acc) in figures.hours {
            // A local hour a daylight-saving change skipped has no events.
            if let Some(start) = hour_start(tz, day_date(*day), hour) {
                rows.push((start, service, acc));
            }
        }
    }
    rows.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    rows
}

/// The figures of `days` (each with its rollup fields).
pub fn branch_report(
    branch: &Branch,
    from: NaiveDate,
    to: NaiveDate,
    days: &[(i64, HashMap<String, i64>)],
    complete_through_ms: Option<i64>,
) -> BranchReport {
    let mut total = Acc::default();
    let mut services: BTreeMap<String, Acc> = BTreeMap::new();
    let mut hours: BTreeMap<DateTime<Utc>, Acc> = BTreeMap::new();
    for (start, service, acc) in hour_rows(branch, days) {
        total.merge(&acc);
        services.entry(service).or_default().merge(&acc);
        hours.entry(start).or_default().merge(&acc);
    }
    BranchReport {
        branch: branch.id.to_string(),
        from,
        to,
        complete_through: complete_through_ms.map(from_ms),
        total: total.kpis(),
        services: services.into_iter().map(|(s, a)| (s, a.kpis())).collect(),
        counters: counter_figures(days),
        hours: hours
            .into_iter()
            .map(|(hour, a)| HourKpis {
                hour,
                kpis: a.kpis(),
            })
            .collect(),
    }
}

/// Each counter's figures over `days`.
fn counter_figures(days: &[(i64, HashMap<String, i64>)]) -> BTreeMap<String, CounterKpis> {
    let mut counters: BTreeMap<String, Acc> = BTreeMap::new();
    for (_, fields) in days {
        let figures = DayFigures::parse(fields.iter().map(|(k, v)| (k.as_str(), *v)));
        for (counter, acc) in figures.counters {
            counters.entry(counter).or_default().merge(&acc);
        }
    }
    counters
        .into_iter()
        .map(|(c, a)| (c, a.counter_kpis()))
        .collect()
}

/// The counters as CSV, one row per counter (`rows=counters`, an addition
/// to API.md).
pub fn counters_csv(days: &[(i64, HashMap<String, i64>)]) -> String {
    let mut out =
        String::from("counter,called,served,no_show,avg_service_s,idle_while_waiting_s\n");
    for (counter, k) in counter_figures(days) {
        out.push_str(&format!(
            "{counter},{},{},{},{},{}\n",
            k.called,
            k.served,
            k.no_show,
            k.avg_service_s.map(|v| v.to_string()).unwrap_or_default(),
            k.idle_while_waiting_s,
        ));
    }
    out
}

/// The hours as CSV, one row per hour and service.
pub fn report_csv(branch: &Branch, days: &[(i64, HashMap<String, i64>)]) -> String {
    let mut out = String::from(
        "hour,service,issued,called,served,no_show,transferred,avg_wait_s,p90_wait_s,max_wait_s,avg_service_s,sla_pct\n",
    );
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    for (start, service, acc) in hour_rows(branch, days) {
        let k = acc.kpis();
        out.push_str(&format!(
            "{},{service},{},{},{},{},{},{},{},{},{},{}\n",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            k.issued,
            k.called,
            k.served,
            k.no_show,
            k.transferred,
            opt(k.avg_wait_s),
            opt(k.p90_wait_s),
            opt(k.max_wait_s),
            opt(k.avg_service_s),
            k.sla_pct.map(|v| v.to_string()).unwrap_or_default(),
        ));
    }
    out
}

/// One alert of the summary.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    /// `too-many-waiting`, `wait-over-target`, `long-transaction`,
    /// `counter-idle`, `outbox-behind` or `stats-gap`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    pub message: String,
}

/// One branch of `GET /api/v1/stats/summary`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SummaryBranch {
    pub branch: String,
    /// The slave group serving it; null for the master group.
    pub group: Option<String>,
    pub issued: i64,
    pub served: i64,
    pub no_show: i64,
    pub waiting_now: u64,
    pub longest_wait_s: u64,
    pub sla_pct: Option<f64>,
    pub complete_through: Option<DateTime<Utc>>,
    pub last_report: Option<DateTime<Utc>>,
    pub alerts: Vec<Alert>,
}

/// What the summary reads of one branch.
pub struct LiveInput<'a> {
    /// Today's totals: metric (of `stats::TOTAL_METRICS`) → value.
    pub today: &'a HashMap<String, i64>,
    /// Service → (tickets waiting, issue ms of the oldest); services with
    /// none waiting may be left out.
    pub waiting: &'a HashMap<String, (u64, i64)>,
    /// counter → `<called ms>|<service>|<ticket>`.
    pub current: &'a HashMap<String, String>,
    pub complete_through_ms: Option<i64>,
    pub last_report_ms: Option<i64>,
    /// Oldest event not yet shipped and applied (this node's group's outbox).
    pub outbox_oldest_ms: Option<i64>,
    /// Events this store needed and no slave held any more (declared lost
    /// after a restore from an old backup): the figures miss them.
    pub lost_events: u64,
}

/// An outbox event older than this raises `outbox-behind`: statistics are
/// not reaching the master (or the local rollups), and nothing is dropped,
/// so the outbox grows until someone looks.
pub const OUTBOX_ALERT_S: u64 = 60;

/// The branch's summary line at `now_ms`.
pub fn summary_branch(branch: &Branch, live: &LiveInput<'_>, now_ms: i64) -> SummaryBranch {
    let today = totals_of(live.today.iter().map(|(k, v)| (k.as_str(), *v)));
    let waiting: HashMap<&str, (u64, i64)> = live
        .waiting
        .iter()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(service, slot)| (service.as_str(), *slot))
        .collect();
    let age_s = |since_ms: i64| ((now_ms - since_ms).max(0) / 1000) as u64;
    let longest = waiting.values().map(|(_, oldest)| age_s(*oldest)).max();
    let limits = &branch.alerts;
    let mut alerts = Vec::new();
    for (service, (count, oldest)) in &waiting {
        if *count > u64::from(limits.max_waiting) {
            alerts.push(Alert {
                kind: "too-many-waiting",
                service: Some((*service).to_owned()),
                counter: None,
                message: format!("{count} tickets waiting (limit {})", limits.max_waiting),
            });
        }
        if let Some(target) = branch.service(service).map(|s| s.target_wait_s) {
            if age_s(*oldest) > u64::from(target) {
                alerts.push(Alert {
                    kind: "wait-over-target",
                    service: Some((*service).to_owned()),
                    counter: None,
                    message: format!(
                        "oldest ticket waits {} s (target {target} s)",
                        age_s(*oldest)
                    ),
                });
            }
        }
    }
    if live.lost_events > 0 {
        alerts.push(Alert {
            kind: "stats-gap",
            service: None,
            counter: None,
            message: format!(
                "{} ticket events are missing from these figures: this store was restored from a backup older than the slave's outbox retention",
                live.lost_events
            ),
        });
    }
    if let Some(oldest) = live.outbox_oldest_ms.filter(|t| age_s(*t) > OUTBOX_ALERT_S) {
        alerts.push(Alert {
            kind: "outbox-behind",
            service: None,
            counter: None,
            message: format!("statistics not shipped for {} s", age_s(oldest)),
        });
    }
    for (counter, open) in live.current {
        let started = open.split('|').next().and_then(|s| s.parse::<i64>().ok());
        if let Some(started) = started.filter(|s| age_s(*s) > u64::from(limits.max_transaction_s)) {
            alerts.push(Alert {
                kind: "long-transaction",
                service: None,
                counter: Some(counter.clone()),
                message: format!(
                    "transaction running {} s (limit {} s)",
                    age_s(started),
                    limits.max_transaction_s
                ),
            });
        }
    }
    for counter in &branch.counters {
        if live.current.contains_key(counter.id.as_str()) {
            continue;
        }
        let neglected = counter.services.iter().find_map(|entry| {
            let (_, oldest) = waiting.get(entry.service.as_str())?;
            (age_s(*oldest) > u64::from(limits.counter_idle_s)).then_some(entry.service.as_str())
        });
        if let Some(service) = neglected {
            alerts.push(Alert {
                kind: "counter-idle",
                service: Some(service.to_owned()),
                counter: Some(counter.id.to_string()),
                message: format!(
                    "idle while {service} has a ticket waiting over {} s",
                    limits.counter_idle_s
                ),
            });
        }
    }
    SummaryBranch {
        branch: branch.id.to_string(),
        group: branch.group.as_ref().map(ToString::to_string),
        issued: today.issued,
        served: today.served,
        no_show: today.no_show,
        waiting_now: waiting.values().map(|(n, _)| n).sum(),
        longest_wait_s: longest.unwrap_or(0),
        sla_pct: today.kpis().sla_pct,
        complete_through: live.complete_through_ms.map(from_ms),
        last_report: live.last_report_ms.map(from_ms),
        alerts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Id;

    fn branch() -> Branch {
        serde_json::from_value(serde_json::json!({
            "id": "b1", "name": "B", "timezone": "Europe/Lisbon",
            "services": [{"id": "cash", "name": "Cash", "prefix": "C", "target_wait_s": 60, "first": 1, "last": 999}],
            "counters": [{"id": "c1", "name": "C1", "services": [{"service": "cash", "priority": 1}]},
                         {"id": "c2", "name": "C2", "services": [{"service": "cash", "priority": 1}]}],
            "alerts": {"max_waiting": 1, "max_transaction_s": 600, "counter_idle_s": 30}
        }))
        .expect("branch")
    }

    #[test]
    fn summary_raises_each_alert_from_live_figures() {
        let b = branch();
        let now = 1_800_000_000_000;
        let waiting = HashMap::from([("cash".to_owned(), (2, now - 90_000))]);
        let current = HashMap::from([("c1".to_owned(), format!("{}|cash|0", now - 700_000))]);
        let today = HashMap::from([("issued".to_owned(), 3), ("served".to_owned(), 1)]);
        let s = summary_branch(
            &b,
            &LiveInput {
                today: &today,
                waiting: &waiting,
                current: &current,
                complete_through_ms: Some(now - 500),
                last_report_ms: Some(now),
                outbox_oldest_ms: Some(now - 61_000),
                lost_events: 7,
            },
            now,
        );
        assert_eq!(
            (s.issued, s.served, s.waiting_now, s.longest_wait_s),
            (3, 1, 2, 90)
        );
        let mut kinds: Vec<_> = s.alerts.iter().map(|a| a.kind).collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "counter-idle",
                "long-transaction",
                "outbox-behind",
                "stats-gap",
                "too-many-waiting",
                "wait-over-target"
            ]
        );
        let idle = s
            .alerts
            .iter()
            .find(|a| a.kind == "counter-idle")
            .expect("idle");
        assert_eq!(
            idle.counter.as_deref(),
            Some("c2"),
            "c1 is busy, c2 is idle"
        );
        let gap = s.alerts.iter().find(|a| a.kind == "stats-gap");
        assert!(gap.is_some_and(|a| a.message.starts_with("7 ticket events")));
        assert_eq!(Id::parse("b1").expect("id"), b.id);
    }

    #[test]
    fn csv_has_one_row_per_hour_and_service() {
        let b = branch();
        let day = day_number(NaiveDate::from_ymd_opt(2026, 7, 1).expect("date"));
        let fields = HashMap::from([
            ("09|s|cash|issued".to_owned(), 2),
            ("10|s|cash|issued".to_owned(), 1),
            ("10|s|loans|issued".to_owned(), 4),
        ]);
        let csv = report_csv(&b, &[(day, fields.clone())]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        // 09:00 in Lisbon summer time is 08:00 UTC.
        assert!(
            lines[1].starts_with("2026-07-01T08:00:00Z,cash,2,"),
            "{csv}"
        );
        let report = branch_report(&b, day_date(day), day_date(day), &[(day, fields)], None);
        assert_eq!(report.total.issued, 7);
        assert_eq!(report.hours.len(), 2);
        assert_eq!(report.services["loans"].issued, 4);
    }
}
