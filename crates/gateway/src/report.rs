//! The daily report in the console (`/console/report`), its exports, and its schedule (17:00
//! site time by default, then optionally mailed).

use crate::console::{Agent, layout};
use crate::i18n::{Lang, escape};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bascule_report::DailyReport;
use serde::Deserialize;

fn l(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::Fr { fr } else { en }
}

fn report_lang(lang: Lang) -> bascule_report::Lang {
    if lang == Lang::Fr { bascule_report::Lang::Fr } else { bascule_report::Lang::En }
}

/// The routes under `/console`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/report", get(page))
        .route("/report.csv", get(csv))
        .route("/report.json", get(json))
        .route("/report/trend.csv", get(trend_csv))
}

#[derive(Deserialize, Default)]
struct DayQuery {
    #[serde(default)]
    day: String,
}

/// The day asked for, or the default one (today from 17:00, else yesterday).
fn day_of(state: &AppState, query: &DayQuery) -> Result<jiff::civil::Date, String> {
    if query.day.is_empty() {
        let now = bascule_domain::time::Timestamp::from_unix_seconds(jiff::Timestamp::now().as_second());
        return bascule_report::default_day(now, &state.plane.timezone, 17).map_err(|e| e.to_string());
    }
    query.day.parse().map_err(|_| format!("{:?} is not a date (YYYY-MM-DD)", query.day))
}

async fn report_of(state: &AppState, day: jiff::civil::Date) -> Result<DailyReport, String> {
    bascule_report::compute_day(&state.plane.store, day, &state.plane.timezone).await.map_err(|e| e.to_string())
}

