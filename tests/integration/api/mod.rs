//! The HTTP contract of API.md on its happy paths, against one in-process
//! node with its own Redis.
//!
//! - `admin`: configuration CRUD and versions.
//! - `tickets`: issuing, numbering, calling by the matrix rule, counter
//!   actions, queues and the display board.
//! - `live`: Server-Sent Events and the operational endpoints.
//! - `by_number`: calling a ticket by its number; customers' ticket links.

mod admin;
mod by_number;
mod live;
mod tickets;
