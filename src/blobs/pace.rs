//! How fast media bytes move.
//!
//! - [`Pace`]: `media.bandwidth_limit_bytes_per_s`, a limit on the slave
//!   leader's downloads from the master (the WAN link), over a whole
//!   download.
//! - [`BusyPace`]: ticket changes come first. While the node handles at
//!   least [`BUSY_CHANGES_PER_S`] ticket changes a second ([`TicketLoad`]),
//!   media bytes moving in or out of it (its downloads, and blobs and media
//!   files it serves) go no faster than `media.busy_bandwidth_bytes_per_s`.
//!   A mirror at full speed takes about a core (receiving, hashing,
//!   writing, serving the next node); at that pace it takes a few per cent,
//!   and it goes back to full speed within [`WINDOW`] of the rush ending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::settings::MediaSettings;

/// Ticket changes per second from which a node counts as busy.
pub const BUSY_CHANGES_PER_S: u64 = 20;
/// The load is judged over windows this long.
pub const WINDOW: Duration = Duration::from_millis(500);

/// How many ticket changes this node is handling: the queues count every
/// change they admit, media transfers ask [`TicketLoad::busy`]. Clones share
/// the count.
#[derive(Clone)]
pub struct TicketLoad(Arc<LoadInner>);

struct LoadInner {
    changes: AtomicU64,
    judged: Mutex<Judged>,
}

/// The last judgement: at `at`, with `changes` counted so far.
struct Judged {
    at: Instant,
    changes: u64,
    busy: bool,
}

impl Default for TicketLoad {
    fn default() -> Self {
        TicketLoad(Arc::new(LoadInner {
            changes: AtomicU64::new(0),
            judged: Mutex::new(Judged {
                at: Instant::now(),
                changes: 0,
                busy: false,
            }),
        }))
    }
}

impl TicketLoad {
    /// One ticket change admitted (issue, call, recall, finish, transfer).
    pub fn change(&self) {
        self.0.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the node is busy with ticket changes now.
    pub fn busy(&self) -> bool {
        self.busy_at(Instant::now())
    }

    /// Judged again once a [`WINDOW`] has passed since the last judgement:
    /// busy when the changes since then reach [`BUSY_CHANGES_PER_S`] over
    /// one window. After a longer silence (no transfer asked) the changes
    /// are still weighed against one window, so the first judgement of a
    /// transfer errs towards the tickets.
    fn busy_at(&self, now: Instant) -> bool {
        let changes = self.0.changes.load(Ordering::Relaxed);
        let mut judged = self.0.judged.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(judged.at) >= WINDOW {
            let since = changes.saturating_sub(judged.changes);
            let busy = since as f64 >= BUSY_CHANGES_PER_S as f64 * WINDOW.as_secs_f64();
            *judged = Judged {
                at: now,
                changes,
                busy,
            };
        }
        judged.busy
    }
}

/// The pace of media transfers while the node is busy with tickets.
#[derive(Clone)]
pub struct BusyPace {
    load: TicketLoad,
    bytes_per_s: u64,
}

impl BusyPace {
    /// `bytes_per_s` 0: never slowed down.
    pub fn new(load: TicketLoad, bytes_per_s: u64) -> BusyPace {
        BusyPace { load, bytes_per_s }
    }

    /// The node's pace: its ticket load, `media.busy_bandwidth_bytes_per_s`.
    pub fn of_node(metrics: &Metrics, media: &MediaSettings) -> BusyPace {
        BusyPace::new(
            metrics.ticket_load.clone(),
            media.busy_bandwidth_bytes_per_s,
        )
    }

    /// After `bytes` moved: while the node is busy, waits as long as they
    /// take at the busy pace. So the bytes moved while busy are never more
    /// than the pace allows for the time, plus one chunk.
    pub async fn moved(&self, bytes: u64) {
        if let Some(wait) = self.wait_after(bytes) {
            tokio::time::sleep(wait).await;
        }
    }

    fn wait_after(&self, bytes: u64) -> Option<Duration> {
        (self.bytes_per_s != 0 && self.load.busy())
            .then(|| Duration::from_secs_f64(bytes as f64 / self.bytes_per_s as f64))
    }
}

/// The bandwidth limit, over a whole download (every piece and every
/// source switch included): after each chunk it waits until the bytes
/// received so far are no more than the limit allows for the time since the
/// first one. So at any moment at most one chunk is ahead of the limit.
pub struct Pace {
    bytes_per_s: u64,
    started: Option<Instant>,
    received: u64,
}

impl Pace {
    /// `bytes_per_s` 0: no limit.
    pub fn new(bytes_per_s: u64) -> Pace {
        Pace {
            bytes_per_s,
            started: None,
            received: 0,
        }
    }

    pub async fn received(&mut self, bytes: u64) {
        if self.bytes_per_s == 0 {
            return;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        self.received += bytes;
        let due = Duration::from_secs_f64(self.received as f64 / self.bytes_per_s as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten changes make one window busy (20 a second).
    const BUSY_IN_A_WINDOW: u64 = BUSY_CHANGES_PER_S / 2;

    fn changes(load: &TicketLoad, n: u64) {
        (0..n).for_each(|_| load.change());
    }

    #[test]
    fn a_node_is_busy_for_a_window_after_enough_changes_in_one() {
        let load = TicketLoad::default();
        let t0 = load.0.judged.lock().expect("lock").at;
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!load.busy_at(at(600)), "no changes: not busy");
        changes(&load, BUSY_IN_A_WINDOW - 1);
        assert!(!load.busy_at(at(1_100)), "one change short: not busy");
        changes(&load, BUSY_IN_A_WINDOW);
        assert!(!load.busy_at(at(1_500)), "judged again only after a window");
        assert!(load.busy_at(at(1_600)));
        assert!(load.busy_at(at(2_000)), "busy until the next judgement");
        assert!(!load.busy_at(at(2_100)), "a quiet window ends it");
    }

    #[test]
    fn after_a_long_silence_the_changes_are_weighed_against_one_window() {
        let load = TicketLoad::default();
        let t0 = load.0.judged.lock().expect("lock").at;
        changes(&load, BUSY_IN_A_WINDOW);
        assert!(load.busy_at(t0 + Duration::from_secs(3_600)));
    }

    #[test]
    fn a_busy_node_moves_media_at_the_busy_pace_and_an_idle_one_at_once() {
        let load = TicketLoad::default();
        let pace = BusyPace::new(load.clone(), 1_000_000);
        assert_eq!(pace.wait_after(500_000), None, "idle: no wait");
        changes(&load, BUSY_IN_A_WINDOW);
        load.0.judged.lock().expect("lock").at -= WINDOW;
        assert_eq!(pace.wait_after(500_000), Some(Duration::from_millis(500)));
        let unlimited = BusyPace::new(load, 0);
        assert_eq!(unlimited.wait_after(500_000), None, "0: never slowed");
    }
}
