//! The pure core: a day's records in, the day's indicators out.
//!
//! Rules, so that every figure can be checked by hand:
//! - **A session's life** is `[started_at, end)`: `end` is the time it ended or failed, or, for a
//!   session still live, the end of the day or `now` if earlier. Active and disconnected time
//!   count alike. A session *belongs to the day* when its life overlaps the day (or, lasting
//!   zero seconds, starts in it): it counts in the distinct users, resources and hosts.
//! - **Concurrency** is the number of lives containing an instant (an end and a start at the same
//!   second do not overlap); the peak is the maximum over the day, at the first instant reached.
//! - **Bandwidth**: a session's counters (`session_stats`, cumulative) are spread evenly over
//!   `[started_at, end)` (for a live session, up to the counters' `updated_at`), and the day
//!   (each hour) gets the share of that interval it contains, rounded down for the day and split
//!   exactly among its hours. A session spanning midnight is thus split between the two days.
//!   Its site is that of its client address (most specific range; no range: "other").
//! - **RTT**: the histograms of the sessions of the day are merged (a session spanning midnight
//!   counts on both days); p50 and p95 are upper bounds of buckets.
//! - **Failed logins**: audit lines `login` or `login.totp` whose outcome starts with `failure:`
//!   or `refused:`, by the text after it. **Failed launches**: audit lines `launch` whose outcome starts with `refused:`, by
//!   the code after it, up to the next `:`.
//! - **Licences**: the highest `in_use` sampled in the day, against the highest capacity sampled
//!   (or the configured capacity when there is no sample).

use std::collections::{BTreeMap, HashMap, HashSet};

use bascule_domain::session::{SessionRecord, SessionState};
use bascule_domain::time::Timestamp;
use bascule_store::{AuditEntry, Incident, LicenceSample, SessionStats, Site};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::histogram::RttHistogram;
use crate::sites::SiteMap;
use crate::timefmt::{iso_local, zone_name, zoned};

/// The layout version of [`DailyReport`]; a stored report of another version is recomputed.
pub const REPORT_FORMAT_VERSION: u32 = 1;

const SECONDS_PER_HOUR: i64 = 3_600;

/// Everything [`compute`] needs about one day.
#[derive(Debug, Clone)]
pub struct DayInput {
    /// The site-local day.
    pub day: Date,
    /// Its first second: local midnight.
    pub from: Timestamp,
    /// The next local midnight (23, 24 or 25 hours later).
    pub to: Timestamp,
    /// When the report is computed: live sessions end here if it is before `to`.
    pub now: Timestamp,
    /// The sessions overlapping `[from, to)` (others are ignored).
    pub sessions: Vec<SessionRecord>,
    /// Their counters (those of other sessions are ignored).
    pub stats: Vec<SessionStats>,
    /// The audit lines of the day.
    pub audit: Vec<AuditEntry>,
    /// The helpdesk incidents of the day.
    pub incidents: Vec<Incident>,
    /// The licence samples of the day.
    pub licence_samples: Vec<LicenceSample>,
    /// The configured licence capacity (used when the day has no sample).
    pub capacity: u32,
    /// The sites, in their order (ties between equally specific ranges go to the first).
    pub sites: Vec<Site>,
}

impl DayInput {
    /// An input for `day` in `tz` with no records, computed at `now`.
    pub fn new(day: Date, tz: &TimeZone, now: Timestamp) -> Result<Self> {
        let (from, to) = crate::shell::day_bounds(day, tz)?;
        Ok(Self {
            day,
            from,
            to,
            now,
            sessions: Vec::new(),
            stats: Vec::new(),
            audit: Vec::new(),
            incidents: Vec::new(),
            licence_samples: Vec::new(),
            capacity: 0,
            sites: Vec::new(),
        })
    }
}

/// Bytes exchanged with the browsers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Sent to the browsers.
    pub to_client: u64,
    /// Received from the browsers.
    pub from_client: u64,
    /// Both.
    pub total: u64,
}

impl Bandwidth {
    fn add(&mut self, to_client: u64, from_client: u64) {
        self.to_client = self.to_client.saturating_add(to_client);
        self.from_client = self.from_client.saturating_add(from_client);
        self.total = self.to_client.saturating_add(self.from_client);
    }
}

/// The bandwidth of one site (or of the addresses in no site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteBandwidth {
    /// The site's id; `None` for addresses in no site ("other" / "autre").
    pub site_id: Option<String>,
    /// The site's name; `None` for "other".
    pub name: Option<String>,
    /// Its bytes of the day.
    pub bytes: Bandwidth,
    /// Its sessions of the day that have counters.
    pub sessions: u32,
    /// Their distinct users.
    pub users: u32,
}

