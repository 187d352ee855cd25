//! The REST API: JSON over HTTP, one route per [`Admin`] method, documented in
//! `docs/openapi.json` (served at `GET /openapi.json`).
//!
//! The gateway nests [`router`] under `/api/v1` behind its authentication middleware, which puts
//! the caller's [`Actor`] in the request's extensions (the portal session cookie plus the
//! `X-CSRF-Token` header). A request without an `Actor` gets `401`.
//!
//! Bodies are JSON, at most [`MAX_BODY`] bytes. Every error is
//! `{"error": code, "message": text, "field"?: name, "reason"?: code}` with the message in the
//! actor's language (or the `Accept-Language` one when there is no actor).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{AdminError, JsonType, Lang, Reason};
use crate::service::{Actor, Admin};
use crate::spec::{
    DrainSpec, EntitlementSpec, GroupSpec, HostSpec, LicenceSpec, PasswordSpec, PolicySpec,
    PoolSpec, ResourceSpec, UserSpec,
};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Every route of [`router`], as `(method, path)`; `docs/openapi.json` documents exactly these.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{login}"),
    ("PUT", "/users/{login}"),
    ("DELETE", "/users/{login}"),
    ("POST", "/users/{login}/password"),
    ("POST", "/users/{login}/totp-reset"),
    ("POST", "/users/{login}/enabled"),
    ("GET", "/groups"),
    ("GET", "/groups/{id}"),
    ("PUT", "/groups/{id}"),
    ("DELETE", "/groups/{id}"),
    ("PUT", "/groups/{id}/members/{login}"),
    ("DELETE", "/groups/{id}/members/{login}"),
    ("GET", "/hosts"),
    ("GET", "/hosts/{id}"),
    ("PUT", "/hosts/{id}"),
    ("DELETE", "/hosts/{id}"),
    ("POST", "/hosts/{id}/drain"),
    ("GET", "/pools"),
    ("GET", "/pools/{id}"),
    ("PUT", "/pools/{id}"),
    ("DELETE", "/pools/{id}"),
    ("GET", "/resources"),
    ("GET", "/resources/{id}"),
    ("PUT", "/resources/{id}"),
    ("DELETE", "/resources/{id}"),
    ("GET", "/entitlements"),
    ("POST", "/entitlements"),
    ("POST", "/entitlements/revoke"),
    ("GET", "/policies"),
    ("GET", "/policies/{scope}/{id}"),
    ("PUT", "/policies/{scope}/{id}"),
    ("DELETE", "/policies/{scope}/{id}"),
    ("GET", "/effective-policy"),
    ("GET", "/licences"),
    ("PUT", "/licences"),
    ("GET", "/sessions"),
    ("GET", "/openapi.json"),
];

type AdminState = State<Arc<Admin>>;

/// The administration API, with paths relative to where the gateway nests it.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{login}",
            get(get_user).put(put_user).delete(delete_user),
        )
        .route("/users/{login}/password", post(set_password))
        .route("/users/{login}/totp-reset", post(reset_totp))
        .route("/users/{login}/enabled", post(set_enabled))
        .route("/groups", get(list_groups))
        .route(
            "/groups/{id}",
            get(get_group).put(put_group).delete(delete_group),
        )
        .route(
            "/groups/{id}/members/{login}",
            put(add_member).delete(remove_member),
        )
        .route("/hosts", get(list_hosts))
        .route(
            "/hosts/{id}",
            get(get_host).put(put_host).delete(delete_host),
        )
        .route("/hosts/{id}/drain", post(drain_host))
        .route("/pools", get(list_pools))
        .route(
            "/pools/{id}",
            get(get_pool).put(put_pool).delete(delete_pool),
        )
        .route("/resources", get(list_resources))
        .route(
            "/resources/{id}",
            get(get_resource).put(put_resource).delete(delete_resource),
        )
        .route("/entitlements", get(list_entitlements).post(grant))
        .route("/entitlements/revoke", post(revoke))
        .route("/policies", get(list_policies))
        .route(
            "/policies/{scope}/{id}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route("/effective-policy", get(effective_policy))
        .route("/licences", get(get_licences).put(set_licences))
        .route("/sessions", get(list_sessions))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(admin)
}

