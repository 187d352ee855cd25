//! Exports: CSV (one indicator per line, or one day per line) and the readable summary of the
//! mail and the command line.

use std::fmt::Write as _;

use crate::Lang;
use crate::compute::DailyReport;
use crate::timefmt::hh_mm;

/// One CSV field: quoted when it holds the separator, a quote or a line break; a text that a
/// spreadsheet would take for a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`.
fn field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([';', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn optional<T: ToString>(value: Option<T>) -> String {
    value.map(|value| value.to_string()).unwrap_or_default()
}

/// The report as CSV: a header `indicator;value`, then one line per indicator (UTF-8, `;`,
/// integers without separators, times as local ISO 8601 with offset, booleans 0/1). Per-site,
/// per-reason, per-category and per-hour lines have keys such as
/// `bandwidth_bytes.site.<name>`, `bandwidth_bytes.other`, `failed_logins.reason.<reason>`,
/// `failed_launches.reason.<code>`, `incidents.category.<category>`,
/// `concurrent_sessions.hour.<HH:MM>` and `bandwidth_bytes.hour.<HH:MM>`. An empty value means
/// "no data" (no RTT measure, no session).
pub fn to_csv(report: &DailyReport) -> String {
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut line = |key: &str, value: String| lines.push((key.to_owned(), value));
    line("day", report.day.clone());
    line("time_zone", report.time_zone.clone());
    line("from", report.from.clone());
    line("to", report.to.clone());
    line("hours_in_day", report.hours_in_day.to_string());
    line("computed_at", report.computed_at.clone());
    line("complete", u8::from(report.complete).to_string());
    line("bandwidth_bytes", report.bandwidth.total.to_string());
    line(
        "bandwidth_bytes_to_client",
        report.bandwidth.to_client.to_string(),
    );
    line(
        "bandwidth_bytes_from_client",
        report.bandwidth.from_client.to_string(),
    );
    for site in &report.bandwidth_by_site {
        let key = match &site.name {
            Some(name) => format!("bandwidth_bytes.site.{name}"),
            None => "bandwidth_bytes.other".to_owned(),
        };
        line(&key, site.bytes.total.to_string());
    }
    line("distinct_users", report.distinct_users.to_string());
    line("distinct_resources", report.distinct_resources.to_string());
    line("distinct_hosts", report.distinct_hosts.to_string());
    line(
        "peak_concurrent_sessions",
        report.peak_concurrent_sessions.to_string(),
    );
    line(
        "peak_concurrent_at",
        optional(report.peak_concurrent_at.as_ref()),
    );
    line("sessions_started", report.sessions_started.to_string());
    line("sessions_failed", report.sessions_failed.to_string());
    line("session_seconds", report.session_seconds.to_string());
    line("failed_logins", report.failed_logins.to_string());
    for (reason, count) in &report.failed_logins_by_reason {
        line(&format!("failed_logins.reason.{reason}"), count.to_string());
    }
    line("failed_launches", report.failed_launches.to_string());
    for (reason, count) in &report.failed_launches_by_reason {
        line(
            &format!("failed_launches.reason.{reason}"),
            count.to_string(),
        );
    }
    line("rtt_p50_ms", optional(report.rtt_p50_ms));
    line("rtt_p95_ms", optional(report.rtt_p95_ms));
    line("rtt_samples", report.rtt_histogram.total().to_string());
    line("incidents", report.incidents.to_string());
    for (category, count) in &report.incidents_by_category {
        line(&format!("incidents.category.{category}"), count.to_string());
    }
    line(
        "licence_peak_in_use",
        report.licence_peak_in_use.to_string(),
    );
    line("licence_peak_at", optional(report.licence_peak_at.as_ref()));
    line("licence_capacity", report.licence_capacity.to_string());
    line("licence_samples", report.licence_samples.to_string());
    for hour in &report.hours {
        line(
            &format!("concurrent_sessions.hour.{}", hour.label),
            hour.max_concurrent.to_string(),
        );
    }
    for hour in &report.hours {
        line(
            &format!("bandwidth_bytes.hour.{}", hour.label),
            hour.bandwidth_bytes.to_string(),
        );
    }
    let mut csv = String::from("indicator;value\n");
    for (key, value) in lines {
        let _ = writeln!(csv, "{};{}", field(&key), field(&value));
    }
    csv
}

/// The columns of [`trend_csv`].
const TREND_COLUMNS: [&str; 18] = [
    "day",
    "complete",
    "bandwidth_bytes",
    "bandwidth_bytes_to_client",
    "bandwidth_bytes_from_client",
    "distinct_users",
    "distinct_resources",
    "distinct_hosts",
    "peak_concurrent_sessions",
    "peak_concurrent_at",
    "sessions_started",
    "sessions_failed",
    "failed_logins",
    "failed_launches",
    "rtt_p50_ms",
    "rtt_p95_ms",
    "incidents",
    "licence_peak_in_use",
];

/// Several days as CSV: a header row, then one row per day in the given order (same
/// conventions as [`to_csv`]; the licence capacity is the last column).
pub fn trend_csv(reports: &[DailyReport]) -> String {
    let mut csv = TREND_COLUMNS.join(";");
    csv.push_str(";licence_capacity\n");
    for report in reports {
        let values = [
            report.day.clone(),
            u8::from(report.complete).to_string(),
            report.bandwidth.total.to_string(),
            report.bandwidth.to_client.to_string(),
            report.bandwidth.from_client.to_string(),
            report.distinct_users.to_string(),
            report.distinct_resources.to_string(),
            report.distinct_hosts.to_string(),
            report.peak_concurrent_sessions.to_string(),
            optional(report.peak_concurrent_at.as_ref()),
            report.sessions_started.to_string(),
            report.sessions_failed.to_string(),
            report.failed_logins.to_string(),
            report.failed_launches.to_string(),
            optional(report.rtt_p50_ms),
            optional(report.rtt_p95_ms),
            report.incidents.to_string(),
            report.licence_peak_in_use.to_string(),
            report.licence_capacity.to_string(),
        ];
        let row: Vec<String> = values.iter().map(|value| field(value)).collect();
        csv.push_str(&row.join(";"));
        csv.push('\n');
    }
    csv
}

/// `1234567` as `1 234 567` (French, narrow no-break space) or `1,234,567` (English).
pub(crate) fn grouped(value: u64, lang: Lang) -> String {
    let digits = value.to_string();
    let separator = lang.pick("\u{202f}", ",");
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(digit);
    }
    out
}

/// A byte count for a person: `1,5 Go` / `1.5 GB` (powers of 1000), exact below 1000.
pub(crate) fn human_bytes(bytes: u64, lang: Lang) -> String {
    const UNITS_FR: [&str; 5] = ["octets", "Ko", "Mo", "Go", "To"];
    const UNITS_EN: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let units = match lang {
        Lang::Fr => UNITS_FR,
        Lang::En => UNITS_EN,
    };
    if bytes < 1_000 {
        return format!("{bytes} {}", units[0]);
    }
    // Tenths of the unit, in integers.
    let mut unit = 0;
    let mut scale = 1_u64;
    while unit + 1 < units.len() && bytes / scale >= 1_000 {
        scale *= 1_000;
        unit += 1;
    }
    let tenths_of =
        |scale: u64| (u128::from(bytes) * 10 + u128::from(scale) / 2) / u128::from(scale);
    let mut tenths = tenths_of(scale);
    if tenths >= 10_000 && unit + 1 < units.len() {
        // Rounding reached 1000.0: the next unit.
        scale *= 1_000;
        unit += 1;
        tenths = tenths_of(scale);
    }
    let decimal = lang.pick(",", ".");
    format!("{}{decimal}{} {}", tenths / 10, tenths % 10, units[unit])
}

/// `RTT` in ms for a person (`≤ 30 ms`, `> 5000 ms`, `–`).
pub(crate) fn rtt_text(ms: Option<u32>, lang: Lang) -> String {
    match ms {
        None => "–".to_owned(),
        Some(u32::MAX) => format!("> {} ms", grouped(5_000, lang)),
        Some(ms) => format!("≤ {} ms", grouped(u64::from(ms), lang)),
    }
}

/// A readable summary of the report in `lang`: the mail's body and the command line's table.
pub fn text_summary(report: &DailyReport, lang: Lang) -> String {
    let mut out = String::new();
    let title = match lang {
        Lang::Fr => format!(
            "Bascule — indicateurs du {} ({})",
            report.day, report.time_zone
        ),
        Lang::En => format!(
            "Bascule — indicators of {} ({})",
            report.day, report.time_zone
        ),
    };
    let _ = writeln!(out, "{title}");
    if !report.complete {
        let until = hh_mm(&report.computed_at);
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::Fr => format!("Journée en cours : chiffres arrêtés à {until}."),
                Lang::En => format!("Day in progress: figures as of {until}."),
            }
        );
    }
    if report.hours_in_day != 24 {
        let _ = writeln!(
            out,
            "{}",
            match lang {
                Lang::Fr => format!(
                    "Changement d'heure : journée de {} heures.",
                    report.hours_in_day
                ),
                Lang::En => format!("Clock change: a {}-hour day.", report.hours_in_day),
            }
        );
    }
    let _ = writeln!(out);
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<40} {value}");
    };
    let n = |value: u32| grouped(u64::from(value), lang);
    row(
        lang.pick("Utilisateurs distincts", "Distinct users"),
        n(report.distinct_users),
    );
    row(
        lang.pick("Ressources distinctes", "Distinct resources"),
        n(report.distinct_resources),
    );
    row(
        lang.pick("Hôtes distincts", "Distinct hosts"),
        n(report.distinct_hosts),
    );
    let peak_at = report
        .peak_concurrent_at
        .as_deref()
        .map(|at| format!(" {} {}", lang.pick("à", "at"), hh_mm(at)))
        .unwrap_or_default();
    row(
        lang.pick("Pic de sessions simultanées", "Peak concurrent sessions"),
        format!("{}{peak_at}", n(report.peak_concurrent_sessions)),
    );
    row(
        lang.pick("Sessions ouvertes", "Sessions started"),
        n(report.sessions_started),
    );
    row(
        lang.pick("Sessions en échec", "Sessions failed"),
        n(report.sessions_failed),
    );
    let minutes = report.session_seconds / 60;
    row(
        lang.pick("Temps de session cumulé", "Total session time"),
        format!("{} h {:02} min", grouped(minutes / 60, lang), minutes % 60),
    );
    let exact = if report.bandwidth.total >= 1_000 {
        format!(
            " ({} {})",
            grouped(report.bandwidth.total, lang),
            lang.pick("octets", "bytes")
        )
    } else {
        String::new()
    };
    row(
        lang.pick("Bande passante", "Bandwidth"),
        format!("{}{exact}", human_bytes(report.bandwidth.total, lang)),
    );
    for site in &report.bandwidth_by_site {
        row(
            &format!("  {}", site.label(lang)),
            format!(
                "{} — {} {}, {} {}",
                human_bytes(site.bytes.total, lang),
                n(site.sessions),
                if site.sessions > 1 {
                    "sessions"
                } else {
                    "session"
                },
                n(site.users),
                match (lang, site.users > 1) {
                    (Lang::Fr, true) => "utilisateurs",
                    (Lang::Fr, false) => "utilisateur",
                    (Lang::En, true) => "users",
                    (Lang::En, false) => "user",
                },
            ),
        );
    }
    row(
        lang.pick("Connexions refusées", "Failed logins"),
        n(report.failed_logins),
    );
    for (reason, count) in &report.failed_logins_by_reason {
        row(&format!("  {reason}"), n(*count));
    }
    row(
        lang.pick("Lancements refusés", "Refused launches"),
        n(report.failed_launches),
    );
    for (reason, count) in &report.failed_launches_by_reason {
        row(&format!("  {reason}"), n(*count));
    }
    row(
        lang.pick("Latence (RTT) médiane", "Median latency (RTT)"),
        rtt_text(report.rtt_p50_ms, lang),
    );
    row(
        lang.pick("Latence (RTT) 95e centile", "Latency (RTT) 95th percentile"),
        rtt_text(report.rtt_p95_ms, lang),
    );
    row(
        lang.pick("Incidents signalés au support", "Helpdesk incidents"),
        n(report.incidents),
    );
    for (category, count) in &report.incidents_by_category {
        row(&format!("  {category}"), n(*count));
    }
    let licence_at = report
        .licence_peak_at
        .as_deref()
        .map(|at| format!(" {} {}", lang.pick("à", "at"), hh_mm(at)))
        .unwrap_or_default();
    let percent = if report.licence_capacity > 0 {
        format!(
            " ({} %)",
            u64::from(report.licence_peak_in_use) * 100 / u64::from(report.licence_capacity)
        )
    } else {
        String::new()
    };
    row(
        lang.pick("Licences : pic d'utilisation", "Licences: peak in use"),
        format!(
            "{} / {}{percent}{licence_at}",
            n(report.licence_peak_in_use),
            n(report.licence_capacity)
        ),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_escaped() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a;b"), "\"a;b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1"), "'-1");
        assert_eq!(field("l1\nl2"), "\"l1\nl2\"");
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(grouped(1_234_567, Lang::En), "1,234,567");
        assert_eq!(grouped(1_234_567, Lang::Fr), "1\u{202f}234\u{202f}567");
        assert_eq!(grouped(999, Lang::Fr), "999");
        assert_eq!(human_bytes(999, Lang::Fr), "999 octets");
        assert_eq!(human_bytes(1_500, Lang::En), "1.5 kB");
        assert_eq!(human_bytes(2_345_678_901, Lang::Fr), "2,3 Go");
        assert_eq!(human_bytes(999_960, Lang::En), "1.0 MB");
        assert_eq!(rtt_text(Some(30), Lang::En), "≤ 30 ms");
        assert_eq!(rtt_text(Some(u32::MAX), Lang::Fr), "> 5\u{202f}000 ms");
        assert_eq!(rtt_text(None, Lang::Fr), "–");
    }
}
