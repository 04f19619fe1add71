//! Group commit for durability `replicated`: concurrent ticket changes
//! share one `WAIT` instead of sending one each.
//!
//! `WAIT n timeout` waits until `n` replicas have every write the calling
//! connection made before it, and blocks that connection meanwhile. So the
//! changes go over a writer connection of their own (the reads keep the
//! main one), and a change that got its reply asks that connection's
//! [`GroupCommit`] to confirm it. When no `WAIT` is in flight, one is sent
//! at once for every change waiting; changes that ask while one is in
//! flight join the next, because the one in flight may have been sent
//! before their write was (the classic group commit). Every change is
//! still acknowledged only after a `WAIT` sent after its reply confirmed
//! it; the rule of [`super::Store::confirm`] is unchanged.
//!
//! Owns the batching of `WAIT`s on one connection; knows nothing of what
//! the writes were.

use std::sync::{Arc, Mutex};

use redis::aio::ConnectionManager;
use redis::RedisResult;
use tokio::sync::oneshot;

/// One writer connection's `WAIT`s.
pub(crate) struct GroupCommit {
    conn: ConnectionManager,
    min_replicas: u32,
    timeout_ms: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A task is sending `WAIT`s for this connection.
    in_flight: bool,
    /// Changes whose reply arrived, waiting for the next `WAIT`.
    waiting: Vec<oneshot::Sender<RedisResult<u32>>>,
}

impl GroupCommit {
    pub(crate) fn new(conn: ConnectionManager, min_replicas: u32, timeout_ms: u64) -> GroupCommit {
        GroupCommit {
            conn,
            min_replicas,
            timeout_ms,
            state: Mutex::default(),
        }
    }

    /// The connection the changes must go over.
    pub(crate) fn conn(&self) -> &ConnectionManager {
        &self.conn
    }

    /// How many replicas acknowledged a `WAIT` sent after the caller's
    /// write got its reply.
    pub(crate) async fn confirm(self: &Arc<Self>) -> RedisResult<u32> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push(tx);
            !std::mem::replace(&mut state.in_flight, true)
        };
        if start {
            // A task of its own: a caller that gives up (its client went
            // away) must not leave the others without their WAIT.
            tokio::spawn(self.clone().drive());
        }
        rx.await.unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "the WAIT for this change was abandoned",
            )))
        })
    }

    /// Sends one `WAIT` for everything waiting, then the next, until no
    /// change waits.
    async fn drive(self: Arc<Self>) {
        loop {
            let batch = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.waiting.is_empty() {
                    state.in_flight = false;
                    return;
                }
                std::mem::take(&mut state.waiting)
            };
            // Taken before the WAIT is sent: every change in the batch had
            // its reply, so its write precedes the WAIT on this connection.
            let mut conn = self.conn.clone();
            let acked: RedisResult<u32> = redis::cmd("WAIT")
                .arg(self.min_replicas)
                .arg(self.timeout_ms)
                .query_async(&mut conn)
                .await;
            for waiter in batch {
                let _ = waiter.send(acked.clone());
            }
        }
    }
}
