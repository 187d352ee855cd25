//! Percentiles and summaries of latency samples.

use serde::Serialize;
use std::time::Duration;

/// The `p`-th percentile (0 to 100) of `samples`, by the nearest-rank method: the smallest sample
/// such that at least `p` % of the samples are at or below it. `None` for no samples.
///
/// Nearest rank never invents a value between two samples, so a p95 is a latency some keystroke
/// really had.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let p = p.clamp(0.0, 100.0);
    // Rank in 1..=n; p = 0 gives the minimum.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A summary of latency samples, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50_ms: f64,
    /// 95th percentile (nearest rank).
    pub p95_ms: f64,
    /// Smallest sample.
    pub min_ms: f64,
    /// Largest sample.
    pub max_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
}

impl LatencySummary {
    /// Summarises `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<LatencySummary> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let total: Duration = samples.iter().sum();
        Some(LatencySummary {
            count: samples.len(),
            p50_ms: ms(percentile(samples, 50.0)?),
            p95_ms: ms(percentile(samples, 95.0)?),
            min_ms: ms(*samples.iter().min()?),
            max_ms: ms(*samples.iter().max()?),
            mean_ms: ms(total) / samples.len() as f64,
        })
    }
}

/// Average rate in kbit/s (1000 bit/s) of `bytes` over `over`; 0 for an empty duration.
pub fn kbit_per_s(bytes: u64, over: Duration) -> f64 {
    let seconds = over.as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    bytes as f64 * 8.0 / 1000.0 / seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        // The textbook example: 15, 20, 35, 40, 50.
        let samples = ms(&[40, 15, 50, 35, 20]);
        assert_eq!(percentile(&samples, 5.0), Some(Duration::from_millis(15)));
        assert_eq!(percentile(&samples, 30.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&samples, 40.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&samples, 50.0), Some(Duration::from_millis(35)));
        assert_eq!(percentile(&samples, 95.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 100.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&samples, 0.0), Some(Duration::from_millis(15)));
        assert_eq!(percentile(&[], 50.0), None);
        // 100 samples 1..=100 ms: p95 is the 95th.
        let hundred: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(percentile(&hundred, 95.0), Some(Duration::from_millis(95)));
        assert_eq!(percentile(&hundred, 50.0), Some(Duration::from_millis(50)));
        // Out-of-range percentiles are clamped.
        assert_eq!(
            percentile(&hundred, 250.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(percentile(&hundred, -3.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn summary_and_rate() {
        let summary = LatencySummary::of(&ms(&[100, 80, 120, 90])).expect("samples");
        assert_eq!(summary.count, 4);
        assert_eq!(summary.p50_ms, 90.0);
        assert_eq!(summary.p95_ms, 120.0);
        assert_eq!(summary.min_ms, 80.0);
        assert_eq!(summary.max_ms, 120.0);
        assert_eq!(summary.mean_ms, 97.5);
        assert_eq!(LatencySummary::of(&[]), None);
        assert_eq!(kbit_per_s(64_000, Duration::from_secs(1)), 512.0);
        assert_eq!(kbit_per_s(64_000, Duration::from_secs(2)), 256.0);
        assert_eq!(kbit_per_s(1, Duration::ZERO), 0.0);
    }
}
