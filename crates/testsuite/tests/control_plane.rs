//! The control plane end to end: the broker over real x11vnc hosts (spread, drain, a killed host
//! marked unhealthy), licences, session records, the second factor, the directory, and refusals.
//! Inventory is created through the REST API as an admin, the way an IT department would.

use crate::support::gateway::{TestGateway, User, start_gateway};
use crate::support::http::{Portal, Response, hidden_input, login, request, submit_login};
use crate::support::start_desktop;
use anyhow::{Context, Result, bail};
use bascule_desktop::{Desktop, VncServer};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN: &str = "root-admin";
const ADMIN_PASSWORD: &str = "admin password 1";
const PASSWORD: &str = "user password 1";
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// A JSON call to the REST API as `portal`'s user.
async fn api(portal: &Portal, method: &str, path: &str, body: Option<Value>) -> Result<Response> {
    let cookie = portal.cookie_header();
    let origin = portal.origin();
    let text = body.map(|b| b.to_string());
    let headers = [
        ("Cookie", cookie.as_str()),
        ("Origin", origin.as_str()),
        ("X-CSRF-Token", portal.csrf.as_str()),
        ("Content-Type", "application/json"),
        ("Accept-Language", "en"),
    ];
    request(portal.addr, method, &format!("/api/v1{path}"), &headers, text.as_deref().map(str::as_bytes)).await
}

/// Like [`api`], but the call must succeed.
async fn api_ok(portal: &Portal, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let response = api(portal, method, path, body).await?;
    if !(200..300).contains(&response.status) {
        bail!("{method} /api/v1{path} answered {}: {}", response.status, response.text());
    }
    if response.body.is_empty() { Ok(Value::Null) } else { response.json() }
}

fn vnc_host(id: &str, desktop: &Desktop, password: &str) -> Value {
    let addr = desktop.vnc_addr();
    json!({
        "id": id, "name": id, "protocol": "vnc", "address": addr.ip().to_string(), "port": addr.port(),
        "max_sessions": 10, "password": password,
    })
}

/// A gateway with an admin and `users` (entitled to nothing yet), fast health checks and
/// licence samples, and `extra` settings.
async fn gateway_with(users: &[&str], extra: &str) -> Result<(TestGateway, Portal)> {
    let mut all = vec![User::new(ADMIN, ADMIN_PASSWORD, &[]).roles(&["admin"])];
    all.extend(users.iter().map(|u| User::new(u, PASSWORD, &[])));
    let settings = format!("[health]\ninterval_secs = 1\ntimeout_secs = 1\nfailures = 2\n{extra}\n");
    let gateway = start_gateway(&all, &[], &settings).await?;
    let admin = login(gateway.addr, ADMIN, ADMIN_PASSWORD).await?;
    Ok((gateway, admin))
}

/// Publishes `desk` on a pool of `hosts` and entitles the group `staff`, whose members are `users`.
async fn publish(admin: &Portal, hosts: &[(&str, &Desktop)], users: &[&str]) -> Result<()> {
    for (id, desktop) in hosts {
        api_ok(admin, "PUT", &format!("/hosts/{id}"), Some(vnc_host(id, desktop, "vncpw123"))).await?;
    }
    let ids: Vec<&str> = hosts.iter().map(|(id, _)| *id).collect();
    api_ok(admin, "PUT", "/pools/pool", Some(json!({ "id": "pool", "name": "Pool", "hosts": ids, "balancing": "fewest_sessions" }))).await?;
    let resource = json!({ "id": "desk", "kind": "desktop", "name_fr": "Bureau", "name_en": "Desktop", "pool": "pool" });
    api_ok(admin, "PUT", "/resources/desk", Some(resource)).await?;
    api_ok(admin, "PUT", "/groups/staff", Some(json!({ "id": "staff", "name": "Staff" }))).await?;
    for user in users {
        api_ok(admin, "PUT", &format!("/groups/staff/members/{user}"), None).await?;
    }
    api_ok(admin, "POST", "/entitlements", Some(json!({ "group": "staff", "resource": "desk" }))).await?;
    Ok(())
}