fn figure(title: &str, svg: Result<String, bascule_report::ReportError>) -> String {
    match svg {
        Ok(svg) => format!(r#"<figure><figcaption>{}</figcaption>{svg}</figure>"#, escape(title)),
        Err(error) => format!(r#"<figure><figcaption>{}</figcaption><p class="error">{}</p></figure>"#, escape(title), escape(&error.to_string())),
    }
}

async fn page(State(state): State<AppState>, agent: Agent, Query(query): Query<DayQuery>) -> Response {
    let lang = agent.lang;
    let day = match day_of(&state, &query) {
        Ok(day) => day,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    let report = match report_of(&state, day).await {
        Ok(report) => report,
        Err(error) => return (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    };
    let trend = bascule_report::trend(&state.plane.store, day, 30, &state.plane.timezone).await.unwrap_or_default();
    let rl = report_lang(lang);
    let mb = |bytes: u64| format!("{:.1}", bytes as f64 / 1_000_000.0);
    let list = |map: &std::collections::BTreeMap<String, u32>| -> String {
        if map.is_empty() {
            return "–".into();
        }
        map.iter().map(|(k, v)| format!("{} : {v}", escape(k))).collect::<Vec<_>>().join("<br>")
    };
    let sites: String = report
        .bandwidth_by_site
        .iter()
        .map(|s| format!("{} : {} {}", escape(&s.label(rl)), mb(s.bytes.total), l(lang, "Mo", "MB")))
        .collect::<Vec<_>>()
        .join("<br>");
    let rows = [
        (l(lang, "Bande passante consommée (Mo)", "Bandwidth consumed (MB)"), mb(report.bandwidth.total)),
        (l(lang, "… par site", "… per site"), sites),
        (l(lang, "Utilisateurs distincts", "Distinct users"), report.distinct_users.to_string()),
        (l(lang, "Bureaux et applications utilisés", "Desktops and applications used"), report.distinct_resources.to_string()),
        (l(lang, "Serveurs utilisés", "Hosts used"), report.distinct_hosts.to_string()),
        (
            l(lang, "Pic de connexions simultanées", "Peak simultaneous connections"),
            format!("{} ({})", report.peak_concurrent_sessions, escape(report.peak_concurrent_at.as_deref().unwrap_or("–"))),
        ),
        (l(lang, "Sessions ouvertes", "Sessions started"), report.sessions_started.to_string()),
        (l(lang, "Connexions refusées, par motif", "Failed logins, by reason"), format!("{} <br>{}", report.failed_logins, list(&report.failed_logins_by_reason))),
        (l(lang, "Lancements refusés, par motif", "Failed launches, by reason"), format!("{} <br>{}", report.failed_launches, list(&report.failed_launches_by_reason))),
        (
            l(lang, "Temps d'aller-retour p50 / p95 (ms)", "Round trip p50 / p95 (ms)"),
            format!(
                "{} / {}",
                report.rtt_p50_ms.map_or("–".into(), |v| v.to_string()),
                report.rtt_p95_ms.map_or("–".into(), |v| v.to_string())
            ),
        ),
        (l(lang, "Incidents de l'assistance, par catégorie", "Helpdesk incidents, by category"), format!("{} <br>{}", report.incidents, list(&report.incidents_by_category))),
        (
            l(lang, "Licences : pic utilisé / parc", "Licences: peak used / pool"),
            format!("{} / {}", report.licence_peak_in_use, report.licence_capacity),
        ),
    ];
    let table: String = rows.iter().map(|(k, v)| format!("<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>")).collect();
    let day_text = day.to_string();
    let charts = [
        figure(l(lang, "Sessions simultanées par heure", "Concurrent sessions per hour"), bascule_report::charts::concurrency_by_hour(&report, rl)),
        figure(l(lang, "Bande passante par site", "Bandwidth per site"), bascule_report::charts::bandwidth_by_site(&report, rl)),
        figure(l(lang, "30 jours : pic de sessions et utilisateurs", "30 days: peak sessions and users"), bascule_report::charts::trend_concurrency(&trend, rl)),
        figure(l(lang, "30 jours : bande passante", "30 days: bandwidth"), bascule_report::charts::trend_bandwidth(&trend, rl)),
    ]
    .concat();
    let body = format!(
        r#"<main class="console"><h1>{title} — {day}</h1>
<form class="filters" method="get" action="/console/report"><label>{day_l}<input type="date" name="day" value="{day}"></label><button class="btn" type="submit">{show}</button>
<a class="btn" href="/console/report.csv?day={day}" download>CSV</a><a class="btn" href="/console/report.json?day={day}" download>JSON</a><a class="btn" href="/console/report/trend.csv?day={day}" download>{trend_csv}</a></form>
<p class="muted">{state}</p>
<table class="data" id="report"><tbody>{table}</tbody></table>
<div class="charts">{charts}</div></main>"#,
        title = l(lang, "Rapport du jour", "Daily report"),
        day = escape(&day_text),
        day_l = l(lang, "Jour", "Day"),
        show = l(lang, "Afficher", "Show"),
        trend_csv = l(lang, "Tendance 30 jours (CSV)", "30-day trend (CSV)"),
        state = if report.complete { l(lang, "Journée terminée.", "Day complete.") } else { l(lang, "Journée en cours : chiffres provisoires.", "Day in progress: provisional figures.") },
    );
    Html(layout(lang, l(lang, "Rapport du jour", "Daily report"), "report", &body)).into_response()
}

fn download(content_type: &'static str, name: String, body: String) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(value) = format!("attachment; filename=\"{name}\"").parse() {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn csv(State(state): State<AppState>, _agent: Agent, Query(query): Query<DayQuery>) -> Response {
    let day = match day_of(&state, &query) {
        Ok(day) => day,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match report_of(&state, day).await {
        Ok(report) => download("text/csv; charset=utf-8", format!("bascule-report-{day}.csv"), bascule_report::to_csv(&report)),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    }
}

async fn json(State(state): State<AppState>, _agent: Agent, Query(query): Query<DayQuery>) -> Response {
    let day = match day_of(&state, &query) {
        Ok(day) => day,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match report_of(&state, day).await.and_then(|r| r.to_json().map_err(|e| e.to_string())) {
        Ok(text) => download("application/json", format!("bascule-report-{day}.json"), text),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error).into_response(),
    }
}

async fn trend_csv(State(state): State<AppState>, _agent: Agent, Query(query): Query<DayQuery>) -> Response {
    let day = match day_of(&state, &query) {
        Ok(day) => day,
        Err(error) => return (StatusCode::BAD_REQUEST, error).into_response(),
    };
    match bascule_report::trend(&state.plane.store, day, 30, &state.plane.timezone).await {
        Ok(reports) => download("text/csv; charset=utf-8", format!("bascule-trend-{day}.csv"), bascule_report::trend_csv(&reports)),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response(),
    }
}

/// Runs the daily report at each scheduled time: computes and stores the day's indicators, then
/// mails them when SMTP is configured. Runs until the gateway stops.
pub(crate) async fn schedule(state: AppState) {
    let settings = state.config.report.clone();
    loop {
        let next = match bascule_report::next_run(&settings.schedule, &state.plane.timezone, jiff::Timestamp::now()) {
            Ok(next) => next,
            Err(error) => {
                tracing::error!(%error, schedule = %settings.schedule, "the daily report's schedule is invalid; no report will run");
                return;
            }
        };
        let wait = next.as_second() - jiff::Timestamp::now().as_second();
        tokio::time::sleep(std::time::Duration::from_secs(u64::try_from(wait.max(1)).unwrap_or(1))).await;
        run_once(&state).await;
    }
}

/// Computes, stores and (optionally) mails today's report.
pub(crate) async fn run_once(state: &AppState) {
    let today = jiff::Timestamp::now().to_zoned(state.plane.timezone.clone()).date();
    let report = match bascule_report::compute_and_store(&state.plane.store, today, &state.plane.timezone).await {
        Ok(report) => report,
        Err(error) => {
            tracing::error!(%error, "the daily report failed");
            state.plane.audit("system", "report.compute", &today.to_string(), None, &format!("error: {error}")).await;
            return;
        }
    };
    state.plane.audit("system", "report.compute", &today.to_string(), None, "ok").await;
    let Some(smtp) = &state.config.report.smtp else { return };
    let password = match &smtp.password {
        Some(sealed) => match state.plane.key.decrypt(sealed) {
            Ok(secret) => Some(secret.expose().to_owned()),
            Err(error) => {
                tracing::error!(%error, "report.smtp.password cannot be decrypted");
                return;
            }
        },
        None => None,
    };
    let settings = bascule_report::SmtpSettings {
        host: smtp.host.clone(),
        port: smtp.port,
        security: smtp.security,
        username: smtp.username.clone(),
        password,
        from: smtp.from.clone(),
        to: smtp.to.clone(),
    };
    let lang = if smtp.lang == "en" { bascule_report::Lang::En } else { bascule_report::Lang::Fr };
    let outcome = match bascule_report::send_report(&settings, &report, lang).await {
        Ok(()) => "mailed".to_owned(),
        Err(error) => {
            tracing::error!(%error, "the daily report could not be mailed");
            format!("error: {error}")
        }
    };
    state.plane.audit("system", "report.mail", &today.to_string(), None, &outcome).await;
}
