//! HTTP routes: login, portal, viewer page, launch API, WebSocket, static files.
//!
//! Handlers extract, call the auth/session layer, and answer; pages are small server-rendered
//! HTML in the user's language.

use crate::auth::{Gate, PortalSession, random_token, same_secret};
use crate::control::{Launch, LaunchError};
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
const MFA_COOKIE: &str = "bascule_mfa";

/// Tokens that tell shadow viewers apart within a session.
static SHADOW_TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/static/"]
struct Static;

/// Builds the router (handy for tests, which can call it without a server).
pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(portal))
        .route("/login", get(login_page).post(login_submit))
        .route("/login/totp", get(totp_page).post(totp_submit))
        .route("/logout", post(logout))
        .route("/sessions/{id}/logoff", post(logoff))
        .route("/lang/{code}", get(switch_lang))
        .route("/view/{resource}", get(viewer_page))
        .route("/api/launch", post(launch))
        .route("/api/shadow", post(shadow))
        .route("/console/shadow/{id}", get(shadow_page))
        .nest("/console", crate::console::router().merge(crate::incidents::router()).merge(crate::report::router()))
        .route("/ws", get(websocket))
        .route("/static/{*path}", get(static_file))
        .route("/icon/{resource}", get(resource_icon))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(crate::metrics::route))
        .nest_service("/api/v1", crate::api::router(state.clone()))
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::middleware::map_request(host_from_authority))
        .with_state(state)
}

/// HTTP/2 requests carry the host in the `:authority` pseudo-header, not in `Host`; the origin
/// checks read `Host`, so copy it there.
async fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    if !request.headers().contains_key(header::HOST)
        && let Some(value) = request.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()) {
            request.headers_mut().insert(header::HOST, value);
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

pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map(|s| format!("; Max-Age={s}")).unwrap_or_default();
    // INVARIANT: names and values are our own URL-safe tokens or fixed words.
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(crate) fn lang(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .or_else(|| headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(Lang::from_accept_language))
        .unwrap_or_default()
}

/// A request that changes state must come from our own pages: same origin when the browser says.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    origin == format!("https://{host}")
}