/// The language for a request without an actor.
fn header_lang(headers: &HeaderMap) -> Lang {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .map_or(Lang::Fr, Lang::from_accept_language)
}

/// The JSON error response of `error`, in `lang`.
pub fn error_response(error: &AdminError, lang: Lang) -> Response {
    let mut body = json!({ "error": error.code(), "message": error.message(lang) });
    if let Some(field) = error.field() {
        body["field"] = json!(field);
    }
    if let Some(reason) = error.detail_code() {
        body["reason"] = json!(reason);
    }
    let status =
        StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn reply<T: Serialize>(lang: Lang, status: StatusCode, result: Result<T, AdminError>) -> Response {
    match result {
        Ok(value) => (status, Json(value)).into_response(),
        Err(error) => error_response(&error, lang),
    }
}

fn ok<T: Serialize>(lang: Lang, result: Result<T, AdminError>) -> Response {
    reply(lang, StatusCode::OK, result)
}

fn no_content(lang: Lang, result: Result<(), AdminError>) -> Response {
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error_response(&error, lang),
    }
}

/// The authenticated caller, from the request's extensions.
struct Caller(Actor);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match parts.extensions.get::<Actor>() {
            Some(actor) => Ok(Caller(actor.clone())),
            None => Err(error_response(
                &AdminError::Unauthenticated,
                header_lang(&parts.headers),
            )),
        }
    }
}

/// A JSON body read with clear errors: at most [`MAX_BODY`] bytes, unknown fields refused, the
/// faulty field named.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Response> {
        let lang = request
            .extensions()
            .get::<Actor>()
            .map_or_else(|| header_lang(request.headers()), |actor| actor.lang);
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|_| error_response(&AdminError::TooLarge { max: MAX_BODY }, lang))?;
        parse_json(&bytes)
            .map(Body)
            .map_err(|error| error_response(&error, lang))
    }
}

/// The JSON type named at the end of a serde message (`…, expected u16`).
fn expected_type(message: &str) -> JsonType {
    let expected = message.rsplit("expected ").next().unwrap_or("");
    let expected = expected.split(" at line").next().unwrap_or(expected);
    if expected.contains("string") {
        JsonType::Text
    } else if expected.contains("bool") {
        JsonType::Boolean
    } else if expected.contains("sequence") {
        JsonType::List
    } else if expected.contains("struct") || expected.contains("map") {
        JsonType::Object
    } else if ["i64", "u64", "i32", "u32", "u16", "integer"]
        .iter()
        .any(|name| expected.contains(name))
    {
        JsonType::Integer
    } else {
        JsonType::Other
    }
}

/// Reads a JSON object into `T`, turning serde's errors into [`AdminError`]s that name the
/// field and say why in both languages.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AdminError> {
    // serde also reads structs from arrays (fields by position): a body must be an object.
    let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|&byte| byte != b'{') {
        return Err(AdminError::invalid(
            "body",
            Reason::WrongType {
                expected: JsonType::Object,
            },
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        json_error(&path, &inner)
    })?;
    deserializer.end().map_err(|error| AdminError::Malformed {
        line: error.line(),
        column: error.column(),
    })?;
    Ok(value)
}

fn json_error(path: &str, error: &serde_json::Error) -> AdminError {
    use serde_json::error::Category;
    if !matches!(error.classify(), Category::Data) {
        return AdminError::Malformed {
            line: error.line(),
            column: error.column(),
        };
    }
    let message = error.to_string();
    let field = if path == "." {
        String::new()
    } else {
        path.to_string()
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("");
        let expected = rest
            .split("expected one of ")
            .nth(1)
            .or_else(|| rest.split("expected ").nth(1))
            .unwrap_or("")
            .split(" at line")
            .next()
            .unwrap_or("")
            .replace(" or ", ", ")
            .split(", ")
            .map(|item| item.trim().trim_matches('`').to_string())
            .filter(|item| !item.is_empty())
            .collect();
        // serde_path_to_error names the unknown key itself; keep the parent path if it did not.
        let field = if field.ends_with(name) {
            field
        } else if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        };
        return AdminError::invalid(field, Reason::UnknownField { expected });
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("");
        let field = if field.is_empty() {
            name.to_string()
        } else {
            format!("{field}.{name}")
        };
        return AdminError::invalid(field, Reason::Required);
    }
    let field = if field.is_empty() {
        "body".to_string()
    } else {
        field
    };
    AdminError::invalid(
        field,
        Reason::WrongType {
            expected: expected_type(&message),
        },
    )
}

