//! Helpdesk incidents: short notes against a user or a session, with a category. They count in
//! the daily report.

use crate::console::{Agent, layout};
use crate::i18n::{Lang, escape};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use bascule_domain::access::User;
use bascule_domain::id::{SessionId, UserId};
use serde::Deserialize;
use std::net::SocketAddr;

/// The categories the hotline picks from (code, French, English).
pub(crate) const CATEGORIES: &[(&str, &str, &str)] = &[
    ("password", "Mot de passe, compte verrouillé", "Password, locked account"),
    ("mfa", "Second facteur (TOTP)", "Second factor (TOTP)"),
    ("network", "Réseau, lenteur", "Network, slowness"),
    ("display", "Affichage", "Display"),
    ("keyboard", "Clavier, souris", "Keyboard, mouse"),
    ("printing", "Impression", "Printing"),
    ("application", "Application", "Application"),
    ("host", "Serveur indisponible", "Host unavailable"),
    ("other", "Autre", "Other"),
];

fn category_label(lang: Lang, code: &str) -> String {
    CATEGORIES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, fr, en)| if lang == Lang::Fr { (*fr).to_owned() } else { (*en).to_owned() })
        .unwrap_or_else(|| code.to_owned())
}

fn l(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    if lang == Lang::Fr { fr } else { en }
}

/// The routes under `/console`.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/incidents", get(page).post(create))
}

fn form(lang: Lang, csrf: &str, user: Option<&str>, session: Option<&str>) -> String {
    let options: String = CATEGORIES
        .iter()
        .map(|(code, fr, en)| format!(r#"<option value="{code}">{}</option>"#, if lang == Lang::Fr { fr } else { en }))
        .collect();
    format!(
        r#"<form method="post" action="/console/incidents" class="incident-form">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="session" value="{session}">
<label>{user_l}<input name="user" value="{user}"></label>
<label>{category_l}<select name="category">{options}</select></label>
<label class="wide">{text_l}<textarea name="text" maxlength="2000" required rows="2"></textarea></label>
<button class="btn btn-primary" type="submit">{save}</button>
</form>"#,
        csrf = escape(csrf),
        session = escape(session.unwrap_or("")),
        user = escape(user.unwrap_or("")),
        user_l = l(lang, "Utilisateur (identifiant)", "User (login)"),
        category_l = l(lang, "Catégorie", "Category"),
        text_l = l(lang, "Ce qui s'est passé", "What happened"),
        save = l(lang, "Enregistrer l'incident", "Log the incident"),
    )
}

fn rows(state: &AppState, lang: Lang, incidents: &[bascule_store::Incident]) -> String {
    if incidents.is_empty() {
        return format!(r#"<tr><td colspan="5" class="empty">{}</td></tr>"#, l(lang, "Aucun incident.", "No incident."));
    }
    incidents
        .iter()
        .map(|i| {
            let at = jiff::Timestamp::from_second(i.at.unix_seconds())
                .map(|t| t.to_zoned(state.plane.timezone.clone()).strftime("%d/%m %H:%M").to_string())
                .unwrap_or_default();
            format!(
                "<tr><td>{at}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&i.author),
                escape(i.user.as_ref().map(|u| u.as_str()).unwrap_or("")),
                escape(&category_label(lang, &i.category)),
                escape(&i.text)
            )
        })
        .collect()
}

/// The incidents block of a user's page.
pub(crate) async fn user_section(state: &AppState, agent: &Agent, user: &User) -> String {
    let lang = agent.lang;
    let incidents = state.plane.store.incidents_of_user(&user.id, 20).await.unwrap_or_default();
    format!(
        r#"<h2>{title}</h2>
<table class="data" id="user-incidents"><thead><tr><th>{when}</th><th>{who}</th><th>{user_l}</th><th>{category}</th><th>{text}</th></tr></thead><tbody>{rows}</tbody></table>
{form}"#,
        title = l(lang, "Incidents", "Incidents"),
        when = l(lang, "Quand", "When"),
        who = l(lang, "Saisi par", "Logged by"),
        user_l = l(lang, "Utilisateur", "User"),
        category = l(lang, "Catégorie", "Category"),
        text = l(lang, "Description", "Description"),
        rows = rows(state, lang, &incidents),
        form = form(lang, &agent.session.csrf, Some(&user.login), None),
    )
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    category: String,
}

async fn page(State(state): State<AppState>, agent: Agent, Query(filter): Query<Filter>) -> Response {
    let lang = agent.lang;
    let now = crate::control::now();
    let incidents = state.plane.store.incidents_between(now.plus_seconds(-30 * 86400), now.plus_seconds(1)).await;
    let Ok(mut incidents) = incidents else {
        return (StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable.")).into_response();
    };
    incidents.retain(|i| filter.category.is_empty() || i.category == filter.category);
    incidents.reverse();
    let body = format!(
        r#"<main class="console"><h1>{title}</h1>
{form}
<h2>{recent}</h2>
<table class="data" id="incidents"><thead><tr><th>{when}</th><th>{who}</th><th>{user_l}</th><th>{category}</th><th>{text}</th></tr></thead><tbody>{rows}</tbody></table></main>"#,
        title = l(lang, "Incidents de l'assistance", "Helpdesk incidents"),
        form = form(lang, &agent.session.csrf, None, None),
        recent = l(lang, "30 derniers jours", "Last 30 days"),
        when = l(lang, "Quand", "When"),
        who = l(lang, "Saisi par", "Logged by"),
        user_l = l(lang, "Utilisateur", "User"),
        category = l(lang, "Catégorie", "Category"),
        text = l(lang, "Description", "Description"),
        rows = rows(&state, lang, &incidents),
    );
    Html(layout(lang, l(lang, "Incidents", "Incidents"), "incidents", &body)).into_response()
}

#[derive(Deserialize)]
struct NewIncidentForm {
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    session: String,
    category: String,
    text: String,
}

async fn create(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<NewIncidentForm>,
) -> Response {
    let lang = agent.lang;
    if let Err(response) = agent.check(&headers, &form.csrf) {
        return response;
    }
    let text: String = form.text.trim().chars().take(2000).collect();
    if text.is_empty() || !CATEGORIES.iter().any(|(code, _, _)| *code == form.category) {
        return (StatusCode::BAD_REQUEST, l(lang, "Catégorie inconnue ou description vide.", "Unknown category or empty description.")).into_response();
    }
    let user = match form.user.trim() {
        "" => None,
        login => match state.plane.store.get_user_by_login(login).await {
            Ok(Some(user)) => Some(user),
            _ => {
                return (StatusCode::BAD_REQUEST, l(lang, "Utilisateur inconnu.", "Unknown user.")).into_response();
            }
        },
    };
    let incident = bascule_store::NewIncident {
        at: crate::control::now(),
        author: agent.user.login.clone(),
        user: user.as_ref().map(|u| UserId::new(u.id.as_str())),
        session: (!form.session.is_empty()).then(|| SessionId::new(&form.session)),
        category: form.category.clone(),
        text,
    };
    match state.plane.store.add_incident(&incident).await {
        Ok(id) => {
            state.plane.audit(&agent.user.login, "incident.add", &id.to_string(), Some(peer.ip()), &form.category).await;
            match user {
                Some(user) => Redirect::to(&format!("/console/users/{}", user.login)).into_response(),
                None => Redirect::to("/console/incidents").into_response(),
            }
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable.")).into_response(),
    }
}
