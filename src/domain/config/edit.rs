//! Editing a branch: each `*Input` body validated (every problem reported
//! at once) and turned into the stored types, and removal of services,
//! counters and player profiles. Lists stay sorted by id. It owns no types
//! of its own besides the problem collector, and never reads a snapshot.

use super::{
    default_close_time, parse_timezone, AlertThresholds, Branch, BranchInput, Counter,
    CounterInput, Service, ServiceInput, MAX_NUMBER,
};
use crate::domain::media::{Player, PlayerInput};
use crate::domain::{DomainError, Id};

const MAX_NAME_CHARS: usize = 200;
const MAX_ROW_ENTRIES: usize = 64;
const DEFAULT_TARGET_WAIT_S: u32 = 600;

/// Collects every problem of one document, so a client sees them all at once.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.0.push(problem());
        }
    }

    fn name(&mut self, name: &str) {
        let chars = name.chars().count();
        self.check(!name.trim().is_empty() && chars <= MAX_NAME_CHARS, || {
            format!("name: must be 1 to {MAX_NAME_CHARS} characters and not blank")
        });
        self.check(!name.chars().any(char::is_control), || {
            "name: must not contain control characters".to_owned()
        });
    }

    fn finish(self) -> Result<(), DomainError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid { problems: self.0 })
        }
    }
}

impl Branch {
    /// Builds a new, empty branch from its body.
    pub fn create(id: Id, input: BranchInput) -> Result<Branch, DomainError> {
        let mut branch = Branch {
            id,
            name: String::new(),
            timezone: String::new(),
            group: None,
            services: Vec::new(),
            counters: Vec::new(),
            close_time: default_close_time(),
            players: Vec::new(),
            alerts: AlertThresholds::default(),
        };
        branch.replace_meta(input)?;
        Ok(branch)
    }

    /// Replaces name, time zone and group; services and counters stay.
    pub fn replace_meta(&mut self, input: BranchInput) -> Result<(), DomainError> {
        let mut problems = Problems::default();
        problems.name(&input.name);
        problems.check(parse_timezone(&input.timezone).is_some(), || {
            format!(
                "timezone: {:?} is not an IANA time zone such as Europe/Lisbon",
                input.timezone
            )
        });
        let group = match input.group.as_deref() {
            None | Some("") => None,
            Some(g) => match Id::parse(g) {
                Ok(id) => Some(id),
                Err(e) => {
                    problems.0.push(format!("group: {e}"));
                    None
                }
            },
        };
        let close_time = input.close_time.unwrap_or_else(default_close_time);
        problems.check(
            crate::domain::close::parse_close_time(&close_time).is_some(),
            || format!("close_time: {close_time:?} is not a time such as 18:30 or 18:30:00"),
        );
        if let Some(alerts) = &input.alerts {
            problems.check(
                alerts.max_waiting > 0 && alerts.max_transaction_s > 0 && alerts.counter_idle_s > 0,
                || "alerts: every threshold must be above 0".to_owned(),
            );
        }
        problems.finish()?;
        self.name = input.name;
        self.timezone = input.timezone;
        self.group = group;
        self.close_time = close_time;
        if let Some(alerts) = input.alerts {
            self.alerts = alerts;
        }
        Ok(())
    }

    /// Creates or replaces a service.
    pub fn put_service(&mut self, id: Id, input: ServiceInput) -> Result<(), DomainError> {
        let first = input.first.unwrap_or(1);
        let last = input.last.unwrap_or(999);
        let target_wait_s = input.target_wait_s.unwrap_or(DEFAULT_TARGET_WAIT_S);
        let mut problems = Problems::default();
        problems.name(&input.name);
        let prefix_ok = (1..=2).contains(&input.prefix.len())
            && input.prefix.bytes().all(|b| b.is_ascii_uppercase());
        problems.check(prefix_ok, || {
            "prefix: must be 1 or 2 capital letters A-Z".to_owned()
        });
        problems.check(first <= last, || {
            format!("first: {first} must not be above last ({last})")
        });
        problems.check(last <= MAX_NUMBER, || {
            format!("last: must be at most {MAX_NUMBER}")
        });
        problems.check((1..=86_400).contains(&target_wait_s), || {
            "target_wait_s: must be 1 to 86400".to_owned()
        });
        problems.finish()?;
        let service = Service {
            id,
            name: input.name,
            prefix: input.prefix,
            target_wait_s,
            first,
            last,
        };
        upsert(&mut self.services, service, |s| &s.id);
        Ok(())
    }

    /// Removes a service and its cells in every counter's row. Returns false
    /// when there was no such service.
    pub fn remove_service(&mut self, id: &str) -> bool {
        if !remove(&mut self.services, id, |s| &s.id) {
            return false;
        }
        for counter in &mut self.counters {
            counter.services.retain(|e| e.service.as_str() != id);
        }
        true
    }

    /// Creates or replaces a counter and its matrix row.
    pub fn put_counter(&mut self, id: Id, input: CounterInput) -> Result<(), DomainError> {
        if let Some(unknown) = input
            .services
            .iter()
            .find(|e| self.service(e.service.as_str()).is_none())
        {
            return Err(DomainError::UnknownServiceInRow {
                service: unknown.service.to_string(),
            });
        }
        let mut problems = Problems::default();
        problems.name(&input.name);
        problems.check(input.services.len() <= MAX_ROW_ENTRIES, || {
            format!("services: at most {MAX_ROW_ENTRIES} entries")
        });
        let mut seen = std::collections::BTreeSet::new();
        for entry in &input.services {
            problems.check(seen.insert(entry.service.as_str()), || {
                format!("services: {} appears more than once", entry.service)
            });
        }
        problems.finish()?;
        let counter = Counter {
            id,
            name: input.name,
            services: input.services,
        };
        upsert(&mut self.counters, counter, |c| &c.id);
        Ok(())
    }

