//! The per-session bandwidth cap of the effective policy: a token bucket, sans-IO (the caller
//! gives the time), shared by the session's viewers.
//!
//! A frame is sent whole when the bucket is not in debt, and its bytes are charged afterwards;
//! the next frame waits until the debt is paid. Meanwhile the display keeps accumulating damage
//! as dirty cells, so a capped viewer gets fewer, coalesced frames — never a queue.

use std::time::{Duration, Instant};

/// A token bucket in bytes.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    /// Bytes per second.
    rate: f64,
    /// The most tokens that can be saved up (a burst).
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    /// A cap of `kbit_per_s` kilobits per second (1 kbit = 1,000 bits), with a burst of a quarter
    /// of a second or 16 KiB, whichever is larger.
    pub(crate) fn new(kbit_per_s: u32, now: Instant) -> Pace {
        let rate = f64::from(kbit_per_s) * 1000.0 / 8.0;
        let burst = (rate / 4.0).max(16.0 * 1024.0);
        Pace { rate, burst, tokens: burst, at: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// How long until a frame may be sent (zero: now).
    pub(crate) fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }

    /// Charges the bytes of a frame just sent.
    pub(crate) fn charge(&mut self, bytes: usize, now: Instant) {
        self.refill(now);
        self.tokens -= bytes as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_never_exceeds_the_cap_beyond_one_burst_and_one_frame() {
        let start = Instant::now();
        let mut pace = Pace::new(256, start); // 32,000 bytes/s, burst 16 KiB
        let frame = 20_000usize;
        let mut now = start;
        let mut sent = 0usize;
        // Ten simulated seconds of a viewer that would send as fast as it is allowed.
        while now < start + Duration::from_secs(10) {
            let wait = pace.wait(now);
            if wait.is_zero() {
                pace.charge(frame, now);
                sent += frame;
            } else {
                now += wait;
            }
        }
        let allowed = 32_000.0 * 10.0 + 16.0 * 1024.0 + frame as f64;
        assert!(sent as f64 <= allowed, "sent {sent} > {allowed}");
        assert!(sent as f64 >= 32_000.0 * 10.0 * 0.9, "the cap is used, not starved: {sent}");
    }

    #[test]
    fn an_idle_bucket_allows_a_burst_then_paces() {
        let start = Instant::now();
        let mut pace = Pace::new(512, start); // 64,000 bytes/s, burst 16,000
        assert_eq!(pace.wait(start), Duration::ZERO);
        pace.charge(48_000, start);
        let wait = pace.wait(start);
        assert!((wait.as_secs_f64() - 32_000.0 / 64_000.0).abs() < 0.01, "{wait:?}");
        let later = start + Duration::from_secs(60);
        assert_eq!(pace.wait(later), Duration::ZERO, "savings are capped at one burst");
        pace.charge(16_384, later);
        assert_eq!(pace.wait(later), Duration::ZERO);
        pace.charge(1, later);
        assert!(pace.wait(later) > Duration::ZERO);
    }
}
