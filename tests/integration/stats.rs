//! Statistics (issue 9): the apply script against the reference model,
//! the stats API on one node, and a master group with a slave group
//! shipping events through a faulty link.

mod api;
mod apply;
mod bench;
mod idle;
mod reconcile;
mod shipping;