pub(crate) fn portal_session(state: &AppState, headers: &HeaderMap) -> Option<PortalSession> {
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

pub(crate) fn json_error(lang: Lang, status: StatusCode, key: &str) -> Response {
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

/// The account behind a login name, if the password is right: a local account (argon2id), or a
/// directory user (mirrored into the database on success).
async fn check_password(state: &AppState, login: &str, password: &str) -> Result<Option<bascule_domain::access::User>, String> {
    let plane = &state.plane;
    let local = match plane.store.get_user_by_login(login).await.map_err(|e| e.to_string())? {
        Some(user) => {
            let auth = plane.store.get_user_auth(&user.id).await.map_err(|e| e.to_string())?.unwrap_or_default();
            match (auth.source, auth.password_hash) {
                (bascule_store::AuthSource::Local, Some(hash)) => Some((user, hash)),
                _ => None,
            }
        }
        None => None,
    };
    if let Some((user, hash)) = local {
        let password = password.to_owned();
        // argon2 takes tens of milliseconds on purpose: off the async workers.
        let ok = crate::auth::verify_password_async(hash, password).await;
        return Ok(ok.then_some(user));
    }
    if plane.directory.is_some() {
        return plane.directory_login(login, password).await;
    }
    // Same cost as a real check, so that timing does not tell which logins exist.
    let dummy = state.auth.dummy_hash.clone();
    let password = password.to_owned();
    let _ = crate::auth::verify_password_async(dummy, password).await;
    Ok(None)
}

async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = lang(&headers);
    let username = form.username.trim();
    let plane = &state.plane;
    let csrf_ok = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| same_secret(c, &form.csrf));
    if !csrf_ok || !same_origin(&headers) {
        plane.audit(username, "login", "portal", Some(peer.ip()), "refused: csrf").await;
        return render_login(lang, StatusCode::FORBIDDEN, username, Some("login.csrf"));
    }
    let refuse = |status, key, outcome: &'static str| async move {
        crate::metrics::login(match key {
            "login.throttled" => "throttled",
            "login.locked" => "locked",
            "login.disabled" => "disabled",
            _ => "failure",
        });
        plane.audit(username, "login", "portal", Some(peer.ip()), outcome).await;
        render_login(lang, status, username, Some(key))
    };
    match state.auth.gate(username, peer.ip(), Instant::now()) {
        Gate::Throttled => return refuse(StatusCode::TOO_MANY_REQUESTS, "login.throttled", "failure: address throttled").await,
        Gate::Locked => return refuse(StatusCode::LOCKED, "login.locked", "failure: account locked").await,
        Gate::Open => {}
    }
    let user = match check_password(&state, username, &form.password).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return match state.auth.failure(username, peer.ip(), Instant::now()) {
                Gate::Locked => {
                    crate::metrics::lockout();
                    refuse(StatusCode::LOCKED, "login.locked", "failure: wrong credentials, account locked").await
                }
                _ => refuse(StatusCode::UNAUTHORIZED, "login.failed", "failure: wrong credentials").await,
            };
        }
        Err(error) => {
            tracing::error!(%error, "login check failed");
            crate::metrics::login("error");
            plane.audit(username, "login", "portal", Some(peer.ip()), &format!("error: {error}")).await;
            return render_login(lang, StatusCode::SERVICE_UNAVAILABLE, username, Some("login.unavailable"));
        }
    };
    if !user.enabled {
        return refuse(StatusCode::FORBIDDEN, "login.disabled", "refused: account disabled").await;
    }
    let keep_password = state.needs_passwords.load(std::sync::atomic::Ordering::Relaxed);
    let password = keep_password.then(|| crate::secrets::Secret::new(form.password.clone()));
    if state.config.mfa.totp == crate::config::TotpMode::Off {
        return finish_login(&state, &user, password, peer, Vec::new()).await;
    }
    let auth = match plane.store.get_user_auth(&user.id).await {
        Ok(auth) => auth.unwrap_or_default(),
        Err(error) => {
            tracing::error!(%error, "cannot read the user's second factor");
            return render_login(lang, StatusCode::SERVICE_UNAVAILABLE, username, Some("login.unavailable"));
        }
    };
    let enrolling = match (&auth.totp_secret, auth.totp_confirmed) {
        (Some(_), true) => None,
        _ => Some(bascule_mfa::TotpSecret::generate().to_base32()),
    };
    let outcome = if enrolling.is_some() { "password ok: totp enrolment" } else { "password ok: totp asked" };
    plane.audit(username, "login.password", "portal", Some(peer.ip()), outcome).await;
    let token = state.auth.begin_mfa(user.id.as_str(), &user.login, password, enrolling, Instant::now());
    let mut response = Redirect::to("/login/totp").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(MFA_COOKIE, &token, Some(300)));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0)));
    response
}