async fn no_route(headers: HeaderMap, request: Request) -> Response {
    let lang = request
        .extensions()
        .get::<Actor>()
        .map_or_else(|| header_lang(&headers), |actor| actor.lang);
    error_response(&AdminError::NoRoute, lang)
}

async fn method_not_allowed(headers: HeaderMap, request: Request) -> Response {
    let lang = request
        .extensions()
        .get::<Actor>()
        .map_or_else(|| header_lang(&headers), |actor| actor.lang);
    error_response(&AdminError::MethodNotAllowed, lang)
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

// ----- users -----

async fn list_users(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_users(&actor).await)
}

async fn create_user(
    State(admin): AdminState,
    Caller(actor): Caller,
    Body(spec): Body<UserSpec>,
) -> Response {
    reply(
        actor.lang,
        StatusCode::CREATED,
        admin.create_user(&actor, &spec).await,
    )
}

async fn get_user(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
) -> Response {
    ok(actor.lang, admin.get_user(&actor, &login).await)
}

async fn put_user(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
    Body(spec): Body<UserSpec>,
) -> Response {
    ok(actor.lang, admin.put_user(&actor, &login, &spec).await)
}

async fn delete_user(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
) -> Response {
    no_content(actor.lang, admin.delete_user(&actor, &login).await)
}

async fn set_password(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
    Body(spec): Body<PasswordSpec>,
) -> Response {
    no_content(
        actor.lang,
        admin.set_user_password(&actor, &login, &spec).await,
    )
}

async fn reset_totp(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
) -> Response {
    ok(actor.lang, admin.reset_totp(&actor, &login).await)
}

/// `{"enabled": bool}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EnabledSpec {
    enabled: bool,
}

async fn set_enabled(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(login): Path<String>,
    Body(spec): Body<EnabledSpec>,
) -> Response {
    ok(
        actor.lang,
        admin.set_user_enabled(&actor, &login, spec.enabled).await,
    )
}

// ----- groups -----

async fn list_groups(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_groups(&actor).await)
}

async fn get_group(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    ok(actor.lang, admin.get_group(&actor, &id).await)
}

async fn put_group(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(spec): Body<GroupSpec>,
) -> Response {
    ok(actor.lang, admin.put_group(&actor, &id, &spec).await)
}

async fn delete_group(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    no_content(actor.lang, admin.delete_group(&actor, &id).await)
}

async fn add_member(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path((id, login)): Path<(String, String)>,
) -> Response {
    ok(actor.lang, admin.add_member(&actor, &id, &login).await)
}

async fn remove_member(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path((id, login)): Path<(String, String)>,
) -> Response {
    ok(actor.lang, admin.remove_member(&actor, &id, &login).await)
}

// ----- hosts -----

async fn list_hosts(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_hosts(&actor).await)
}

async fn get_host(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    ok(actor.lang, admin.get_host(&actor, &id).await)
}

async fn put_host(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(spec): Body<HostSpec>,
) -> Response {
    ok(actor.lang, admin.put_host(&actor, &id, &spec).await)
}

async fn delete_host(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    no_content(actor.lang, admin.delete_host(&actor, &id).await)
}

async fn drain_host(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(spec): Body<DrainSpec>,
) -> Response {
    ok(
        actor.lang,
        admin.set_draining(&actor, &id, spec.draining).await,
    )
}

// ----- pools -----

async fn list_pools(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_pools(&actor).await)
}

async fn get_pool(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    ok(actor.lang, admin.get_pool(&actor, &id).await)
}

async fn put_pool(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(spec): Body<PoolSpec>,
) -> Response {
    ok(actor.lang, admin.put_pool(&actor, &id, &spec).await)
}

async fn delete_pool(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    no_content(actor.lang, admin.delete_pool(&actor, &id).await)
}

// ----- resources -----

async fn list_resources(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_resources(&actor).await)
}

async fn get_resource(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    ok(actor.lang, admin.get_resource(&actor, &id).await)
}

