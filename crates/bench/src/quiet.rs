//! When has the link gone quiet? Polled byte counters in, "quiet since" out.

use std::time::{Duration, Instant};

/// Watches a byte counter polled now and then: the link is *quiet* once no poll has seen more
/// than `noise` new bytes for `window`.
///
/// `noise` keeps a keep-alive of a few bytes from counting as traffic.
#[derive(Debug, Clone)]
pub struct QuietDetector {
    window: Duration,
    noise: u64,
    last_total: u64,
    last_active: Instant,
}

impl QuietDetector {
    /// Starts watching at `now`, when the counter reads `total`; `now` counts as activity.
    pub fn new(now: Instant, total: u64, window: Duration, noise: u64) -> QuietDetector {
        QuietDetector {
            window,
            noise,
            last_total: total,
            last_active: now,
        }
    }

    /// Records a poll; returns whether the link is quiet at `now`.
    pub fn observe(&mut self, now: Instant, total: u64) -> bool {
        if total.saturating_sub(self.last_total) > self.noise {
            self.last_active = now;
        }
        self.last_total = total;
        now.saturating_duration_since(self.last_active) >= self.window
    }

    /// The last poll that saw traffic (or the start).
    pub fn last_active(&self) -> Instant {
        self.last_active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_after_a_window_without_traffic_beyond_noise() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut quiet = QuietDetector::new(t0, 1000, Duration::from_secs(1), 100);
        assert!(!quiet.observe(at(500), 1000));
        assert!(quiet.observe(at(1000), 1000), "a whole window with nothing");
        // Traffic resets it.
        assert!(!quiet.observe(at(1100), 5000));
        assert_eq!(quiet.last_active(), at(1100));
        // Keep-alives under the noise threshold do not.
        assert!(!quiet.observe(at(1600), 5040));
        assert!(!quiet.observe(at(2000), 5080));
        assert!(quiet.observe(at(2100), 5120));
        assert_eq!(quiet.last_active(), at(1100));
        // A counter that goes backwards (cannot happen) is not traffic.
        assert!(quiet.observe(at(2200), 10));
    }
}
