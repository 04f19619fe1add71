//! Configuration documents: branches with their services, counters and
//! matrix rows, as the administration API edits them and every node serves them.
//!
//! A branch is stored as one document, so a change to it is one atomic swap.
//! The `*Input` types are the request bodies of API.md; they are validated
//! here and turned into the stored types, never stored themselves.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::media::{Player, PlayerInput};
use super::{DomainError, Id};

/// Service number ranges wrap within `first..=last`; six digits is plenty.
pub const MAX_NUMBER: u32 = 999_999;
const MAX_NAME_CHARS: usize = 200;
const MAX_ROW_ENTRIES: usize = 64;
const DEFAULT_TARGET_WAIT_S: u32 = 600;

/// One branch: a site with kiosks, counters and displays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Branch {
    #[schema(value_type = String, example = "main")]
    pub id: Id,
    pub name: String,
    /// IANA time zone; business days and local closing times follow it.
    #[schema(example = "Europe/Lisbon")]
    pub timezone: String,
    /// The slave group that serves the branch; absent means the master group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub group: Option<Id>,
    /// Sorted by id.
    #[serde(default)]
    pub services: Vec<Service>,
    /// Sorted by id.
    #[serde(default)]
    pub counters: Vec<Counter>,
    /// Local time (HH:MM or HH:MM:SS) at which the business day closes:
    /// tickets issued before it and still waiting or called are closed.
    #[serde(default = "default_close_time")]
    #[schema(example = "00:00")]
    pub close_time: String,
    /// Media player profiles, sorted by id.
    #[serde(default)]
    pub players: Vec<Player>,
    /// Thresholds of the alerts in `GET /api/v1/stats/summary`.
    #[serde(default)]
    pub alerts: AlertThresholds,
}

/// When the statistics summary raises an alert for a branch (besides a
/// waiting ticket over its service's `target_wait_s`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertThresholds {
    /// More tickets than this waiting in one service.
    pub max_waiting: u32,
    /// A transaction (call → finish) running longer than this.
    pub max_transaction_s: u32,
    /// A counter without a ticket while one of its services has had a
    /// ticket waiting longer than this.
    pub counter_idle_s: u32,
}

impl Default for AlertThresholds {
    fn default() -> Self {
        AlertThresholds {
            max_waiting: 20,
            max_transaction_s: 1800,
            counter_idle_s: 120,
        }
    }
}

fn default_close_time() -> String {
    "00:00".to_owned()
}

/// A service customers queue for ("Loans", "Cash").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Service {
    #[schema(value_type = String)]
    pub id: Id,
    pub name: String,
    /// One or two capital letters in front of the ticket number.
    pub prefix: String,
    /// The waiting time the branch promises; waits within it count towards SLA.
    pub target_wait_s: u32,
    pub first: u32,
    pub last: u32,
}

/// A counter (desk, room) and its matrix row: which services it calls, in
/// which priority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Counter {
    #[schema(value_type = String)]
    pub id: Id,
    pub name: String,
    pub services: Vec<MatrixEntry>,
}

/// One cell of a counter's matrix row; a smaller `priority` is called first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatrixEntry {
    #[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9-]{0,62}$")]
    pub service: Id,
    pub priority: u32,
}

/// Body of `PUT /api/v1/admin/branches/{branch}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BranchInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// An IANA time zone (the document lists them).
    #[serde(default = "default_timezone")]
    #[schema(example = "Europe/Lisbon")]
    pub timezone: String,
    /// The slave group that serves the branch; empty or absent: the master group.
    #[serde(default)]
    #[schema(pattern = "^([a-z0-9][a-z0-9-]{0,62})?$")]
    pub group: Option<String>,
    /// HH:MM or HH:MM:SS in the branch's time zone; default 00:00.
    #[serde(default)]
    #[schema(
        pattern = "^([01]?[0-9]|2[0-3]):[0-5]?[0-9](:([0-5]?[0-9]|60))?$",
        example = "18:30"
    )]
    pub close_time: Option<String>,
    /// Alert thresholds; defaults when absent.
    #[serde(default)]
    pub alerts: Option<AlertThresholds>,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// Body of `PUT /api/v1/admin/branches/{branch}/services/{service}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(pattern = "^[A-Z]{1,2}$", example = "A")]
    pub prefix: String,
    /// Default 600.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub target_wait_s: Option<u32>,
    /// Default 1; at most `last`.
    #[serde(default)]
    #[schema(maximum = 999999)]
    pub first: Option<u32>,
    /// Default 999.
    #[serde(default)]
    #[schema(maximum = 999999)]
    pub last: Option<u32>,
}

