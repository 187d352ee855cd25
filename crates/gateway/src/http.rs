//! HTTP routes: login, portal, viewer page, launch API, WebSocket, static files.
//!
//! Handlers extract, call the auth/session layer, and answer; pages are small server-rendered
//! HTML in the user's language.

use crate::auth::{LoginOutcome, PortalSession, random_token, same_secret};
use crate::i18n::{Lang, escape, t};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Instant;

const SESSION_COOKIE: &str = "bascule_session";
const LOGIN_CSRF_COOKIE: &str = "bascule_login_csrf";
const LANG_COOKIE: &str = "bascule_lang";

#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/static/"]
struct Static;

/// Builds the router (handy for tests, which can call it without a server).
pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(portal))
        .route("/login", get(login_page).post(login_submit))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_lang))
        .route("/view/{resource}", get(viewer_page))
        .route("/api/launch", post(launch))
        .route("/ws", get(websocket))
        .route("/static/{*path}", get(static_file))
        .route("/icon/{resource}", get(resource_icon))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::map_request(host_from_authority))
        .with_state(state)
}

/// HTTP/2 requests carry the host in the `:authority` pseudo-header, not in `Host`; the origin
/// checks read `Host`, so copy it there.
async fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.headers().contains_key(header::HOST) {
        if let Some(value) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            request.headers_mut().insert(header::HOST, value);
        }
    }
    request
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    set(headers, "strict-transport-security", "max-age=31536000");
    response
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    // INVARIANT: names and values are our own URL-safe tokens or fixed words.
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(Lang::from_accept_language))
        .unwrap_or_default()
}

/// A request that changes state must come from our own pages: same origin when the browser says.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin == format!("https://{host}")
}

fn portal_session(state: &AppState, headers: &HeaderMap) -> Option<PortalSession> {
    state.auth.session(cookie(headers, SESSION_COOKIE)?, Instant::now())
}

fn page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Bascule</title>
<link rel="stylesheet" href="/static/portal.css">
</head>
<body>
<div class="page">
<header class="topbar"><span class="brand">Bascule</span><a class="lang-switch" href="/lang/{other}">{switch}</a></header>
{body}
</div>
</body>
</html>"#,
        code = lang.code(),
        title = escape(title),
        other = lang.other().code(),
        switch = t(lang, "lang.switch"),
    )
}

fn error_page(lang: Lang, status: StatusCode, key: &str) -> Response {
    let body = format!(
        r#"<main class="card"><p class="error" role="alert">{}</p><p><a class="btn" href="/">Bascule</a></p></main>"#,
        t(lang, key)
    );
    (status, Html(page(lang, t(lang, key), &body))).into_response()
}

fn json_error(lang: Lang, status: StatusCode, key: &str) -> Response {
    let code = key.trim_start_matches("error.");
    (status, axum::Json(serde_json::json!({ "error": code, "message": t(lang, key) }))).into_response()
}

async fn not_found(headers: HeaderMap) -> Response {
    error_page(lang(&headers), StatusCode::NOT_FOUND, "error.not_found")
}

