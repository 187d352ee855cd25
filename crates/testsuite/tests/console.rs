//! The operations console end to end, against a real x11vnc desktop: roles, the live sessions
//! table, a helpdesk shadow (read-only, then control when the user accepts), messages, staff log
//! off, incidents, the audit export and `/metrics`.

use crate::support::gateway::{Resource, TestGateway, User, start_gateway};
use crate::support::http::{Portal, login, request};
use crate::support::{EchoCommand, focus_xterm, keysyms, start_desktop};
use anyhow::{Context, Result, bail};
use bascule_desktop::{Desktop, VncServer};
use bascule_proto::{ClientMessage, ServerMessage, control_state};
use std::time::Duration;

const PASSWORD: &str = "a long password 1";
const WAIT: Duration = Duration::from_secs(20);

async fn site() -> Result<(Desktop, TestGateway)> {
    let desktop = start_desktop(VncServer::X11vnc, Some("vncpw123"));
    let gateway = start_gateway(
        &[
            User::new("agent", PASSWORD, &["desk"]),
            User::new("hotline", PASSWORD, &[]).roles(&["helpdesk"]),
            User::new("chief", PASSWORD, &[]).roles(&["admin"]),
        ],
        &[Resource::new("desk", desktop.vnc_addr(), Some("vncpw123"))],
        "",
    )
    .await?;
    Ok((desktop, gateway))
}

