//! KPI arithmetic over rollup figures: the wait histogram and its p90, the
//! accumulator that sums rollup fields, and the figures API.md returns
//! (`K`: issued, called, served, no_show, transferred, avg/p90/max wait,
//! avg service time, SLA %).
//!
//! Pure: no I/O, no clock. [`super::stats`] decides which fields an event
//! adds to; this module only reads them back.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// Waits below this many seconds fall into 2-second buckets (p90 error at
/// most 1 s); above it buckets grow by [`GROWTH`] (error at most 4.5 %).
const LINEAR_LIMIT_S: f64 = 20.0;
const LINEAR_WIDTH_S: f64 = 2.0;
const LINEAR_BUCKETS: u16 = 10;
const GROWTH: f64 = 1.09;
/// 20 s × 1.09^190 is far beyond any wait; the last bucket takes the rest.
pub const MAX_BUCKET: u16 = 200;

/// The histogram bucket of a wait.
pub fn bucket_of(wait_ms: i64) -> u16 {
    let s = wait_ms.max(0) as f64 / 1000.0;
    if s < LINEAR_LIMIT_S {
        return (s / LINEAR_WIDTH_S) as u16;
    }
    let k = ((s / LINEAR_LIMIT_S).ln() / GROWTH.ln()).floor();
    // k >= 0 here; the cast saturates, the min bounds it.
    (LINEAR_BUCKETS + k as u16).min(MAX_BUCKET)
}

/// The value a bucket stands for: its midpoint, in seconds.
pub fn bucket_mid_s(bucket: u16) -> f64 {
    if bucket < LINEAR_BUCKETS {
        return f64::from(bucket) * LINEAR_WIDTH_S + LINEAR_WIDTH_S / 2.0;
    }
    let low = LINEAR_LIMIT_S * GROWTH.powi(i32::from(bucket - LINEAR_BUCKETS));
    (low + low * GROWTH) / 2.0
}

/// The nearest-rank 90th percentile of the waits a histogram counted, in
/// seconds, never above the largest wait seen; `None` when it is empty.
pub fn p90_s(histogram: &BTreeMap<u16, i64>, max_wait_ms: i64) -> Option<f64> {
    let total: i64 = histogram.values().sum();
    if total <= 0 {
        return None;
    }
    let rank = (total * 9 + 9) / 10;
    let mut seen = 0;
    for (bucket, count) in histogram {
        seen += count;
        if seen >= rank {
            return Some(bucket_mid_s(*bucket).min(max_wait_ms as f64 / 1000.0));
        }
    }
    None
}

/// Sums of rollup fields for one scope (a branch, a service, an hour…).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acc {
    pub issued: i64,
    pub called: i64,
    pub served: i64,
    pub no_show: i64,
    pub transferred: i64,
    pub closed: i64,
    pub wait_sum_ms: i64,
    pub wait_max_ms: i64,
    pub service_sum_ms: i64,
    /// Finished transactions: served, or ended by a transfer.
    pub service_n: i64,
    /// First calls within the service's target wait.
    pub sla: i64,
    pub histogram: BTreeMap<u16, i64>,
    /// A counter's idle time while its services had tickets waiting.
    pub idle_ms: i64,
}

