//! The integration test binary: every test that talks to a running node.
//!
//! - `support`: the harness (a private `redis-server`, the in-process app,
//!   the real binary as a child process, a TCP fault proxy, an API client).
//! - `api`: the HTTP contract of API.md on the happy paths.
//! - `errors`: every error status and code, and that the node keeps serving.
//! - `readiness`: `/readyz` following Redis down and back up.
//! - `rules`: differential property tests of the Lua-held rules against
//!   their Rust reference models (numbering, business day, matrix, average).
//! - `concurrency`: two nodes, many kiosks and counters on one Redis.
//! - `durability`: an acknowledged ticket survives SIGKILL of the node.
//! - `replication`: durability `replicated` with a real replica (`WAIT`).
//! - `retries`: `Idempotency-Key` on ticket and counter POSTs, across nodes.
//! - `edge`: the audit's findings about the HTTP edge and the process
//!   (issue 8): limits, methods, auth headers, OpenAPI against answers,
//!   metrics format, configuration errors, port in use, event streams.
//! - `lifecycle`: SIGTERM, SIGSTOP and SIGCONT of a node process.
//! - `cluster`: a group of three nodes: one leader, failover on SIGKILL,
//!   SIGSTOP, SIGTERM and a cut from Redis, fencing, the end-of-day close;
//!   and the (ignored) failover benchmark.
//! - `media`: the media library on a master (in-process), and its mirror
//!   to a slave group with real processes, files and faults.
//! - `sentinel`: master + replica + three sentinels; the master SIGKILLed
//!   under load, with `replicated` and `async` durability.
//! - `store_loss`: a group's Redis restarted empty under load: noticed,
//!   no number, id or epoch reused, fenced, adopted; a slave group by itself.
//! - `tls`: the group's Redis over TLS (`rediss://`, `redis.tls_ca_file`).
//! - `pages`: the web pages in a real headless Chromium (flows, recovery,
//!   accessibility) and the (ignored) screenshots.
//! - `slave`: a master group and a slave group: mirroring, a cut link,
//!   fencing of a deposed slave leader; the mirror-lag benchmark.
//! - `stats`: the statistics apply script against the reference model, the
//!   stats API, and exactly-once shipping through cuts, kills and lost
//!   answers with real processes.

mod api;
mod cluster;
mod concurrency;
mod durability;
mod edge;
mod errors;
mod lifecycle;
mod media;
mod pages;
mod readiness;
mod replication;
mod retries;
mod rules;
mod sentinel;
mod slave;
mod stats;
mod store_loss;
mod support;
mod tls;