/// The live sessions as the API lists them: (user login or id, host, state).
async fn live_sessions(admin: &Portal) -> Result<Vec<(String, String, String)>> {
    let list = api_ok(admin, "GET", "/sessions", None).await?;
    let items = list.as_array().or_else(|| list["sessions"].as_array()).context("GET /sessions is not a list")?;
    Ok(items
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
            (text("user"), text("host"), text("state"))
        })
        .collect())
}

/// The host's health as the API shows it.
async fn host_health(admin: &Portal, id: &str) -> Result<String> {
    let host = api_ok(admin, "GET", &format!("/hosts/{id}"), None).await?;
    let health = &host["health"];
    Ok(health.as_str().map(str::to_owned).or_else(|| health["state"].as_str().map(str::to_owned)).unwrap_or_default())
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Launches `desk` as `user` and shows it: returns the host it landed on.
async fn open_desk(gateway: &TestGateway, admin: &Portal, user: &str) -> Result<(crate::support::viewer::ViewerClient, String)> {
    let portal = login(gateway.addr, user, PASSWORD).await?;
    let mut viewer = portal.open_viewer("desk").await?;
    viewer.wait_hello(HELLO_TIMEOUT).await?;
    let sessions = live_sessions(admin).await?;
    let host = sessions.iter().find(|(u, _, _)| u == user).map(|(_, h, _)| h.clone()).context("no session record")?;
    Ok((viewer, host))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_a_drained_host_gets_none_and_a_killed_host_is_skipped() -> Result<()> {
    let users = ["u1", "u2", "u3", "u4", "u5"];
    let one = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let two = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&users, "").await?;
    publish(&admin, &[("h1", &one), ("h2", &two)], &users).await?;
    wait_for("both hosts healthy", Duration::from_secs(15), || async {
        Ok(host_health(&admin, "h1").await? == "healthy" && host_health(&admin, "h2").await? == "healthy")
    })
    .await?;

    // Fewest sessions first: two users land on two hosts.
    let (_v1, first) = open_desk(&gateway, &admin, "u1").await?;
    let (_v2, second) = open_desk(&gateway, &admin, "u2").await?;
    assert_ne!(first, second, "the second session goes to the other host");

    // A drained host takes no new session but keeps its own.
    api_ok(&admin, "POST", "/hosts/h1/drain", Some(json!({ "draining": true }))).await?;
    let (_v3, third) = open_desk(&gateway, &admin, "u3").await?;
    let (_v4, fourth) = open_desk(&gateway, &admin, "u4").await?;
    assert_eq!((third.as_str(), fourth.as_str()), ("h2", "h2"), "h1 is draining");
    let on_h1 = live_sessions(&admin).await?.iter().filter(|(_, h, _)| h == "h1").count();
    assert_eq!(on_h1, 1, "h1 keeps the session it had");

    // Kill h2's VNC server: health checks mark it unhealthy, and launches skip it.
    api_ok(&admin, "POST", "/hosts/h1/drain", Some(json!({ "draining": false }))).await?;
    tokio::task::block_in_place(|| two.stop());
    wait_for("h2 marked unhealthy", Duration::from_secs(15), || async {
        Ok(host_health(&admin, "h2").await? == "unhealthy")
    })
    .await?;
    let (_v5, fifth) = open_desk(&gateway, &admin, "u5").await?;
    assert_eq!(fifth, "h1", "the unhealthy host is skipped even though h1 has more sessions");
    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    assert!(audit.contains("\"host.health\"") && audit.contains("unhealthy"), "health change audited");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_licence_pool_runs_out_and_the_next_launch_is_refused() -> Result<()> {
    let users = ["l1", "l2", "l3"];
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&users, "[site]\nlicences = 2\nlicence_sample_secs = 1\n").await?;
    publish(&admin, &[("h1", &desktop)], &users).await?;
    let p1 = login(gateway.addr, "l1", PASSWORD).await?;
    let p2 = login(gateway.addr, "l2", PASSWORD).await?;
    let p3 = login(gateway.addr, "l3", PASSWORD).await?;
    p1.launch("desk").await?;
    p2.launch("desk").await?;
    let csrf = p3.csrf_of_viewer("desk").await?;
    let refused = p3.launch_raw("desk", Some(&csrf)).await?;
    assert_eq!(refused.status, 503, "{}", refused.text());
    let body = refused.json()?;
    assert_eq!(body["error"], "no_licence");
    assert!(body["message"].as_str().unwrap_or_default().contains("licences"), "{body}");
    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    assert!(audit.contains("refused: no_licence"), "the refusal is audited");

    // Usage is recorded over time, and logging off gives the licence back.
    let licences = api_ok(&admin, "GET", "/licences", None).await?;
    assert_eq!(licences["capacity"], 2, "{licences}");
    assert_eq!(licences["in_use"], 2, "{licences}");
    let portal_page = p1.get("/").await?.text();
    let session = crate::support::http::attribute(&portal_page, "data-session").context("no session listed in the portal")?;
    let logoff = request(
        gateway.addr,
        "POST",
        &format!("/sessions/{session}/logoff"),
        &[("Cookie", &p1.cookie_header()), ("Origin", &p1.origin()), ("Content-Type", "application/x-www-form-urlencoded")],
        Some(format!("csrf={}", p1.csrf).as_bytes()),
    )
    .await?;
    assert_eq!(logoff.status, 303, "{}", logoff.text());
    p3.launch("desk").await.context("a licence is free again after the log off")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_naming_a_host_or_an_unentitled_resource_is_refused_and_audited() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&["e1", "outsider"], "").await?;
    publish(&admin, &[("h1", &desktop)], &["e1"]).await?;
    let user = login(gateway.addr, "e1", PASSWORD).await?;
    let csrf = user.csrf_of_viewer("desk").await?;
    let body = json!({ "resource": "desk", "host": "10.1.2.3", "port": 22, "username": "root" }).to_string();
    let headers = [
        ("Cookie", user.cookie_header()),
        ("Origin", user.origin()),
        ("Content-Type", "application/json".to_owned()),
        ("X-CSRF-Token", csrf.clone()),
    ];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = request(gateway.addr, "POST", "/api/launch", &headers, Some(body.as_bytes())).await?;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(refused.json()?["error"], "launch.client_target");

    let outsider = login(gateway.addr, "outsider", PASSWORD).await?;
    let csrf = outsider.csrf_of_portal().await?;
    let refused = outsider.launch_raw("desk", Some(&csrf)).await?;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let refused = outsider.launch_raw("no-such-thing", Some(&csrf)).await?;
    assert_eq!(refused.status, 403, "an unknown resource looks the same as a forbidden one");

    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    assert!(audit.contains("refused: client_target: client named host, port, username"), "{audit}");
    assert!(audit.contains("refused: not_entitled"), "{audit}");
    assert!(api_ok(&admin, "GET", "/sessions", None).await?.to_string().len() < 10, "no session was created");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_viewer_disconnects_and_launching_again_rejoins_the_same_session() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&["r1"], "").await?;
    publish(&admin, &[("h1", &desktop)], &["r1"]).await?;
    let (viewer, _) = open_desk(&gateway, &admin, "r1").await?;
    wait_for("session active", Duration::from_secs(10), || async {
        Ok(live_sessions(&admin).await?.iter().any(|(_, _, s)| s == "active"))
    })
    .await?;
    let before = api_ok(&admin, "GET", "/sessions", None).await?;
    viewer.close().await?;
    wait_for("session disconnected", Duration::from_secs(10), || async {
        Ok(live_sessions(&admin).await?.iter().any(|(_, _, s)| s == "disconnected"))
    })
    .await?;
    let portal = login(gateway.addr, "r1", PASSWORD).await?;
    let page = portal.get("/").await?.text();
    assert!(page.contains("data-state=\"disconnected\""), "the portal lists the disconnected session");
    let mut again = portal.open_viewer("desk").await?;
    again.wait_hello(HELLO_TIMEOUT).await?;
    wait_for("session active again", Duration::from_secs(10), || async {
        Ok(live_sessions(&admin).await?.iter().any(|(_, _, s)| s == "active"))
    })
    .await?;
    let after = api_ok(&admin, "GET", "/sessions", None).await?;
    let id = |v: &Value| v.as_array().and_then(|a| a.first()).map(|s| s["id"].clone());
    assert_eq!(id(&before), id(&after), "the same session record: {before} vs {after}");
    assert_eq!(live_sessions(&admin).await?.len(), 1);
    Ok(())
}