/// Body of `PUT /api/v1/admin/branches/{branch}/counters/{counter}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    /// The matrix row: each service of the branch at most once.
    #[serde(default)]
    #[schema(max_items = 64)]
    pub services: Vec<MatrixEntry>,
}

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

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
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
            super::close::parse_close_time(&close_time).is_some(),
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

    /// The branch's time zone. Documents are validated on the way in, so a
    /// stored zone always parses; UTC is the safe reading of a corrupt one.
    pub fn tz(&self) -> Tz {
        parse_timezone(&self.timezone).unwrap_or(Tz::UTC)
    }

    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id.as_str() == id)
    }

    pub fn counter(&self, id: &str) -> Option<&Counter> {
        self.counters.iter().find(|c| c.id.as_str() == id)
    }

    /// Counters whose matrix row contains `service`.
    pub fn counters_serving<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Id> + 'a {
        self.counters
            .iter()
            .filter(move |c| c.services.iter().any(|e| e.service.as_str() == service))
            .map(|c| &c.id)
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
        let before = self.services.len();
        self.services.retain(|s| s.id.as_str() != id);
        if self.services.len() == before {
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
        let before = self.counters.len();
        self.counters.retain(|c| c.id.as_str() != id);
        self.counters.len() != before
    }

    pub fn player(&self, id: &str) -> Option<&Player> {
        self.players.iter().find(|p| p.id.as_str() == id)
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
        let before = self.players.len();
        self.players.retain(|p| p.id.as_str() != id);
        self.players.len() != before
    }

    /// Whether a node of `group` (the master group when `is_master`) serves
    /// this branch's tickets.
    pub fn served_by(&self, group: &Id, is_master: bool) -> bool {
        match &self.group {
            None => is_master,
            Some(g) => g == group,
        }
    }
}

/// Inserts or replaces by id, keeping the list sorted by id.
fn upsert<T>(items: &mut Vec<T>, item: T, id: impl Fn(&T) -> &Id) {
    match items.binary_search_by(|probe| id(probe).cmp(id(&item))) {
        Ok(at) => items[at] = item,
        Err(at) => items.insert(at, item),
    }
}

/// The configuration as one node sees it at one version.
#[derive(Debug, Clone, Default)]
pub struct ConfigSnapshot {
    /// The organisation-wide configuration version; 0 before any write.
    pub version: u64,
    pub branches: BTreeMap<Id, Arc<Branch>>,
    /// Slave group → the version at which its branches last changed, as far
    /// as this node has seen (see [`ConfigSnapshot::track_group_changes`]).
    pub group_changed_at: BTreeMap<Id, u64>,
}

impl ConfigSnapshot {
    /// The branches whose tickets a node of `group` serves (the master
    /// group's when `is_master`): the one place that answers "which branches
    /// does this node serve" (see [`Branch::served_by`]).
    pub fn served_by<'a>(
        &'a self,
        group: &'a Id,
        is_master: bool,
    ) -> impl Iterator<Item = &'a Arc<Branch>> + 'a {
        self.branches
            .values()
            .filter(move |b| b.served_by(group, is_master))
    }

    /// The branches a slave group serves.
    pub fn group_branches<'a>(
        &'a self,
        group: &'a Id,
    ) -> impl Iterator<Item = &'a Arc<Branch>> + 'a {
        self.branches
            .values()
            .filter(move |b| b.group.as_ref() == Some(group))
    }

    /// Carries the per-group change versions over from `previous`, marking
    /// every slave group whose branches differ (or all of them, without a
    /// previous snapshot) as changed at this version. The master's long-poll
    /// uses it to wake only the groups a change concerns.
    pub fn track_group_changes(&mut self, previous: Option<&ConfigSnapshot>) {
        let mut groups: std::collections::BTreeSet<Id> = self
            .branches
            .values()
            .filter_map(|b| b.group.clone())
            .collect();
        if let Some(p) = previous {
            groups.extend(p.branches.values().filter_map(|b| b.group.clone()));
            self.group_changed_at = p.group_changed_at.clone();
        }
        for group in groups {
            let changed = match previous {
                None => true,
                Some(p) => !self.group_branches(&group).eq(p.group_branches(&group)),
            };
            if changed {
                self.group_changed_at.insert(group, self.version);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::parse(s).expect("test id")
    }

    fn branch() -> Branch {
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
    fn group_changes_are_tracked_per_group() {
        let mut north = branch();
        north.group = Some(id("north"));
        let snapshot = |version: u64, branches: Vec<Branch>| ConfigSnapshot {
            version,
            branches: branches
                .into_iter()
                .map(|b| (b.id.clone(), Arc::new(b)))
                .collect(),
            group_changed_at: BTreeMap::new(),
        };
        let mut first = snapshot(3, vec![north.clone()]);
        first.track_group_changes(None);
        assert_eq!(first.group_changed_at.get("north"), Some(&3));

        // A change elsewhere leaves the north group's version alone.
        let mut elsewhere = branch();
        elsewhere.id = id("other");
        let mut second = snapshot(4, vec![north.clone(), elsewhere]);
        second.track_group_changes(Some(&first));
        assert_eq!(second.group_changed_at.get("north"), Some(&3));

        // Moving the branch out of the group is a change of the group.
        let mut moved = north.clone();
        moved.group = Some(id("south"));
        let mut third = snapshot(5, vec![moved]);
        third.track_group_changes(Some(&second));
        assert_eq!(third.group_changed_at.get("north"), Some(&5));
        assert_eq!(third.group_changed_at.get("south"), Some(&5));
    }

    #[test]
    fn lists_stay_sorted_by_id() {
        let b = branch();
        let ids: Vec<_> = b.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["cash", "loans"]);
    }
}
