//! The daily report end to end: a day seeded through the store on SQLite and on PostgreSQL
//! (`BASCULE_TEST_POSTGRES_URL`, one fresh schema per test; `scripts/test.sh` starts the server;
//! without it the PostgreSQL tests fail), and daylight-saving days on the pure core.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bascule_domain::id::{HostId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Host, Protocol};
use bascule_domain::session::{EndReason, FailReason, SessionRecord, SessionState};
use bascule_domain::time::Timestamp;
use bascule_report::{
    Bandwidth, DailyReport, DayInput, Lang, Progress, RttHistogram, SiteBandwidth, charts, compute,
    compute_and_store_at, compute_day_at, day_bounds, to_csv, trend_at, trend_csv,
};
use bascule_store::{AuditEntry, LicenceSample, NewIncident, SessionStats, Site, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use sqlx::Connection;

// ----- backends -----

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

async fn sqlite_store() -> (Store, PathBuf) {
    let path = std::env::temp_dir().join(format!("bascule-report-test-{}.db", unique_suffix()));
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, path)
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

async fn postgres_store() -> Store {
    let Ok(base) = std::env::var("BASCULE_TEST_POSTGRES_URL") else {
        panic!(
            "set BASCULE_TEST_POSTGRES_URL to a PostgreSQL server (scripts/test.sh starts one): \
             the daily report is tested on PostgreSQL too"
        );
    };
    let schema = format!("r_{}", unique_suffix());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let store = Store::connect(&format!(
        "{base}{separator}options=-c%20search_path%3D{schema}"
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    store
}

macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let (store, path) = super::sqlite_store().await;
                super::$body(store.clone()).await;
                store.close().await;
                super::remove_sqlite(&path);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let store = super::postgres_store().await;
                super::$body(store.clone()).await;
                store.close().await;
            }
        }
    )*};
}

on_both_backends!(seeded_day, trend_and_saved_reports);

// ----- the seeded day: Tuesday 10 March 2026, Europe/Paris (+01:00) -----

fn paris() -> TimeZone {
    TimeZone::get("Europe/Paris").unwrap()
}

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

/// `day` at `hh:mm[:ss]`, Paris time.
fn local(day: &str, time: &str) -> Timestamp {
    let time = if time.len() == 5 {
        format!("{time}:00")
    } else {
        time.to_owned()
    };
    let zoned: jiff::Zoned = format!("{day}T{time}[Europe/Paris]").parse().unwrap();
    Timestamp::from_unix_seconds(zoned.timestamp().as_second())
}

fn day10(time: &str) -> Timestamp {
    local("2026-03-10", time)
}

const HOURS: i64 = 3_600;

async fn host(store: &Store, id: &str) {
    store
        .upsert_host(&Host::new(
            HostId::new(id),
            id,
            Protocol::Rdp,
            format!("{id}.lan"),
            3389,
            100,
        ))
        .await
        .unwrap();
}

async fn session(
    store: &Store,
    id: &str,
    user: &str,
    resource: &str,
    host: &str,
    started: Timestamp,
    state: Option<SessionState>,
) {
    let record = SessionRecord::start(
        SessionId::new(id),
        UserId::new(user),
        ResourceId::new(resource),
        HostId::new(host),
        started,
    );
    store.record_session_start(&record, 1_000).await.unwrap();
    if let Some(state) = state {
        store
            .update_session_state(&SessionId::new(id), state)
            .await
            .unwrap();
    }
}

fn ended(at: Timestamp) -> Option<SessionState> {
    Some(SessionState::Ended {
        at,
        reason: EndReason::LoggedOff,
    })
}

async fn stats(
    store: &Store,
    id: &str,
    address: &str,
    to_client: u64,
    from_client: u64,
    rtt: &[(usize, u64)],
    updated_at: Timestamp,
) {
    let mut buckets = vec![0; 16];
    for &(bucket, count) in rtt {
        buckets[bucket] = count;
    }
    if id == "s-disc" {
        buckets = vec![1, 2]; // A histogram of another shape: ignored.
    }
    store
        .upsert_session_stats(&SessionStats {
            session: SessionId::new(id),
            client_address: Some(address.to_owned()),
            bytes_to_client: to_client,
            bytes_from_client: from_client,
            frames: 10,
            rtt_buckets: buckets,
            updated_at,
        })
        .await
        .unwrap();
}