impl SiteBandwidth {
    /// The name to show: the site's, or "autre" / "other".
    pub fn label(&self, lang: crate::Lang) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| lang.pick("autre", "other").to_owned())
    }
}

/// One hour of the day (a real hour: a 23-hour day has 23 of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourPoint {
    /// Its start, local time with offset.
    pub start: String,
    /// `HH:MM` local; an hour repeated by the autumn change has its offset appended
    /// (`02:00+01:00`).
    pub label: String,
    /// The most sessions live at once during the hour.
    pub max_concurrent: u32,
    /// Sessions started during the hour.
    pub sessions_started: u32,
    /// Bytes (both ways) attributed to the hour.
    pub bandwidth_bytes: u64,
}

/// The indicators of one day. Field names are stable (JSON, CSV, the console's API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyReport {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The site-local day, `YYYY-MM-DD`.
    pub day: String,
    /// The site's time zone (IANA name).
    pub time_zone: String,
    /// The day's first second, local time with offset.
    pub from: String,
    /// The next day's first second.
    pub to: String,
    /// 24, or 23 / 25 on daylight-saving days.
    pub hours_in_day: u32,
    /// When this report was computed.
    pub computed_at: String,
    /// Whether the day was over when computed (else live sessions were counted up to then).
    pub complete: bool,
    /// Bytes of the day, all sites.
    pub bandwidth: Bandwidth,
    /// Bytes per site, sites by id, then "other" (always present).
    pub bandwidth_by_site: Vec<SiteBandwidth>,
    /// Distinct users with a session in the day.
    pub distinct_users: u32,
    /// Distinct resources (desktops, applications) used.
    pub distinct_resources: u32,
    /// Distinct hosts used.
    pub distinct_hosts: u32,
    /// The most sessions live at the same time.
    pub peak_concurrent_sessions: u32,
    /// When that peak was first reached (local time with offset); `None` without sessions.
    pub peak_concurrent_at: Option<String>,
    /// Sessions started in the day.
    pub sessions_started: u32,
    /// Sessions that failed in the day.
    pub sessions_failed: u32,
    /// Session time within the day, summed over sessions, in seconds.
    pub session_seconds: u64,
    /// Failed logins.
    pub failed_logins: u32,
    /// Failed logins by reason (`wrong credentials`, `account locked`, …).
    pub failed_logins_by_reason: BTreeMap<String, u32>,
    /// Refused launches.
    pub failed_launches: u32,
    /// Refused launches by code (`licences_exhausted`, `not_entitled`, …).
    pub failed_launches_by_reason: BTreeMap<String, u32>,
    /// Median round-trip time (upper bound of its bucket, ms); `None` without measures.
    pub rtt_p50_ms: Option<u32>,
    /// 95th percentile of the round-trip time (ms).
    pub rtt_p95_ms: Option<u32>,
    /// The merged RTT histogram of the day's sessions.
    pub rtt_histogram: RttHistogram,
    /// Helpdesk incidents.
    pub incidents: u32,
    /// Incidents by category.
    pub incidents_by_category: BTreeMap<String, u32>,
    /// The most licences in use in one sample.
    pub licence_peak_in_use: u32,
    /// When that was first sampled; `None` without samples.
    pub licence_peak_at: Option<String>,
    /// The licence capacity.
    pub licence_capacity: u32,
    /// Licence samples taken in the day.
    pub licence_samples: u32,
    /// The hours of the day, for charts.
    pub hours: Vec<HourPoint>,
}

impl DailyReport {
    /// The report as JSON (pretty-printed).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a report written by [`DailyReport::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    /// The day as a date.
    pub fn date(&self) -> Result<Date> {
        self.day.parse().map_err(crate::error::time_error)
    }
}

/// A session's life, and how it sits in the day.
struct Life<'a> {
    session: &'a SessionRecord,
    start: i64,
    end: i64,
    /// Ended or failed (its end is final).
    over: bool,
}

impl Life<'_> {
    fn in_day(&self, from: i64, to: i64) -> bool {
        (self.start < to && self.end > from)
            || (self.start == self.end && from <= self.start && self.start < to)
    }
}

/// The length of `[a, b) ∩ [c, d)`.
fn overlap(a: i64, b: i64, c: i64, d: i64) -> i64 {
    (b.min(d) - a.max(c)).max(0)
}

