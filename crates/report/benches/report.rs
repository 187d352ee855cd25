//! How long the daily report takes at the reference site's size: 1,500 users, 1,200 sessions a
//! day with their counters and audit lines, minute licence samples, 30 days, on SQLite in a
//! temporary directory.
//!
//! `cargo bench -p bascule-report` prints a table on standard output (progress on standard
//! error). The data is seeded with `Store::import` (one transaction) from a deterministic
//! generator, then measured: loading one day, the pure computation, `compute_day`, and 30 days
//! through `trend` with nothing saved, then all saved.

use std::time::{Duration, Instant};

use bascule_domain::time::Timestamp;
use bascule_report::{RTT_BUCKETS, compute, compute_day_at, day_bounds, load_day, trend_at};
use bascule_store::backup::{
    AuditRow, IncidentRow, LicenceUsageRow, SessionRow, SessionStatsRow, SettingRow, SiteRow,
};
use bascule_store::{Backup, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;

const USERS: u64 = 1_500;
const SESSIONS_PER_DAY: u64 = 1_200;
const DAYS: u32 = 30;
const HOSTS: u64 = 40;
const RESOURCES: u64 = 12;
const RUNS: usize = 10;

/// SplitMix64: deterministic, good enough to spread test data.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn seconds(&mut self, bound: u64) -> i64 {
        i64::try_from(self.below(bound)).unwrap_or(0)
    }
}

fn progress(text: &str) {
    eprintln!("[bench] {text}");
}

fn first_day() -> Date {
    jiff::civil::date(2026, 2, 1)
}