fn login_form(lang: Lang, csrf: &str, username: &str, error: Option<&str>) -> String {
    let error = error.map(|key| format!(r#"<p class="error" role="alert">{}</p>"#, t(lang, key))).unwrap_or_default();
    format!(
        r#"<main class="card login">
<h1>{title}</h1>
{error}
<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<label class="field">{user_label}<input name="username" autocomplete="username" required autofocus value="{username}"></label>
<label class="field">{pass_label}<input name="password" type="password" autocomplete="current-password" required></label>
<button class="btn btn-primary" type="submit">{submit}</button>
</form>
</main>"#,
        title = t(lang, "login.title"),
        user_label = t(lang, "login.username"),
        pass_label = t(lang, "login.password"),
        submit = t(lang, "login.submit"),
        username = escape(username),
    )
}

fn render_login(lang: Lang, status: StatusCode, username: &str, error: Option<&str>) -> Response {
    let csrf = random_token();
    let mut response =
        (status, Html(page(lang, t(lang, "login.title"), &login_form(lang, &csrf, username, error)))).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(3600)));
    response
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if portal_session(&state, &headers).is_some() {
        return Redirect::to("/").into_response();
    }
    render_login(lang(&headers), StatusCode::OK, "", None)
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang(&headers);
    let username = form.username.trim();
    let csrf_ok = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| same_secret(c, &form.csrf));
    if !csrf_ok || !same_origin(&headers) {
        state.audit.record(username, "login", "portal", Some(peer.ip()), "refused: csrf");
        return render_login(lang, StatusCode::FORBIDDEN, username, Some("login.csrf"));
    }
    let outcome = state.auth.login(&state.config, username, &form.password, peer.ip(), Instant::now());
    let (status, key, audit) = match outcome {
        LoginOutcome::Success { session_id } => {
            state.audit.record(username, "login", "portal", Some(peer.ip()), "success");
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session_id, None));
            response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0)));
            return response;
        }
        LoginOutcome::WrongCredentials => (StatusCode::UNAUTHORIZED, "login.failed", "failure: wrong credentials"),
        LoginOutcome::Locked => (StatusCode::LOCKED, "login.locked", "failure: account locked"),
        LoginOutcome::Throttled => (StatusCode::TOO_MANY_REQUESTS, "login.throttled", "failure: address throttled"),
    };
    state.audit.record(username, "login", "portal", Some(peer.ip()), audit);
    render_login(lang, status, username, Some(key))
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    if let Some(session) = portal_session(&state, &headers) {
        if !same_secret(&session.csrf, &form.csrf) || !same_origin(&headers) {
            return error_page(lang(&headers), StatusCode::FORBIDDEN, "error.csrf");
        }
        state.auth.logout(&session.id);
        state.audit.record(&session.user, "logout", "portal", None, "success");
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    response
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn switch_lang(Path(code): Path<String>, Query(query): Query<NextQuery>) -> Response {
    let Some(lang) = Lang::parse(&code) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // Only local paths, so this cannot become an open redirect.
    let next = query.next.filter(|n| n.starts_with('/') && !n.starts_with("//")).unwrap_or_else(|| "/".into());
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LANG_COOKIE, lang.code(), Some(365 * 86400)));
    response
}

/// The icon URL of a resource: its own, or the built-in one for its kind.
fn icon_url(state: &AppState, resource: &crate::config::ResourceConfig) -> String {
    if state.icons.contains_key(&resource.id) {
        format!("/icon/{}", resource.id)
    } else if resource.kind == crate::config::ResourceKind::Application {
        "/static/icons/application.svg".into()
    } else {
        "/static/icons/desktop.svg".into()
    }
}