async fn audit(store: &Store, at: Timestamp, action: &str, outcome: &str) {
    store
        .append_audit(&AuditEntry {
            at,
            actor: "agent".into(),
            action: action.into(),
            target: "portal".into(),
            address: Some("10.20.1.5".into()),
            outcome: outcome.into(),
        })
        .await
        .unwrap();
}

/// When the day's report is computed: the next morning.
fn next_morning() -> Timestamp {
    local("2026-03-11", "10:00")
}

/// Sessions with known lives (one across the previous midnight, two still live, one failed,
/// one entirely the day before), their counters from addresses in two sites and outside,
/// audit lines, incidents and licence samples.
async fn seed(store: &Store) {
    for id in ["h1", "h2", "h3", "h9"] {
        host(store, id).await;
    }
    store.set_licence_capacity(50).await.unwrap();
    for site in [
        Site {
            id: "meaux".into(),
            name: "MDS Meaux".into(),
            ranges: vec!["10.20.0.0/16".into()],
        },
        Site {
            id: "hq".into(),
            name: "Siège".into(),
            ranges: vec!["192.0.2.0/24".into(), "2001:db8:1::/48".into()],
        },
        Site {
            id: "lyon".into(),
            name: "R&D <Lyon>".into(),
            ranges: vec!["10.30.0.0/16".into()],
        },
    ] {
        store.upsert_site(&site).await.unwrap();
    }

    let previous = |time| local("2026-03-09", time);
    // Entirely before the day.
    session(
        store,
        "s-old",
        "u9",
        "old-app",
        "h9",
        local("2026-03-08", "09:00"),
        ended(previous("08:00")),
    )
    .await;
    // Across the previous midnight: 23:00 → 01:00.
    session(
        store,
        "s-night",
        "u1",
        "desk",
        "h1",
        previous("23:00"),
        ended(day10("01:00")),
    )
    .await;
    session(
        store,
        "s-a",
        "u2",
        "desk",
        "h1",
        day10("08:00"),
        ended(day10("12:00")),
    )
    .await;
    session(
        store,
        "s-b",
        "u3",
        "compta",
        "h2",
        day10("09:00"),
        Some(SessionState::Ended {
            at: day10("10:30"),
            reason: EndReason::IdleTimeout,
        }),
    )
    .await;
    session(
        store,
        "s-c",
        "u2",
        "compta",
        "h2",
        day10("09:30"),
        ended(day10("11:00")),
    )
    .await;
    // Still live (active) when the report is computed.
    session(
        store,
        "s-d",
        "u4",
        "desk",
        "h1",
        day10("10:00"),
        Some(SessionState::Active),
    )
    .await;
    // Failed after 30 s.
    session(
        store,
        "s-e",
        "u5",
        "desk",
        "h3",
        day10("10:00"),
        Some(SessionState::Failed {
            at: day10("10:00:30"),
            reason: FailReason::HostUnreachable,
        }),
    )
    .await;
    // Live, disconnected since 15:00.
    session(
        store,
        "s-disc",
        "u6",
        "compta",
        "h2",
        day10("14:00"),
        Some(SessionState::Disconnected {
            since: day10("15:00"),
        }),
    )
    .await;

    // Counters. RTT buckets: 2 = ≤20 ms, 3 = ≤30, 4 = ≤50, 9 = ≤300, 12 = ≤1000, 15 = over 5 s.
    stats(
        store,
        "s-old",
        "10.20.1.1",
        2_300,
        0,
        &[(15, 1_000)],
        previous("08:00"),
    )
    .await;
    stats(
        store,
        "s-night",
        "10.20.1.5",
        7_200_000,
        720_000,
        &[(2, 10)],
        day10("01:00"),
    )
    .await;
    stats(
        store,
        "s-a",
        "10.20.9.9",
        4_000_000,
        400_000,
        &[(3, 50)],
        day10("12:00"),
    )
    .await;
    stats(
        store,
        "s-b",
        "192.0.2.10",
        900_000,
        90_000,
        &[(4, 30)],
        day10("10:30"),
    )
    .await;
    stats(
        store,
        "s-c",
        "[2001:db8:1::7]:51000",
        1_000_000,
        100_000,
        &[(9, 5), (12, 5)],
        day10("11:00"),
    )
    .await;
    stats(
        store,
        "s-d",
        "203.0.113.5",
        2_400_000,
        240_000,
        &[],
        next_morning(),
    )
    .await;
    stats(
        store,
        "s-disc",
        "::ffff:10.20.3.3",
        500_000,
        50_000,
        &[],
        day10("15:00"),
    )
    .await;

    // Audit: 7 failed logins (4 reasons: the password step, a refused disabled account, the
    // TOTP step), 3 refused launches (2 codes), and lines that do not count (successes, another
    // action, the day before, the day after).
    for (time, action, outcome) in [
        ("07:55", "login", "failure: wrong credentials"),
        ("07:56", "login", "failure: wrong credentials"),
        ("07:57", "login", "failure: account locked"),
        ("08:01", "login", "success"),
        ("09:10", "login", "failure: wrong credentials"),
        ("09:11", "login", "failure: account locked"),
        ("09:12", "login", "refused: account disabled"),
        ("09:13", "login.totp", "failure: totp invalid code"),
        (
            "10:01",
            "launch",
            "refused: licences_exhausted: all 50 licences are in use",
        ),
        (
            "10:02",
            "launch",
            "refused: licences_exhausted: all 50 licences are in use",
        ),
        (
            "10:03",
            "launch",
            "refused: not_entitled: u3 may not use compta",
        ),
        ("10:04", "launch", "start session s-d on host h1 (12 ms)"),
    ] {
        audit(store, day10(time), action, outcome).await;
    }
    audit(
        store,
        previous("23:59"),
        "login",
        "failure: wrong credentials",
    )
    .await;
    audit(
        store,
        local("2026-03-11", "00:00"),
        "login",
        "failure: account locked",
    )
    .await;

    for (at, category) in [
        (day10("09:00"), "password"),
        (day10("11:00"), "network"),
        (day10("16:00"), "password"),
        (previous("16:00"), "printer"),
    ] {
        store
            .add_incident(&NewIncident {
                at,
                author: "hotline1".into(),
                user: Some(UserId::new("u2")),
                session: None,
                category: category.into(),
                text: "Appel".into(),
            })
            .await
            .unwrap();
    }

    for (at, in_use) in [
        (previous("23:30"), 40),
        (day10("08:00"), 1),
        (day10("10:00"), 5),
        (day10("10:05"), 5),
        (day10("14:00"), 2),
    ] {
        store
            .record_licence_sample(LicenceSample {
                at,
                in_use,
                capacity: 50,
            })
            .await
            .unwrap();
    }
}