/// 30 days of the reference site, as a backup to import.
fn generate(tz: &TimeZone) -> Result<Backup, Box<dyn std::error::Error>> {
    let mut random = Random(0x0ba5_c01e);
    let mut backup = Backup {
        format: Backup::FORMAT.into(),
        version: Backup::VERSION,
        schema: 3,
        created_at: 0,
        users: Vec::new(),
        groups: Vec::new(),
        memberships: Vec::new(),
        hosts: Vec::new(),
        pools: Vec::new(),
        pool_hosts: Vec::new(),
        resources: Vec::new(),
        entitlements: Vec::new(),
        policies: Vec::new(),
        sessions: Vec::new(),
        licence_usage: Vec::new(),
        audit: Vec::new(),
        settings: vec![SettingRow {
            key: "licence_capacity".into(),
            value: "1000".into(),
        }],
        sites: Vec::new(),
        incidents: Vec::new(),
        session_stats: Vec::new(),
        daily_reports: Vec::new(),
    };
    for (index, name) in ["Meaux", "Melun", "Provins", "Fontainebleau", "Torcy"]
        .iter()
        .enumerate()
    {
        backup.sites.push(SiteRow {
            id: name.to_lowercase(),
            name: format!("MDS {name}"),
            ranges: format!("10.{}.0.0/16,2001:db8:{}::/48", 20 + index, 20 + index),
        });
    }
    let audit = |at: i64, actor: String, action: &str, outcome: String| AuditRow {
        at,
        actor,
        action: action.into(),
        target: "portal".into(),
        address: Some("10.20.1.1".into()),
        outcome,
    };
    let mut day = first_day();
    for day_index in 0..DAYS {
        let (from, _) = day_bounds(day, tz)?;
        let from = from.unix_seconds();
        let last_day = day_index + 1 == DAYS;
        for n in 0..SESSIONS_PER_DAY {
            let id = format!("d{day_index:02}-s{n:04}");
            let user = format!("u{:04}", random.below(USERS));
            let evening = random.below(100) < 3;
            let start = if evening {
                from + 20 * 3_600 + random.seconds(3 * 3_600 + 1_800)
            } else {
                from + 7 * 3_600 + 1_800 + random.seconds(10 * 3_600 + 1_800)
            };
            let failed = random.below(100) < 2;
            let live = last_day && n % 40 == 0;
            let duration = if failed {
                5 + random.seconds(55)
            } else if evening {
                3_600 + random.seconds(3 * 3_600)
            } else {
                1_800 + random.seconds(7 * 3_600 + 1_800)
            };
            let end = start + duration;
            let (state, state_at, reason) = if failed {
                ("failed", Some(end), Some("host_unreachable"))
            } else if live {
                ("active", None, None)
            } else {
                ("ended", Some(end), Some("logged_off"))
            };
            backup.sessions.push(SessionRow {
                id: id.clone(),
                user_id: user.clone(),
                resource_id: format!("desk-{}", random.below(RESOURCES)),
                host_id: format!("rdsh-{:02}", random.below(HOSTS)),
                state: state.into(),
                state_at,
                state_reason: reason.map(str::to_owned),
                started_at: start,
            });
            backup
                .audit
                .push(audit(start - 20, user.clone(), "login", "success".into()));
            backup.audit.push(audit(
                start - 5,
                user.clone(),
                "launch",
                format!("start session {id} on host h (12 ms)"),
            ));
            backup
                .audit
                .push(audit(end, user.clone(), "session.end", "logged_off".into()));
            if failed {
                continue;
            }
            let site = random.below(6);
            let client = if site == 5 {
                format!("203.0.113.{}", random.below(250))
            } else {
                format!(
                    "10.{}.{}.{}",
                    20 + site,
                    random.below(250),
                    random.below(250)
                )
            };
            let minutes = u64::try_from(duration / 60).unwrap_or(1).max(1);
            let mut buckets = vec![0_u64; RTT_BUCKETS];
            for _ in 0..20 {
                let bucket = usize::try_from(random.below(8)).unwrap_or(0);
                buckets[bucket] += minutes;
            }
            backup.session_stats.push(SessionStatsRow {
                session_id: id,
                client_address: Some(client),
                bytes_to_client: i64::try_from(minutes * (200_000 + random.below(2_000_000)))?,
                bytes_from_client: i64::try_from(minutes * (20_000 + random.below(100_000)))?,
                frames: i64::try_from(minutes * 600)?,
                rtt_buckets: serde_json::to_string(&buckets)?,
                updated_at: end,
            });
        }
        // Failed logins and refused launches, incidents.
        let reasons = ["wrong credentials", "account locked", "address throttled"];
        let codes = [
            "licences_exhausted",
            "not_entitled",
            "outside_allowed_hours",
        ];
        for n in 0..80 {
            let at = from + 7 * 3_600 + random.seconds(11 * 3_600);
            backup.audit.push(audit(
                at,
                format!("u{:04}", random.below(USERS)),
                "login",
                format!("failure: {}", reasons[n % 3]),
            ));
        }
        for n in 0..40 {
            let at = from + 7 * 3_600 + random.seconds(11 * 3_600);
            backup.audit.push(audit(
                at,
                format!("u{:04}", random.below(USERS)),
                "launch",
                format!("refused: {}: detail", codes[n % 3]),
            ));
        }
        for n in 0..15 {
            backup.incidents.push(IncidentRow {
                at: from + 8 * 3_600 + random.seconds(9 * 3_600),
                author: format!("hotline{}", n % 8),
                user_id: Some(format!("u{:04}", random.below(USERS))),
                session_id: None,
                category: ["password", "printer", "network", "slow", "other"][n % 5].into(),
                text: "Appel de l'agent".into(),
            });
        }
        // A licence sample every minute.
        for minute in 0..24 * 60 {
            let at = from + minute * 60;
            let hour = minute / 60;
            let in_use = if (8..18).contains(&hour) {
                400 + random.below(200)
            } else {
                random.below(40)
            };
            backup.licence_usage.push(LicenceUsageRow {
                at,
                in_use: i64::try_from(in_use)?,
                capacity: 1_000,
            });
        }
        day = day.tomorrow()?;
    }
    backup.audit.sort_by_key(|row| row.at);
    Ok(backup)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1_000.0)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let tz = TimeZone::get("Europe/Paris")?;
    let dir = std::env::temp_dir().join(format!("bascule-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.db");
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    store.migrate().await?;

    progress("generating 30 days of data");
    let started = Instant::now();
    let backup = generate(&tz)?;
    let (sessions, stats, audit, samples) = (
        backup.sessions.len(),
        backup.session_stats.len(),
        backup.audit.len(),
        backup.licence_usage.len(),
    );
    progress(&format!(
        "importing {sessions} sessions, {stats} counters, {audit} audit lines, {samples} licence samples"
    ));
    store.import(&backup).await?;
    let seeded = started.elapsed();
    drop(backup);

    let last_day = first_day().checked_add(jiff::Span::new().days(i64::from(DAYS) - 1))?;
    let (_, to) = day_bounds(last_day, &tz)?;
    let now = Timestamp::from_unix_seconds(to.unix_seconds() + 10 * 3_600);

    progress(&format!("one day ({last_day}), {RUNS} runs"));
    let mut loads = Vec::new();
    let mut computes = Vec::new();
    let mut wholes = Vec::new();
    let mut report = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        let input = load_day(&store, last_day, &tz, now).await?;
        loads.push(start.elapsed());
        let start = Instant::now();
        let computed = compute(&input, &tz);
        computes.push(start.elapsed());
        let start = Instant::now();
        let whole = compute_day_at(&store, last_day, &tz, now).await?;
        wholes.push(start.elapsed());
        assert_eq!(whole, computed);
        report = Some(whole);
    }
    let report = report.ok_or("no run")?;

    progress("30 days, nothing saved yet");
    let start = Instant::now();
    let cold = trend_at(&store, last_day, DAYS, &tz, now, &mut |step| {
        progress(&format!(
            "  {} ({}/{}){}",
            step.day,
            step.done,
            step.total,
            if step.computed { "" } else { " saved" }
        ));
    })
    .await?;
    let cold_time = start.elapsed();
    progress("30 days, all saved");
    let start = Instant::now();
    let warm = trend_at(&store, last_day, DAYS, &tz, now, &mut |_| {}).await?;
    let warm_time = start.elapsed();
    assert_eq!(cold, warm);

    println!();
    println!(
        "bascule-report on SQLite: {DAYS} days × {SESSIONS_PER_DAY} sessions/day, {USERS} users"
    );
    println!(
        "data: {sessions} sessions, {stats} counters, {audit} audit lines, {samples} licence samples (seeded in {:.1} s)",
        seeded.as_secs_f64()
    );
    println!();
    println!("| measure                                   | time (median of {RUNS}) |");
    println!("|-------------------------------------------|---------------------|");
    println!(
        "| load one day (7 queries)                  | {:>19} |",
        ms(median(loads))
    );
    println!(
        "| compute one day (pure)                    | {:>19} |",
        ms(median(computes))
    );
    println!(
        "| compute_day (load + compute)              | {:>19} |",
        ms(median(wholes))
    );
    println!(
        "| 30 days, nothing saved (compute + save)   | {:>19} |",
        ms(cold_time)
    );
    println!(
        "| 30 days, all saved (read back)            | {:>19} |",
        ms(warm_time)
    );
    println!();
    println!(
        "{last_day}: {} users, peak {} sessions at {}, {} bytes, RTT p50 {:?} ms p95 {:?} ms, {} failed logins, {} refused launches",
        report.distinct_users,
        report.peak_concurrent_sessions,
        report.peak_concurrent_at.as_deref().unwrap_or("-"),
        report.bandwidth.total,
        report.rtt_p50_ms,
        report.rtt_p95_ms,
        report.failed_logins,
        report.failed_launches,
    );

    store.close().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run())
}
