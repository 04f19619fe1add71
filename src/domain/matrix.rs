//! The matrix rule: which waiting ticket a counter calls next.
//!
//! A counter's row lists services with priorities. `call` looks at the
//! services in the row that have waiting tickets, takes the smallest priority
//! number, and within it the ticket that has waited longest (equal issue
//! times: the earlier service in the ordered row). The `call` Lua script
//! applies this rule atomically in Redis (pick and remove in one script);
//! [`choose`] is its reference model, which the differential tests
//! (`tests/integration/rules.rs`) hold the script to, and [`ordered_row`] is
//! production code: the order the script receives the row in.

use super::{Id, MatrixEntry};

/// The row sorted by priority; entries of equal priority keep their order.
pub fn ordered_row(row: &[MatrixEntry]) -> Vec<MatrixEntry> {
    let mut ordered = row.to_vec();
    ordered.sort_by_key(|e| e.priority);
    ordered
}

/// The service whose head ticket the counter calls: `oldest(service)` is the
/// issue time of the oldest waiting ticket of a service, `None` when empty.
pub fn choose(row: &[MatrixEntry], oldest: impl Fn(&Id) -> Option<i64>) -> Option<&Id> {
    let mut best: Option<(u32, i64, &Id)> = None;
    for entry in row {
        let Some(issued) = oldest(&entry.service) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((priority, oldest_seen, _)) => {
                entry.priority < priority || (entry.priority == priority && issued < oldest_seen)
            }
        };
        if better {
            best = Some((entry.priority, issued, &entry.service));
        }
    }
    best.map(|(_, _, service)| service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn row(entries: &[(&str, u32)]) -> Vec<MatrixEntry> {
        entries
            .iter()
            .map(|(s, p)| MatrixEntry {
                service: Id::parse(s).expect("id"),
                priority: *p,
            })
            .collect()
    }

    /// (row, oldest waiting per service, expected)
    type Case = (
        &'static [(&'static str, u32)],
        &'static [(&'static str, i64)],
        Option<&'static str>,
    );

    #[test]
    fn table() {
        let cases: &[Case] = &[
            (
                &[("loans", 1), ("cash", 2)],
                &[("loans", 50), ("cash", 10)],
                Some("loans"),
            ),
            (&[("loans", 1), ("cash", 2)], &[("cash", 10)], Some("cash")),
            (
                &[("loans", 1), ("cash", 1)],
                &[("loans", 50), ("cash", 10)],
                Some("cash"),
            ),
            (
                &[("loans", 2), ("cash", 1)],
                &[("loans", 5), ("cash", 10)],
                Some("cash"),
            ),
            (&[("loans", 1)], &[("cash", 10)], None),
            (&[], &[("cash", 10)], None),
        ];
        for (entries, heads, expected) in cases {
            let heads: HashMap<&str, i64> = heads.iter().copied().collect();
            let r = row(entries);
            let got = choose(&r, |s| heads.get(s.as_str()).copied());
            assert_eq!(
                got.map(Id::as_str),
                *expected,
                "row {entries:?} heads {heads:?}"
            );
        }
    }

    proptest! {
        /// The chosen service has the smallest priority among non-empty
        /// services, and the oldest head among those of that priority.
        #[test]
        fn choice_obeys_the_rule(
            cells in proptest::collection::vec((0u32..4, proptest::option::of(0i64..100)), 0..8)
        ) {
            let names: Vec<String> = (0..cells.len()).map(|i| format!("s{i}")).collect();
            let r: Vec<MatrixEntry> = cells.iter().enumerate().map(|(i, (p, _))| MatrixEntry {
                service: Id::parse(&names[i]).expect("id"), priority: *p }).collect();
            let heads: HashMap<String, i64> = cells.iter().enumerate()
                .filter_map(|(i, (_, h))| h.map(|h| (names[i].clone(), h))).collect();
            let got = choose(&r, |s| heads.get(s.as_str()).copied());
            let candidates: Vec<(u32, i64)> = r.iter()
                .filter_map(|e| heads.get(e.service.as_str()).map(|h| (e.priority, *h))).collect();
            match got {
                None => prop_assert!(candidates.is_empty()),
                Some(s) => {
                    let p = r.iter().find(|e| &e.service == s).expect("in row").priority;
                    let h = heads[s.as_str()];
                    prop_assert!(candidates.iter().all(|(cp, ch)| p < *cp || (p == *cp && h <= *ch)));
                }
            }
            let ordered = ordered_row(&r);
            prop_assert!(ordered.windows(2).all(|w| w[0].priority <= w[1].priority));
        }
    }
}