/// `total × part / whole`, rounded down, without overflow (`whole` > 0, `part` ≤ `whole`).
fn share(total: u64, part: i64, whole: i64) -> u64 {
    let (Ok(part), Ok(whole)) = (u128::try_from(part), u128::try_from(whole)) else {
        return 0;
    };
    if whole == 0 {
        return 0;
    }
    u64::try_from(u128::from(total) * part / whole).unwrap_or(u64::MAX)
}

/// Splits `amount` in proportion to `weights`, exactly (largest remainders, ties to the first).
fn apportion(amount: u64, weights: &[(usize, i64)]) -> Vec<(usize, u64)> {
    let whole: i64 = weights.iter().map(|&(_, weight)| weight).sum();
    if whole <= 0 {
        return Vec::new();
    }
    let whole_u = u128::try_from(whole).unwrap_or(1);
    let mut parts: Vec<(usize, u64, u128)> = weights
        .iter()
        .map(|&(key, weight)| {
            let scaled = u128::from(amount) * u128::try_from(weight).unwrap_or(0);
            (
                key,
                u64::try_from(scaled / whole_u).unwrap_or(u64::MAX),
                scaled % whole_u,
            )
        })
        .collect();
    let given: u64 = parts.iter().map(|&(_, part, _)| part).sum();
    let mut left = amount.saturating_sub(given);
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].2.cmp(&parts[a].2).then(a.cmp(&b)));
    for index in order {
        if left == 0 {
            break;
        }
        parts[index].1 += 1;
        left -= 1;
    }
    parts
        .into_iter()
        .map(|(key, part, _)| (key, part))
        .collect()
}

