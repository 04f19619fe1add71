//! Pure business rules of a queue management system.
//!
//! This module owns identifiers, the configuration documents (branches,
//! services, counters and their matrix rows), ticket numbering and business
//! days, the matrix rule, the waiting-time estimate, the keys of customers'
//! ticket links, the statistics rollups and KPIs, and media paths, manifests
//! and playlists. It does no I/O and
//! never reads a clock: every instant is passed in. It must not import actix,
//! redis or tokio, so all of it is tested without a running server.

pub mod close;
pub mod config;
pub mod counter_idle;
pub mod estimate;
pub mod ids;
pub mod kpi;
pub mod link;
pub mod matrix;
pub mod media;
pub mod request;
pub mod stats;
pub mod stats_fold;
pub mod stats_report;
pub mod ticket;

pub use config::{Branch, Counter, MatrixEntry, Service};
pub use ids::Id;
pub use request::{IdempotencyKey, RequestTag};
pub use ticket::{
    CalledEntry, DisplayBoard, EventKind, QueueStatus, Ticket, TicketEvent, TicketStatus,
};

/// A rule of the domain was broken by the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An identifier does not match `^[a-z0-9][a-z0-9-]{0,62}$`.
    #[error("invalid identifier {value:?}: use 1 to 63 lower-case letters, digits and '-', starting with a letter or digit")]
    InvalidId { value: String },
    /// A document failed validation; each entry names the field and the problem.
    #[error("{}", .problems.join("; "))]
    Invalid { problems: Vec<String> },
    /// A counter's matrix row names a service the branch does not have.
    #[error("unknown service {service:?} in the counter's services")]
    UnknownServiceInRow { service: String },
    /// A media path that could leave the library or is otherwise unusable.
    #[error("invalid media path {path:?}: {reason}")]
    InvalidMediaPath { path: String, reason: String },
}
