//! The HTTP edge and the process, as an outside audit attacks them
//! (issue 8): each finding of the audit reproduced against a real node.
//!
//! - `process`: port in use, configuration errors, exit codes, stack
//!   traces, secrets in `config print`, malformed requests in the log.
//! - `requests`: metric labels, compressed bodies, slow bodies, methods,
//!   HEAD, the Bearer scheme, `WWW-Authenticate`, the OpenAPI document
//!   against what the node answers, the `/metrics` format.
//! - `streams`: event stream heartbeats and the per-token limit.

mod process;
mod requests;
mod streams;
