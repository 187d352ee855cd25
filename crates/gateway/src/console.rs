//! The operations console (`/console`): the helpdesk's live sessions, users, hosts, incidents,
//! audit log and daily report, server-rendered in French and English.
//!
//! Every page needs the `ViewConsole` action (helpdesk and admin); every form posts the portal
//! session's CSRF token and is audited; admin-only actions (drain) check `ManageInventory`.
//!
//! Handlers return an axum `Response` as their refusal (`Result<_, Response>`): it is large, but
//! it is what they send, and boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

use crate::http::{lang, portal_session, same_origin};
use crate::i18n::{Lang, escape};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bascule_domain::access::{Action, User};
use bascule_domain::id::{HostId, SessionId, UserId};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

/// A text in the page's language.
fn l(lang: Lang, fr: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Fr => fr,
        Lang::En => en,
    }
}

/// The console's routes (under `/console`).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/sessions") }))
        .route("/sessions", get(sessions_page))
        .route("/sessions.json", get(sessions_json))
        .route("/sessions/{id}/message", post(session_message))
        .route("/sessions/{id}/disconnect", post(session_disconnect))
        .route("/sessions/{id}/logoff", post(session_logoff))
        .route("/users", get(users_page))
        .route("/users/{login}", get(user_page))
        .route("/users/{login}/unlock", post(user_unlock))
        .route("/users/{login}/totp-reset", post(user_totp_reset))
        .route("/hosts", get(hosts_page))
        .route("/hosts/{id}", get(host_page))
        .route("/hosts/{id}/drain", post(host_drain))
        .route("/audit", get(audit_page))
        .route("/audit.csv", get(audit_csv))
}

/// The signed-in console user, or the response to send instead.
pub(crate) struct Agent {
    pub(crate) session: crate::auth::PortalSession,
    pub(crate) user: User,
    pub(crate) lang: Lang,
}

/// Console handlers take an `Agent`: the request is refused before the handler runs when the
/// portal session is missing or its user may not view the console.
impl axum::extract::FromRequestParts<AppState> for Agent {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        agent(state, &parts.headers).await
    }
}

/// The admin service's actor for this agent, from `peer`.
pub(crate) fn admin_actor(user: &User, address: std::net::IpAddr, lang: Lang) -> bascule_admin::Actor {
    bascule_admin::Actor {
        login: user.login.clone(),
        roles: user.roles.clone(),
        address: Some(address.to_string()),
        lang: if lang == Lang::En { bascule_admin::Lang::En } else { bascule_admin::Lang::Fr },
    }
}

