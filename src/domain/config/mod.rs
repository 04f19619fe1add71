//! Configuration documents: branches with their services, counters and
//! matrix rows, as the administration API edits them and every node serves them.
//!
//! A branch is stored as one document, so a change to it is one atomic swap.
//! This file owns the stored types and the read-only questions asked of a
//! branch. Its children own the rest and re-export through here:
//!
//! - `input`: the `*Input` request bodies of API.md;
//! - `edit`: validating those bodies and turning them into the stored types
//!   (create, put, remove); the bodies are never stored themselves;
//! - `snapshot`: the whole configuration as one node sees it at one version.

mod edit;
mod input;
mod snapshot;

pub use input::{BranchInput, CounterInput, ServiceInput};
pub use snapshot::ConfigSnapshot;

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::media::Player;
use super::Id;

/// Service number ranges wrap within `first..=last`; six digits is plenty.
pub const MAX_NUMBER: u32 = 999_999;

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

/// Parses an IANA time zone name.
pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

impl Branch {
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

    pub fn player(&self, id: &str) -> Option<&Player> {
        self.players.iter().find(|p| p.id.as_str() == id)
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
