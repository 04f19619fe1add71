//! Notices when this process itself was stalled (SIGSTOP, a VM freeze, a
//! swap storm), so requests that waited in the kernel's socket buffers all
//! that time are not taken for fresh ones.
//!
//! A node cannot see when a request's bytes reached its socket; it only sees
//! when it reads them. A thread ticks every [`TICK`]; a gap between ticks
//! far above that means nothing in the process ran meanwhile. A request read
//! while such a gap is open (the ticker has not run again yet) or shortly
//! after it closed is dated back to the stall's start, so its deadline
//! ([`crate::domain::RequestTag`]) counts the time it may have waited. This
//! errs towards refusing (503, the client retries with its
//! `Idempotency-Key`), never towards performing what no one waits for.
//!
//! Owns the ticker thread and the arithmetic; must not know about HTTP.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the ticker runs.
pub const TICK: Duration = Duration::from_millis(50);
/// A gap between ticks above this is a stall, not scheduling noise.
pub const STALL: Duration = Duration::from_millis(1_000);
/// After a stall ends, requests read within this long are still dated back:
/// the HTTP workers may drain the buffered ones after the ticker ran again.
pub const AFTER_STALL: Duration = Duration::from_millis(1_000);

#[derive(Debug, Clone, Copy)]
struct Ticks {
    last: Instant,
    /// The last stall seen: (start, end).
    stall: Option<(Instant, Instant)>,
}

/// The process's view of its own stalls. Cheap to clone.
#[derive(Clone)]
pub struct StallWatch {
    ticks: Arc<Mutex<Ticks>>,
}

impl StallWatch {
    /// Starts the ticker thread (it lives as long as the process).
    pub fn start() -> std::io::Result<StallWatch> {
        let watch = StallWatch::unstarted(Instant::now());
        let ticks = watch.ticks.clone();
        std::thread::Builder::new()
            .name("stall-watch".into())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                let now = Instant::now();
                let mut t = ticks.lock().unwrap_or_else(|e| e.into_inner());
                if now.saturating_duration_since(t.last) > STALL {
                    tracing::warn!(
                        stalled_ms = now.saturating_duration_since(t.last).as_millis(),
                        "this process did not run for a while; requests read now are dated back"
                    );
                    t.stall = Some((t.last, now));
                }
                t.last = now;
            })?;
        Ok(watch)
    }

    /// A watch whose ticker never runs (for tests of the arithmetic).
    fn unstarted(now: Instant) -> StallWatch {
        StallWatch {
            ticks: Arc::new(Mutex::new(Ticks {
                last: now,
                stall: None,
            })),
        }
    }

    /// Whether requests read at `now` are still dated back: `/readyz` says
    /// 503 meanwhile, since ticket requests would be refused.
    pub fn recovering(&self, now: Instant) -> bool {
        self.received(now) != now
    }

    /// When a request read at `now` may have arrived, at the earliest.
    pub fn received(&self, now: Instant) -> Instant {
        let t = *self.ticks.lock().unwrap_or_else(|e| e.into_inner());
        dated_back(now, t)
    }
}

fn dated_back(now: Instant, t: Ticks) -> Instant {
    // A stall still open: the ticker has not run since `t.last`.
    if now.saturating_duration_since(t.last) > STALL {
        return t.last;
    }
    match t.stall {
        Some((start, end)) if now.saturating_duration_since(end) <= AFTER_STALL => start,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_running_process_takes_requests_as_fresh() {
        let t0 = Instant::now();
        let ticks = Ticks {
            last: t0,
            stall: None,
        };
        assert_eq!(dated_back(t0 + ms(40), ticks), t0 + ms(40));
        assert_eq!(dated_back(t0 + STALL, ticks), t0 + STALL);
    }

    #[test]
    fn requests_read_during_or_just_after_a_stall_date_from_its_start() {
        let t0 = Instant::now();
        // Open stall: the ticker last ran at t0, a worker reads at t0 + 5 s.
        let open = Ticks {
            last: t0,
            stall: None,
        };
        assert_eq!(dated_back(t0 + ms(5_000), open), t0);
        // Closed stall (t0 .. t0 + 5 s), read shortly after: still t0.
        let closed = Ticks {
            last: t0 + ms(5_050),
            stall: Some((t0, t0 + ms(5_000))),
        };
        assert_eq!(dated_back(t0 + ms(5_100), closed), t0);
        assert_eq!(dated_back(t0 + ms(6_000), closed), t0);
        // Well after: fresh again.
        assert_eq!(dated_back(t0 + ms(6_001), closed), t0 + ms(6_001));
    }

    #[test]
    fn an_unstarted_watch_dates_back_once_its_last_tick_is_old() {
        let t0 = Instant::now();
        let watch = StallWatch::unstarted(t0);
        assert_eq!(watch.received(t0 + ms(10)), t0 + ms(10));
        assert_eq!(watch.received(t0 + ms(1_500)), t0);
    }
}
