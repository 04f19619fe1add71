//! The request bodies of the configuration API (API.md): what a client
//! sends to create or replace a branch, a service or a counter. They are
//! validated and turned into the stored types by `edit`, never stored.

use serde::Deserialize;
use utoipa::ToSchema;

use super::{AlertThresholds, MatrixEntry};

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
