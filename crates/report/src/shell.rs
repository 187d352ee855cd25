//! The async shell: loads a day from the store, computes, keeps reports in `daily_reports`.

use std::collections::HashMap;

use bascule_domain::time::Timestamp;
use bascule_store::Store;
use jiff::ToSpan;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::Result;
use crate::compute::{DailyReport, DayInput, REPORT_FORMAT_VERSION, compute};
use crate::error::time_error;
use crate::timefmt::{from_jiff, to_jiff};

/// The first second of `day` in `tz` (local midnight, or the first valid time after it) and that
/// of the next day: 24 hours apart, or 23 / 25 on daylight-saving days.
pub fn day_bounds(day: Date, tz: &TimeZone) -> Result<(Timestamp, Timestamp)> {
    let start = day.to_zoned(tz.clone()).map_err(time_error)?;
    let next = day
        .tomorrow()
        .map_err(time_error)?
        .to_zoned(tz.clone())
        .map_err(time_error)?;
    Ok((from_jiff(start.timestamp()), from_jiff(next.timestamp())))
}

/// Loads what [`compute`] needs for `day` (sessions overlapping it, their counters, the day's
/// audit lines, incidents and licence samples, the capacity and the sites), as of `now`.
pub async fn load_day(store: &Store, day: Date, tz: &TimeZone, now: Timestamp) -> Result<DayInput> {
    let (from, to) = day_bounds(day, tz)?;
    let (sessions, stats, audit, incidents, licence_samples, capacity, sites) = tokio::try_join!(
        store.sessions_overlapping(from, to),
        store.session_stats_between(from, to),
        store.audit_between(from, to),
        store.incidents_between(from, to),
        store.licence_samples_between(from, to),
        store.licence_capacity(),
        store.list_sites(),
    )?;
    Ok(DayInput {
        day,
        from,
        to,
        now,
        sessions,
        stats,
        audit,
        incidents,
        licence_samples,
        capacity,
        sites,
    })
}

fn now() -> Timestamp {
    from_jiff(jiff::Timestamp::now())
}

/// The report of `day` in `tz`, computed now from the database (not saved).
pub async fn compute_day(store: &Store, day: Date, tz: &TimeZone) -> Result<DailyReport> {
    compute_day_at(store, day, tz, now()).await
}

/// [`compute_day`] as if computed at `now` (tests, replays).
pub async fn compute_day_at(
    store: &Store,
    day: Date,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<DailyReport> {
    let input = load_day(store, day, tz, now).await?;
    Ok(compute(&input, tz))
}

/// Computes the report of `day` now and saves it in `daily_reports` (replacing any), even if the
/// day is not over (the 17:00 report): [`trend`] recomputes such a report once the day is over.
pub async fn compute_and_store(store: &Store, day: Date, tz: &TimeZone) -> Result<DailyReport> {
    compute_and_store_at(store, day, tz, now()).await
}

/// [`compute_and_store`] as if computed at `now`.
pub async fn compute_and_store_at(
    store: &Store,
    day: Date,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<DailyReport> {
    let report = compute_day_at(store, day, tz, now).await?;
    store
        .save_daily_report(&report.day, now, &report.to_json()?)
        .await?;
    Ok(report)
}

/// Where [`trend_at`] is, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The day just handled.
    pub day: Date,
    /// Days handled so far (this one included).
    pub done: usize,
    /// Days to handle.
    pub total: usize,
    /// Whether it was computed (`false`: read from `daily_reports`).
    pub computed: bool,
}

/// The reports of the `days` days ending with `last_day` (oldest first), computed now: see
/// [`trend_at`].
pub async fn trend(
    store: &Store,
    last_day: Date,
    days: u32,
    tz: &TimeZone,
) -> Result<Vec<DailyReport>> {
    trend_at(store, last_day, days, tz, now(), &mut |_| {}).await
}

/// The reports of the `days` days ending with `last_day`, oldest first, as of `now`.
///
/// A day with a saved complete report of this version takes it; another is computed, and saved
/// if it is over (today's is not saved). Days that start after `now` are left out.
pub async fn trend_at(
    store: &Store,
    last_day: Date,
    days: u32,
    tz: &TimeZone,
    now: Timestamp,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Vec<DailyReport>> {
    if days == 0 {
        return Ok(Vec::new());
    }
    let first_day = last_day
        .checked_sub((i64::from(days) - 1).days())
        .map_err(time_error)?;
    let mut saved: HashMap<String, DailyReport> = HashMap::new();
    for stored in store
        .daily_reports_between(&first_day.to_string(), &last_day.to_string())
        .await?
    {
        // An unreadable or older report is recomputed.
        if let Ok(report) = DailyReport::from_json(&stored.body)
            && report.format_version == REPORT_FORMAT_VERSION
            && report.complete
        {
            saved.insert(stored.day, report);
        }
    }
    let total = usize::try_from(days).unwrap_or(usize::MAX);
    let mut reports = Vec::with_capacity(total);
    let mut day = first_day;
    for done in 1..=total {
        let (from, _) = day_bounds(day, tz)?;
        if from <= now {
            let key = day.to_string();
            let (report, computed) = match saved.remove(&key) {
                Some(report) => (report, false),
                None => {
                    let report = compute_day_at(store, day, tz, now).await?;
                    if report.complete {
                        store
                            .save_daily_report(&key, now, &report.to_json()?)
                            .await?;
                    }
                    (report, true)
                }
            };
            reports.push(report);
            progress(Progress {
                day,
                done,
                total,
                computed,
            });
        }
        if done < total {
            day = day.tomorrow().map_err(time_error)?;
        }
    }
    Ok(reports)
}

/// The day a report is about by default at `now` in `tz`: today from `hour` o'clock on (the
/// daily review), else yesterday.
pub fn default_day(now: Timestamp, tz: &TimeZone, hour: i8) -> Result<Date> {
    let local = to_jiff(now).to_zoned(tz.clone());
    if local.hour() >= hour {
        Ok(local.date())
    } else {
        local.date().yesterday().map_err(time_error)
    }
}