async fn resource_icon(State(state): State<AppState>, headers: HeaderMap, Path(resource_id): Path<String>) -> Response {
    let Some(session) = portal_session(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match state.icons.get(&resource_id) {
        Some((mime, bytes)) if entitled(&state, &session.user, &resource_id) => {
            ([(header::CONTENT_TYPE, *mime)], bytes.clone()).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn resource_name(resource: &crate::config::ResourceConfig, lang: Lang) -> &str {
    match lang {
        Lang::Fr => &resource.name_fr,
        Lang::En => &resource.name_en,
    }
}

async fn portal(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let user = state.config.user(&session.user);
    let shown_name = user.and_then(|u| u.display_name.clone()).unwrap_or_else(|| session.user.clone());
    let entitled: Vec<_> = user
        .map(|u| u.resources.iter().filter_map(|id| state.config.resource(id)).collect())
        .unwrap_or_default();
    let items = if entitled.is_empty() {
        format!(r#"<p class="empty">{}</p>"#, t(lang, "portal.empty"))
    } else {
        let list: String = entitled
            .iter()
            .map(|r| {
                format!(
                    r#"<li class="resource"><img class="resource-icon" src="{icon}" alt="" width="40" height="40"><span class="resource-name">{name}</span><a class="btn btn-primary" href="/view/{id}" data-resource="{id}">{open}</a></li>"#,
                    icon = escape(&icon_url(&state, r)),
                    name = escape(resource_name(r, lang)),
                    id = escape(&r.id),
                    open = t(lang, "portal.open"),
                )
            })
            .collect();
        format!(r#"<ul class="resource-list">{list}</ul>"#)
    };
    let body = format!(
        r#"<main class="card portal">
<p class="hello">{hello} {name}</p>
<h1>{title}</h1>
{items}
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button class="btn" type="submit">{logout}</button></form>
</main>"#,
        hello = t(lang, "portal.hello"),
        name = escape(&shown_name),
        title = t(lang, "portal.title"),
        csrf = session.csrf,
        logout = t(lang, "portal.logout"),
    );
    Html(page(lang, t(lang, "portal.title"), &body)).into_response()
}

fn entitled(state: &AppState, user: &str, resource: &str) -> bool {
    state.config.user(user).is_some_and(|u| u.resources.iter().any(|r| r == resource))
}

async fn viewer_page(State(state): State<AppState>, headers: HeaderMap, Path(resource_id): Path<String>) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let Some(resource) = state.config.resource(&resource_id) else {
        return error_page(lang, StatusCode::NOT_FOUND, "error.unknown_resource");
    };
    if !entitled(&state, &session.user, &resource.id) {
        state.audit.record(&session.user, "view", &resource_id, None, "refused: not entitled");
        return error_page(lang, StatusCode::FORBIDDEN, "error.not_entitled");
    }
    let name = escape(resource_name(resource, lang));
    Html(format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · Bascule</title>
<link rel="icon" href="{icon}">
<link rel="stylesheet" href="/static/viewer/viewer.css">
</head>
<body data-resource="{id}" data-resource-name="{name}" data-resource-icon="{icon}" data-csrf="{csrf}" data-portal-url="/">
<div id="bascule-viewer"></div>
<script type="module" src="/static/viewer/main.js"></script>
</body>
</html>"#,
        code = lang.code(),
        id = escape(&resource.id),
        icon = escape(&icon_url(&state, resource)),
        csrf = session.csrf,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct LaunchRequest {
    resource: String,
}

async fn launch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return json_error(lang, StatusCode::UNAUTHORIZED, "error.not_logged_in");
    };
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !same_secret(token, &session.csrf) || !same_origin(&headers) {
        state.audit.record(&session.user, "launch", "-", Some(peer.ip()), "refused: csrf");
        return json_error(lang, StatusCode::FORBIDDEN, "error.csrf");
    }
    let Ok(request) = serde_json::from_slice::<LaunchRequest>(&body) else {
        return json_error(lang, StatusCode::BAD_REQUEST, "error.bad_request");
    };
    if state.config.resource(&request.resource).is_none() {
        state.audit.record(&session.user, "launch", &request.resource, Some(peer.ip()), "refused: unknown resource");
        return json_error(lang, StatusCode::NOT_FOUND, "error.unknown_resource");
    }
    if !entitled(&state, &session.user, &request.resource) {
        state.audit.record(&session.user, "launch", &request.resource, Some(peer.ip()), "refused: not entitled");
        return json_error(lang, StatusCode::FORBIDDEN, "error.not_entitled");
    }
    let ticket = state.auth.issue_ticket(&session, &request.resource, Instant::now());
    state.audit.record(&session.user, "launch", &request.resource, Some(peer.ip()), "ticket issued");
    axum::Json(serde_json::json!({ "ticket": ticket, "ws": format!("/ws?ticket={ticket}") })).into_response()
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: String,
}

async fn websocket(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<TicketQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return json_error(lang, StatusCode::UNAUTHORIZED, "error.not_logged_in");
    };
    if !same_origin(&headers) {
        return json_error(lang, StatusCode::FORBIDDEN, "error.csrf");
    }
    let Some((user, resource_id)) = state.auth.redeem_ticket(&query.ticket, &session.id, Instant::now()) else {
        state.audit.record(&session.user, "connect", "-", Some(peer.ip()), "refused: invalid or used ticket");
        return json_error(lang, StatusCode::FORBIDDEN, "error.forbidden");
    };
    let Some(resource) = state.config.resource(&resource_id).cloned() else {
        return json_error(lang, StatusCode::NOT_FOUND, "error.unknown_resource");
    };
    state.audit.record(&user, "connect", &resource_id, Some(peer.ip()), "success");
    let name = resource_name(&resource, lang).to_owned();
    // The server, never the browser, decides which account logs in to the host.
    let passthrough = resource.protocol == "rdp" && resource.credentials == crate::config::CredentialsMode::Passthrough;
    let credentials = crate::session::Credentials {
        username: if passthrough { Some(user.clone()) } else { resource.username.clone() },
        password: if passthrough { session.password.clone() } else { state.secrets.get(&resource.id).cloned() },
        certificates: crate::certstore::CertificateStore::new(&state.config.data_dir),
    };
    let live = state.sessions.attach(&user, &resource, name, credentials, &state.config.sessions, state.audit.clone());
    upgrade
        // A little above the protocol limit, so that we can close with a reason ourselves.
        .max_message_size(bascule_proto::MAX_CLIENT_MESSAGE * 4)
        .on_upgrade(move |socket| crate::ws::run_viewer(socket, state, live))
}

async fn static_file(Path(path): Path<String>) -> Response {
    match Static::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            ([(header::CONTENT_TYPE, mime.to_owned()), (header::CACHE_CONTROL, "no-cache".to_owned())], file.data)
                .into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