impl Acc {
    /// Adds one rollup field (`issued`, `wait_max_ms`, `h12`, …); unknown
    /// names are ignored so older readers survive newer fields.
    pub fn add(&mut self, metric: &str, value: i64) {
        match metric {
            "issued" => self.issued += value,
            "called" => self.called += value,
            "served" => self.served += value,
            "no_show" => self.no_show += value,
            "transferred" => self.transferred += value,
            "closed" => self.closed += value,
            "wait_sum_ms" => self.wait_sum_ms += value,
            "wait_max_ms" => self.wait_max_ms = self.wait_max_ms.max(value),
            "service_sum_ms" => self.service_sum_ms += value,
            "service_n" => self.service_n += value,
            "sla" => self.sla += value,
            "idle_ms" => self.idle_ms += value,
            other => {
                if let Some(bucket) = other.strip_prefix('h').and_then(|b| b.parse().ok()) {
                    *self.histogram.entry(bucket).or_insert(0) += value;
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Acc) {
        self.issued += other.issued;
        self.called += other.called;
        self.served += other.served;
        self.no_show += other.no_show;
        self.transferred += other.transferred;
        self.closed += other.closed;
        self.wait_sum_ms += other.wait_sum_ms;
        self.wait_max_ms = self.wait_max_ms.max(other.wait_max_ms);
        self.service_sum_ms += other.service_sum_ms;
        self.service_n += other.service_n;
        self.sla += other.sla;
        self.idle_ms += other.idle_ms;
        for (bucket, count) in &other.histogram {
            *self.histogram.entry(*bucket).or_insert(0) += count;
        }
    }

    /// The figures API.md calls K.
    pub fn kpis(&self) -> Kpis {
        let ratio = |sum: i64, n: i64| (n > 0).then(|| round_s(sum as f64 / n as f64 / 1000.0));
        Kpis {
            issued: self.issued,
            called: self.called,
            served: self.served,
            no_show: self.no_show,
            transferred: self.transferred,
            avg_wait_s: ratio(self.wait_sum_ms, self.called),
            p90_wait_s: p90_s(&self.histogram, self.wait_max_ms).map(round_s),
            max_wait_s: (self.called > 0).then(|| round_s(self.wait_max_ms as f64 / 1000.0)),
            avg_service_s: ratio(self.service_sum_ms, self.service_n),
            sla_pct: (self.called > 0)
                .then(|| (self.sla as f64 * 1000.0 / self.called as f64).round() / 10.0),
        }
    }
}

/// Whole seconds (API.md: durations in whole seconds).
fn round_s(seconds: f64) -> u64 {
    seconds.max(0.0).round() as u64
}

/// API.md's K. A figure that has nothing to average over (no call yet) is
/// null rather than a misleading 0.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Kpis {
    pub issued: i64,
    /// First calls (a recall, or a call after a transfer, is not another).
    pub called: i64,
    pub served: i64,
    pub no_show: i64,
    pub transferred: i64,
    pub avg_wait_s: Option<u64>,
    pub p90_wait_s: Option<u64>,
    pub max_wait_s: Option<u64>,
    /// Per transaction: call → finish, or call → transfer.
    pub avg_service_s: Option<u64>,
    /// Share of first calls within the service's target wait, 0–100.
    pub sla_pct: Option<f64>,
}

/// Per counter figures of API.md.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CounterKpis {
    /// Every call made at the counter (including calls of transferred tickets).
    pub called: i64,
    pub served: i64,
    pub no_show: i64,
    pub avg_service_s: Option<u64>,
    /// Seconds the counter stood free while a ticket of its services was
    /// waiting (`domain::counter_idle`; an addition to API.md).
    pub idle_while_waiting_s: u64,
}

impl Acc {
    pub fn counter_kpis(&self) -> CounterKpis {
        let k = self.kpis();
        CounterKpis {
            called: self.called,
            served: self.served,
            no_show: self.no_show,
            avg_service_s: k.avg_service_s,
            idle_while_waiting_s: round_s(self.idle_ms as f64 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_monotonic_and_their_midpoints_close() {
        let mut last = 0;
        for ms in (0..3_600_000).step_by(250) {
            let b = bucket_of(ms);
            assert!(b >= last, "bucket of {ms} went down");
            last = b;
            let err = (bucket_mid_s(b) - ms as f64 / 1000.0).abs();
            assert!(
                err <= 1.0 || err <= 0.05 * ms as f64 / 1000.0,
                "{ms} ms → bucket {b}, midpoint {}",
                bucket_mid_s(b)
            );
        }
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(i64::MAX), MAX_BUCKET);
    }

    #[test]
    fn kpis_of_a_crafted_day() {
        let mut acc = Acc::default();
        for (metric, value) in [
            ("issued", 4),
            ("called", 3),
            ("wait_sum_ms", 30_000 + 60_000 + 900_000),
            ("wait_max_ms", 60_000),
            ("wait_max_ms", 900_000),
            ("sla", 2),
            ("served", 2),
            ("service_sum_ms", 200_000),
            ("service_n", 2),
            ("no_show", 1),
        ] {
            acc.add(metric, value);
        }
        for wait_ms in [30_000, 60_000, 900_000] {
            acc.add(&format!("h{}", bucket_of(wait_ms)), 1);
        }
        let k = acc.kpis();
        assert_eq!(k.avg_wait_s, Some(330));
        assert_eq!(k.max_wait_s, Some(900));
        assert_eq!(k.avg_service_s, Some(100));
        assert_eq!(k.sla_pct, Some(66.7));
        let p90 = k.p90_wait_s.expect("three waits") as f64;
        assert!((p90 - 900.0).abs() <= 45.0, "p90 {p90}");
        assert_eq!(Acc::default().kpis().avg_wait_s, None);
    }

    proptest! {
        /// The histogram's p90 is within 5 % or 1 s of the exact
        /// nearest-rank p90 (API.md).
        #[test]
        fn p90_error_is_bounded(waits in proptest::collection::vec(0i64..20_000_000, 1..300)) {
            let mut histogram = BTreeMap::new();
            for w in &waits {
                *histogram.entry(bucket_of(*w)).or_insert(0) += 1;
            }
            let mut sorted = waits.clone();
            sorted.sort_unstable();
            let rank = (sorted.len() * 9).div_ceil(10);
            let exact = sorted[rank - 1] as f64 / 1000.0;
            let max = *sorted.last().expect("non-empty");
            let got = p90_s(&histogram, max).expect("non-empty");
            let err = (got - exact).abs();
            prop_assert!(err <= 1.0 || err <= 0.05 * exact, "exact {exact}, got {got}");
        }

        /// Merging accumulators is the same as adding every field to one.
        #[test]
        fn merge_is_addition(a in proptest::collection::vec((0usize..6, 0i64..10_000), 0..50),
                             b in proptest::collection::vec((0usize..6, 0i64..10_000), 0..50)) {
            let names = ["issued", "called", "wait_max_ms", "service_sum_ms", "h3", "sla"];
            let (mut x, mut y, mut both) = (Acc::default(), Acc::default(), Acc::default());
            for (i, v) in &a { x.add(names[*i], *v); both.add(names[*i], *v); }
            for (i, v) in &b { y.add(names[*i], *v); both.add(names[*i], *v); }
            x.merge(&y);
            prop_assert_eq!(x, both);
        }
    }
}