fn count(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Computes the indicators of `input.day`; local times are written in `tz`.
pub fn compute(input: &DayInput, tz: &TimeZone) -> DailyReport {
    let from = input.from.unix_seconds();
    let to = input.to.unix_seconds().max(from);
    let now = input.now.unix_seconds();
    let live_end = to.min(now);
    let hours = usize::try_from((to - from + SECONDS_PER_HOUR - 1) / SECONDS_PER_HOUR).unwrap_or(0);
    let hour_of = |at: i64| -> Option<usize> {
        if at < from || at >= to {
            return None;
        }
        usize::try_from((at - from) / SECONDS_PER_HOUR).ok()
    };

    // Lives of the day's sessions.
    let lives: Vec<Life<'_>> = input
        .sessions
        .iter()
        .map(|session| {
            let start = session.started_at().unix_seconds();
            let (end, over) = match session.state() {
                SessionState::Ended { at, .. } | SessionState::Failed { at, .. } => {
                    (at.unix_seconds(), true)
                }
                _ => (live_end, false),
            };
            Life {
                session,
                start,
                end: end.max(start),
                over,
            }
        })
        .filter(|life| life.in_day(from, to))
        .collect();

    let mut users = HashSet::new();
    let mut resources = HashSet::new();
    let mut hosts = HashSet::new();
    let mut session_seconds = 0_u64;
    let mut events: Vec<(i64, i32)> = Vec::with_capacity(lives.len() * 2);
    for life in &lives {
        users.insert(life.session.user().as_str());
        resources.insert(life.session.resource().as_str());
        hosts.insert(life.session.host().as_str());
        let (start, end) = (life.start.max(from), life.end.min(to));
        if start < end {
            events.push((start, 1));
            events.push((end, -1));
            session_seconds += u64::try_from(end - start).unwrap_or(0);
        }
    }

    // Concurrency: a step function, constant between distinct event times.
    events.sort_unstable();
    let mut steps: Vec<(i64, i64)> = Vec::new(); // (from this time, this many live)
    let mut live = 0_i64;
    let mut index = 0;
    while index < events.len() {
        let at = events[index].0;
        while index < events.len() && events[index].0 == at {
            live += i64::from(events[index].1);
            index += 1;
        }
        steps.push((at, live));
    }
    let mut peak = 0_i64;
    let mut peak_at = None;
    let mut hour_max = vec![0_i64; hours];
    for (position, &(at, live)) in steps.iter().enumerate() {
        if live > peak {
            peak = live;
            peak_at = Some(at);
        }
        let until = steps
            .get(position + 1)
            .map_or(to, |&(next, _)| next)
            .min(to);
        if live > 0
            && at < until
            && let (Some(first), Some(last)) = (hour_of(at), hour_of(until - 1))
        {
            for slot in &mut hour_max[first..=last] {
                *slot = (*slot).max(live);
            }
        }
    }

    // Sessions started and failed.
    let mut sessions_started = 0_usize;
    let mut hour_started = vec![0_u32; hours];
    let mut sessions_failed = 0_usize;
    for session in &input.sessions {
        if let Some(hour) = hour_of(session.started_at().unix_seconds()) {
            sessions_started += 1;
            hour_started[hour] += 1;
        }
        if let SessionState::Failed { at, .. } = session.state()
            && (from..to).contains(&at.unix_seconds())
        {
            sessions_failed += 1;
        }
    }

    // Bandwidth and RTT, from the counters of the day's sessions.
    let site_map = SiteMap::new(&input.sites);
    let other = site_map.sites().len();
    let mut by_site = vec![(Bandwidth::default(), 0_usize, HashSet::new()); other + 1];
    let mut bandwidth = Bandwidth::default();
    let mut hour_bytes = vec![0_u64; hours];
    let mut rtt = RttHistogram::new();
    let by_id: HashMap<&str, &Life<'_>> = lives
        .iter()
        .map(|life| (life.session.id().as_str(), life))
        .collect();
    for stats in &input.stats {
        let Some(life) = by_id.get(stats.session.as_str()) else {
            continue;
        };
        if let Ok(histogram) = RttHistogram::from_counts(&stats.rtt_buckets) {
            rtt.merge(&histogram);
        }
        // The interval the counters cover.
        let start = life.start;
        let end = if life.over {
            life.end
        } else {
            stats.updated_at.unix_seconds().max(start)
        };
        let (to_client, from_client, weights) = if end > start {
            let part = overlap(start, end, from, to);
            let weights: Vec<(usize, i64)> = (0..hours)
                .filter_map(|hour| {
                    let hour_start = from + SECONDS_PER_HOUR * i64::try_from(hour).ok()?;
                    let weight = overlap(
                        start,
                        end,
                        hour_start,
                        (hour_start + SECONDS_PER_HOUR).min(to),
                    );
                    (weight > 0).then_some((hour, weight))
                })
                .collect();
            (
                share(stats.bytes_to_client, part, end - start),
                share(stats.bytes_from_client, part, end - start),
                weights,
            )
        } else {
            match hour_of(start) {
                Some(hour) => (
                    stats.bytes_to_client,
                    stats.bytes_from_client,
                    vec![(hour, 1)],
                ),
                None => (0, 0, Vec::new()),
            }
        };
        bandwidth.add(to_client, from_client);
        for (hour, bytes) in apportion(to_client.saturating_add(from_client), &weights) {
            hour_bytes[hour] = hour_bytes[hour].saturating_add(bytes);
        }
        let site = stats
            .client_address
            .as_deref()
            .and_then(|address| site_map.site_of_text(address))
            .unwrap_or(other);
        let (site_bytes, site_sessions, site_users) = &mut by_site[site];
        site_bytes.add(to_client, from_client);
        *site_sessions += 1;
        site_users.insert(life.session.user().as_str());
    }
    let bandwidth_by_site = by_site
        .into_iter()
        .enumerate()
        .map(|(index, (bytes, sessions, users))| {
            let site = site_map.sites().get(index);
            SiteBandwidth {
                site_id: site.map(|(id, _)| id.clone()),
                name: site.map(|(_, name)| name.clone()),
                bytes,
                sessions: count(sessions),
                users: count(users.len()),
            }
        })
        .collect();

    // Audit: failed logins and refused launches.
    let mut failed_logins_by_reason = BTreeMap::new();
    let mut failed_launches_by_reason = BTreeMap::new();
    for entry in input
        .audit
        .iter()
        .filter(|entry| (from..to).contains(&entry.at.unix_seconds()))
    {
        // `login` (password) and `login.totp` (second factor) failures; a refused login
        // (`refused: account disabled`, `refused: csrf`) counts too.
        let login_failure = if entry.action == "login" || entry.action == "login.totp" {
            entry.outcome.strip_prefix("failure:").or_else(|| entry.outcome.strip_prefix("refused:"))
        } else {
            None
        };
        if let Some(reason) = login_failure {
            *failed_logins_by_reason
                .entry(reason_text(reason))
                .or_insert(0_u32) += 1;
        } else if entry.action == "launch"
            && let Some(rest) = entry.outcome.strip_prefix("refused:")
        {
            let code = rest.split(':').next().unwrap_or_default();
            *failed_launches_by_reason
                .entry(reason_text(code))
                .or_insert(0_u32) += 1;
        }
    }

    // Incidents.
    let mut incidents_by_category = BTreeMap::new();
    for incident in input
        .incidents
        .iter()
        .filter(|incident| (from..to).contains(&incident.at.unix_seconds()))
    {
        *incidents_by_category
            .entry(reason_text(&incident.category))
            .or_insert(0_u32) += 1;
    }

    // Licences.
    let mut licence_peak_in_use = 0;
    let mut licence_peak_at = None;
    let mut sampled_capacity = None;
    let mut licence_samples = 0_usize;
    for sample in input
        .licence_samples
        .iter()
        .filter(|sample| (from..to).contains(&sample.at.unix_seconds()))
    {
        licence_samples += 1;
        if licence_peak_at.is_none() || sample.in_use > licence_peak_in_use {
            licence_peak_in_use = sample.in_use;
            licence_peak_at = Some(sample.at);
        }
        sampled_capacity = Some(sampled_capacity.unwrap_or(0).max(sample.capacity));
    }

    // The hours, labelled in local time.
    let mut seen_labels = HashSet::new();
    let hour_points = (0..hours)
        .map(|hour| {
            let start = from + SECONDS_PER_HOUR * i64::try_from(hour).unwrap_or(0);
            let local = zoned(Timestamp::from_unix_seconds(start), tz);
            let mut label = local.strftime("%H:%M").to_string();
            if !seen_labels.insert(label.clone()) {
                label = local.strftime("%H:%M%:z").to_string();
            }
            HourPoint {
                start: iso_local(Timestamp::from_unix_seconds(start), tz),
                label,
                max_concurrent: u32::try_from(hour_max[hour]).unwrap_or(0),
                sessions_started: hour_started[hour],
                bandwidth_bytes: hour_bytes[hour],
            }
        })
        .collect();

    let failed_logins = failed_logins_by_reason.values().sum();
    let failed_launches = failed_launches_by_reason.values().sum();
    let incidents = incidents_by_category.values().sum();
    DailyReport {
        format_version: REPORT_FORMAT_VERSION,
        day: input.day.to_string(),
        time_zone: zone_name(tz),
        from: iso_local(input.from, tz),
        to: iso_local(Timestamp::from_unix_seconds(to), tz),
        hours_in_day: count(hours),
        computed_at: iso_local(input.now, tz),
        complete: now >= to,
        bandwidth,
        bandwidth_by_site,
        distinct_users: count(users.len()),
        distinct_resources: count(resources.len()),
        distinct_hosts: count(hosts.len()),
        peak_concurrent_sessions: u32::try_from(peak).unwrap_or(0),
        peak_concurrent_at: peak_at.map(|at| iso_local(Timestamp::from_unix_seconds(at), tz)),
        sessions_started: count(sessions_started),
        sessions_failed: count(sessions_failed),
        session_seconds,
        failed_logins,
        failed_logins_by_reason,
        failed_launches,
        failed_launches_by_reason,
        rtt_p50_ms: rtt.quantile(0.5),
        rtt_p95_ms: rtt.quantile(0.95),
        rtt_histogram: rtt,
        incidents,
        incidents_by_category,
        licence_peak_in_use,
        licence_peak_at: licence_peak_at.map(|at| iso_local(at, tz)),
        licence_capacity: sampled_capacity.unwrap_or(input.capacity),
        licence_samples: count(licence_samples),
        hours: hour_points,
    }
}

/// A reason or category as a key: trimmed, `unknown` if empty.
fn reason_text(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        "unknown".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn apportion_is_exact() {
        assert_eq!(
            apportion(10, &[(0, 1), (1, 1), (2, 1)]),
            [(0, 4), (1, 3), (2, 3)]
        );
        assert_eq!(apportion(7, &[(3, 3600), (4, 1800)]), [(3, 5), (4, 2)]);
        assert_eq!(apportion(5, &[]), []);
        let parts = apportion(u64::MAX, &[(0, 1), (1, 2)]);
        assert_eq!(
            parts
                .iter()
                .map(|&(_, part)| u128::from(part))
                .sum::<u128>(),
            u128::from(u64::MAX)
        );
    }

    #[test]
    fn share_rounds_down() {
        assert_eq!(share(7_200, 3_600, 7_200), 3_600);
        assert_eq!(share(10, 1, 3), 3);
        assert_eq!(share(u64::MAX, 1, 1), u64::MAX);
        assert_eq!(share(5, 1, 0), 0);
    }
}
