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
//! The connection reconnects by itself after a failure, and a `WAIT` on the
//! new connection covers none of the old one's writes. So each change
//! brings the client id of the connection it went over, the `WAIT` is sent
//! in one pipeline with `CLIENT ID`, and only the changes made on the
//! connection the `WAIT` ran on are confirmed by it; the others count as
//! confirmed by no replica (503 `replication-timeout`, retried with the
//! same `Idempotency-Key`).
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
    /// Changes whose reply arrived, waiting for the next `WAIT`, with the
    /// client id of the connection each went over.
    waiting: Vec<(i64, oneshot::Sender<RedisResult<u32>>)>,
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

    /// A `WAIT` is in flight on this connection (it blocks the connection
    /// in Redis until it returns).
    pub(crate) fn waiting(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_flight
    }

    /// How many replicas acknowledged a `WAIT` sent after the caller's
    /// write got its reply, on the connection the write went over
    /// (`client_id`); 0 when the connection changed in between.
    pub(crate) async fn confirm(self: &Arc<Self>, client_id: i64) -> RedisResult<u32> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.waiting.push((client_id, tx));
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
            let answer: RedisResult<(i64, u32)> = redis::pipe()
                .cmd("CLIENT")
                .arg("ID")
                .cmd("WAIT")
                .arg(self.min_replicas)
                .arg(self.timeout_ms)
                .query_async(&mut conn)
                .await;
            for (client_id, waiter) in batch {
                let acked = answer.clone().map(
                    |(waited_on, acked)| {
                        if waited_on == client_id {
                            acked
                        } else {
                            0
                        }
                    },
                );
                let _ = waiter.send(acked);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use redis::aio::ConnectionLike;

    use super::GroupCommit;
    use crate::store::embedded::EmbeddedRedis;
    use crate::store::sentinel::WatchedConn;

    /// Two real `redis-server`s (the embedded launcher, each on a free
    /// port), the second a replica of the first.
    async fn master_and_replica(dir: &std::path::Path) -> (EmbeddedRedis, EmbeddedRedis) {
        let start = |name: &str| {
            EmbeddedRedis::start("redis-server", &dir.join(name), "everysec", Arc::new(|| {}))
                .expect("redis-server starts")
        };
        let (master, replica) = (start("master"), start("replica"));
        let address = master.url();
        let address = address.trim_start_matches("redis://").trim_end_matches('/');
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let client = redis::Client::open(replica.url()).expect("replica URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("replica");
        let _: () = redis::cmd("REPLICAOF")
            .arg(host)
            .arg(port)
            .query_async(&mut conn)
            .await
            .expect("REPLICAOF");
        for _ in 0..200 {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await
                .expect("INFO");
            if info.contains("master_link_status:up") {
                return (master, replica);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the replica never synced");
    }

    #[tokio::test]
    async fn a_wait_on_a_reconnected_connection_confirms_none_of_the_old_ones_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (master, _replica) = master_and_replica(dir.path()).await;
        let client = redis::Client::open(master.url()).expect("URL");
        let manager = redis::aio::ConnectionManager::new(client.clone())
            .await
            .expect("connect");
        let commit = Arc::new(GroupCommit::new(manager.clone(), 1, 1_000));
        let mut writer = WatchedConn::new(manager, None).committing(commit.clone());

        // A change confirmed on its own connection.
        let _: () = redis::cmd("SET")
            .arg("a")
            .arg(1)
            .query_async(&mut writer)
            .await
            .expect("SET");
        let first = writer.client_id().expect("the change's connection");
        assert_eq!(commit.confirm(first).await.expect("WAIT"), 1);

        // The next change's connection is killed after its reply; the
        // manager reconnects on the next command.
        let _: () = redis::cmd("SET")
            .arg("b")
            .arg(2)
            .query_async(&mut writer)
            .await
            .expect("SET");
        let old = writer.client_id().expect("the change's connection");
        let mut admin = client
            .get_multiplexed_async_connection()
            .await
            .expect("admin");
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(old)
            .query_async(&mut admin)
            .await
            .expect("KILL");
        let mut other = WatchedConn::new(commit.conn().clone(), None);
        for _ in 0..50 {
            if other.req_packed_command(&redis::cmd("PING")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The WAIT now runs on the new connection, which made no write: it
        // would answer "1 replica" at once. It must not vouch for `b`.
        assert_eq!(commit.confirm(old).await.expect("WAIT"), 0);
    }
}