/// The live session id of `login`, as the console's JSON lists it.
async fn session_of(helpdesk: &Portal, login: &str) -> Result<String> {
    let response = helpdesk.get("/console/sessions.json").await?;
    if response.status != 200 {
        bail!("GET /console/sessions.json answered {}", response.status);
    }
    let json = response.json()?;
    json["sessions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["user"] == login))
        .and_then(|r| r["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no session of {login} in {json}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_guard_the_console_and_the_admin_actions() -> Result<()> {
    let (_desktop, gateway) = site().await?;
    let user = login(gateway.addr, "agent", PASSWORD).await?;
    let page = user.get("/console/sessions").await?;
    assert_eq!(page.status, 403, "a user cannot open the console");
    assert!(page.text().contains("console est réservée"), "{}", page.text());
    assert_eq!(user.get("/console/sessions.json").await?.status, 401);

    let hotline = login(gateway.addr, "hotline", PASSWORD).await?;
    assert_eq!(hotline.get("/console/sessions").await?.status, 200);
    assert_eq!(hotline.get("/console/hosts").await?.status, 200);
    let drain = hotline.post_form("/console/hosts/desk/drain", &[("draining", "true")]).await?;
    assert_eq!(drain.status, 403, "the helpdesk cannot drain a host: {}", drain.text());
    let hosts = hotline.get("/console/hosts").await?.text();
    assert!(!hosts.contains("/drain"), "no drain button for the helpdesk");

    let chief = login(gateway.addr, "chief", PASSWORD).await?;
    let drain = chief.post_form("/console/hosts/desk/drain", &[("draining", "true")]).await?;
    assert_eq!(drain.status, 303, "an admin drains: {}", drain.text());
    let hosts = chief.get("/console/hosts").await?.text();
    assert!(hosts.contains("en drainage"), "the page shows it");
    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    assert!(audit.contains("\"host.drain\""), "drain audited: {audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_message_control_and_staff_log_off() -> Result<()> {
    let (desktop, gateway) = site().await?;
    let user = login(gateway.addr, "agent", PASSWORD).await?;
    let mut owner = user.open_viewer("desk").await?;
    owner.wait_hello(WAIT).await?;
    owner.settle(1).await?;

    let hotline = login(gateway.addr, "hotline", PASSWORD).await?;
    let id = session_of(&hotline, "agent").await?;
    let user_page = hotline.get("/console/users/agent").await?.text();
    assert!(user_page.contains(&format!("data-session=\"{id}\"")), "the user page lists the live session");

    // The shadow sees the same screen, read-only.
    let mut shadow = hotline.open_shadow(&id).await?;
    shadow.wait_hello(WAIT).await?;
    let mode = shadow.wait_message(WAIT, "ViewMode", |m| matches!(m, ServerMessage::ViewMode { .. })).await?;
    assert!(matches!(mode, ServerMessage::ViewMode { read_only: true, .. }), "{mode:?}");
    crate::support::gateway::assert_viewer_shows_desktop(&mut shadow, &desktop, 1).await?;
    focus_xterm(&desktop)?;
    let ignored = EchoCommand::new("SHADOW_READ_ONLY");
    shadow.type_keysyms(&keysyms(&ignored.command)).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!ignored.path.exists(), "a read-only shadow's keys never reach the desktop");

    // A message reaches the user's viewer.
    let sent = hotline.post_form(&format!("/console/sessions/{id}/message"), &[("text", "Nous regardons votre écran.")]).await?;
    assert_eq!(sent.status, 303, "{}", sent.text());
    let message = owner.wait_message(WAIT, "Message", |m| matches!(m, ServerMessage::Message { .. })).await?;
    assert!(matches!(&message, ServerMessage::Message { text, .. } if text == "Nous regardons votre écran."), "{message:?}");

    // Control: requested by the shadow, accepted by the user; then the shadow's keys arrive.
    shadow.send(ClientMessage::ControlRequest).await?;
    let request = owner.wait_message(WAIT, "ControlRequest", |m| matches!(m, ServerMessage::ControlRequest { .. })).await?;
    let ServerMessage::ControlRequest { id: request_id, .. } = request else { bail!("{request:?}") };
    owner.send(ClientMessage::ControlReply { id: request_id, granted: true }).await?;
    shadow
        .wait_message(WAIT, "ControlState granted", |m| {
            matches!(m, ServerMessage::ControlState { state, .. } if *state == control_state::GRANTED)
        })
        .await?;
    let typed = EchoCommand::new("SHADOW_HAS_CONTROL");
    shadow.type_keysyms(&keysyms(&typed.command)).await?;
    typed.check().await?;

    // The user takes control back; the shadow is read-only again.
    owner.send(ClientMessage::ControlRelease { id: request_id }).await?;
    shadow
        .wait_message(WAIT, "ControlState ended", |m| {
            matches!(m, ServerMessage::ControlState { state, .. } if *state == control_state::ENDED)
        })
        .await?;

    // Staff log off: the user's viewer says so, and the record ends.
    let off = hotline.post_form(&format!("/console/sessions/{id}/logoff"), &[]).await?;
    assert_eq!(off.status, 303);
    let (code, _) = owner.wait_notice(WAIT).await?;
    assert_eq!(code, "session.ended_by_staff");
    let audit = std::fs::read_to_string(gateway.data_dir().join("audit.log"))?;
    for action in ["\"session.shadow\"", "\"session.message\"", "\"session.control\"", "\"session.logoff\""] {
        assert!(audit.contains(action), "{action} audited");
    }
    assert!(audit.contains("granted by the user"), "the user's consent is audited");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_audit_export_and_metrics() -> Result<()> {
    let (_desktop, gateway) = site().await?;
    let metrics = |addr| async move {
        let response = request(addr, "GET", "/metrics", &[], None).await?;
        anyhow::ensure!(response.status == 200, "GET /metrics answered {}", response.status);
        parse_prometheus(&response.text())
    };
    let before = metrics(gateway.addr).await?;
    let user = login(gateway.addr, "agent", PASSWORD).await?;
    let mut viewer = user.open_viewer("desk").await?;
    viewer.wait_hello(WAIT).await?;
    viewer.settle(1).await?;
    let during = metrics(gateway.addr).await?;
    let value = |m: &std::collections::HashMap<String, f64>, key: &str| m.get(key).copied().unwrap_or(0.0);
    assert_eq!(value(&during, "bascule_live_connections"), 1.0);
    assert!(value(&during, "bascule_launches_total{outcome=\"start\",reason=\"\"}") > value(&before, "bascule_launches_total{outcome=\"start\",reason=\"\"}"));
    assert!(value(&during, "bascule_client_bytes_total{direction=\"to_client\"}") > 0.0);
    assert!(during.keys().any(|k| k.starts_with("bascule_rtt_seconds_bucket")), "an RTT histogram");
    assert!(value(&during, "bascule_licences_in_use") >= 1.0);

    let hotline = login(gateway.addr, "hotline", PASSWORD).await?;
    let id = session_of(&hotline, "agent").await?;
    hotline.post_form(&format!("/console/sessions/{id}/logoff"), &[]).await?;
    let (code, _) = viewer.wait_notice(WAIT).await?;
    assert_eq!(code, "session.ended_by_staff");
    let mut after = metrics(gateway.addr).await?;
    for _ in 0..40 {
        if value(&after, "bascule_live_connections") == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = metrics(gateway.addr).await?;
    }
    assert_eq!(value(&after, "bascule_live_connections"), 0.0, "the gauge comes back down");
    assert!(value(&after, "bascule_session_ends_total{reason=\"session.ended_by_staff\"}") >= 1.0);

    // An incident against the user, then the audit log's CSV export.
    let saved = hotline
        .post_form("/console/incidents", &[("user", "agent"), ("category", "printing"), ("text", "L'imprimante ne sort rien")])
        .await?;
    assert_eq!(saved.status, 303, "{}", saved.text());
    let page = hotline.get("/console/users/agent").await?.text();
    assert!(page.contains("ne sort rien") && page.contains("Impression"), "the incident is on the user's page");
    let refused = hotline.post_form("/console/incidents", &[("category", "nonsense"), ("text", "x")]).await?;
    assert_eq!(refused.status, 400);
    let csv = hotline.get("/console/audit.csv?action=session.").await?;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").is_some_and(|v| v.starts_with("text/csv")));
    let text = csv.text();
    assert!(text.starts_with("at;actor;action;target;address;outcome\n"), "{text}");
    assert!(text.contains("\"session.logoff\"") && text.contains("\"hotline\""), "{text}");
    assert!(text.lines().skip(1).all(|l| l.contains("session.")), "the filter applies: {text}");

    // Every metric the Grafana dashboard in the repository queries is exported.
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/bascule-dashboard.json"))?;
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard).context("the dashboard is not JSON")?;
    let panels = dashboard["panels"].as_array().context("no panels")?;
    assert!(panels.len() >= 8);
    for expr in panels.iter().flat_map(|p| p["targets"].as_array().into_iter().flatten()).filter_map(|t| t["expr"].as_str()) {
        for name in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| w.starts_with("bascule_")) {
            let exported = after.keys().chain(during.keys()).any(|k| k.starts_with(name));
            assert!(exported, "the dashboard queries {name}, which /metrics does not export");
        }
    }

    // /metrics is not for everybody: a non-loopback address needs the token (tested through the
    // allow-list being loopback-only by default, and a wrong token refused).
    let wrong = request(gateway.addr, "GET", "/metrics", &[("Authorization", "Bearer nope")], None).await?;
    assert_eq!(wrong.status, 200, "loopback is allowed by default");
    Ok(())
}

/// Parses the Prometheus text format strictly enough to catch a broken exposition: every sample
/// line is `name{labels} value`, every `# TYPE` names a known type. Returns `name{labels}` → value.
fn parse_prometheus(text: &str) -> Result<std::collections::HashMap<String, f64>> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let kind = rest.split_whitespace().nth(1).context("TYPE without a type")?;
            anyhow::ensure!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "bad TYPE: {line}");
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').with_context(|| format!("no value: {line}"))?;
        let value: f64 = if value == "+Inf" { f64::INFINITY } else { value.parse().with_context(|| format!("bad value: {line}"))? };
        let name_end = key.find('{').unwrap_or(key.len());
        let name = &key[..name_end];
        anyhow::ensure!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < key.len() {
            anyhow::ensure!(key.ends_with('}'), "unterminated labels: {line}");
        }
        samples.insert(key.to_owned(), value);
    }
    anyhow::ensure!(!samples.is_empty(), "no sample in {text}");
    Ok(samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_outside_the_allow_list() -> Result<()> {
    let gateway = start_gateway(&[], &[], "[metrics]\nallow = []\ntoken = \"@SEAL:scrape-token-42@\"\n").await?;
    let anonymous = request(gateway.addr, "GET", "/metrics", &[], None).await?;
    assert_eq!(anonymous.status, 403, "{}", anonymous.text());
    let wrong = request(gateway.addr, "GET", "/metrics", &[("Authorization", "Bearer scrape-token-41")], None).await?;
    assert_eq!(wrong.status, 403);
    let right = request(gateway.addr, "GET", "/metrics", &[("Authorization", "Bearer scrape-token-42")], None).await?;
    assert_eq!(right.status, 200);
    assert!(parse_prometheus(&right.text())?.contains_key("bascule_lockouts_total"));
    Ok(())
}
