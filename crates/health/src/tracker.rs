//! Health state with hysteresis: one failed probe is not an outage.

use std::fmt;
use std::time::SystemTime;

/// What is known of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Health {
    /// No success yet, and fewer consecutive failures than the threshold.
    Unknown,
    /// The last probe succeeded.
    Healthy,
    /// At least the threshold of consecutive probes failed.
    Unhealthy,
}

impl Health {
    /// `"unknown"`, `"healthy"` or `"unhealthy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of [`Health`], returned by [`HealthTracker::record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: Health,
    /// The state after.
    pub to: Health,
    /// The time passed to [`HealthTracker::record`].
    pub at: SystemTime,
    /// For a change to [`Health::Unhealthy`], the last failure's message; otherwise `None`.
    pub reason: Option<String>,
}

/// Turns probe results into health transitions: a host becomes [`Health::Unhealthy`] after
/// `failure_threshold` consecutive failures (default 2), and [`Health::Healthy`] after one
/// success. A new tracker is [`Health::Unknown`], and stays so until a success or the
/// threshold of failures. Pure: the caller passes the time.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    failure_threshold: u32,
    state: Health,
    consecutive_failures: u32,
    since: Option<SystemTime>,
    last_checked: Option<SystemTime>,
    last_error: Option<String>,
}

impl Default for HealthTracker {
    fn default() -> Self {
        HealthTracker::new()
    }
}

impl HealthTracker {
    /// The default number of consecutive failures that make a host unhealthy.
    pub const DEFAULT_FAILURE_THRESHOLD: u32 = 2;

    /// A tracker with the default threshold of 2 consecutive failures.
    pub fn new() -> HealthTracker {
        HealthTracker::with_failure_threshold(Self::DEFAULT_FAILURE_THRESHOLD)
    }

    /// A tracker that marks a host unhealthy after `threshold` consecutive failures (0 counts
    /// as 1).
    pub fn with_failure_threshold(threshold: u32) -> HealthTracker {
        HealthTracker {
            failure_threshold: threshold.max(1),
            state: Health::Unknown,
            consecutive_failures: 0,
            since: None,
            last_checked: None,
            last_error: None,
        }
    }

    /// Records one probe result at `now`; returns the transition it caused, if any.
    pub fn record<T, E: fmt::Display>(&mut self, result: &Result<T, E>, now: SystemTime) -> Option<Transition> {
        self.last_checked = Some(now);
        let (next, reason) = match result {
            Ok(_) => {
                self.consecutive_failures = 0;
                self.last_error = None;
                (Health::Healthy, None)
            }
            Err(error) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                let message = error.to_string();
                self.last_error = Some(message.clone());
                if self.consecutive_failures >= self.failure_threshold {
                    (Health::Unhealthy, Some(message))
                } else {
                    (self.state, None)
                }
            }
        };
        if next == self.state {
            return None;
        }
        let from = self.state;
        self.state = next;
        self.since = Some(now);
        Some(Transition { from, to: next, at: now, reason })
    }

    /// The current state.
    pub fn state(&self) -> Health {
        self.state
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// When the current state began (`None` while [`Health::Unknown`]).
    pub fn since(&self) -> Option<SystemTime> {
        self.since
    }

    /// When the last result was recorded.
    pub fn last_checked(&self) -> Option<SystemTime> {
        self.last_checked
    }

    /// The message of the last failure, cleared by a success.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The number of consecutive failures that make the host unhealthy.
    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s)
    }

    const OK: Result<(), &str> = Ok(());
    const FAIL: Result<(), &str> = Err("connection refused");

    #[test]
    fn starts_unknown_and_one_success_makes_healthy() {
        let mut t = HealthTracker::new();
        assert_eq!(t.state(), Health::Unknown);
        assert_eq!(t.since(), None);
        let tr = t.record(&OK, at(0)).expect("a transition");
        assert_eq!((tr.from, tr.to, tr.at, tr.reason), (Health::Unknown, Health::Healthy, at(0), None));
        assert_eq!(t.record(&OK, at(10)), None, "healthy stays healthy silently");
        assert_eq!(t.since(), Some(at(0)));
        assert_eq!(t.last_checked(), Some(at(10)));
    }

    #[test]
    fn one_failure_is_not_an_outage_two_are() {
        let mut t = HealthTracker::new();
        t.record(&OK, at(0));
        assert_eq!(t.record(&FAIL, at(10)), None);
        assert_eq!(t.state(), Health::Healthy);
        assert_eq!(t.consecutive_failures(), 1);
        assert_eq!(t.last_error(), Some("connection refused"));
        let tr = t.record(&FAIL, at(20)).expect("a transition");
        assert_eq!((tr.from, tr.to), (Health::Healthy, Health::Unhealthy));
        assert_eq!(tr.reason.as_deref(), Some("connection refused"));
        assert_eq!(t.since(), Some(at(20)));
        assert_eq!(t.record(&FAIL, at(30)), None, "unhealthy stays unhealthy silently");
        assert_eq!(t.consecutive_failures(), 3);
    }

    #[test]
    fn a_success_between_failures_resets_the_count() {
        let mut t = HealthTracker::new();
        t.record(&OK, at(0));
        for i in 0..5 {
            assert_eq!(t.record(&FAIL, at(10 * i + 1)), None);
            assert_eq!(t.record(&OK, at(10 * i + 2)), None);
        }
        assert_eq!(t.state(), Health::Healthy);
        assert_eq!(t.last_error(), None);
    }

    #[test]
    fn one_success_recovers_from_unhealthy() {
        let mut t = HealthTracker::new();
        t.record(&FAIL, at(0));
        let tr = t.record(&FAIL, at(1)).expect("unknown to unhealthy");
        assert_eq!((tr.from, tr.to), (Health::Unknown, Health::Unhealthy));
        let tr = t.record(&OK, at(2)).expect("unhealthy to healthy");
        assert_eq!((tr.from, tr.to, tr.reason), (Health::Unhealthy, Health::Healthy, None));
        assert_eq!(t.consecutive_failures(), 0);
    }

    #[test]
    fn the_threshold_is_configurable_and_at_least_one() {
        let mut t = HealthTracker::with_failure_threshold(3);
        assert_eq!(t.record(&FAIL, at(0)), None);
        assert_eq!(t.record(&FAIL, at(1)), None);
        assert_eq!(t.state(), Health::Unknown);
        assert!(t.record(&FAIL, at(2)).is_some());
        assert_eq!(t.state(), Health::Unhealthy);

        let mut t = HealthTracker::with_failure_threshold(0);
        assert_eq!(t.failure_threshold(), 1);
        assert_eq!(t.record(&FAIL, at(0)).map(|tr| tr.to), Some(Health::Unhealthy));
    }
}
