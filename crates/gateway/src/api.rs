//! The JSON REST API under `/api/v1`: `bascule-admin`'s router, behind the portal's
//! authentication.
//!
//! A request is authenticated by the portal session cookie; a request that changes anything must
//! also carry the session's CSRF token in `X-CSRF-Token` and come from our own origin. The
//! admin crate then checks the role for each action and audits it.

use crate::http::{json_error, lang, portal_session, same_origin};
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bascule_domain::access::Action;
use std::net::SocketAddr;

/// The API router, to nest under `/api/v1`.
pub(crate) fn router(state: AppState) -> Router {
    let admin = bascule_admin::router(state.plane.admin.clone());
    let ours = Router::new().route("/users/{login}/unlock", post(unlock)).with_state(state.clone());
    Router::new()
        .merge(admin)
        .merge(ours)
        .layer(axum::middleware::from_fn_with_state(state, authenticate))
}

/// Turns the portal session into the admin crate's `Actor`, or answers 401/403.
async fn authenticate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers().clone();
    let language = lang(&headers);
    // The document describing the API is public: it holds no data.
    if request.uri().path().ends_with("/openapi.json") && request.method() == Method::GET {
        return next.run(request).await;
    }
    let Some(session) = portal_session(&state, &headers) else {
        return json_error(language, StatusCode::UNAUTHORIZED, "error.not_logged_in");
    };
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe {
        let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !crate::auth::same_secret(token, &session.csrf) || !same_origin(&headers) {
            state.plane.audit(&session.user, "api", request.uri().path(), Some(peer.ip()), "refused: csrf").await;
            return json_error(language, StatusCode::FORBIDDEN, "error.csrf");
        }
    }
    let user = match state.plane.store.get_user(&bascule_domain::id::UserId::new(&session.user)).await {
        Ok(Some(user)) if user.enabled => user,
        Ok(_) => return json_error(language, StatusCode::UNAUTHORIZED, "error.not_logged_in"),
        Err(error) => {
            tracing::error!(%error, "cannot read the API user");
            return json_error(language, StatusCode::SERVICE_UNAVAILABLE, "error.internal");
        }
    };
    let actor = crate::console::admin_actor(&user, peer.ip(), language);
    request.extensions_mut().insert(actor);
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// Unlocks an account locked after failed logins (helpdesk). The lockout lives in the node's
/// memory, so this route is the gateway's own.
async fn unlock(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(user): axum::Extension<bascule_domain::access::User>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(login): Path<String>,
) -> Response {
    let language = lang(&headers);
    if !user.can(Action::UnlockAccount) {
        state.plane.audit(&user.login, "user.unlock", &login, Some(peer.ip()), "refused: forbidden").await;
        return json_error(language, StatusCode::FORBIDDEN, "error.forbidden");
    }
    let was_locked = state.auth.is_locked(&login, std::time::Instant::now());
    state.auth.unlock(&login);
    state.plane.audit(&user.login, "user.unlock", &login, Some(peer.ip()), "ok").await;
    axum::Json(serde_json::json!({ "login": login, "was_locked": was_locked })).into_response()
}
