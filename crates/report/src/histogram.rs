//! The round-trip-time histogram of a session: fixed buckets, so that histograms of thousands
//! of sessions merge exactly and quantiles of a whole day come out of the merge.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ReportError;

/// The number of buckets of an [`RttHistogram`].
pub const RTT_BUCKETS: usize = 16;

/// The inclusive upper bound of each bucket, in milliseconds. The last bucket (`u32::MAX`) holds
/// everything above 5 s: a quantile that falls there is reported as `u32::MAX`, read "over 5000".
pub const RTT_BUCKET_BOUNDS_MS: [u32; RTT_BUCKETS] = [
    5,
    10,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1_000,
    2_000,
    5_000,
    u32::MAX,
];

/// Counts of round-trip times per bucket of [`RTT_BUCKET_BOUNDS_MS`].
///
/// The gateway records each measured RTT with [`RttHistogram::record`] and stores
/// [`RttHistogram::to_counts`] in `session_stats.rtt_buckets`; serde writes it as the same JSON
/// array of counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "Vec<u64>", try_from = "Vec<u64>")]
pub struct RttHistogram {
    counts: [u64; RTT_BUCKETS],
}

impl RttHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// The histogram of stored counts; [`ReportError::HistogramShape`] unless there are exactly
    /// [`RTT_BUCKETS`] of them.
    pub fn from_counts(counts: &[u64]) -> Result<Self, ReportError> {
        let counts: [u64; RTT_BUCKETS] =
            counts.try_into().map_err(|_| ReportError::HistogramShape {
                found: counts.len(),
                expected: RTT_BUCKETS,
            })?;
        Ok(Self { counts })
    }

    /// The counts, one per bucket, to store.
    pub fn to_counts(&self) -> Vec<u64> {
        self.counts.to_vec()
    }

    /// The counts, one per bucket.
    pub fn counts(&self) -> &[u64; RTT_BUCKETS] {
        &self.counts
    }

    /// Counts one round trip of `ms` milliseconds.
    pub fn record(&mut self, ms: u32) {
        let bucket = RTT_BUCKET_BOUNDS_MS
            .iter()
            .position(|&bound| ms <= bound)
            .unwrap_or(RTT_BUCKETS - 1);
        self.counts[bucket] = self.counts[bucket].saturating_add(1);
    }

    /// Counts one round trip (rounded up to the millisecond).
    pub fn record_duration(&mut self, rtt: Duration) {
        let ms = rtt.as_micros().div_ceil(1_000);
        self.record(u32::try_from(ms).unwrap_or(u32::MAX));
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: &RttHistogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// The number of round trips counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0, |sum, &n| sum.saturating_add(n))
    }

    /// The upper bound (ms) of the bucket holding the `q`-quantile (`q` in 0..=1, e.g. 0.95):
    /// at least a fraction `q` of the round trips took at most that long. `None` when empty;
    /// `u32::MAX` when it falls in the last bucket (over 5 s).
    pub fn quantile(&self, q: f64) -> Option<u32> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        // The rank of the quantile, 1-based: ceil(q × total), at least 1. Computed in f64 on
        // purpose (counts far below 2^53 in practice), then clamped.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0_u64;
        for (count, bound) in self.counts.iter().zip(RTT_BUCKET_BOUNDS_MS) {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                return Some(bound);
            }
        }
        Some(u32::MAX)
    }
}

impl From<RttHistogram> for Vec<u64> {
    fn from(histogram: RttHistogram) -> Self {
        histogram.to_counts()
    }
}

impl TryFrom<Vec<u64>> for RttHistogram {
    type Error = ReportError;

    fn try_from(counts: Vec<u64>) -> Result<Self, Self::Error> {
        Self::from_counts(&counts)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let mut histogram = RttHistogram::new();
        assert_eq!(histogram.quantile(0.5), None);
        // 0 and 5 in the first bucket, 6 in the second, 5001 in the last.
        for ms in [0, 5, 6, 12, 12, 40, 40, 40, 90, 5_001] {
            histogram.record(ms);
        }
        assert_eq!(
            histogram.counts(),
            &[2, 1, 2, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(histogram.total(), 10);
        assert_eq!(histogram.quantile(0.0), Some(5));
        assert_eq!(histogram.quantile(0.2), Some(5));
        assert_eq!(histogram.quantile(0.21), Some(10));
        assert_eq!(histogram.quantile(0.5), Some(20));
        assert_eq!(histogram.quantile(0.8), Some(50));
        assert_eq!(histogram.quantile(0.9), Some(100));
        assert_eq!(histogram.quantile(0.95), Some(u32::MAX));
        assert_eq!(histogram.quantile(1.0), Some(u32::MAX));
        assert_eq!(histogram.quantile(f64::NAN), Some(5));

        let mut other = RttHistogram::new();
        other.record_duration(Duration::from_micros(150_001)); // 151 ms → ≤ 200
        other.record_duration(Duration::from_millis(3));
        histogram.merge(&other);
        assert_eq!(histogram.total(), 12);
        assert_eq!(histogram.counts()[0], 3);
        assert_eq!(histogram.counts()[8], 1);
    }

    #[test]
    fn stored_as_a_json_array() {
        let mut histogram = RttHistogram::new();
        histogram.record(25);
        let json = serde_json::to_string(&histogram).unwrap();
        assert_eq!(json, "[0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0]");
        assert_eq!(
            serde_json::from_str::<RttHistogram>(&json).unwrap(),
            histogram
        );
        assert!(serde_json::from_str::<RttHistogram>("[1,2]").is_err());
        assert!(matches!(
            RttHistogram::from_counts(&[1, 2]),
            Err(ReportError::HistogramShape {
                found: 2,
                expected: 16
            })
        ));
        assert_eq!(
            RttHistogram::from_counts(&histogram.to_counts()).unwrap(),
            histogram
        );
    }
}
