//! turnus: a queue management server.
//!
//! Kiosks issue numbered tickets, counters call them, displays show who goes
//! where, and a central office administers every branch. Layout, bottom-up:
//!
//! - [`domain`]: pure rules (identifiers, configuration documents, numbering,
//!   matrix, estimates); no I/O.
//! - [`store`]: the only code that speaks Redis: key names, Lua scripts,
//!   the embedded `redis-server`.
//! - [`actors`]: actix actors that front the store: ticket queues, the
//!   configuration view, the event hub.
//! - [`blobs`]: media file I/O: the master's library, a slave's blob store.
//! - [`http`]: actix-web handlers, auth, errors, OpenAPI.
//! - [`web`]: the pages people look at (kiosk, counter, display, player,
//!   dashboard, the customer's ticket), embedded and served by every node.
//! - [`settings`]: typed node configuration.
//! - [`app`]: wiring it all into an [`app::Application`].
//! - [`upstream`]: the HTTP client a slave group uses to reach its master
//!   group (the server side of that protocol is `http::mirror`).
//! - [`metrics`], [`demo`]: Prometheus metrics; configuration import.
//! - [`stall`]: notices when the process itself was stalled, so requests
//!   that waited in socket buffers meanwhile are not taken for fresh ones.
//! - [`store_command`]: `turnus store adopt`, which asks a node to adopt
//!   its group's store after data loss.
//! - [`logging`]: the binary's log setup (malformed requests counted, not logged).

pub mod actors;
pub mod app;
pub mod blobs;
pub mod demo;
pub mod domain;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod settings;
pub mod stall;
pub mod store;
pub mod store_command;
pub mod upstream;
pub mod web;