fn by_reason(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs
        .iter()
        .map(|&(reason, count)| (reason.to_owned(), count))
        .collect()
}

fn site(
    id: Option<&str>,
    name: Option<&str>,
    to: u64,
    from: u64,
    sessions: u32,
    users: u32,
) -> SiteBandwidth {
    SiteBandwidth {
        site_id: id.map(str::to_owned),
        name: name.map(str::to_owned),
        bytes: Bandwidth {
            to_client: to,
            from_client: from,
            total: to + from,
        },
        sessions,
        users,
    }
}

fn assert_seeded_day(report: &DailyReport) {
    assert_eq!(report.format_version, 1);
    assert_eq!(report.day, "2026-03-10");
    assert_eq!(report.time_zone, "Europe/Paris");
    assert_eq!(report.from, "2026-03-10T00:00:00+01:00");
    assert_eq!(report.to, "2026-03-11T00:00:00+01:00");
    assert_eq!(report.hours_in_day, 24);
    assert_eq!(report.computed_at, "2026-03-11T10:00:00+01:00");
    assert!(report.complete);

    // Half of s-night (the day's hour of its two), all of s-a, s-b, s-c and s-disc, 14 of the
    // 24 hours s-d's counters cover.
    assert_eq!(
        report.bandwidth,
        Bandwidth {
            to_client: 3_600_000 + 4_000_000 + 900_000 + 1_000_000 + 1_400_000 + 500_000,
            from_client: 360_000 + 400_000 + 90_000 + 100_000 + 140_000 + 50_000,
            total: 12_540_000,
        }
    );
    assert_eq!(
        report.bandwidth_by_site,
        [
            site(Some("hq"), Some("Siège"), 1_900_000, 190_000, 2, 2),
            site(Some("lyon"), Some("R&D <Lyon>"), 0, 0, 0, 0),
            site(Some("meaux"), Some("MDS Meaux"), 8_100_000, 810_000, 3, 3),
            site(None, None, 1_400_000, 140_000, 1, 1),
        ]
    );

    // u1…u6 (not u9 of the day before); desk and compta; h1, h2, h3.
    assert_eq!(
        (
            report.distinct_users,
            report.distinct_resources,
            report.distinct_hosts
        ),
        (6, 2, 3)
    );
    // At 10:00: s-a, s-b, s-c, s-d and s-e (failed 30 s later).
    assert_eq!(report.peak_concurrent_sessions, 5);
    assert_eq!(
        report.peak_concurrent_at.as_deref(),
        Some("2026-03-10T10:00:00+01:00")
    );
    assert_eq!((report.sessions_started, report.sessions_failed), (6, 1));
    assert_eq!(
        report.session_seconds,
        u64::try_from(HOURS + 4 * HOURS + 5_400 + 5_400 + 14 * HOURS + 30 + 10 * HOURS).unwrap()
    );

    assert_eq!(report.failed_logins, 7);
    assert_eq!(
        report.failed_logins_by_reason,
        by_reason(&[
            ("account disabled", 1),
            ("account locked", 2),
            ("totp invalid code", 1),
            ("wrong credentials", 3)
        ])
    );
    assert_eq!(report.failed_launches, 3);
    assert_eq!(
        report.failed_launches_by_reason,
        by_reason(&[("licences_exhausted", 2), ("not_entitled", 1)])
    );

    // 100 round trips: 10 ≤ 20 ms, 50 ≤ 30, 30 ≤ 50, 5 ≤ 300, 5 ≤ 1000 (s-old's are not the
    // day's, s-disc's histogram has another shape).
    assert_eq!(report.rtt_histogram.total(), 100);
    assert_eq!(
        (report.rtt_p50_ms, report.rtt_p95_ms),
        (Some(30), Some(300))
    );

    assert_eq!(report.incidents, 3);
    assert_eq!(
        report.incidents_by_category,
        by_reason(&[("network", 1), ("password", 2)])
    );
    assert_eq!(
        (
            report.licence_peak_in_use,
            report.licence_peak_at.as_deref(),
            report.licence_capacity,
            report.licence_samples
        ),
        (5, Some("2026-03-10T10:00:00+01:00"), 50, 4)
    );

    // Hour by hour.
    assert_eq!(report.hours.len(), 24);
    let labels: Vec<_> = report
        .hours
        .iter()
        .map(|hour| hour.label.as_str())
        .collect();
    assert_eq!(labels[..3], ["00:00", "01:00", "02:00"]);
    assert_eq!(labels[23], "23:00");
    assert_eq!(report.hours[10].start, "2026-03-10T10:00:00+01:00");
    let concurrent: Vec<u32> = report
        .hours
        .iter()
        .map(|hour| hour.max_concurrent)
        .collect();
    assert_eq!(
        concurrent,
        [
            1, 0, 0, 0, 0, 0, 0, 0, 1, 3, 5, 2, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2
        ]
    );
    let started: Vec<u32> = report
        .hours
        .iter()
        .map(|hour| hour.sessions_started)
        .collect();
    assert_eq!(
        started,
        [
            0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    let bytes: Vec<u64> = report
        .hours
        .iter()
        .map(|hour| hour.bandwidth_bytes)
        .collect();
    assert_eq!(bytes.iter().sum::<u64>(), report.bandwidth.total);
    assert_eq!(bytes[0], 3_960_000);
    // 9:00–10:00: s-a 1.1 M, two thirds of s-b (660 k), a third of s-c (366 667, the rounding
    // unit going to the larger remainder).
    assert_eq!(bytes[9], 1_100_000 + 660_000 + 366_667);
    // 10:00–11:00: s-a, the last third of s-b, two thirds of s-c, one of s-d's 14 hours.
    assert_eq!(bytes[10], 1_100_000 + 330_000 + 733_333 + 110_000);
    assert_eq!(bytes[14], 550_000 + 110_000);
    assert_eq!(bytes[23], 110_000);
}

async fn seeded_day(store: Store) {
    seed(&store).await;
    let tz = paris();
    let day = date("2026-03-10");
    let report = compute_day_at(&store, day, &tz, next_morning())
        .await
        .unwrap();
    assert_seeded_day(&report);

    // JSON round trip, stable field names.
    let json = report.to_json().unwrap();
    assert!(
        json.contains("\"peak_concurrent_sessions\": 5"),
        "{json:.400}"
    );
    assert_eq!(DailyReport::from_json(&json).unwrap(), report);

    // CSV: one indicator per line.
    let csv = to_csv(&report);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "indicator;value");
    for expected in [
        "day;2026-03-10",
        "complete;1",
        "bandwidth_bytes;12540000",
        "bandwidth_bytes_to_client;11400000",
        "bandwidth_bytes.site.Siège;2090000",
        "bandwidth_bytes.site.R&D <Lyon>;0",
        "bandwidth_bytes.site.MDS Meaux;8910000",
        "bandwidth_bytes.other;1540000",
        "distinct_users;6",
        "distinct_resources;2",
        "distinct_hosts;3",
        "peak_concurrent_sessions;5",
        "peak_concurrent_at;2026-03-10T10:00:00+01:00",
        "sessions_started;6",
        "failed_logins;7",
        "failed_logins.reason.account disabled;1",
        "failed_logins.reason.account locked;2",
        "failed_logins.reason.totp invalid code;1",
        "failed_logins.reason.wrong credentials;3",
        "failed_launches;3",
        "failed_launches.reason.licences_exhausted;2",
        "failed_launches.reason.not_entitled;1",
        "rtt_p50_ms;30",
        "rtt_p95_ms;300",
        "incidents.category.password;2",
        "licence_peak_in_use;5",
        "licence_capacity;50",
        "concurrent_sessions.hour.10:00;5",
        "bandwidth_bytes.hour.00:00;3960000",
    ] {
        assert!(lines.contains(&expected), "{expected:?} not in\n{csv}");
    }
    assert!(
        lines
            .iter()
            .skip(1)
            .all(|line| line.split(';').count() == 2)
    );

    // Charts of the day.
    for svg in [
        charts::concurrency_by_hour(&report, Lang::Fr).unwrap(),
        charts::bandwidth_by_site(&report, Lang::En).unwrap(),
    ] {
        assert_safe_svg(&svg);
    }
    let sites = charts::bandwidth_by_site(&report, Lang::Fr).unwrap();
    assert!(sites.contains("R&amp;D &lt;Lyon&gt;"), "{sites}");
    assert!(
        sites.contains(">autre<") || sites.contains("autre\n"),
        "{sites}"
    );
    assert!(sites.contains("Mo"), "{sites}");

    // The same day at 17:00, not over: live sessions count up to then, and nothing after.
    let five = compute_day_at(&store, day, &tz, day10("17:00"))
        .await
        .unwrap();
    assert!(!five.complete);
    assert_eq!(five.peak_concurrent_sessions, 5);
    assert_eq!(
        five.session_seconds,
        u64::try_from(HOURS + 4 * HOURS + 5_400 + 5_400 + 7 * HOURS + 30 + 3 * HOURS).unwrap()
    );
    let concurrent: Vec<u32> = five.hours.iter().map(|hour| hour.max_concurrent).collect();
    assert_eq!(concurrent[16..], [2, 0, 0, 0, 0, 0, 0, 0]);
}

fn assert_safe_svg(svg: &str) {
    assert!(svg.starts_with("<svg"), "{svg:.200}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<text"));
    assert!(svg.contains("<title>"));
    let lower = svg.to_ascii_lowercase();
    for forbidden in ["<script", "style=", "<style", "href", "url(", "<image"] {
        assert!(!lower.contains(forbidden), "{forbidden} in {svg:.400}");
    }
}

