//! The waiting-time estimate shown on tickets and queue boards.
//!
//! A waiting customer at `position` (1 = next) waits for about `position`
//! services spread over the counters that serve the queue:
//! `position × average service time ÷ open counters`. The average is an
//! exponentially weighted moving average of recent service times, so it
//! follows the pace of the day rather than of last month. A counter is open
//! while it has called a ticket within [`OPEN_COUNTER_WINDOW_MS`]; when none
//! is, every counter configured for the service counts, so a morning's first
//! ticket still gets a sensible figure.

/// Service time assumed before a service has any history.
pub const DEFAULT_SERVICE_S: f64 = 300.0;
/// Weight of the newest sample in the moving average.
pub const EWMA_ALPHA: f64 = 0.2;
/// A counter that has not called within this window counts as closed.
pub const OPEN_COUNTER_WINDOW_MS: i64 = 30 * 60 * 1000;

/// The estimated wait in whole seconds.
pub fn estimate_wait_s(position: u64, avg_service_s: Option<f64>, counters: usize) -> u64 {
    let avg = avg_service_s
        .filter(|a| a.is_finite() && *a >= 0.0)
        .unwrap_or(DEFAULT_SERVICE_S);
    let counters = counters.max(1) as f64;
    (position as f64 * avg / counters).ceil() as u64
}

/// The moving average after one more sample: the reference model of the
/// `ewma` Lua function that updates it when a ticket is served (atomically
/// with the ticket); the differential tests hold the script to this.
pub fn ewma(previous: Option<f64>, sample_s: f64) -> f64 {
    match previous {
        None => sample_s,
        Some(p) => p + EWMA_ALPHA * (sample_s - p),
    }
}

/// How many counters count for the estimate: those of `serving` (their
/// last-call times, `None` if never) that called within the window, or all of
/// them when none did.
pub fn open_counters(serving: &[Option<i64>], now_ms: i64) -> usize {
    let open = serving
        .iter()
        .filter(|seen| seen.is_some_and(|t| now_ms - t <= OPEN_COUNTER_WINDOW_MS))
        .count();
    if open == 0 {
        serving.len()
    } else {
        open
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        // (position, average, counters, expected)
        let cases = [
            (1, Some(120.0), 1, 120),
            (3, Some(120.0), 2, 180),
            (1, None, 1, 300),
            (0, Some(100.0), 1, 0),
            (5, Some(60.0), 0, 300), // no counter: counted as one
            (2, Some(f64::NAN), 1, 600),
        ];
        for (position, avg, counters, expected) in cases {
            assert_eq!(
                estimate_wait_s(position, avg, counters),
                expected,
                "{position} {avg:?} {counters}"
            );
        }
    }

    #[test]
    fn open_counters_fall_back_to_configured() {
        let now = 10 * OPEN_COUNTER_WINDOW_MS;
        assert_eq!(open_counters(&[Some(now - 1000), None, Some(0)], now), 1);
        assert_eq!(open_counters(&[None, Some(0)], now), 2);
        assert_eq!(open_counters(&[], now), 0);
    }

    #[test]
    fn ewma_moves_towards_samples() {
        assert_eq!(ewma(None, 100.0), 100.0);
        assert!((ewma(Some(100.0), 200.0) - 120.0).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn more_counters_never_wait_longer(p in 0u64..500, avg in 0.0f64..3600.0, c in 1usize..20) {
            prop_assert!(estimate_wait_s(p, Some(avg), c + 1) <= estimate_wait_s(p, Some(avg), c));
            prop_assert!(estimate_wait_s(p, Some(avg), c) <= estimate_wait_s(p + 1, Some(avg), c));
        }
    }
}