pub(crate) async fn agent(state: &AppState, headers: &HeaderMap) -> Result<Agent, Response> {
    let lang = lang(headers);
    let Some(session) = portal_session(state, headers) else {
        return Err(Redirect::to("/login").into_response());
    };
    let user = match state.plane.store.get_user(&UserId::new(&session.user)).await {
        Ok(Some(user)) => user,
        Ok(None) => return Err(Redirect::to("/login").into_response()),
        Err(_) => return Err(simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable."))),
    };
    if !user.can(Action::ViewConsole) {
        return Err(simple(
            lang,
            StatusCode::FORBIDDEN,
            l(lang, "La console est réservée à l'assistance et aux administrateurs.", "The console is for the helpdesk and administrators."),
        ));
    }
    Ok(Agent { session, user, lang })
}

impl Agent {
    /// Checks a form's CSRF token and origin.
    pub(crate) fn check(&self, headers: &HeaderMap, csrf: &str) -> Result<(), Response> {
        if crate::auth::same_secret(&self.session.csrf, csrf) && same_origin(headers) {
            Ok(())
        } else {
            Err(simple(self.lang, StatusCode::FORBIDDEN, l(self.lang, "Jeton de sécurité invalide : rechargez la page.", "Invalid security token: reload the page.")))
        }
    }

    fn require(&self, action: Action) -> Result<(), Response> {
        if self.user.can(action) {
            Ok(())
        } else {
            Err(simple(self.lang, StatusCode::FORBIDDEN, l(self.lang, "Action réservée aux administrateurs.", "This action is for administrators.")))
        }
    }
}

fn simple(lang: Lang, status: StatusCode, text: &str) -> Response {
    let body = format!(r#"<main class="console"><p class="error" role="alert">{}</p><p><a class="btn" href="/">Bascule</a></p></main>"#, escape(text));
    (status, Html(layout(lang, "Bascule", "", &body))).into_response()
}

/// The console's frame: top bar with the sections, the language switch, and the content.
pub(crate) fn layout(lang: Lang, title: &str, current: &str, body: &str) -> String {
    let sections = [
        ("sessions", l(lang, "Sessions", "Sessions")),
        ("users", l(lang, "Utilisateurs", "Users")),
        ("hosts", l(lang, "Serveurs", "Hosts")),
        ("incidents", l(lang, "Incidents", "Incidents")),
        ("audit", l(lang, "Journal", "Audit log")),
        ("report", l(lang, "Rapport du jour", "Daily report")),
    ];
    let nav: String = sections
        .iter()
        .map(|(id, label)| {
            let aria = if *id == current { r#" aria-current="page""# } else { "" };
            format!(r#"<a href="/console/{id}"{aria}>{label}</a>"#)
        })
        .collect();
    format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Bascule</title>
<link rel="stylesheet" href="/static/portal.css">
<link rel="stylesheet" href="/static/console/console.css">
</head>
<body>
<header class="topbar"><span class="brand">Bascule · {console}</span><nav class="console-nav">{nav}</nav><a class="lang-switch" href="/lang/{other}">{switch}</a></header>
{body}
</body>
</html>"#,
        code = lang.code(),
        title = escape(title),
        console = l(lang, "Console", "Console"),
        other = lang.other().code(),
        switch = crate::i18n::t(lang, "lang.switch"),
    )
}

fn format_time(state: &AppState, seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_zoned(state.plane.timezone.clone()).strftime("%d/%m %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// One row of the live sessions table.
#[derive(serde::Serialize)]
struct SessionRow {
    id: String,
    user: String,
    display_name: String,
    resource: String,
    host: String,
    state: String,
    state_label: String,
    since: String,
    client: String,
    site: String,
    kbit_per_s: Option<f64>,
    rtt_ms: Option<u64>,
    fps: Option<f64>,
    last_error: String,
}

#[derive(Deserialize, Default)]
struct SessionFilter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    host: String,
}

async fn session_rows(state: &AppState, filter: &SessionFilter) -> Result<Vec<SessionRow>, bascule_store::StoreError> {
    let world = state.plane.world().await?;
    let sites = state.plane.sites().await;
    let now = Instant::now();
    let q = filter.q.to_lowercase();
    let mut rows = Vec::new();
    for record in &world.sessions {
        let user = world.user(record.user());
        let live = state.sessions.live(record.id().as_str());
        let (client, kbit, rtt, fps, error) = match &live {
            Some(live) => {
                let stats = live.lock_stats();
                (
                    stats.client_address,
                    Some((stats.kbit_per_s(now) * 10.0).round() / 10.0),
                    stats.rtt_last.map(|d| d.as_millis() as u64),
                    Some(stats.fps(now)),
                    stats.last_error.clone().unwrap_or_default(),
                )
            }
            None => (None, None, None, None, String::new()),
        };
        let row = SessionRow {
            id: record.id().to_string(),
            user: user.map(|u| u.login.clone()).unwrap_or_else(|| record.user().to_string()),
            display_name: user.map(|u| u.display_name.clone()).unwrap_or_default(),
            resource: record.resource().to_string(),
            host: record.host().to_string(),
            state: record.state().kind().as_str().to_owned(),
            state_label: String::new(),
            since: format_time(state, record.started_at().unix_seconds()),
            client: client.map(|a| a.to_string()).unwrap_or_default(),
            site: client.map(|a| crate::control::site_of(&sites, a)).unwrap_or_default(),
            kbit_per_s: kbit,
            rtt_ms: rtt,
            fps,
            last_error: error,
        };
        let matches = q.is_empty()
            || [&row.user, &row.display_name, &row.resource, &row.host, &row.client, &row.site]
                .iter()
                .any(|field| field.to_lowercase().contains(&q));
        if matches
            && (filter.state.is_empty() || row.state == filter.state)
            && (filter.host.is_empty() || row.host == filter.host)
        {
            rows.push(row);
        }
    }
    rows.sort_by(|a, b| a.user.cmp(&b.user).then(a.id.cmp(&b.id)));
    Ok(rows)
}

fn state_label(lang: Lang, state: &str) -> &'static str {
    match state {
        "active" => l(lang, "connectée", "connected"),
        "disconnected" => l(lang, "déconnectée", "disconnected"),
        "starting" => l(lang, "démarrage", "starting"),
        "ended" => l(lang, "terminée", "ended"),
        "failed" => l(lang, "échouée", "failed"),
        _ => "?",
    }
}

fn session_table_rows(lang: Lang, rows: &[SessionRow]) -> String {
    if rows.is_empty() {
        return format!(r#"<tr><td colspan="11" class="empty">{}</td></tr>"#, l(lang, "Aucune session.", "No session."));
    }
    rows.iter()
        .map(|r| {
            let dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
            format!(
                r#"<tr data-session="{id}" data-state="{state}"><td><a href="/console/users/{user}">{user}</a><br><span class="muted">{name}</span></td><td>{resource}</td><td><a href="/console/hosts/{host}">{host}</a></td><td>{state_text}</td><td>{since}</td><td>{client}</td><td>{site}</td><td class="num">{kbit}</td><td class="num">{rtt}</td><td class="num">{fps}</td><td>{error}</td></tr>"#,
                id = escape(&r.id),
                state = escape(&r.state),
                user = escape(&r.user),
                name = escape(&r.display_name),
                resource = escape(&r.resource),
                host = escape(&r.host),
                state_text = state_label(lang, &r.state),
                since = escape(&r.since),
                client = escape(&r.client),
                site = escape(&r.site),
                kbit = dash(r.kbit_per_s.map(|v| format!("{v:.1}"))),
                rtt = dash(r.rtt_ms.map(|v| v.to_string())),
                fps = dash(r.fps.map(|v| format!("{v:.1}"))),
                error = escape(&r.last_error),
            )
        })
        .collect()
}

async fn sessions_page(State(state): State<AppState>,
    agent: Agent,
    Query(filter): Query<SessionFilter>) -> Response {
    let lang = agent.lang;
    let rows = match session_rows(&state, &filter).await {
        Ok(rows) => rows,
        Err(_) => return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable.")),
    };
    let option = |value: &str, label: &str| {
        let selected = if filter.state == value { " selected" } else { "" };
        format!(r#"<option value="{value}"{selected}>{label}</option>"#)
    };
    let body = format!(
        r#"<main class="console">
<h1>{title}</h1>
<form class="filters" method="get" action="/console/sessions" role="search">
<label>{search}<input type="search" name="q" value="{q}" placeholder="{placeholder}"></label>
<label>{state_label}<select name="state">{all}{active}{disconnected}{starting}</select></label>
<button class="btn" type="submit">{filter}</button>
</form>
<p class="muted" id="live-status" data-refresh="/console/sessions.json">{count} {sessions_word} · {live}</p>
<table class="data" id="sessions">
<thead><tr><th>{user}</th><th>{resource}</th><th>{host}</th><th>{state_label}</th><th>{since}</th><th>{client}</th><th>{site}</th><th>kbit/s</th><th>RTT (ms)</th><th>{fps}</th><th>{error}</th></tr></thead>
<tbody>{rows}</tbody>
</table>
</main>
<script type="module" src="/static/console/console.js"></script>"#,
        title = l(lang, "Sessions en cours", "Live sessions"),
        search = l(lang, "Rechercher", "Search"),
        q = escape(&filter.q),
        placeholder = l(lang, "utilisateur, ressource, serveur, adresse, site", "user, resource, host, address, site"),
        state_label = l(lang, "État", "State"),
        all = option("", l(lang, "tous", "all")),
        active = option("active", state_label(lang, "active")),
        disconnected = option("disconnected", state_label(lang, "disconnected")),
        starting = option("starting", state_label(lang, "starting")),
        filter = l(lang, "Filtrer", "Filter"),
        count = rows.len(),
        sessions_word = l(lang, "session(s)", "session(s)"),
        live = l(lang, "mise à jour toutes les 2 s", "refreshed every 2 s"),
        user = l(lang, "Utilisateur", "User"),
        resource = l(lang, "Ressource", "Resource"),
        host = l(lang, "Serveur", "Host"),
        since = l(lang, "Depuis", "Since"),
        client = l(lang, "Adresse", "Address"),
        site = l(lang, "Site", "Site"),
        fps = l(lang, "images/s", "fps"),
        error = l(lang, "Dernière erreur", "Last error"),
        rows = session_table_rows(lang, &rows),
    );
    Html(layout(lang, l(lang, "Sessions en cours", "Live sessions"), "sessions", &body)).into_response()
}

/// The table body, for the page's live refresh (`console.js`).
async fn sessions_json(State(state): State<AppState>, headers: HeaderMap, Query(filter): Query<SessionFilter>) -> Response {
    let agent = match agent(&state, &headers).await {
        Ok(agent) => agent,
        Err(_) => return StatusCode::UNAUTHORIZED.into_response(),
    };
    match session_rows(&state, &filter).await {
        Ok(mut rows) => {
            for row in &mut rows {
                row.state_label = state_label(agent.lang, &row.state).to_owned();
            }
            axum::Json(serde_json::json!({ "count": rows.len(), "sessions": rows }))
        }
        .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[derive(Deserialize)]
struct MessageForm {
    csrf: String,
    text: String,
}

/// Where to go back after an action on a session: its user's page.
async fn back_to_user(state: &AppState, id: &SessionId) -> Response {
    match state.plane.store.get_session(id).await {
        Ok(Some(record)) => match state.plane.store.get_user(record.user()).await {
            Ok(Some(user)) => Redirect::to(&format!("/console/users/{}", user.login)).into_response(),
            _ => Redirect::to("/console/sessions").into_response(),
        },
        _ => Redirect::to("/console/sessions").into_response(),
    }
}

async fn session_message(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<MessageForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf).and_then(|()| agent.require(Action::ManageSessions)) {
        return response;
    }
    let text: String = form.text.trim().chars().take(2000).collect();
    let delivered = !text.is_empty() && state.sessions.send_message(&id, &agent.user.display_name, &text);
    let outcome = if delivered { "delivered".to_owned() } else { "refused: no live viewer or empty message".to_owned() };
    state.plane.audit(&agent.user.login, "session.message", &id, Some(peer.ip()), &outcome).await;
    back_to_user(&state, &SessionId::new(&id)).await
}

async fn session_disconnect(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf).and_then(|()| agent.require(Action::ManageSessions)) {
        return response;
    }
    let done = state.sessions.disconnect_viewers(&id);
    let outcome = if done { "ok" } else { "refused: no live connection on this node" };
    state.plane.audit(&agent.user.login, "session.disconnect", &id, Some(peer.ip()), outcome).await;
    back_to_user(&state, &SessionId::new(&id)).await
}

async fn session_logoff(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf).and_then(|()| agent.require(Action::ManageSessions)) {
        return response;
    }
    state.sessions.end_session(&id, "session.ended_by_staff");
    let ended = state
        .plane
        .transition(&SessionId::new(&id), |r, at| r.end(at, bascule_domain::session::EndReason::EndedByStaff))
        .await;
    let outcome = if ended { "ok" } else { "already ended" };
    state.plane.audit(&agent.user.login, "session.logoff", &id, Some(peer.ip()), outcome).await;
    back_to_user(&state, &SessionId::new(&id)).await
}

#[derive(Deserialize, Default)]
struct UserFilter {
    #[serde(default)]
    q: String,
}

async fn users_page(State(state): State<AppState>,
    agent: Agent,
    Query(filter): Query<UserFilter>) -> Response {
    let lang = agent.lang;
    let Ok(users) = state.plane.store.list_users().await else {
        return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable."));
    };
    let q = filter.q.to_lowercase();
    let now = Instant::now();
    let rows: String = users
        .iter()
        .filter(|u| q.is_empty() || u.login.to_lowercase().contains(&q) || u.display_name.to_lowercase().contains(&q))
        .take(200)
        .map(|u| {
            let locked = state.auth.is_locked(&u.login, now);
            format!(
                r#"<tr><td><a href="/console/users/{login}">{login}</a></td><td>{name}</td><td>{roles}</td><td>{enabled}</td><td>{locked}</td></tr>"#,
                login = escape(&u.login),
                name = escape(&u.display_name),
                roles = roles_text(u),
                enabled = if u.enabled { l(lang, "actif", "enabled") } else { l(lang, "désactivé", "disabled") },
                locked = if locked { l(lang, "verrouillé", "locked") } else { "" },
            )
        })
        .collect();
    let body = format!(
        r#"<main class="console">
<h1>{title}</h1>
<form class="filters" method="get" action="/console/users" role="search"><label>{search}<input type="search" name="q" value="{q}" autofocus></label><button class="btn" type="submit">{find}</button></form>
<table class="data" id="users"><thead><tr><th>{login}</th><th>{name}</th><th>{roles}</th><th>{account}</th><th>{lock}</th></tr></thead><tbody>{rows}</tbody></table>
</main>"#,
        title = l(lang, "Utilisateurs", "Users"),
        search = l(lang, "Identifiant ou nom", "Login or name"),
        q = escape(&filter.q),
        find = l(lang, "Chercher", "Find"),
        login = l(lang, "Identifiant", "Login"),
        name = l(lang, "Nom", "Name"),
        roles = l(lang, "Rôles", "Roles"),
        account = l(lang, "Compte", "Account"),
        lock = l(lang, "Verrouillage", "Lockout"),
    );
    Html(layout(lang, l(lang, "Utilisateurs", "Users"), "users", &body)).into_response()
}

fn roles_text(user: &User) -> String {
    user.roles
        .iter()
        .map(|r| match r {
            bascule_domain::access::Role::Admin => "admin",
            bascule_domain::access::Role::Helpdesk => "helpdesk",
            _ => "user",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn user_page(State(state): State<AppState>,
    agent: Agent,
    Path(login): Path<String>) -> Response {
    let lang = agent.lang;
    let plane = &state.plane;
    let user = match plane.store.get_user_by_login(&login).await {
        Ok(Some(user)) => user,
        Ok(None) => return simple(lang, StatusCode::NOT_FOUND, l(lang, "Utilisateur inconnu.", "Unknown user.")),
        Err(_) => return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable.")),
    };
    let auth = plane.store.get_user_auth(&user.id).await.ok().flatten().unwrap_or_default();
    let locked = state.auth.is_locked(&user.login, Instant::now());
    let csrf = escape(&agent.session.csrf);
    let login_e = escape(&user.login);

    // Sessions: live first, then the last ones.
    let sessions = plane.store.sessions_of_user(&user.id).await.unwrap_or_default();
    let mut session_rows = String::new();
    for record in sessions.iter().rev().take(20) {
        let id = escape(record.id().as_str());
        let actions = if record.is_live() {
            let live = state.sessions.live(record.id().as_str()).is_some();
            let shadow = if live {
                format!(r#"<a class="btn" href="/console/shadow/{id}">{}</a>"#, l(lang, "Observer", "Shadow"))
            } else {
                String::new()
            };
            format!(
                r#"{shadow}
<form method="post" action="/console/sessions/{id}/message" class="inline"><input type="hidden" name="csrf" value="{csrf}"><label class="sr-only" for="msg-{id}">{msg_label}</label><input id="msg-{id}" name="text" maxlength="2000" required placeholder="{msg_label}"><button class="btn" type="submit">{send}</button></form>
<form method="post" action="/console/sessions/{id}/disconnect" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button class="btn" type="submit">{disconnect}</button></form>
<form method="post" action="/console/sessions/{id}/logoff" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button class="btn btn-danger" type="submit">{logoff}</button></form>"#,
                msg_label = l(lang, "Message à l'utilisateur", "Message to the user"),
                send = l(lang, "Envoyer", "Send"),
                disconnect = l(lang, "Déconnecter", "Disconnect"),
                logoff = l(lang, "Fermer la session", "Log off"),
            )
        } else {
            String::new()
        };
        session_rows.push_str(&format!(
            r#"<tr data-session="{id}"><td>{resource}</td><td>{host}</td><td>{state_text}</td><td>{since}</td><td class="actions">{actions}</td></tr>"#,
            resource = escape(record.resource().as_str()),
            host = escape(record.host().as_str()),
            state_text = state_label(lang, record.state().kind().as_str()),
            since = format_time(&state, record.started_at().unix_seconds()),
        ));
    }

    // Last logins and failures (from the audit log, last 30 days).
    let now = crate::control::now();
    let filter = bascule_store::AuditFilter { actor: Some(&user.login), action_prefix: Some("login"), ..Default::default() };
    let audit = plane.store.audit_recent(&filter, now.plus_seconds(-30 * 86400), 15).await.unwrap_or_default();
    let logins: String = audit
        .iter()
        .map(|e| {
            format!(
                r#"<tr><td>{at}</td><td>{action}</td><td>{outcome}</td><td>{address}</td></tr>"#,
                at = format_time(&state, e.at.unix_seconds()),
                action = escape(&e.action),
                outcome = escape(&e.outcome),
                address = escape(e.address.as_deref().unwrap_or("")),
            )
        })
        .collect();

    // The policy in effect for each resource the user may open.
    let world = plane.world().await.ok();
    let mut policies = String::new();
    if let Some(world) = &world {
        for resource in world.entitled_resources(&user) {
            let explained =
                bascule_domain::policy::explain_effective_policy(&user, &resource.id, &world.policies, &world.defaults);
            let p = &explained.policy;
            let limit = |v: bascule_domain::policy::Limit| match v {
                bascule_domain::policy::Limit::AtMost(n) => n.to_string(),
                _ => l(lang, "illimité", "unlimited").to_owned(),
            };
            let yes_no = |b: bool| if b { l(lang, "oui", "yes") } else { l(lang, "non", "no") };
            policies.push_str(&format!(
                r#"<tr><td>{name}</td><td>{cin} / {cout}</td><td>{ft}</td><td>{bw}</td><td>{idle}</td><td>{keep}</td></tr>"#,
                name = escape(resource.id.as_str()),
                cin = yes_no(p.clipboard_in),
                cout = yes_no(p.clipboard_out),
                ft = yes_no(p.file_transfer),
                bw = limit(p.max_bandwidth_kbps),
                idle = limit(p.idle_timeout_secs),
                keep = p.disconnected_keep_secs,
            ));
        }
    }
    let unlock = if locked {
        format!(
            r#"<form method="post" action="/console/users/{login_e}/unlock" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button class="btn" type="submit">{}</button></form>"#,
            l(lang, "Déverrouiller", "Unlock")
        )
    } else {
        String::new()
    };
    let totp_reset = if auth.totp_confirmed {
        format!(
            r#"<form method="post" action="/console/users/{login_e}/totp-reset" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button class="btn" type="submit">{}</button></form>"#,
            l(lang, "Réinitialiser le second facteur", "Reset the second factor")
        )
    } else {
        String::new()
    };
    let incidents = crate::incidents::user_section(&state, &agent, &user).await;
    let body = format!(
        r#"<main class="console" data-user="{login_e}">
<h1>{name} <span class="muted">({login_e})</span></h1>
<dl class="facts">
<dt>{roles_label}</dt><dd>{roles}</dd>
<dt>{source_label}</dt><dd>{source}</dd>
<dt>{lock_label}</dt><dd id="lock-status">{lock}</dd>
<dt>{totp_label}</dt><dd id="totp-status">{totp}</dd>
</dl>
<p class="actions">{unlock} {totp_reset}</p>
<h2>{sessions_title}</h2>
<table class="data" id="user-sessions"><thead><tr><th>{resource}</th><th>{host}</th><th>{state_l}</th><th>{since}</th><th>{actions}</th></tr></thead><tbody>{session_rows}</tbody></table>
<h2>{logins_title}</h2>
<table class="data" id="user-logins"><thead><tr><th>{when}</th><th>{what}</th><th>{outcome}</th><th>{address}</th></tr></thead><tbody>{logins}</tbody></table>
<h2>{policy_title}</h2>
<table class="data" id="user-policy"><thead><tr><th>{resource}</th><th>{clip}</th><th>{files}</th><th>kbit/s max</th><th>{idle}</th><th>{keep}</th></tr></thead><tbody>{policies}</tbody></table>
{incidents}
</main>"#,
        name = escape(&user.display_name),
        roles_label = l(lang, "Rôles", "Roles"),
        roles = roles_text(&user),
        source_label = l(lang, "Compte", "Account"),
        source = match auth.source {
            bascule_store::AuthSource::Directory => l(lang, "annuaire (LDAP)", "directory (LDAP)"),
            _ => l(lang, "local", "local"),
        },
        lock_label = l(lang, "Verrouillage", "Lockout"),
        lock = if locked { l(lang, "verrouillé après des échecs", "locked after failures") } else { l(lang, "non verrouillé", "not locked") },
        totp_label = l(lang, "Second facteur", "Second factor"),
        totp = if auth.totp_confirmed { l(lang, "enrôlé", "enrolled") } else { l(lang, "pas encore enrôlé", "not enrolled yet") },
        sessions_title = l(lang, "Sessions", "Sessions"),
        resource = l(lang, "Ressource", "Resource"),
        host = l(lang, "Serveur", "Host"),
        state_l = l(lang, "État", "State"),
        since = l(lang, "Ouverte", "Opened"),
        actions = l(lang, "Actions", "Actions"),
        logins_title = l(lang, "Dernières connexions et échecs", "Last logins and failures"),
        when = l(lang, "Quand", "When"),
        what = l(lang, "Étape", "Step"),
        outcome = l(lang, "Résultat", "Outcome"),
        address = l(lang, "Adresse", "Address"),
        policy_title = l(lang, "Règles en vigueur", "Policy in effect"),
        clip = l(lang, "Presse-papiers entrée / sortie", "Clipboard in / out"),
        files = l(lang, "Fichiers", "Files"),
        idle = l(lang, "Inactivité max (s)", "Idle timeout (s)"),
        keep = l(lang, "Déconnectée gardée (s)", "Kept disconnected (s)"),
    );
    Html(layout(lang, &user.display_name, "users", &body)).into_response()
}

async fn user_unlock(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(login): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf).and_then(|()| agent.require(Action::UnlockAccount)) {
        return response;
    }
    state.auth.unlock(&login);
    state.plane.audit(&agent.user.login, "user.unlock", &login, Some(peer.ip()), "ok").await;
    Redirect::to(&format!("/console/users/{login}")).into_response()
}

async fn user_totp_reset(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(login): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf) {
        return response;
    }
    let actor = admin_actor(&agent.user, peer.ip(), agent.lang);
    // The admin service checks the role and audits.
    match state.plane.admin.reset_totp(&actor, &login).await {
        Ok(_) => Redirect::to(&format!("/console/users/{login}")).into_response(),
        Err(error) => simple(agent.lang, StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST), &error.message(actor.lang)),
    }
}

async fn hosts_page(State(state): State<AppState>,
    agent: Agent,
) -> Response {
    let lang = agent.lang;
    let Ok(world) = state.plane.world().await else {
        return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable."));
    };
    let can_drain = agent.user.can(Action::ManageInventory);
    let csrf = escape(&agent.session.csrf);
    let rows: String = world
        .hosts
        .iter()
        .map(|h| {
            let live = world.sessions.iter().filter(|s| s.host() == &h.id).count();
            let pools: Vec<&str> = world.pools.iter().filter(|p| p.hosts.contains(&h.id)).map(|p| p.id.as_str()).collect();
            let drain = if can_drain {
                format!(
                    r#"<form method="post" action="/console/hosts/{id}/drain" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="draining" value="{next}"><button class="btn" type="submit">{label}</button></form>"#,
                    id = escape(h.id.as_str()),
                    next = !h.draining,
                    label = if h.draining { l(lang, "Remettre en service", "Undrain") } else { l(lang, "Drainer", "Drain") },
                )
            } else {
                String::new()
            };
            format!(
                r#"<tr data-host="{id}"><td><a href="/console/hosts/{id}">{id}</a></td><td>{protocol}</td><td>{address}:{port}</td><td class="num">{live} / {max}</td><td>{health}</td><td>{draining}</td><td>{pools}</td><td>{drain}</td></tr>"#,
                id = escape(h.id.as_str()),
                protocol = if h.protocol == bascule_domain::inventory::Protocol::Rdp { "RDP" } else { "VNC" },
                address = escape(&h.address),
                port = h.port,
                max = h.max_sessions,
                health = health_text(lang, &h.health),
                draining = if h.draining { l(lang, "en drainage", "draining") } else { "" },
                pools = escape(&pools.join(", ")),
            )
        })
        .collect();
    let body = format!(
        r#"<main class="console"><h1>{title}</h1>
<table class="data" id="hosts"><thead><tr><th>{host}</th><th>{protocol}</th><th>{address}</th><th>{load}</th><th>{health}</th><th>{drain}</th><th>Pools</th><th></th></tr></thead><tbody>{rows}</tbody></table></main>"#,
        title = l(lang, "Serveurs", "Hosts"),
        host = l(lang, "Serveur", "Host"),
        protocol = l(lang, "Protocole", "Protocol"),
        address = l(lang, "Adresse", "Address"),
        load = l(lang, "Sessions / max", "Sessions / max"),
        health = l(lang, "Santé", "Health"),
        drain = l(lang, "Drainage", "Draining"),
    );
    Html(layout(lang, l(lang, "Serveurs", "Hosts"), "hosts", &body)).into_response()
}

fn health_text(lang: Lang, health: &bascule_domain::inventory::Health) -> String {
    match health {
        bascule_domain::inventory::Health::Healthy => l(lang, "en bonne santé", "healthy").to_owned(),
        bascule_domain::inventory::Health::Unhealthy { reason, .. } => {
            format!("{} ({})", l(lang, "en panne", "unhealthy"), escape(reason))
        }
        _ => l(lang, "inconnue", "unknown").to_owned(),
    }
}

async fn host_page(State(state): State<AppState>,
    agent: Agent,
    Path(id): Path<String>) -> Response {
    let lang = agent.lang;
    let Ok(world) = state.plane.world().await else {
        return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable."));
    };
    let Some(host) = world.hosts.iter().find(|h| h.id == HostId::new(&id)) else {
        return simple(lang, StatusCode::NOT_FOUND, l(lang, "Serveur inconnu.", "Unknown host."));
    };
    let filter = SessionFilter { host: id.clone(), ..SessionFilter::default() };
    let rows = session_rows(&state, &filter).await.unwrap_or_default();
    let now = crate::control::now();
    let filter = bascule_store::AuditFilter { target: Some(&id), action_prefix: Some("host."), ..Default::default() };
    let history: String = state
        .plane
        .store
        .audit_recent(&filter, now.plus_seconds(-30 * 86400), 50)
        .await
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                format_time(&state, e.at.unix_seconds()),
                escape(&e.actor),
                escape(&e.action),
                escape(&e.outcome)
            )
        })
        .collect();
    let body = format!(
        r#"<main class="console"><h1>{id_e}</h1>
<p>{health_label} : {health} · {load_label} : {live} / {max}{draining}</p>
<h2>{sessions}</h2>
<table class="data"><thead><tr><th>{user}</th><th>{resource}</th><th>{host}</th><th>{state}</th><th>{since}</th><th>{client}</th><th>{site}</th><th>kbit/s</th><th>RTT</th><th>fps</th><th>{error}</th></tr></thead><tbody>{rows}</tbody></table>
<h2>{history_title}</h2>
<table class="data" id="host-history"><thead><tr><th>{when}</th><th>{who}</th><th>{what}</th><th>{outcome}</th></tr></thead><tbody>{history}</tbody></table></main>"#,
        id_e = escape(&id),
        health_label = l(lang, "Santé", "Health"),
        health = health_text(lang, &host.health),
        load_label = l(lang, "Charge", "Load"),
        live = rows.len(),
        max = host.max_sessions,
        draining = if host.draining { l(lang, " · en drainage", " · draining") } else { "" },
        sessions = l(lang, "Sessions", "Sessions"),
        user = l(lang, "Utilisateur", "User"),
        resource = l(lang, "Ressource", "Resource"),
        host = l(lang, "Serveur", "Host"),
        state = l(lang, "État", "State"),
        since = l(lang, "Depuis", "Since"),
        client = l(lang, "Adresse", "Address"),
        site = l(lang, "Site", "Site"),
        error = l(lang, "Dernière erreur", "Last error"),
        rows = session_table_rows(lang, &rows),
        history_title = l(lang, "Historique (santé, drainage, modifications)", "History (health, draining, changes)"),
        when = l(lang, "Quand", "When"),
        who = l(lang, "Qui", "Who"),
        what = l(lang, "Quoi", "What"),
        outcome = l(lang, "Résultat", "Outcome"),
    );
    Html(layout(lang, &id, "hosts", &body)).into_response()
}

#[derive(Deserialize)]
struct DrainForm {
    csrf: String,
    draining: bool,
}

async fn host_drain(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<DrainForm>,
) -> Response {
    if let Err(response) = agent.check(&headers, &form.csrf) {
        return response;
    }
    let actor = admin_actor(&agent.user, peer.ip(), agent.lang);
    // The admin service refuses the helpdesk (ManageInventory) and audits either way.
    match state.plane.admin.set_draining(&actor, &id, form.draining).await {
        Ok(_) => Redirect::to("/console/hosts").into_response(),
        Err(error) => simple(agent.lang, StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST), &error.message(actor.lang)),
    }
}

#[derive(Deserialize, Default)]
struct AuditFilter {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    q: String,
}

/// Local calendar day `YYYY-MM-DD` → Unix seconds at its start, in the site's time zone.
fn day_start(state: &AppState, day: &str) -> Option<i64> {
    let date: jiff::civil::Date = day.parse().ok()?;
    date.to_zoned(state.plane.timezone.clone()).ok().map(|z| z.timestamp().as_second())
}

async fn audit_entries(state: &AppState, filter: &AuditFilter) -> Result<Vec<bascule_store::AuditEntry>, bascule_store::StoreError> {
    let now = crate::control::now().unix_seconds();
    let from = day_start(state, &filter.from).unwrap_or(now - 86400);
    let to = day_start(state, &filter.to).map(|t| t + 86400).unwrap_or(now + 1);
    let entries = state
        .plane
        .store
        .audit_between(
            bascule_domain::time::Timestamp::from_unix_seconds(from),
            bascule_domain::time::Timestamp::from_unix_seconds(to),
        )
        .await?;
    let q = filter.q.to_lowercase();
    Ok(entries
        .into_iter()
        .rev()
        .filter(|e| filter.actor.is_empty() || e.actor == filter.actor)
        .filter(|e| filter.action.is_empty() || e.action.starts_with(&filter.action))
        .filter(|e| q.is_empty() || e.target.to_lowercase().contains(&q) || e.outcome.to_lowercase().contains(&q))
        .collect())
}

async fn audit_page(State(state): State<AppState>,
    agent: Agent,
    Query(filter): Query<AuditFilter>) -> Response {
    let lang = agent.lang;
    let Ok(entries) = audit_entries(&state, &filter).await else {
        return simple(lang, StatusCode::SERVICE_UNAVAILABLE, l(lang, "Base de données injoignable.", "Database unreachable."));
    };
    let rows: String = entries
        .iter()
        .take(500)
        .map(|e| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                format_time(&state, e.at.unix_seconds()),
                escape(&e.actor),
                escape(&e.action),
                escape(&e.target),
                escape(e.address.as_deref().unwrap_or("")),
                escape(&e.outcome)
            )
        })
        .collect();
    let query = serde_urlencoded_query(&filter);
    let body = format!(
        r#"<main class="console"><h1>{title}</h1>
<form class="filters" method="get" action="/console/audit" role="search">
<label>{from_l}<input type="date" name="from" value="{from}"></label>
<label>{to_l}<input type="date" name="to" value="{to}"></label>
<label>{actor_l}<input name="actor" value="{actor}"></label>
<label>{action_l}<input name="action" value="{action}" placeholder="login, launch, host."></label>
<label>{q_l}<input type="search" name="q" value="{q}"></label>
<button class="btn" type="submit">{filter_l}</button>
<a class="btn" href="/console/audit.csv?{query}" download>{csv}</a>
</form>
<p class="muted">{count} {entries_l}{more}</p>
<table class="data" id="audit"><thead><tr><th>{when}</th><th>{actor_l}</th><th>{action_l}</th><th>{target_l}</th><th>{address_l}</th><th>{outcome_l}</th></tr></thead><tbody>{rows}</tbody></table></main>"#,
        title = l(lang, "Journal d'audit", "Audit log"),
        from_l = l(lang, "Du", "From"),
        to_l = l(lang, "Au", "To"),
        actor_l = l(lang, "Qui", "Who"),
        action_l = l(lang, "Action", "Action"),
        q_l = l(lang, "Cible ou résultat contient", "Target or outcome contains"),
        filter_l = l(lang, "Filtrer", "Filter"),
        csv = l(lang, "Exporter en CSV", "Export CSV"),
        from = escape(&filter.from),
        to = escape(&filter.to),
        actor = escape(&filter.actor),
        action = escape(&filter.action),
        q = escape(&filter.q),
        count = entries.len(),
        entries_l = l(lang, "entrée(s)", "entries"),
        more = if entries.len() > 500 { l(lang, " (500 affichées ; l'export CSV les contient toutes)", " (500 shown; the CSV export has them all)") } else { "" },
        when = l(lang, "Quand", "When"),
        target_l = l(lang, "Cible", "Target"),
        address_l = l(lang, "Adresse", "Address"),
        outcome_l = l(lang, "Résultat", "Outcome"),
    );
    Html(layout(lang, l(lang, "Journal d'audit", "Audit log"), "audit", &body)).into_response()
}

