//! `bascule report`: the daily indicators (the 17:00 review) on the command line.
//!
//! - `bascule report` prints today's report from 17:00 on, else yesterday's, as a readable
//!   table in the language of `LANG` (French unless it starts with `en`);
//! - `--date YYYY-MM-DD` picks the day, `--json` / `--csv` change the format;
//! - `--days N` prints the N days ending with that day, one line per day (computing the missing
//!   ones, with progress on standard error);
//! - `--recompute` computes again and saves, even when a report is saved already.
//!
//! A report of a day that is over is saved in the database the first time it is computed; a
//! day in progress is computed afresh each time (saved only with `--recompute`).

use std::fmt::Write as _;

use anyhow::Context as _;
use bascule_domain::time::Timestamp;
use bascule_report::{DailyReport, Lang, Progress};
use bascule_store::Store;
use clap::Args;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// From this hour on, the default day is today (the daily review is at 17:00).
const REVIEW_HOUR: i8 = 17;

/// `bascule report`'s options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReportArgs {
    /// The day, YYYY-MM-DD in the site's time zone (default: today from 17:00, else yesterday).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_date)]
    pub(crate) date: Option<Date>,
    /// Print JSON.
    #[arg(long, conflicts_with = "csv")]
    pub(crate) json: bool,
    /// Print CSV (`indicator;value`, or one line per day with --days).
    #[arg(long)]
    pub(crate) csv: bool,
    /// Compute again and save, even if a report is saved already.
    #[arg(long)]
    pub(crate) recompute: bool,
    /// Print the N days ending with --date, one line per day.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=366))]
    pub(crate) days: Option<u32>,
}

fn parse_date(text: &str) -> Result<Date, String> {
    text.trim().parse().map_err(|_| {
        format!("date attendue AAAA-MM-JJ, par exemple 2026-03-10 / expected YYYY-MM-DD, e.g. 2026-03-10: {text:?}")
    })
}

/// The language of `LC_ALL`, else `LANG`: English for `en…`, French otherwise.
pub(crate) fn lang_from_env() -> Lang {
    std::env::var("LC_ALL")
        .or_else(|_| std::env::var("LANG"))
        .map_or(Lang::Fr, |locale| Lang::from_locale(&locale))
}

/// Runs `bascule report`, printing to standard output (progress on standard error).
pub(crate) async fn run(
    store: &Store,
    tz: &TimeZone,
    args: ReportArgs,
    lang: Lang,
) -> anyhow::Result<()> {
    let now = Timestamp::from_unix_seconds(jiff::Timestamp::now().as_second());
    let mut out = String::new();
    run_at(store, tz, args, lang, now, &mut out, &mut |line| {
        eprintln!("{line}");
    })
    .await?;
    print!("{out}");
    Ok(())
}

