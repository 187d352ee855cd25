//! When the daily report runs: a cron expression in the site's time zone.

use croner::Cron;
use jiff::tz::TimeZone;

use crate::{ReportError, Result};

/// The default schedule: every day at 17:00, site-local time.
pub const DEFAULT_SCHEDULE: &str = "0 17 * * *";

/// The first time strictly after `after` at which `cron` (5 fields, or 6 with seconds first)
/// fires in `tz`. Wall-clock times that a daylight-saving change skips fire at the first valid
/// time after them; a repeated hour fires once.
pub fn next_run(cron: &str, tz: &TimeZone, after: jiff::Timestamp) -> Result<jiff::Timestamp> {
    let error = |detail: String| ReportError::Schedule {
        pattern: cron.to_owned(),
        detail,
    };
    let schedule: Cron = cron
        .trim()
        .parse()
        .map_err(|e: croner::errors::CronError| error(e.to_string()))?;
    let start = after.to_zoned(tz.clone());
    let next = schedule
        .find_next_occurrence(&start, false)
        .map_err(|e| error(e.to_string()))?;
    Ok(next.timestamp())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    fn at(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn every_day_at_five_across_the_spring_change() {
        let tz = paris();
        // Saturday 28 March 2026, 17:00 +01:00 = 16:00 UTC.
        let first = next_run(DEFAULT_SCHEDULE, &tz, at("2026-03-28T10:00:00Z")).unwrap();
        assert_eq!(first, at("2026-03-28T16:00:00Z"));
        // Exactly at a run: the next one. Sunday 29 March is in summer time: 15:00 UTC,
        // 23 hours later.
        let second = next_run(DEFAULT_SCHEDULE, &tz, first).unwrap();
        assert_eq!(second, at("2026-03-29T15:00:00Z"));
        assert_eq!(second.as_second() - first.as_second(), 23 * 3_600);
        assert_eq!(
            second
                .to_zoned(tz.clone())
                .strftime("%H:%M %:z")
                .to_string(),
            "17:00 +02:00"
        );
    }

    #[test]
    fn across_the_autumn_change() {
        let tz = paris();
        // Sunday 25 October 2026: back to +01:00, a 25-hour day.
        let before = next_run(DEFAULT_SCHEDULE, &tz, at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(before, at("2026-10-24T15:00:00Z"));
        let after = next_run(DEFAULT_SCHEDULE, &tz, before).unwrap();
        assert_eq!(after, at("2026-10-25T16:00:00Z"));
        assert_eq!(after.as_second() - before.as_second(), 25 * 3_600);
    }

    #[test]
    fn skipped_and_repeated_hours() {
        let tz = paris();
        // 02:30 does not exist on 29 March 2026: the run is not lost.
        let skipped = next_run("30 2 * * *", &tz, at("2026-03-28T12:00:00Z")).unwrap();
        let local = skipped.to_zoned(tz.clone());
        assert_eq!(local.date().to_string(), "2026-03-29");
        assert!(skipped > at("2026-03-29T00:59:59Z"), "{local}");
        assert!(skipped <= at("2026-03-29T01:30:00Z"), "{local}");
        // 02:30 happens twice on 25 October 2026: one run that day, the next on the 26th.
        let first = next_run("30 2 * * *", &tz, at("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first.to_zoned(tz.clone()).date().to_string(), "2026-10-25");
        let second = next_run("30 2 * * *", &tz, first).unwrap();
        assert_eq!(second.to_zoned(tz.clone()).date().to_string(), "2026-10-26");
    }

    #[test]
    fn bad_patterns_are_named() {
        let tz = paris();
        let error = next_run("every day", &tz, at("2026-03-28T10:00:00Z")).unwrap_err();
        assert!(
            matches!(error, ReportError::Schedule { ref pattern, .. } if pattern == "every day")
        );
        assert!(error.message(crate::Lang::Fr).starts_with("planification"));
        assert!(next_run("0 25 * * *", &tz, at("2026-03-28T10:00:00Z")).is_err());
    }
}
