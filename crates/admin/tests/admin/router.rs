//! The router, through `tower::ServiceExt::oneshot`, as the gateway nests it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use bascule_admin::{Actor, ROUTES, router};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{Site, admin, helpdesk, sqlite_site};

fn app(site: &Site) -> Router {
    router(Arc::new(site.admin.clone()))
}

/// Sends one request (JSON body if any) as `actor`, and returns the status and the JSON body
/// (`Value::Null` when empty).
async fn call(
    app: &Router,
    actor: Option<&Actor>,
    method: Method,
    uri: &str,
    body: Option<&str>,
    accept_language: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(actor) = actor {
        request = request.extension(actor.clone());
    }
    if let Some(lang) = accept_language {
        request = request.header(header::ACCEPT_LANGUAGE, lang);
    }
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or("").to_string()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, value)
}

#[tokio::test]
async fn no_actor_is_401_json_in_the_browser_language() {
    let site = sqlite_site(false).await;
    let app = app(&site);
    let (status, body) = call(&app, None, Method::GET, "/hosts", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthenticated");
    assert_eq!(body["message"], "connectez-vous d'abord à la console");
    let (status, body) = call(
        &app,
        None,
        Method::PUT,
        "/hosts/h1",
        Some("{}"),
        Some("en-GB,en;q=0.9"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "sign in to the console first");
    assert!(site.audit().await.is_empty());
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_400_with_a_clear_message() {
    let site = sqlite_site(false).await;
    let app = app(&site);
    let chef = admin();
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/hosts/h1",
        Some("{\"protocol\": \"rdp\",}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "malformed_json");
    assert_eq!(
        body["message"],
        "the body is not valid JSON (line 1, column 20)"
    );
    let french = helpdesk();
    let (status, body) = call(
        &app,
        Some(&french),
        Method::PUT,
        "/hosts/h1",
        Some("{"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["message"],
        "le corps de la requête n'est pas du JSON valide (ligne 1, colonne 1)"
    );
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/hosts/h1",
        Some("{\"protocol\": \"rdp\", \"passwd\": \"x\"}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid");
    assert_eq!(body["field"], "passwd");
    assert_eq!(body["reason"], "unknown_field");
    let message = body["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("passwd: is not a known field (known: id, name, protocol, address, port,"),
        "{message}"
    );
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/hosts/h1",
        Some("{\"port\": \"3389\"}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "port");
    assert_eq!(body["message"], "port: must be a whole number");
    // Validation errors carry the field and the reason code too.
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/hosts/h1",
        Some("{\"protocol\": \"rdp\", \"address\": \"rds1\", \"port\": 70000}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "invalid", "field": "port", "reason": "out_of_range", "message": "port: must be 1-65535"})
    );
    // Too large a body.
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/hosts/h1",
        Some(&huge),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"], "too_large");
    assert_eq!(body["message"], "the body is larger than 262144 bytes");
}

#[tokio::test]
async fn helpdesk_cannot_put_a_host() {
    let site = sqlite_site(false).await;
    let app = app(&site);
    let spec = json!({
        "protocol": "rdp", "address": "rds1.interne", "username": "svc", "password": "secret-rdp"
    })
    .to_string();
    let (status, body) = call(
        &app,
        Some(&helpdesk()),
        Method::PUT,
        "/hosts/h1",
        Some(&spec),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"error": "forbidden", "message": "vos rôles ne permettent pas cette action"})
    );
    let entry = site.last_audit().await;
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.action.as_str(),
            entry.target.as_str(),
            entry.outcome.as_str()
        ),
        ("support", "host.put", "h1", "refused: forbidden")
    );
    // Reading is allowed.
    let (status, body) = call(&app, Some(&helpdesk()), Method::GET, "/hosts", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn create_flow_from_host_to_entitled_resource() {
    let site = sqlite_site(false).await;
    let app = app(&site);
    let chef = admin();
    let send = |method: Method, uri: &'static str, body: Value| {
        let app = app.clone();
        let chef = chef.clone();
        async move {
            call(
                &app,
                Some(&chef),
                method,
                uri,
                Some(&body.to_string()),
                None,
            )
            .await
        }
    };
    let (status, host) = send(
        Method::PUT,
        "/hosts/rds1",
        json!({
            "name": "RDS 1", "protocol": "rdp", "address": "rds1.interne.example",
            "max_sessions": 30, "username": "svc-bascule", "domain": "INTERNE",
            "password": "Secret RDP 1!", "certificate": "system", "security": "nla"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{host}");
    assert_eq!(host["id"], "rds1");
    assert_eq!(host["port"], 3389);
    assert_eq!(host["password_set"], true);
    assert_eq!(host["security"], "nla");
    assert_eq!(host["credentials"], "service");
    assert_eq!(host["health"]["state"], "unknown");
    assert!(host.get("password").is_none());
    assert!(!host.to_string().contains("Secret RDP"));

    let (status, pool) = send(
        Method::PUT,
        "/pools/rds",
        json!({"name": "Ferme RDS", "hosts": ["rds1"], "balancing": "weighted"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pool}");
    assert_eq!(pool["protocol"], "rdp");
    assert_eq!(pool["balancing"], "weighted");

    let (status, resource) = send(
        Method::PUT,
        "/resources/compta",
        json!({
            "kind": "application", "program": "C:\\Compta\\compta.exe", "name_fr": "Comptabilité",
            "name_en": "Accounting", "pool": "rds", "working_dir": "C:\\Compta"
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resource}");
    assert_eq!(resource["kind"], "application");

    let (status, user) = send(
        Method::POST,
        "/users",
        json!({"login": "jean", "display_name": "Jean Dupont", "password": "un mot de passe long"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["password_set"], true);
    assert!(!user.to_string().contains("argon2"));
    let (status, _) = send(
        Method::PUT,
        "/groups/compta",
        json!({"name": "Comptabilité"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, group) = call(
        &app,
        Some(&chef),
        Method::PUT,
        "/groups/compta/members/jean",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(group["members"], json!(["jean"]));

    let (status, granted) = send(
        Method::POST,
        "/entitlements",
        json!({"group": "compta", "resource": "compta"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    assert_eq!(granted, json!({"group": "compta", "resource": "compta"}));

    let (status, resources) = call(
        &app,
        Some(&helpdesk()),
        Method::GET,
        "/resources",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        resources,
        json!([{
            "id": "compta", "kind": "application", "program": "C:\\Compta\\compta.exe",
            "name_fr": "Comptabilité", "name_en": "Accounting", "pool": "rds", "icon": null,
            "working_dir": "C:\\Compta"
        }])
    );
    let (status, entitlements) =
        call(&app, Some(&chef), Method::GET, "/entitlements", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        entitlements,
        json!([{"group": "compta", "resource": "compta"}])
    );

    let (status, _) = send(
        Method::PUT,
        "/policies/group/compta",
        json!({"clipboard_out": false, "allowed_hours": ["lun-ven 07:00-19:00"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, effective) = call(
        &app,
        Some(&chef),
        Method::GET,
        "/effective-policy?user=jean&resource=compta",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{effective}");
    assert_eq!(effective["entitled"], true);
    assert_eq!(
        effective["clipboard_out"],
        json!({"value": false, "source": "group:compta"})
    );
    assert_eq!(
        effective["allowed_hours"],
        json!({"value": ["mon-fri 07:00-19:00"], "source": "group:compta"})
    );
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::GET,
        "/effective-policy?user=jean",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "resource: is required");

    // Conflicts come back as 409 with the reason.
    let (status, body) = call(&app, Some(&chef), Method::DELETE, "/pools/rds", None, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"], "conflict");
    assert_eq!(body["reason"], "pool_used");
    assert_eq!(
        body["message"],
        "pool \"rds\" serves resource \"compta\": delete them or move them to another pool first"
    );

    // Drain, licences, sessions, TOTP reset, deletion.
    let (status, host) = send(Method::POST, "/hosts/rds1/drain", json!({"draining": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(host["draining"], true);
    let (status, licences) = send(Method::PUT, "/licences", json!({"capacity": 50})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        licences,
        json!({"capacity": 50, "in_use": 0, "available": 50})
    );
    let (status, sessions) = call(&app, Some(&chef), Method::GET, "/sessions", None, None).await;
    assert_eq!((status, sessions), (StatusCode::OK, json!([])));
    let (status, user) = call(
        &app,
        Some(&helpdesk()),
        Method::POST,
        "/users/jean/totp-reset",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["totp_enrolled"], false);
    let (status, body) = send(
        Method::POST,
        "/users/jean/password",
        json!({"password": "court"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "password: must be at least 12 characters");
    let (status, body) = send(
        Method::POST,
        "/users/jean/enabled",
        json!({"enabled": false}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["enabled"], false);
    let (status, body) = send(
        Method::POST,
        "/entitlements/revoke",
        json!({"group": "compta", "resource": "compta"}),
    )
    .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::DELETE,
        "/resources/compta",
        None,
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = call(
        &app,
        Some(&chef),
        Method::GET,
        "/resources/compta",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "resource \"compta\" does not exist");

    // Every step left its audit line.
    let actions: Vec<String> = site
        .audit()
        .await
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    for action in [
        "host.put",
        "pool.put",
        "resource.put",
        "user.create",
        "group.put",
        "group.member_add",
        "entitlement.grant",
        "policy.put",
        "pool.delete",
        "host.drain",
        "licence.set",
        "user.totp_reset",
        "user.password",
        "user.disable",
        "entitlement.revoke",
        "resource.delete",
    ] {
        assert!(
            actions.iter().any(|seen| seen == action),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn every_listed_route_is_routed_and_others_are_json_404() {
    let site = sqlite_site(false).await;
    let app = app(&site);
    let chef = admin();
    for &(method, path) in ROUTES {
        let uri = path
            .replace("{login}", "nobody")
            .replace("{id}", "none")
            .replace("{scope}", "group");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = matches!(method, Method::PUT | Method::POST).then_some("{}");
        let (status, value) = call(&app, Some(&chef), method.clone(), &uri, body, None).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        assert_ne!(value["error"], "no_route", "{method} {uri}");
    }
    let (status, body) = call(&app, Some(&chef), Method::GET, "/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "no_route", "message": "no such API route"})
    );
    let (status, body) = call(&app, Some(&chef), Method::PATCH, "/hosts", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"], "method_not_allowed");
    let (status, body) = call(&app, Some(&chef), Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["openapi"], "3.1.0");
}