/// Opens the portal session and sends the user to the portal.
async fn finish_login(
    state: &AppState,
    user: &bascule_domain::access::User,
    password: Option<crate::secrets::Secret>,
    peer: SocketAddr,
    extra_cookies: Vec<HeaderValue>,
) -> Response {
    state.auth.unlock(&user.login);
    crate::metrics::login("success");
    let session = state.auth.open_session(user.id.as_str(), password, Instant::now());
    state.plane.audit(&user.login, "login", "portal", Some(peer.ip()), "success").await;
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session.id, None));
    response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0)));
    for cookie in extra_cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn totp_form(lang: Lang, pending: &crate::auth::PendingMfa, issuer: &str, error: Option<&str>) -> String {
    let error = error.map(|key| format!(r#"<p class="error" role="alert">{}</p>"#, t(lang, key))).unwrap_or_default();
    let enrol = match &pending.enrolling {
        Some(secret) => {
            let uri = bascule_mfa::provisioning_uri(
                &bascule_mfa::TotpSecret::from_base32(secret).unwrap_or_else(|_| bascule_mfa::TotpSecret::generate()),
                issuer,
                &pending.login,
            );
            let grouped: Vec<String> =
                secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
            format!(
                r#"<p>{intro}</p>
<div class="qr" aria-hidden="true">{qr}</div>
<p class="muted">{manual}</p>
<p><code class="totp-secret" data-secret="{secret}">{grouped}</code></p>"#,
                intro = t(lang, "totp.enrol_intro"),
                qr = bascule_mfa::qr_svg(&uri).unwrap_or_default(),
                manual = t(lang, "totp.enrol_manual"),
                secret = escape(secret),
                grouped = escape(&grouped.join(" ")),
            )
        }
        None => format!(r#"<p>{}</p>"#, t(lang, "totp.ask")),
    };
    let title = if pending.enrolling.is_some() { t(lang, "totp.enrol_title") } else { t(lang, "totp.title") };
    format!(
        r#"<main class="card login">
<h1>{title}</h1>
{error}
{enrol}
<form method="post" action="/login/totp">
<input type="hidden" name="csrf" value="{csrf}">
<label class="field">{code_label}<input name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{{6,7}}" maxlength="7" required autofocus></label>
<button class="btn btn-primary" type="submit">{submit}</button>
</form>
<p><a href="/login">{restart}</a></p>
</main>"#,
        csrf = escape(&pending.csrf),
        code_label = t(lang, "totp.code"),
        submit = t(lang, "totp.submit"),
        restart = t(lang, "totp.restart"),
    )
}

async fn totp_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    let Some(pending) = cookie(&headers, MFA_COOKIE).and_then(|token| state.auth.pending(token, Instant::now())) else {
        return Redirect::to("/login").into_response();
    };
    let body = totp_form(lang, &pending, &state.config.mfa.issuer, None);
    Html(page(lang, t(lang, "totp.title"), &body)).into_response()
}

#[derive(Deserialize)]
struct TotpForm {
    code: String,
    csrf: String,
}

async fn totp_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<TotpForm>,
) -> Response {
    let lang = lang(&headers);
    let plane = &state.plane;
    let Some(token) = cookie(&headers, MFA_COOKIE) else { return Redirect::to("/login").into_response() };
    let Some(pending) = state.auth.pending(token, Instant::now()) else {
        return render_login(lang, StatusCode::UNAUTHORIZED, "", Some("totp.expired"));
    };
    if !same_secret(&pending.csrf, &form.csrf) || !same_origin(&headers) {
        return render_login(lang, StatusCode::FORBIDDEN, &pending.login, Some("login.csrf"));
    }
    let retry = |status: StatusCode, key: &'static str| {
        (status, Html(page(lang, t(lang, "totp.title"), &totp_form(lang, &pending, &state.config.mfa.issuer, Some(key)))))
            .into_response()
    };
    match state.auth.gate(&pending.login, peer.ip(), Instant::now()) {
        Gate::Open => {}
        gate => {
            state.auth.end_mfa(token);
            plane.audit(&pending.login, "login.totp", "portal", Some(peer.ip()), "failure: account locked or throttled").await;
            let key = if gate == Gate::Locked { "login.locked" } else { "login.throttled" };
            return render_login(lang, StatusCode::LOCKED, &pending.login, Some(key));
        }
    }
    let user_id = bascule_domain::id::UserId::new(&pending.user);
    let secret = match &pending.enrolling {
        Some(secret) => Some(secret.clone()),
        None => match plane.store.get_user_auth(&user_id).await {
            Ok(Some(bascule_store::UserAuth { totp_secret: Some(sealed), .. })) => {
                plane.key.decrypt(&sealed).ok().map(|s| s.expose().to_owned())
            }
            _ => None,
        },
    };
    let Some(secret) = secret.and_then(|s| bascule_mfa::TotpSecret::from_base32(&s).ok()) else {
        tracing::error!(user = %pending.login, "the stored TOTP secret cannot be read");
        return retry(StatusCode::SERVICE_UNAVAILABLE, "login.unavailable");
    };
    let now_secs = crate::control::now().unix_seconds().max(0) as u64;
    let step = match bascule_mfa::verify(&secret, &form.code, now_secs, state.auth.last_totp_step(&pending.user)) {
        Ok(step) => step,
        Err(error) => {
            let outcome = format!("failure: totp {error}");
            plane.audit(&pending.login, "login.totp", "portal", Some(peer.ip()), &outcome).await;
            crate::metrics::login("failure");
            if state.auth.failure(&pending.login, peer.ip(), Instant::now()) == Gate::Locked {
                crate::metrics::lockout();
                state.auth.end_mfa(token);
                return render_login(lang, StatusCode::LOCKED, &pending.login, Some("login.locked"));
            }
            return retry(StatusCode::UNAUTHORIZED, "totp.wrong");
        }
    };
    state.auth.use_totp_step(&pending.user, step);
    if pending.enrolling.is_some() {
        let mut auth = match plane.store.get_user_auth(&user_id).await {
            Ok(auth) => auth.unwrap_or_default(),
            Err(_) => return retry(StatusCode::SERVICE_UNAVAILABLE, "login.unavailable"),
        };
        auth.totp_secret = Some(plane.key.encrypt(&secret.to_base32()));
        auth.totp_confirmed = true;
        if plane.store.set_user_auth(&user_id, &auth).await.is_err() {
            return retry(StatusCode::SERVICE_UNAVAILABLE, "login.unavailable");
        }
        plane.audit(&pending.login, "totp.enrol", &pending.login, Some(peer.ip()), "ok").await;
    }
    state.auth.end_mfa(token);
    let Ok(Some(user)) = plane.store.get_user(&user_id).await else {
        return render_login(lang, StatusCode::UNAUTHORIZED, "", Some("login.failed"));
    };
    finish_login(&state, &user, pending.password.clone(), peer, vec![set_cookie(MFA_COOKIE, "", Some(0))]).await
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
        let login = login_of(&state, &session).await;
        state.plane.audit(&login, "logout", "portal", None, "success").await;
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", Some(0)));
    response
}