/// The current TOTP code for the base32 secret an enrolment page shows.
fn totp_now(secret: &str) -> Result<String> {
    let secret = bascule_mfa::TotpSecret::from_base32(secret).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    Ok(bascule_mfa::code_at(&secret, now))
}

/// Posts a TOTP code with the pending-login cookie.
async fn submit_code(gateway: &TestGateway, mfa_cookie: &str, page: &str, code: &str) -> Result<Response> {
    let csrf = hidden_input(page, "csrf").context("no csrf on the TOTP page")?;
    let cookie = format!("bascule_mfa={mfa_cookie}");
    let origin = format!("https://{}", gateway.addr);
    let body = format!("code={code}&csrf={csrf}");
    request(
        gateway.addr,
        "POST",
        "/login/totp",
        &[("Cookie", &cookie), ("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_enrolment_then_codes_are_required_single_use_and_resettable() -> Result<()> {
    let gateway = start_gateway(
        &[User::new("t1", PASSWORD, &[]), User::new("helper", PASSWORD, &[]).roles(&["helpdesk"])],
        &[],
        "[mfa]\ntotp = \"required\"\n",
    )
    .await?;
    // First login: the password leads to the enrolment page, with a QR code and the key.
    let step = submit_login(gateway.addr, "t1", PASSWORD).await?;
    assert_eq!(step.status, 303);
    assert_eq!(step.header("location"), Some("/login/totp"));
    assert!(step.cookie("bascule_session").is_none(), "no portal session before the code");
    let mfa = step.cookie("bascule_mfa").context("no pending-login cookie")?;
    let page = request(gateway.addr, "GET", "/login/totp", &[("Cookie", &format!("bascule_mfa={mfa}"))], None).await?;
    let html = page.text();
    assert!(html.contains("<svg"), "a QR code is shown");
    let secret = crate::support::http::attribute(&html, "data-secret").context("no key shown")?;
    let wrong = submit_code(&gateway, &mfa, &html, "000000").await?;
    assert_eq!(wrong.status, 401);
    let code = totp_now(&secret)?;
    let done = submit_code(&gateway, &mfa, &html, &code).await?;
    assert_eq!(done.status, 303, "{}", done.text());
    assert!(done.cookie("bascule_session").is_some(), "enrolled and signed in");

    // Next login asks for a code, not an enrolment; the code just used is refused (replay).
    let step = submit_login(gateway.addr, "t1", PASSWORD).await?;
    let mfa = step.cookie("bascule_mfa").context("no pending-login cookie")?;
    let html = request(gateway.addr, "GET", "/login/totp", &[("Cookie", &format!("bascule_mfa={mfa}"))], None).await?.text();
    assert!(!html.contains("<svg"), "no second enrolment");
    let replay = submit_code(&gateway, &mfa, &html, &code).await?;
    assert_eq!(replay.status, 401, "a code is good once");

    // The helpdesk resets the second factor: the next login enrols again.
    let helper_step = submit_login(gateway.addr, "helper", PASSWORD).await?;
    let helper_mfa = helper_step.cookie("bascule_mfa").context("helpdesk pending cookie")?;
    let helper_html =
        request(gateway.addr, "GET", "/login/totp", &[("Cookie", &format!("bascule_mfa={helper_mfa}"))], None).await?.text();
    let helper_secret = crate::support::http::attribute(&helper_html, "data-secret").context("helpdesk key")?;
    let signed = submit_code(&gateway, &helper_mfa, &helper_html, &totp_now(&helper_secret)?).await?;
    let session = signed.cookie("bascule_session").context("helpdesk signed in")?;
    let mut helper = Portal { addr: gateway.addr, session, csrf: String::new() };
    helper.csrf = helper.csrf_of_portal().await?;
    api_ok(&helper, "POST", "/users/t1/totp-reset", None).await?;
    let step = submit_login(gateway.addr, "t1", PASSWORD).await?;
    let mfa = step.cookie("bascule_mfa").context("no pending-login cookie")?;
    let html = request(gateway.addr, "GET", "/login/totp", &[("Cookie", &format!("bascule_mfa={mfa}"))], None).await?.text();
    assert!(html.contains("<svg"), "enrolment again after the reset");
    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    assert!(audit.contains("\"totp.enrol\""), "{audit}");
    let url = format!("sqlite://{}", gateway.data_dir().join("bascule.db").display());
    let store = bascule_store::Store::connect(&url).await?;
    let entries = store
        .audit_between(bascule_domain::time::Timestamp::from_unix_seconds(0), bascule_domain::time::Timestamp::from_unix_seconds(i64::MAX / 2))
        .await?;
    assert!(
        entries.iter().any(|e| e.actor == "helper" && e.action.contains("totp") && e.target == "t1" && e.outcome == "ok"),
        "the reset is audited in the database: {entries:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_users_see_exactly_the_resources_of_their_groups() -> Result<()> {
    let env = crate::support::testbed_env();
    let get = |k: &str| env.get(k).cloned().with_context(|| format!("{k} missing from the testbed env: run scripts/testbed.sh up"));
    let ca = get("TB_LDAP_CA")?;
    let extra = format!(
        "[directory]\nurl = {}\nca_certificate = {}\nbind_dn = {}\nbind_password = \"@SEALED@\"\nbase_dn = {}\nadmin_group = \"admins\"\n",
        crate::support::gateway::toml_string(&get("TB_LDAPS_URL")?),
        crate::support::gateway::toml_string(&ca),
        crate::support::gateway::toml_string(&get("TB_LDAP_ADMIN_DN")?),
        crate::support::gateway::toml_string(&get("TB_LDAP_BASE")?),
    );
    let extra = extra.replace("@SEALED@", &format!("@SEAL:{}@", get("TB_LDAP_ADMIN_PASS")?));
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&[], &extra).await?;
    api_ok(&admin, "PUT", "/hosts/h1", Some(vnc_host("h1", &desktop, "vncpw123"))).await?;
    api_ok(&admin, "PUT", "/pools/pool", Some(json!({ "id": "pool", "name": "Pool", "hosts": ["h1"], "balancing": "fewest_sessions" }))).await?;
    for (id, group) in [("staff-desk", "staff"), ("admin-desk", "admins")] {
        let resource = json!({ "id": id, "kind": "desktop", "name_fr": id, "name_en": id, "pool": "pool" });
        api_ok(&admin, "PUT", &format!("/resources/{id}"), Some(resource)).await?;
        api_ok(&admin, "PUT", &format!("/groups/{group}"), Some(json!({ "id": group, "name": group }))).await?;
        api_ok(&admin, "POST", "/entitlements", Some(json!({ "group": group, "resource": id }))).await?;
    }
    let listed = |html: &str, id: &str| html.contains(&format!("data-resource=\"{id}\""));
    let bob = login(gateway.addr, "bob", "bobpass").await?;
    let page = bob.get("/").await?.text();
    assert!(listed(&page, "staff-desk") && !listed(&page, "admin-desk"), "bob is in staff only");
    let alice = login(gateway.addr, "alice", "alicepass").await?;
    let page = alice.get("/").await?.text();
    assert!(listed(&page, "staff-desk") && listed(&page, "admin-desk"), "alice is in staff and admins");
    // Directory groups give roles too: alice (admins) may use the API, bob may not.
    assert_eq!(api(&alice, "GET", "/hosts", None).await?.status, 200);
    assert_eq!(api(&bob, "GET", "/hosts", None).await?.status, 403);
    let wrong = submit_login(gateway.addr, "bob", "wrong").await?;
    assert_eq!(wrong.status, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_input_ends_after_the_policy_idle_timeout() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let (gateway, admin) = gateway_with(&["idle"], "[site]\nhousekeeping_secs = 1\n").await?;
    publish(&admin, &[("h1", &desktop)], &["idle"]).await?;
    // The API refuses timeouts under a minute (a sane floor for people); the test writes a
    // 3-second one straight into the database to see it enforced without waiting.
    let refused = api(&admin, "PUT", "/policies/resource/desk", Some(json!({ "idle_timeout_secs": 3 }))).await?;
    assert_eq!(refused.status, 400, "{}", refused.text());
    let url = format!("sqlite://{}", gateway.data_dir().join("bascule.db").display());
    let store = bascule_store::Store::connect(&url).await?;
    let mut policy = bascule_domain::policy::Policy::default();
    policy.idle_timeout_secs = Some(bascule_domain::policy::Limit::AtMost(3));
    let scope = bascule_domain::policy::PolicyScope::Resource(bascule_domain::id::ResourceId::new("desk"));
    store.upsert_policy(&bascule_domain::policy::ScopedPolicy { scope, policy }).await?;
    let effective = api_ok(&admin, "GET", "/effective-policy?user=idle&resource=desk", None).await?;
    assert!(effective.to_string().contains('3'), "the effective policy shows the timeout: {effective}");
    let started = Instant::now();
    let (mut viewer, _) = open_desk(&gateway, &admin, "idle").await?;
    let (code, _) = viewer.wait_notice(Duration::from_secs(20)).await?;
    assert_eq!(code, "session.idle_timeout");
    assert!(started.elapsed() >= Duration::from_secs(3), "not before the timeout");
    wait_for("session record ended", Duration::from_secs(10), || async { Ok(live_sessions(&admin).await?.is_empty()) }).await?;
    Ok(())
}

/// Bytes a viewer receives in `window` after its first frame.
async fn bytes_in(viewer: &mut crate::support::viewer::ViewerClient, window: Duration) -> Result<u64> {
    viewer.wait_frames(1, HELLO_TIMEOUT).await?;
    let start_bytes = viewer.bytes_received;
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        viewer.recv(deadline.saturating_duration_since(Instant::now())).await?;
    }
    Ok(viewer.bytes_received - start_bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_bandwidth_cap_paces_a_session_and_not_the_others() -> Result<()> {
    use crate::support::fake_vnc::{FakeVnc, noise};
    let capped_host = FakeVnc::start("noise-capped", noise).await?;
    let free_host = FakeVnc::start("noise-free", noise).await?;
    let gateway = start_gateway(
        &[User::new("bw", PASSWORD, &["capped", "free"])],
        &[
            crate::support::gateway::Resource::new("capped", capped_host.addr, None),
            crate::support::gateway::Resource::new("free", free_host.addr, None),
        ],
        "",
    )
    .await?;
    // 256 kbit/s on `capped` (the API's floor is 64 kbit/s; written through the store here).
    let url = format!("sqlite://{}", gateway.data_dir().join("bascule.db").display());
    let store = bascule_store::Store::connect(&url).await?;
    let mut policy = bascule_domain::policy::Policy::default();
    policy.max_bandwidth_kbps = Some(bascule_domain::policy::Limit::AtMost(256));
    let scope = bascule_domain::policy::PolicyScope::Resource(bascule_domain::id::ResourceId::new("capped"));
    store.upsert_policy(&bascule_domain::policy::ScopedPolicy { scope, policy }).await?;

    let portal = login(gateway.addr, "bw", PASSWORD).await?;
    let mut capped = portal.open_viewer("capped").await?;
    let mut free = portal.open_viewer("free").await?;
    capped.wait_hello(HELLO_TIMEOUT).await?;
    free.wait_hello(HELLO_TIMEOUT).await?;
    let window = Duration::from_secs(3);
    let (capped_bytes, free_bytes) = tokio::join!(bytes_in(&mut capped, window), bytes_in(&mut free, window));
    let (capped_bytes, free_bytes) = (capped_bytes?, free_bytes?);
    // 256 kbit/s = 32,000 bytes/s: 3 s, plus one burst (16 KiB) and one frame (< 60 KB here).
    let allowed = 32_000 * 3 + 16 * 1024 + 60_000;
    assert!(capped_bytes <= allowed, "capped session received {capped_bytes} bytes in 3 s (allowed {allowed})");
    assert!(capped_bytes >= 32_000, "the capped session still gets frames: {capped_bytes}");
    assert!(free_bytes > 3 * capped_bytes, "the other session is not slowed: {free_bytes} vs {capped_bytes}");
    Ok(())
}