async fn trend_and_saved_reports(store: Store) {
    seed(&store).await;
    let tz = paris();
    let now = next_morning();

    // Three days ending on the 10th: computed, and saved since they are over.
    let mut seen = Vec::new();
    let reports = trend_at(
        &store,
        date("2026-03-10"),
        3,
        &tz,
        now,
        &mut |progress: Progress| {
            seen.push(progress);
        },
    )
    .await
    .unwrap();
    let days: Vec<_> = reports.iter().map(|report| report.day.as_str()).collect();
    assert_eq!(days, ["2026-03-08", "2026-03-09", "2026-03-10"]);
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|progress| progress.computed && progress.total == 3)
    );
    assert_eq!(seen[2].done, 3);
    assert_seeded_day(&reports[2]);
    // The 9th: s-old until 08:00, the first hour of s-night; s-old's 2 300 bytes over 23 hours
    // give the 9th its last 8.
    let ninth = &reports[1];
    assert_eq!(
        (ninth.distinct_users, ninth.peak_concurrent_sessions),
        (2, 1)
    );
    assert_eq!(
        ninth.bandwidth,
        Bandwidth {
            to_client: 3_600_000 + 800,
            from_client: 360_000,
            total: 3_960_800
        }
    );
    assert_eq!((ninth.failed_logins, ninth.incidents), (1, 1));
    assert_eq!(ninth.licence_peak_in_use, 40);
    let stored = store
        .daily_reports_between("2026-03-01", "2026-03-31")
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[2].computed_at, now);
    assert_eq!(DailyReport::from_json(&stored[2].body).unwrap(), reports[2]);

    // Again: read back, not computed.
    let mut seen = Vec::new();
    let again = trend_at(
        &store,
        date("2026-03-10"),
        3,
        &tz,
        now,
        &mut |progress: Progress| {
            seen.push(progress);
        },
    )
    .await
    .unwrap();
    assert_eq!(again, reports);
    assert!(seen.iter().all(|progress| !progress.computed));

    // Up to the 12th at 10:00 on the 11th: the 12th has not begun (left out), the 11th is not
    // over (computed, not saved).
    let mut seen = Vec::new();
    let recent = trend_at(
        &store,
        date("2026-03-12"),
        3,
        &tz,
        now,
        &mut |progress: Progress| {
            seen.push(progress);
        },
    )
    .await
    .unwrap();
    let days: Vec<_> = recent.iter().map(|report| report.day.as_str()).collect();
    assert_eq!(days, ["2026-03-10", "2026-03-11"]);
    assert_eq!(
        seen.iter()
            .map(|progress| progress.computed)
            .collect::<Vec<_>>(),
        [false, true]
    );
    assert!(!recent[1].complete);
    // The 11th so far: s-d (live) and s-disc since midnight, 10 hours each.
    assert_eq!(recent[1].session_seconds, 2 * 10 * 3_600);
    assert_eq!(recent[1].failed_logins, 1);
    assert_eq!(store.get_daily_report("2026-03-11").await.unwrap(), None);

    // The 17:00 run saves today's report, not over: a later trend recomputes it once over.
    let partial = compute_and_store_at(
        &store,
        date("2026-03-11"),
        &tz,
        local("2026-03-11", "17:00"),
    )
    .await
    .unwrap();
    assert!(!partial.complete);
    let saved = store.get_daily_report("2026-03-11").await.unwrap().unwrap();
    assert_eq!(DailyReport::from_json(&saved.body).unwrap(), partial);
    let later = local("2026-03-12", "08:00");
    let mut seen = Vec::new();
    let over = trend_at(
        &store,
        date("2026-03-11"),
        1,
        &tz,
        later,
        &mut |progress: Progress| {
            seen.push(progress);
        },
    )
    .await
    .unwrap();
    assert!(seen[0].computed);
    assert!(over[0].complete);
    assert_eq!(over[0].session_seconds, 2 * 24 * 3_600);
    let saved = store.get_daily_report("2026-03-11").await.unwrap().unwrap();
    assert_eq!(saved.computed_at, later);
    assert_eq!(DailyReport::from_json(&saved.body).unwrap(), over[0]);

    // Trend exports.
    let csv = trend_csv(&reports);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("day;complete;bandwidth_bytes;"));
    assert!(lines[0].ends_with(";licence_capacity"));
    assert_eq!(lines[0].split(';').count(), lines[3].split(';').count());
    assert!(
        lines[3].starts_with("2026-03-10;1;12540000;11400000;1140000;6;2;3;5;2026-03-10T10:00:00+01:00;6;1;7;3;30;300;3;5;50"),
        "{}",
        lines[3]
    );
    for svg in [
        charts::trend_concurrency(&reports, Lang::Fr).unwrap(),
        charts::trend_bandwidth(&reports, Lang::En).unwrap(),
    ] {
        assert_safe_svg(&svg);
    }
}