/// The login name of a portal session's user (for the audit log).
async fn login_of(state: &AppState, session: &PortalSession) -> String {
    let id = bascule_domain::id::UserId::new(&session.user);
    match state.plane.store.get_user(&id).await {
        Ok(Some(user)) => user.login,
        _ => session.user.clone(),
    }
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
fn icon_url(resource: &bascule_domain::inventory::Resource, has_icon: bool) -> String {
    if has_icon {
        format!("/icon/{}", resource.id)
    } else if matches!(resource.kind, bascule_domain::inventory::ResourceKind::Application { .. }) {
        "/static/icons/application.svg".into()
    } else {
        "/static/icons/desktop.svg".into()
    }
}

/// The signed-in user and the world, or why not.
async fn user_and_world(
    state: &AppState,
    session: &PortalSession,
) -> Result<(bascule_domain::access::User, bascule_domain::broker::World), StatusCode> {
    let world = state.plane.world().await.map_err(|error| {
        tracing::error!(%error, "cannot load the control plane");
        StatusCode::SERVICE_UNAVAILABLE
    })?;
    let user = world.user(&bascule_domain::id::UserId::new(&session.user)).cloned().ok_or(StatusCode::UNAUTHORIZED)?;
    Ok((user, world))
}

async fn resource_icon(State(state): State<AppState>, headers: HeaderMap, Path(resource_id): Path<String>) -> Response {
    let Some(session) = portal_session(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok((user, world)) = user_and_world(&state, &session).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let id = bascule_domain::id::ResourceId::new(&resource_id);
    if !bascule_domain::access::is_entitled(&user, &id, &world.entitlements) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.plane.icon(&id).await {
        Some((mime, bytes)) => {
            let mime = if mime == "image/svg+xml" { "image/svg+xml" } else { "image/png" };
            ([(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn resource_name(resource: &bascule_domain::inventory::Resource, lang: Lang) -> &str {
    match lang {
        Lang::Fr => &resource.name_fr,
        Lang::En => &resource.name_en,
    }
}

fn format_time(at: bascule_domain::time::Timestamp, plane: &crate::control::ControlPlane) -> String {
    jiff::Timestamp::from_second(at.unix_seconds())
        .map(|t| t.to_zoned(plane.timezone.clone()).strftime("%d/%m %H:%M").to_string())
        .unwrap_or_default()
}

async fn portal(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let (user, world) = match user_and_world(&state, &session).await {
        Ok(found) => found,
        Err(StatusCode::UNAUTHORIZED) => return Redirect::to("/login").into_response(),
        Err(status) => return error_page(lang, status, "error.internal"),
    };
    let entitled = world.entitled_resources(&user);
    let mut items = String::new();
    for r in &entitled {
        let has_icon = state.plane.has_icon(&r.id).await;
        items.push_str(&format!(
            r#"<li class="resource"><img class="resource-icon" src="{icon}" alt="" width="40" height="40"><span class="resource-name">{name}</span><a class="btn btn-primary" href="/view/{id}" data-resource="{id}">{open}</a></li>"#,
            icon = escape(&icon_url(r, has_icon)),
            name = escape(resource_name(r, lang)),
            id = escape(r.id.as_str()),
            open = t(lang, "portal.open"),
        ));
    }
    let items = if entitled.is_empty() {
        format!(r#"<p class="empty">{}</p>"#, t(lang, "portal.empty"))
    } else {
        format!(r#"<ul class="resource-list">{items}</ul>"#)
    };
    let mine: Vec<_> = world.sessions.iter().filter(|s| s.user() == &user.id && s.is_live()).collect();
    let sessions = if mine.is_empty() {
        format!(r#"<p class="empty" id="no-sessions">{}</p>"#, t(lang, "sessions.none"))
    } else {
        let rows: String = mine
            .iter()
            .map(|s| {
                let name = world.resource(s.resource()).map(|r| resource_name(r, lang).to_owned()).unwrap_or_else(|| s.resource().to_string());
                let state_key = match s.state() {
                    bascule_domain::session::SessionState::Active => "sessions.active",
                    bascule_domain::session::SessionState::Disconnected { .. } => "sessions.disconnected",
                    _ => "sessions.starting",
                };
                format!(
                    r#"<li class="session" data-session="{id}" data-state="{state}"><span class="resource-name">{name}</span><span class="session-state">{state_text} · {since} {started}</span><a class="btn" href="/view/{resource}">{reconnect}</a><form method="post" action="/sessions/{id}/logoff"><input type="hidden" name="csrf" value="{csrf}"><button class="btn btn-danger" type="submit">{logoff}</button></form></li>"#,
                    id = escape(s.id().as_str()),
                    state = s.state().kind().as_str(),
                    name = escape(&name),
                    state_text = t(lang, state_key),
                    since = t(lang, "sessions.since"),
                    started = format_time(s.started_at(), &state.plane),
                    resource = escape(s.resource().as_str()),
                    reconnect = t(lang, "sessions.reconnect"),
                    csrf = session.csrf,
                    logoff = t(lang, "sessions.logoff"),
                )
            })
            .collect();
        format!(r#"<ul class="session-list">{rows}</ul>"#)
    };
    let body = format!(
        r#"<main class="card portal">
<p class="hello">{hello} {name}</p>
<h1>{title}</h1>
{items}
<h2>{sessions_title}</h2>
{sessions}
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}"><button class="btn" type="submit">{logout}</button></form>
</main>"#,
        hello = t(lang, "portal.hello"),
        name = escape(&user.display_name),
        title = t(lang, "portal.title"),
        sessions_title = t(lang, "sessions.title"),
        csrf = session.csrf,
        logout = t(lang, "portal.logout"),
    );
    Html(page(lang, t(lang, "portal.title"), &body)).into_response()
}

async fn logoff(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    if !same_secret(&session.csrf, &form.csrf) || !same_origin(&headers) {
        return error_page(lang, StatusCode::FORBIDDEN, "error.csrf");
    }
    let login = login_of(&state, &session).await;
    let session_id = bascule_domain::id::SessionId::new(&id);
    let record = state.plane.store.get_session(&session_id).await.ok().flatten();
    let Some(record) = record.filter(|r| r.user().as_str() == session.user) else {
        state.plane.audit(&login, "session.logoff", &id, Some(peer.ip()), "refused: not the user's session").await;
        return error_page(lang, StatusCode::NOT_FOUND, "error.not_found");
    };
    // The live connection ends with a notice to its viewers; its record is ended in any case.
    state.sessions.end_session(&id, "session.logged_off");
    let ended = state
        .plane
        .transition(record.id(), |r, at| r.end(at, bascule_domain::session::EndReason::LoggedOff))
        .await;
    let outcome = if ended { "success" } else { "already ended" };
    state.plane.audit(&login, "session.logoff", &id, Some(peer.ip()), outcome).await;
    Redirect::to("/").into_response()
}

async fn viewer_page(State(state): State<AppState>, headers: HeaderMap, Path(resource_id): Path<String>) -> Response {
    let lang = lang(&headers);
    let Some(session) = portal_session(&state, &headers) else {
        return Redirect::to("/login").into_response();
    };
    let (user, world) = match user_and_world(&state, &session).await {
        Ok(found) => found,
        Err(StatusCode::UNAUTHORIZED) => return Redirect::to("/login").into_response(),
        Err(status) => return error_page(lang, status, "error.internal"),
    };
    let id = bascule_domain::id::ResourceId::new(&resource_id);
    let Some(resource) = world.resource(&id) else {
        return error_page(lang, StatusCode::NOT_FOUND, "error.unknown_resource");
    };
    if !bascule_domain::access::is_entitled(&user, &id, &world.entitlements) {
        state.plane.audit(&user.login, "view", &resource_id, None, "refused: not entitled").await;
        return error_page(lang, StatusCode::FORBIDDEN, "error.not_entitled");
    }
    let has_icon = state.plane.has_icon(&id).await;
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
        id = escape(resource.id.as_str()),
        icon = escape(&icon_url(resource, has_icon)),
        csrf = session.csrf,
    ))
    .into_response()
}

#[derive(Deserialize)]
struct LaunchRequest {
    resource: String,
    /// Anything else a client sends (a host, a port, credentials) is refused: the server
    /// resolves all three from the entitlement.
    #[serde(flatten)]
    extra: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The message key of a refused launch.
fn refusal_key(error: &LaunchError) -> (StatusCode, &'static str) {
    use bascule_domain::broker::LaunchRefusal as R;
    match error {
        LaunchError::Refused(R::UnknownResource | R::NotEntitled) => (StatusCode::FORBIDDEN, "error.not_entitled"),
        LaunchError::Refused(R::UserDisabled | R::UnknownUser) => (StatusCode::FORBIDDEN, "login.disabled"),
        LaunchError::Refused(R::OutsideAllowedHours { .. }) => (StatusCode::FORBIDDEN, "launch.outside_hours"),
        LaunchError::Refused(R::NoLicence { .. }) => (StatusCode::SERVICE_UNAVAILABLE, "launch.no_licence"),
        LaunchError::Refused(R::NoHostAvailable { .. } | R::UnknownPool { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "launch.no_host")
        }
        LaunchError::Refused(_) | LaunchError::BadSettings(_) | LaunchError::Store(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "launch.unavailable")
        }
    }
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
    let login = login_of(&state, &session).await;
    let plane = &state.plane;
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !same_secret(token, &session.csrf) || !same_origin(&headers) {
        plane.audit(&login, "launch", "-", Some(peer.ip()), "refused: csrf").await;
        return json_error(lang, StatusCode::FORBIDDEN, "error.csrf");
    }
    let Ok(request) = serde_json::from_slice::<LaunchRequest>(&body) else {
        plane.audit(&login, "launch", "-", Some(peer.ip()), "refused: malformed request").await;
        return json_error(lang, StatusCode::BAD_REQUEST, "error.bad_request");
    };
    if !request.extra.is_empty() {
        let fields: Vec<&str> = request.extra.keys().map(String::as_str).collect();
        let outcome = format!("refused: client_target: client named {}", fields.join(", "));
        plane.audit(&login, "launch", &request.resource, Some(peer.ip()), &outcome).await;
        return json_error(lang, StatusCode::BAD_REQUEST, "launch.client_target");
    }
    let started = Instant::now();
    let user = bascule_domain::id::UserId::new(&session.user);
    let resource = bascule_domain::id::ResourceId::new(&request.resource);
    match plane.launch(&user, &resource).await {
        Ok(launch) => {
            let outcome = format!(
                "{} session {} on host {} ({} ms)",
                if launch.rejoin { "rejoin" } else { "start" },
                launch.session,
                launch.target.host_id,
                started.elapsed().as_millis()
            );
            plane.audit(&login, "launch", &request.resource, Some(peer.ip()), &outcome).await;
            crate::metrics::launch(if launch.rejoin { "rejoin" } else { "start" }, "");
            let session_id = launch.session.to_string();
            let ticket = state.auth.issue_ticket(&session, crate::control::Ticket::Launch(Box::new(launch)), Instant::now());
            axum::Json(serde_json::json!({ "ticket": ticket, "ws": format!("/ws?ticket={ticket}"), "session": session_id }))
                .into_response()
        }
        Err(error) => {
            let outcome = format!("refused: {}: {error}", error.code());
            crate::metrics::launch("refused", error.code());
            plane.audit(&login, "launch", &request.resource, Some(peer.ip()), &outcome).await;
            if matches!(error, LaunchError::Store(_) | LaunchError::BadSettings(_)) {
                tracing::error!(%error, resource = %request.resource, "launch failed");
            }
            let (status, key) = refusal_key(&error);
            // An unknown resource answers like a forbidden one, so as not to reveal which exist.
            let public_code = match &error {
                LaunchError::Refused(bascule_domain::broker::LaunchRefusal::UnknownResource) => "not_entitled",
                _ => error.code(),
            };
            let mut body = serde_json::json!({ "error": public_code, "message": t(lang, key) });
            if let LaunchError::Refused(bascule_domain::broker::LaunchRefusal::OutsideAllowedHours { next_allowed: Some(at) }) = &error {
                body["next_allowed"] = serde_json::json!(format_time(*at, plane));
                body["message"] = serde_json::json!(format!("{} {}", t(lang, key), format_time(*at, plane)));
            }
            (status, axum::Json(body)).into_response()
        }
    }
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
    let login = login_of(&state, &session).await;
    let Some(ticket) = state.auth.redeem_ticket(&query.ticket, &session.id, Instant::now()) else {
        state.plane.audit(&login, "connect", "-", Some(peer.ip()), "refused: invalid, expired or used ticket").await;
        return json_error(lang, StatusCode::FORBIDDEN, "error.ticket");
    };
    let launch = match ticket {
        crate::control::Ticket::Launch(launch) => *launch,
        crate::control::Ticket::Shadow { session: shadowed, agent_login, agent_name, owner_name } => {
            let Some(live) = state.sessions.live(&shadowed) else {
                state.plane.audit(&login, "session.shadow", &shadowed, Some(peer.ip()), "refused: the session ended").await;
                return json_error(lang, StatusCode::NOT_FOUND, "error.shadow_gone");
            };
            state.plane.audit(&login, "session.shadow", &shadowed, Some(peer.ip()), "started").await;
            let token = SHADOW_TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let role = crate::session::ViewerRole::Shadow { token, agent_login, agent_name, owner_name };
            return upgrade
                .max_message_size(bascule_proto::MAX_CLIENT_MESSAGE * 4)
                .on_upgrade(move |socket| crate::ws::run_viewer(socket, state, live, role));
        }
    };
    let Launch { session: record_id, resource, target, password, username, passthrough, .. } = launch;
    let name = match state.plane.store.get_resource(&resource).await {
        Ok(Some(r)) => resource_name(&r, lang).to_owned(),
        _ => resource.to_string(),
    };
    state.plane.audit(&login, "connect", resource.as_str(), Some(peer.ip()), &format!("session {record_id}")).await;
    // The server, never the browser, decides which account logs in to the host.
    let credentials = crate::session::Credentials {
        username: if passthrough { Some(login.clone()) } else { username },
        password: if passthrough { session.password.clone() } else { password },
        certificates: crate::certstore::CertificateStore::new(&state.config.data_dir),
    };
    let opening = crate::session::Opening {
        session_id: record_id.to_string(),
        user: login,
        resource: resource.to_string(),
        display_name: name,
        target,
    };
    let (live, fresh) = state.sessions.attach(opening, credentials, &state.config.sessions);
    live.lock_stats().client_address = Some(peer.ip());
    if fresh {
        tokio::spawn(crate::control::record_session(state.plane.clone(), live.clone(), record_id));
    }
    upgrade
        // A little above the protocol limit, so that we can close with a reason ourselves.
        .max_message_size(bascule_proto::MAX_CLIENT_MESSAGE * 4)
        .on_upgrade(move |socket| crate::ws::run_viewer(socket, state, live, crate::session::ViewerRole::Owner))
}

#[derive(Deserialize)]
struct ShadowRequest {
    session: String,
}

/// `POST /api/shadow`: a ticket for a read-only viewer of someone's live session (helpdesk).
async fn shadow(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = lang(&headers);
    let agent = match crate::console::agent(&state, &headers).await {
        Ok(agent) => agent,
        Err(_) => return json_error(lang, StatusCode::FORBIDDEN, "error.forbidden"),
    };
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !same_secret(token, &agent.session.csrf) || !same_origin(&headers) {
        return json_error(lang, StatusCode::FORBIDDEN, "error.csrf");
    }
    let Ok(request) = serde_json::from_slice::<ShadowRequest>(&body) else {
        return json_error(lang, StatusCode::BAD_REQUEST, "error.bad_request");
    };
    if !agent.user.can(bascule_domain::access::Action::ManageSessions) {
        state.plane.audit(&agent.user.login, "session.shadow", &request.session, Some(peer.ip()), "refused: forbidden").await;
        return json_error(lang, StatusCode::FORBIDDEN, "error.forbidden");
    }
    let Some(live) = state.sessions.live(&request.session) else {
        state.plane.audit(&agent.user.login, "session.shadow", &request.session, Some(peer.ip()), "refused: no live session").await;
        return json_error(lang, StatusCode::NOT_FOUND, "error.shadow_gone");
    };
    let owner_name = match state.plane.store.get_user_by_login(&live.user).await {
        Ok(Some(user)) => user.display_name,
        _ => live.user.clone(),
    };
    let ticket = crate::control::Ticket::Shadow {
        session: request.session.clone(),
        agent_login: agent.user.login.clone(),
        agent_name: agent.user.display_name.clone(),
        owner_name,
    };
    let ticket = state.auth.issue_ticket(&agent.session, ticket, Instant::now());
    state.plane.audit(&agent.user.login, "session.shadow", &request.session, Some(peer.ip()), "ticket issued").await;
    axum::Json(serde_json::json!({ "ticket": ticket, "ws": format!("/ws?ticket={ticket}"), "session": request.session }))
        .into_response()
}

/// The viewer page, as a shadow of a live session.
async fn shadow_page(State(state): State<AppState>, agent: crate::console::Agent, Path(id): Path<String>) -> Response {
    let lang = agent.lang;
    let Some(live) = state.sessions.live(&id) else {
        return error_page(lang, StatusCode::NOT_FOUND, "error.shadow_gone");
    };
    let name = escape(&format!("{} — {}", live.user, live.name));
    Html(format!(
        r#"<!doctype html>
<html lang="{code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · Bascule</title>
<link rel="stylesheet" href="/static/viewer/viewer.css">
</head>
<body data-shadow="{id}" data-resource-name="{name}" data-csrf="{csrf}" data-portal-url="/console/sessions">
<div id="bascule-viewer"></div>
<script type="module" src="/static/viewer/main.js"></script>
</body>
</html>"#,
        code = lang.code(),
        id = escape(&id),
        csrf = agent.session.csrf,
    ))
    .into_response()
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