    /// Removes a counter. Returns false when there was no such counter.
    pub fn remove_counter(&mut self, id: &str) -> bool {
        remove(&mut self.counters, id, |c| &c.id)
    }

    /// Creates or replaces a media player profile.
    pub fn put_player(&mut self, id: Id, input: PlayerInput) -> Result<(), DomainError> {
        let mut problems = Problems::default();
        problems.name(&input.name);
        problems.0.extend(input.problems());
        problems.finish()?;
        let player = Player {
            id,
            name: input.name,
            playlist: input.playlist,
        };
        upsert(&mut self.players, player, |p| &p.id);
        Ok(())
    }

    /// Removes a player profile. Returns false when there was no such player.
    pub fn remove_player(&mut self, id: &str) -> bool {
        remove(&mut self.players, id, |p| &p.id)
    }
}

/// Inserts or replaces by id, keeping the list sorted by id.
fn upsert<T>(items: &mut Vec<T>, item: T, id: impl Fn(&T) -> &Id) {
    match items.binary_search_by(|probe| id(probe).cmp(id(&item))) {
        Ok(at) => items[at] = item,
        Err(at) => items.insert(at, item),
    }
}

/// Removes the item with `id`; false when there was none.
fn remove<T>(items: &mut Vec<T>, id: &str, item_id: impl Fn(&T) -> &Id) -> bool {
    let before = items.len();
    items.retain(|item| item_id(item).as_str() != id);
    items.len() != before
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::config::MatrixEntry;

    pub(in crate::domain::config) fn id(s: &str) -> Id {
        Id::parse(s).expect("test id")
    }

    pub(in crate::domain::config) fn branch() -> Branch {
        let mut b = Branch::create(
            id("main"),
            BranchInput {
                name: "Main".into(),
                timezone: "Europe/Lisbon".into(),
                group: None,
                close_time: None,
                alerts: None,
            },
        )
        .expect("valid branch");
        for (s, p) in [("loans", "L"), ("cash", "C")] {
            b.put_service(
                id(s),
                ServiceInput {
                    name: s.into(),
                    prefix: p.into(),
                    target_wait_s: None,
                    first: None,
                    last: None,
                },
            )
            .expect("valid service");
        }
        b
    }

    #[test]
    fn branch_validation_reports_every_problem() {
        let err = Branch::create(
            id("x"),
            BranchInput {
                name: " ".into(),
                timezone: "Mars/Olympus".into(),
                group: Some("Bad Group".into()),
                close_time: Some("25:00".into()),
                alerts: None,
            },
        )
        .expect_err("invalid");
        let DomainError::Invalid { problems } = err else {
            panic!("expected Invalid")
        };
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn service_validation() {
        let mut b = branch();
        let bad = |prefix: &str, first, last| ServiceInput {
            name: "n".into(),
            prefix: prefix.into(),
            target_wait_s: Some(60),
            first,
            last,
        };
        assert!(b.put_service(id("a"), bad("a", None, None)).is_err());
        assert!(b.put_service(id("a"), bad("ABC", None, None)).is_err());
        assert!(b.put_service(id("a"), bad("", None, None)).is_err());
        assert!(b.put_service(id("a"), bad("A", Some(10), Some(9))).is_err());
        assert!(b
            .put_service(id("a"), bad("A", None, Some(1_000_000)))
            .is_err());
        assert!(b.put_service(id("a"), bad("AB", Some(0), Some(99))).is_ok());
        assert_eq!(b.service("a").map(|s| (s.first, s.last)), Some((0, 99)));
    }

    #[test]
    fn counters_reject_unknown_and_duplicate_services() {
        let mut b = branch();
        let row = |entries: &[(&str, u32)]| CounterInput {
            name: "Counter".into(),
            services: entries
                .iter()
                .map(|(s, p)| MatrixEntry {
                    service: id(s),
                    priority: *p,
                })
                .collect(),
        };
        assert_eq!(
            b.put_counter(id("c1"), row(&[("nope", 1)])),
            Err(DomainError::UnknownServiceInRow {
                service: "nope".into()
            })
        );
        assert!(b
            .put_counter(id("c1"), row(&[("loans", 1), ("loans", 2)]))
            .is_err());
        b.put_counter(id("c1"), row(&[("loans", 1), ("cash", 2)]))
            .expect("valid row");
        assert_eq!(b.counters_serving("cash").count(), 1);
    }

    #[test]
    fn removing_a_service_removes_its_matrix_cells() {
        let mut b = branch();
        b.put_counter(
            id("c1"),
            CounterInput {
                name: "c".into(),
                services: vec![MatrixEntry {
                    service: id("cash"),
                    priority: 1,
                }],
            },
        )
        .expect("valid");
        assert!(b.remove_service("cash"));
        assert!(!b.remove_service("cash"));
        assert!(b.counter("c1").expect("counter").services.is_empty());
    }

    #[test]
    fn lists_stay_sorted_by_id() {
        let b = branch();
        let ids: Vec<_> = b.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["cash", "loans"]);
    }
}