fn serde_urlencoded_query(filter: &AuditFilter) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "from={}&to={}&actor={}&action={}&q={}",
        enc(&filter.from),
        enc(&filter.to),
        enc(&filter.actor),
        enc(&filter.action),
        enc(&filter.q)
    )
}

/// A CSV field: quoted, quotes doubled; a leading `=`, `+`, `-` or `@` is neutralised so that a
/// spreadsheet never runs it as a formula.
pub(crate) fn csv_field(text: &str) -> String {
    let safe = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    format!("\"{}\"", safe.replace('"', "\"\""))
}

async fn audit_csv(
    State(state): State<AppState>,
    agent: Agent,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(filter): Query<AuditFilter>,
) -> Response {
    let Ok(entries) = audit_entries(&state, &filter).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let mut csv = String::from("at;actor;action;target;address;outcome\n");
    for e in &entries {
        let at = jiff::Timestamp::from_second(e.at.unix_seconds())
            .map(|t| t.to_zoned(state.plane.timezone.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
            .unwrap_or_default();
        csv.push_str(&format!(
            "{};{};{};{};{};{}\n",
            csv_field(&at),
            csv_field(&e.actor),
            csv_field(&e.action),
            csv_field(&e.target),
            csv_field(e.address.as_deref().unwrap_or("")),
            csv_field(&e.outcome)
        ));
    }
    state.plane.audit(&agent.user.login, "audit.export", "csv", Some(peer.ip()), &format!("{} entries", entries.len())).await;
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
    if let Ok(value) = "attachment; filename=\"bascule-audit.csv\"".parse() {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