// ----- daylight-saving days, on the pure core -----

fn at_utc(text: &str) -> Timestamp {
    let at: jiff::Timestamp = text.parse().unwrap();
    Timestamp::from_unix_seconds(at.as_second())
}

fn record(id: &str, started: Timestamp, state: SessionState) -> SessionRecord {
    SessionRecord::restore(
        SessionId::new(id),
        UserId::new(id),
        ResourceId::new("desk"),
        HostId::new("h1"),
        state,
        started,
    )
}

#[test]
fn spring_forward_day_has_23_hours() {
    let tz = paris();
    let day = date("2026-03-29");
    let (from, to) = day_bounds(day, &tz).unwrap();
    assert_eq!(from, at_utc("2026-03-28T23:00:00Z"));
    assert_eq!(to, at_utc("2026-03-29T22:00:00Z"));

    let mut input = DayInput::new(day, &tz, at_utc("2026-03-30T12:00:00Z")).unwrap();
    // 01:30 +01:00 → 03:30 +02:00: one real hour across the skipped one.
    input.sessions.push(record(
        "across",
        at_utc("2026-03-29T00:30:00Z"),
        SessionState::Ended {
            at: at_utc("2026-03-29T01:30:00Z"),
            reason: EndReason::LoggedOff,
        },
    ));
    // 22:30 → 23:30 local (+02:00).
    input.sessions.push(record(
        "evening",
        at_utc("2026-03-29T20:30:00Z"),
        SessionState::Ended {
            at: at_utc("2026-03-29T21:30:00Z"),
            reason: EndReason::LoggedOff,
        },
    ));
    let mut histogram = RttHistogram::new();
    histogram.record(12);
    for (id, bytes) in [("across", 3_600), ("evening", 7_200)] {
        input.stats.push(SessionStats {
            session: SessionId::new(id),
            client_address: None,
            bytes_to_client: bytes,
            bytes_from_client: 0,
            frames: 1,
            rtt_buckets: histogram.to_counts(),
            updated_at: at_utc("2026-03-29T21:30:00Z"),
        });
    }
    let report = compute(&input, &tz);
    assert_eq!(report.hours_in_day, 23);
    assert_eq!(report.from, "2026-03-29T00:00:00+01:00");
    assert_eq!(report.to, "2026-03-30T00:00:00+02:00");
    let labels: Vec<_> = report
        .hours
        .iter()
        .map(|hour| hour.label.as_str())
        .collect();
    assert_eq!(labels.len(), 23);
    assert_eq!(labels[..4], ["00:00", "01:00", "03:00", "04:00"]);
    assert_eq!(labels[22], "23:00");
    assert_eq!(report.hours[2].start, "2026-03-29T03:00:00+02:00");
    let concurrent: Vec<u32> = report
        .hours
        .iter()
        .map(|hour| hour.max_concurrent)
        .collect();
    let mut expected = vec![0; 23];
    expected[1] = 1; // 01:00–02:00 (+01:00)
    expected[2] = 1; // 03:00–04:00 (+02:00)
    expected[21] = 1; // 22:00
    expected[22] = 1; // 23:00
    assert_eq!(concurrent, expected);
    let bytes: Vec<u64> = report
        .hours
        .iter()
        .map(|hour| hour.bandwidth_bytes)
        .collect();
    assert_eq!(
        (bytes[1], bytes[2], bytes[21], bytes[22]),
        (1_800, 1_800, 3_600, 3_600)
    );
    assert_eq!(report.session_seconds, 2 * 3_600);
    assert_eq!(
        report.peak_concurrent_at.as_deref(),
        Some("2026-03-29T01:30:00+01:00")
    );
    assert_eq!(report.rtt_p50_ms, Some(20));
    // The summary says so.
    assert!(bascule_report::text_summary(&report, Lang::Fr).contains("journée de 23 heures"));
    assert!(bascule_report::text_summary(&report, Lang::En).contains("a 23-hour day"));
}