/// [`run`] at `now`, writing to `out` and progress lines to `progress` (for tests).
pub(crate) async fn run_at(
    store: &Store,
    tz: &TimeZone,
    args: ReportArgs,
    lang: Lang,
    now: Timestamp,
    out: &mut String,
    progress: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<()> {
    let explain = |error: bascule_report::ReportError| anyhow::anyhow!(error.message(lang));
    let day = match args.date {
        Some(day) => day,
        None => bascule_report::default_day(now, tz, REVIEW_HOUR).map_err(explain)?,
    };
    let days = args.days.unwrap_or(1);
    let first = day
        .checked_sub(jiff::Span::new().days(i64::from(days) - 1))
        .context(lang.pick("date hors limites", "date out of range"))?;
    let mut say_progress = |step: Progress| {
        if step.computed && days > 1 {
            progress(match lang {
                Lang::Fr => format!("calcul du {} ({}/{})", step.day, step.done, step.total),
                Lang::En => format!("computing {} ({}/{})", step.day, step.done, step.total),
            });
        }
    };
    let reports = if args.recompute {
        let mut reports = Vec::new();
        let mut current = first;
        for done in 1..=usize::try_from(days).unwrap_or(1) {
            let (from, _) = bascule_report::day_bounds(current, tz).map_err(explain)?;
            if from <= now {
                let report = bascule_report::compute_and_store_at(store, current, tz, now)
                    .await
                    .map_err(explain)?;
                reports.push(report);
                say_progress(Progress {
                    day: current,
                    done,
                    total: usize::try_from(days).unwrap_or(1),
                    computed: true,
                });
            }
            current = current
                .tomorrow()
                .context(lang.pick("date hors limites", "date out of range"))?;
        }
        reports
    } else {
        bascule_report::trend_at(store, day, days, tz, now, &mut say_progress)
            .await
            .map_err(explain)?
    };
    if reports.is_empty() {
        anyhow::bail!(
            "{}",
            match lang {
                Lang::Fr => format!("le {day} n'a pas encore commencé"),
                Lang::En => format!("{day} has not begun yet"),
            }
        );
    }

    match (args.days.is_some(), args.json, args.csv) {
        (false, true, _) => {
            out.push_str(&reports[0].to_json().map_err(explain)?);
            out.push('\n');
        }
        (false, _, true) => out.push_str(&bascule_report::to_csv(&reports[0])),
        (false, ..) => out.push_str(&bascule_report::text_summary(&reports[0], lang)),
        (true, true, _) => {
            out.push_str(&serde_json::to_string_pretty(&reports)?);
            out.push('\n');
        }
        (true, _, true) => out.push_str(&bascule_report::trend_csv(&reports)),
        (true, ..) => trend_table(&reports, lang, out),
    }
    Ok(())
}

/// `10:15` of a report's local ISO time.
fn hh_mm(text: Option<&str>) -> String {
    text.and_then(|text| text.get(11..16))
        .unwrap_or("-")
        .to_owned()
}

/// Bytes as whole megabytes (10^6, rounded down).
fn megabytes(bytes: u64) -> String {
    (bytes / 1_000_000).to_string()
}

fn rtt(value: Option<u32>) -> String {
    match value {
        None => "-".into(),
        Some(u32::MAX) => ">5000".into(),
        Some(ms) => ms.to_string(),
    }
}

/// One line per day.
fn trend_table(reports: &[DailyReport], lang: Lang, out: &mut String) {
    let headers: [&str; 11] = match lang {
        Lang::Fr => [
            "jour",
            "util.",
            "pic",
            "à",
            "sessions",
            "Mo",
            "conn. refusées",
            "lanc. refusés",
            "RTT p50/p95 ms",
            "incidents",
            "licences",
        ],
        Lang::En => [
            "day",
            "users",
            "peak",
            "at",
            "sessions",
            "MB",
            "failed logins",
            "refused launches",
            "RTT p50/p95 ms",
            "incidents",
            "licences",
        ],
    };
    let rows: Vec<[String; 11]> = reports
        .iter()
        .map(|report| {
            let day = if report.complete {
                report.day.clone()
            } else {
                format!("{}*", report.day)
            };
            [
                day,
                report.distinct_users.to_string(),
                report.peak_concurrent_sessions.to_string(),
                hh_mm(report.peak_concurrent_at.as_deref()),
                report.sessions_started.to_string(),
                megabytes(report.bandwidth.total),
                report.failed_logins.to_string(),
                report.failed_launches.to_string(),
                format!("{}/{}", rtt(report.rtt_p50_ms), rtt(report.rtt_p95_ms)),
                report.incidents.to_string(),
                format!("{}/{}", report.licence_peak_in_use, report.licence_capacity),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([headers[column].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut text = String::new();
        for (column, cell) in cells.iter().enumerate() {
            if column == 0 {
                let _ = write!(text, "{cell:<width$}", width = widths[column]);
            } else {
                let _ = write!(text, "  {cell:>width$}", width = widths[column]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), out);
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), out);
    }
    if reports.iter().any(|report| !report.complete) {
        out.push_str(lang.pick("* journée en cours\n", "* day in progress\n"));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bascule_domain::id::{HostId, ResourceId, SessionId, UserId};
    use bascule_domain::inventory::{Host, Protocol};
    use bascule_domain::session::{EndReason, SessionRecord, SessionState};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        report: ReportArgs,
    }

    fn args(line: &[&str]) -> ReportArgs {
        Cli::try_parse_from(std::iter::once("report").chain(line.iter().copied()))
            .unwrap()
            .report
    }

    fn at(text: &str) -> Timestamp {
        let at: jiff::Timestamp = text.parse().unwrap();
        Timestamp::from_unix_seconds(at.as_second())
    }

    async fn store() -> (Store, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "bascule-report-cli-{}-{}.db",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        ));
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
            .upsert_host(&Host::new(
                HostId::new("h1"),
                "H1",
                Protocol::Rdp,
                "h1.lan",
                3389,
                10,
            ))
            .await
            .unwrap();
        // Two sessions on 10 March 2026 (Paris), 09:00–11:00 and 10:00–10:30.
        for (id, start, end) in [
            ("s1", "2026-03-10T08:00:00Z", "2026-03-10T10:00:00Z"),
            ("s2", "2026-03-10T09:00:00Z", "2026-03-10T09:30:00Z"),
        ] {
            let record = SessionRecord::restore(
                SessionId::new(id),
                UserId::new(format!("user-{id}")),
                ResourceId::new("desk"),
                HostId::new("h1"),
                SessionState::Ended {
                    at: at(end),
                    reason: EndReason::LoggedOff,
                },
                at(start),
            );
            store.record_session_start(&record, 10).await.unwrap();
        }
        (store, path)
    }

    async fn run_line(
        store: &Store,
        line: &[&str],
        lang: Lang,
        now: &str,
    ) -> (String, Vec<String>) {
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let mut out = String::new();
        let mut progress = Vec::new();
        run_at(
            store,
            &tz,
            args(line),
            lang,
            at(now),
            &mut out,
            &mut |line| progress.push(line),
        )
        .await
        .unwrap();
        (out, progress)
    }

    #[tokio::test]
    async fn formats_and_days() {
        let (store, path) = store().await;
        // From 17:00 on the 10th: the 10th, in progress (not saved).
        let (text, _) = run_line(&store, &[], Lang::En, "2026-03-10T16:00:00Z").await;
        assert!(
            text.starts_with("Bascule — indicators of 2026-03-10"),
            "{text}"
        );
        assert!(
            text.contains("Day in progress: figures as of 17:00."),
            "{text}"
        );
        assert!(
            store
                .get_daily_report("2026-03-10")
                .await
                .unwrap()
                .is_none()
        );
        // Before 17:00 on the 11th: yesterday (the 10th), over, saved.
        let (text, progress) = run_line(&store, &[], Lang::Fr, "2026-03-11T09:00:00Z").await;
        assert!(
            text.starts_with("Bascule — indicateurs du 2026-03-10"),
            "{text}"
        );
        assert!(
            text.contains("Pic de sessions simultanées              2 à 10:00"),
            "{text}"
        );
        assert!(!text.contains("Journée en cours"), "{text}");
        assert!(progress.is_empty());
        assert!(
            store
                .get_daily_report("2026-03-10")
                .await
                .unwrap()
                .is_some()
        );

        let (json, _) = run_line(
            &store,
            &["--date", "2026-03-10", "--json"],
            Lang::Fr,
            "2026-03-11T09:00:00Z",
        )
        .await;
        let report = DailyReport::from_json(&json).unwrap();
        assert_eq!(
            (report.distinct_users, report.peak_concurrent_sessions),
            (2, 2)
        );
        let (csv, _) = run_line(
            &store,
            &["--date", "2026-03-10", "--csv"],
            Lang::Fr,
            "2026-03-11T09:00:00Z",
        )
        .await;
        assert!(csv.starts_with("indicator;value\n"));
        assert!(csv.contains("\ndistinct_users;2\n"));

        // Three days: a table, progress for the days computed (the 10th is saved already).
        let (table, progress) = run_line(
            &store,
            &["--date", "2026-03-11", "--days", "3"],
            Lang::Fr,
            "2026-03-11T09:00:00Z",
        )
        .await;
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("jour"), "{table}");
        assert!(lines[1].starts_with("2026-03-09 "), "{table}");
        assert!(lines[2].starts_with("2026-03-10 "), "{table}");
        assert!(lines[2].contains("10:00"), "{table}");
        assert!(lines[3].starts_with("2026-03-11*"), "{table}");
        assert_eq!(lines[4], "* journée en cours");
        assert_eq!(
            progress,
            ["calcul du 2026-03-09 (1/3)", "calcul du 2026-03-11 (3/3)"]
        );
        let (csv, _) = run_line(
            &store,
            &["--date", "2026-03-10", "--days", "2", "--csv"],
            Lang::En,
            "2026-03-11T09:00:00Z",
        )
        .await;
        assert_eq!(csv.lines().count(), 3);

        // --recompute saves even a day in progress.
        run_line(
            &store,
            &["--date", "2026-03-11", "--recompute"],
            Lang::En,
            "2026-03-11T09:00:00Z",
        )
        .await;
        assert!(
            store
                .get_daily_report("2026-03-11")
                .await
                .unwrap()
                .is_some()
        );

        // Refusals.
        assert!(Cli::try_parse_from(["report", "--date", "10/03/2026"]).is_err());
        assert!(Cli::try_parse_from(["report", "--json", "--csv"]).is_err());
        assert!(Cli::try_parse_from(["report", "--days", "0"]).is_err());
        let tz = TimeZone::get("Europe/Paris").unwrap();
        let mut out = String::new();
        let error = run_at(
            &store,
            &tz,
            args(&["--date", "2026-04-01"]),
            Lang::Fr,
            at("2026-03-11T09:00:00Z"),
            &mut out,
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "le 2026-04-01 n'a pas encore commencé");
        store.close().await;
        let _ = std::fs::remove_file(&path);
    }
}