async fn put_resource(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(spec): Body<ResourceSpec>,
) -> Response {
    ok(actor.lang, admin.put_resource(&actor, &id, &spec).await)
}

async fn delete_resource(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Response {
    no_content(actor.lang, admin.delete_resource(&actor, &id).await)
}

// ----- entitlements -----

async fn list_entitlements(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_entitlements(&actor).await)
}

async fn grant(
    State(admin): AdminState,
    Caller(actor): Caller,
    Body(spec): Body<EntitlementSpec>,
) -> Response {
    ok(actor.lang, admin.grant(&actor, &spec).await)
}

async fn revoke(
    State(admin): AdminState,
    Caller(actor): Caller,
    Body(spec): Body<EntitlementSpec>,
) -> Response {
    no_content(actor.lang, admin.revoke(&actor, &spec).await)
}

// ----- policies -----

async fn list_policies(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_policies(&actor).await)
}

async fn get_policy(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path((scope, id)): Path<(String, String)>,
) -> Response {
    ok(actor.lang, admin.get_policy(&actor, &scope, &id).await)
}

async fn put_policy(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path((scope, id)): Path<(String, String)>,
    Body(spec): Body<PolicySpec>,
) -> Response {
    ok(
        actor.lang,
        admin.put_policy(&actor, &scope, &id, &spec).await,
    )
}

async fn delete_policy(
    State(admin): AdminState,
    Caller(actor): Caller,
    Path((scope, id)): Path<(String, String)>,
) -> Response {
    no_content(actor.lang, admin.delete_policy(&actor, &scope, &id).await)
}

async fn effective_policy(
    State(admin): AdminState,
    Caller(actor): Caller,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let user = query.get("user").map_or("", String::as_str);
    let resource = query.get("resource").map_or("", String::as_str);
    ok(
        actor.lang,
        admin.effective_policy(&actor, user, resource).await,
    )
}

// ----- licences, sessions -----

async fn get_licences(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.licences(&actor).await)
}

async fn set_licences(
    State(admin): AdminState,
    Caller(actor): Caller,
    Body(spec): Body<LicenceSpec>,
) -> Response {
    ok(actor.lang, admin.set_licence_capacity(&actor, &spec).await)
}

async fn list_sessions(State(admin): AdminState, Caller(actor): Caller) -> Response {
    ok(actor.lang, admin.list_sessions(&actor).await)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let error = parse_json::<HostSpec>(b"{\"id\":\"h1\",\"colour\":\"red\"}").unwrap_err();
        assert_eq!(error.field(), Some("colour"));
        assert_eq!(error.detail_code(), Some("unknown_field"));
        let message = error.message(Lang::En);
        assert!(
            message.starts_with("colour: is not a known field (known: id, name, protocol"),
            "{message}"
        );
        let error = parse_json::<HostSpec>(b"{\"id\":\"h1\",\"port\":\"x\"}").unwrap_err();
        assert_eq!(error.message(Lang::En), "port: must be a whole number");
        assert_eq!(error.message(Lang::Fr), "port : doit être un nombre entier");
        let error = parse_json::<PoolSpec>(b"{\"hosts\":[\"a\", 3]}").unwrap_err();
        assert_eq!(error.message(Lang::En), "hosts[1]: must be a string");
        let error = parse_json::<HostSpec>(b"{\"id\":").unwrap_err();
        assert_eq!(error.code(), "malformed_json");
        let error = parse_json::<HostSpec>(b"{} x").unwrap_err();
        assert_eq!(error.code(), "malformed_json");
        let error = parse_json::<HostSpec>(b"[1]").unwrap_err();
        assert_eq!(error.message(Lang::En), "body: must be an object");
        let error = parse_json::<ResourceSpec>(b"{\"icon\":{\"mime\":\"image/png\",\"dat\":\"\"}}")
            .unwrap_err();
        assert_eq!(error.field(), Some("icon.dat"));
        assert_eq!(
            error.message(Lang::En),
            "icon.dat: is not a known field (known: mime, data)"
        );
        let error = parse_json::<EntitlementSpec>(b"{\"resources\":\"r\"}").unwrap_err();
        assert_eq!(
            error.message(Lang::Fr),
            "resources : n'est pas un champ connu (champs connus : user, group, resource)"
        );
    }
}