#[test]
fn fall_back_day_has_25_hours() {
    let tz = paris();
    let day = date("2026-10-25");
    let (from, to) = day_bounds(day, &tz).unwrap();
    assert_eq!(to.unix_seconds() - from.unix_seconds(), 25 * HOURS);
    let mut input = DayInput::new(day, &tz, at_utc("2026-10-26T12:00:00Z")).unwrap();
    // The second 02:00–03:00 (+01:00) only.
    input.sessions.push(record(
        "repeat",
        at_utc("2026-10-25T01:00:00Z"),
        SessionState::Ended {
            at: at_utc("2026-10-25T02:00:00Z"),
            reason: EndReason::LoggedOff,
        },
    ));
    let report = compute(&input, &tz);
    assert_eq!(report.hours_in_day, 25);
    let labels: Vec<_> = report
        .hours
        .iter()
        .map(|hour| hour.label.as_str())
        .collect();
    assert_eq!(
        labels[..5],
        ["00:00", "01:00", "02:00", "02:00+01:00", "03:00"]
    );
    assert_eq!(report.hours[2].start, "2026-10-25T02:00:00+02:00");
    assert_eq!(report.hours[3].start, "2026-10-25T02:00:00+01:00");
    let concurrent: Vec<u32> = report
        .hours
        .iter()
        .map(|hour| hour.max_concurrent)
        .collect();
    assert_eq!(concurrent[..5], [0, 0, 0, 1, 0]);
    assert_eq!(
        report.peak_concurrent_at.as_deref(),
        Some("2026-10-25T02:00:00+01:00")
    );
    let csv = to_csv(&report);
    assert!(
        csv.contains("\nconcurrent_sessions.hour.02:00+01:00;1\n"),
        "{csv}"
    );
    assert!(csv.contains("\nhours_in_day;25\n"));
}

#[test]
fn an_empty_day() {
    let tz = paris();
    let input = DayInput::new(date("2026-03-10"), &tz, day10("12:00")).unwrap();
    let report = compute(&input, &tz);
    assert!(!report.complete);
    assert_eq!(report.peak_concurrent_sessions, 0);
    assert_eq!(report.peak_concurrent_at, None);
    assert_eq!((report.rtt_p50_ms, report.rtt_p95_ms), (None, None));
    assert_eq!(report.bandwidth_by_site, [site(None, None, 0, 0, 0, 0)]);
    let csv = to_csv(&report);
    assert!(
        csv.contains("\nrtt_p50_ms;\n") && csv.contains("\npeak_concurrent_at;\n"),
        "{csv}"
    );
    for svg in [
        charts::concurrency_by_hour(&report, Lang::En).unwrap(),
        charts::bandwidth_by_site(&report, Lang::Fr).unwrap(),
        charts::trend_concurrency(&[], Lang::Fr).unwrap(),
        charts::trend_bandwidth(std::slice::from_ref(&report), Lang::En).unwrap(),
    ] {
        assert_safe_svg(&svg);
    }
    let summary = bascule_report::text_summary(&report, Lang::En);
    assert!(
        summary.contains("Day in progress: figures as of 12:00."),
        "{summary}"
    );
}
