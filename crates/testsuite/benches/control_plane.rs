//! The control plane's figures, printed as a table:
//! - the broker's decision alone, on a site of the reference size (1,500 users, 100 hosts in
//!   6 pools, 1,200 live sessions);
//! - a wave of 300 users logging in at once, with password and TOTP, for local accounts and for
//!   directory (LDAP) accounts — first logins (with enrolment) and later logins;
//! - 300 launches at once through `POST /api/launch` (decision, atomic session record, ticket).
//!
//! Run: `scripts/testbed.sh up`, then `cargo bench -p bascule-testsuite --bench control_plane`.
//! The gateway runs in this process on SQLite, as the demo does; the directory is the testbed's
//! slapd, to which this bench adds 300 accounts (`uid=benchNNN`).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use anyhow::{Context, Result, bail};
use bascule_domain::access::{Entitlement, Group, Subject, User};
use bascule_domain::broker::{LaunchRequest, World, decide_launch};
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Balancing, Host, Pool, Protocol, Resource, ResourceKind};
use bascule_domain::policy::EffectivePolicy;
use bascule_domain::session::{LicencePool, SessionRecord};
use bascule_domain::time::Timestamp;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::gateway::{User as SeedUser, start_gateway, toml_string};
use support::http::{Portal, attribute, hidden_input, request, submit_login};

const WAVE: usize = 300;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

struct Row {
    what: String,
    count: usize,
    total: Duration,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

fn row(what: &str, mut samples: Vec<Duration>, total: Duration) -> Row {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Row { what: what.into(), count: samples.len(), total, p50: at(0.5), p95: at(0.95), max: at(1.0) }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn run() -> Result<()> {
    let mut rows = Vec::new();
    eprintln!("[1/5] broker decision on a reference-size site…");
    rows.push(decision_latency());

    eprintln!("[2/5] adding {WAVE} accounts to the testbed's slapd…");
    let env = support::testbed_env();
    let get = |k: &str| env.get(k).cloned().with_context(|| format!("{k} missing: run scripts/testbed.sh up"));
    add_ldap_users(&get("TB_LDAP_URL")?, &get("TB_LDAP_ADMIN_DN")?, &get("TB_LDAP_ADMIN_PASS")?, &get("TB_LDAP_BASE")?)?;

    eprintln!("[3/5] starting a gateway with {WAVE} local accounts (hashing their passwords)…");
    let users: Vec<SeedUser> =
        (0..WAVE).map(|i| SeedUser::new(&format!("local{i:03}"), &format!("localpass{i:03}"), &["bench"])).collect();
    let extra = format!(
        "[mfa]\ntotp = \"required\"\n[site]\nlicences = 1200\n[login]\nmax_failures_per_address = 100000\n[directory]\nurl = {}\nca_certificate = {}\nbind_dn = {}\nbind_password = \"@SEAL:{}@\"\nbase_dn = {}\n",
        toml_string(&get("TB_LDAPS_URL")?),
        toml_string(&get("TB_LDAP_CA")?),
        toml_string(&get("TB_LDAP_ADMIN_DN")?),
        get("TB_LDAP_ADMIN_PASS")?,
        toml_string(&get("TB_LDAP_BASE")?),
    );
    let nowhere: SocketAddr = "127.0.0.1:9".parse()?;
    let resources = [support::gateway::Resource::new("bench", nowhere, None)];
    let gateway = start_gateway(&users, &resources, &extra).await?;
    let addr = gateway.addr;

    eprintln!("[4/5] waves of {WAVE} logins at once (password + TOTP)…");
    let local: Vec<(String, String)> = (0..WAVE).map(|i| (format!("local{i:03}"), format!("localpass{i:03}"))).collect();
    let ldap: Vec<(String, String)> = (0..WAVE).map(|i| (format!("bench{i:03}"), format!("benchpass{i:03}"))).collect();
    let (first_local, secrets_local, total) = wave(addr, &local, None).await?;
    rows.push(row("local: first login + TOTP enrolment", first_local, total));
    let (first_ldap, secrets_ldap, total) = wave(addr, &ldap, None).await?;
    rows.push(row("LDAP: first login + TOTP enrolment", first_ldap, total));
    let (again_local, _, total) = wave(addr, &local, Some(&secrets_local)).await?;
    rows.push(row("local: login + TOTP code", again_local, total));
    let (again_ldap, _, total) = wave(addr, &ldap, Some(&secrets_ldap)).await?;
    rows.push(row("LDAP: login + TOTP code", again_ldap, total));

    eprintln!("[5/5] {WAVE} launches at once…");
    rows.push(launches(addr, &local, &secrets_local).await?);

    println!();
    println!("| what | n | wall time (s) | per second | p50 (ms) | p95 (ms) | max (ms) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} |",
            r.what,
            r.count,
            r.total.as_secs_f64(),
            r.count as f64 / r.total.as_secs_f64().max(1e-9),
            ms(r.p50),
            ms(r.p95),
            ms(r.max)
        );
    }
    gateway.running.shutdown().await?;
    Ok(())
}

/// `decide_launch` on 1,500 users in 20 groups, 100 hosts in 6 pools, 30 resources and 1,200
/// live sessions: the pure decision, without the snapshot's loading.
fn decision_latency() -> Row {
    let mut world = World::new(LicencePool::new(1500), EffectivePolicy::default(), 3600);
    world.groups = (0..20).map(|g| Group::new(GroupId::new(format!("g{g}")), format!("g{g}"))).collect();
    world.users = (0..1500)
        .map(|u| {
            let mut user = User::new(UserId::new(format!("u{u}")), format!("u{u}"), format!("User {u}"));
            user.groups = vec![GroupId::new(format!("g{}", u % 20))];
            user
        })
        .collect();
    world.hosts = (0..100)
        .map(|h| Host::new(HostId::new(format!("h{h:03}")), format!("h{h}"), Protocol::Rdp, "10.0.0.1", 3389, 40))
        .collect();
    world.pools = (0..6)
        .map(|p| {
            let hosts = (0..100).filter(|h| h % 6 == p).map(|h| HostId::new(format!("h{h:03}"))).collect();
            Pool::new(PoolId::new(format!("p{p}")), format!("p{p}"), hosts, Balancing::FewestSessions)
        })
        .collect();
    world.resources = (0..30)
        .map(|r| {
            Resource::new(ResourceId::new(format!("r{r}")), ResourceKind::Desktop, "x", "x", PoolId::new(format!("p{}", r % 6)))
        })
        .collect();
    world.entitlements = (0..30)
        .map(|r| Entitlement { subject: Subject::Group(GroupId::new(format!("g{}", r % 20))), resource: ResourceId::new(format!("r{r}")) })
        .collect();
    let now = Timestamp::from_unix_seconds(1_800_000_000);
    world.sessions = (0..1200)
        .map(|s| {
            SessionRecord::start(
                SessionId::new(format!("s{s}")),
                UserId::new(format!("u{s}")),
                ResourceId::new(format!("r{}", s % 30)),
                HostId::new(format!("h{:03}", s % 100)),
                now,
            )
        })
        .collect();
    let mut samples = Vec::new();
    let start = Instant::now();
    for i in 0..2000 {
        let user = 1200 + (i % 300);
        let request = LaunchRequest { user: UserId::new(format!("u{user}")), resource: ResourceId::new(format!("r{}", user % 20)) };
        let t = Instant::now();
        let decision = decide_launch(&request, &world, now);
        samples.push(t.elapsed());
        std::hint::black_box(decision).ok();
    }
    row("broker decision (pure; 1,500 users, 100 hosts, 1,200 sessions)", samples, start.elapsed())
}

fn add_ldap_users(url: &str, admin_dn: &str, password: &str, base: &str) -> Result<()> {
    let mut ldif = String::new();
    for i in 0..WAVE {
        ldif.push_str(&format!(
            "dn: uid=bench{i:03},ou=people,{base}\nobjectClass: inetOrgPerson\nuid: bench{i:03}\ncn: Bench {i:03}\nsn: {i:03}\nuserPassword: benchpass{i:03}\n\n"
        ));
    }
    let file = std::env::temp_dir().join(format!("bascule-bench-{}.ldif", std::process::id()));
    std::fs::write(&file, ldif)?;
    // -c: the accounts may be there from an earlier run.
    let out = std::process::Command::new("ldapadd")
        .args(["-c", "-x", "-H", url, "-D", admin_dn, "-w", password, "-f"])
        .arg(&file)
        .output()
        .context("running ldapadd (package ldap-utils; scripts/testbed.sh install)")?;
    let _ = std::fs::remove_file(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && !stderr.contains("Already exists") {
        bail!("ldapadd failed: {stderr}");
    }
    Ok(())
}

/// The current TOTP code, or the next step's (the one just used is refused as a replay).
fn code(secret: &str, next: bool) -> String {
    let secret = bascule_mfa::TotpSecret::from_base32(secret).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    bascule_mfa::code_at(&secret, if next { now + 30 } else { now })
}

/// One full login: password, then the TOTP step (enrolment when no secret is known). Returns the
/// time taken, the TOTP secret, and the signed-in portal.
async fn full_login(addr: SocketAddr, login: &str, password: &str, secret: Option<&str>) -> Result<(Duration, String, Portal)> {
    let start = Instant::now();
    let step = submit_login(addr, login, password).await?;
    if step.status != 303 || step.header("location") != Some("/login/totp") {
        bail!("{login}: password step answered {}: {}", step.status, step.text());
    }
    let mfa = step.cookie("bascule_mfa").context("no bascule_mfa cookie")?;
    let cookie = format!("bascule_mfa={mfa}");
    let page = request(addr, "GET", "/login/totp", &[("Cookie", &cookie)], None).await?.text();
    let (secret, code) = match secret {
        Some(known) => (known.to_owned(), code(known, true)),
        None => {
            let shown = attribute(&page, "data-secret").context("no enrolment key shown")?;
            let code = code(&shown, false);
            (shown, code)
        }
    };
    let csrf = hidden_input(&page, "csrf").context("no csrf on the TOTP page")?;
    let origin = support::http::origin(addr);
    let body = support::http::form_encode(&[("code", &code), ("csrf", &csrf)]);
    let done = request(
        addr,
        "POST",
        "/login/totp",
        &[("Cookie", &cookie), ("Origin", &origin), ("Content-Type", "application/x-www-form-urlencoded")],
        Some(body.as_bytes()),
    )
    .await?;
    let session = done.cookie("bascule_session").with_context(|| format!("{login}: TOTP step answered {}", done.status))?;
    let elapsed = start.elapsed();
    Ok((elapsed, secret, Portal { addr, session, csrf: String::new() }))
}

type Secrets = std::collections::HashMap<String, String>;

/// Everybody logs in at once.
async fn wave(addr: SocketAddr, users: &[(String, String)], secrets: Option<&Secrets>) -> Result<(Vec<Duration>, Secrets, Duration)> {
    let start = Instant::now();
    let tasks: Vec<_> = users
        .iter()
        .cloned()
        .map(|(login, password)| {
            let known = secrets.and_then(|s| s.get(&login).cloned());
            tokio::spawn(async move {
                let result = full_login(addr, &login, &password, known.as_deref()).await;
                result.map(|(d, s, _)| (login, d, s))
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut found = Secrets::new();
    for task in tasks {
        let (login, elapsed, secret) = task.await??;
        samples.push(elapsed);
        found.insert(login, secret);
    }
    Ok((samples, found, start.elapsed()))
}

/// Every local user, signed in, launches `bench` at once; the latency of `POST /api/launch`.
async fn launches(addr: SocketAddr, users: &[(String, String)], secrets: &Secrets) -> Result<Row> {
    // Sign in first (the next TOTP step: the codes of the last wave are spent).
    tokio::time::sleep(Duration::from_secs(31)).await;
    let mut portals = Vec::new();
    for (login, password) in users {
        let (_, _, mut portal) = full_login(addr, login, password, secrets.get(login).map(String::as_str)).await?;
        portal.csrf = portal.csrf_of_portal().await?;
        portals.push(portal);
    }
    let start = Instant::now();
    let tasks: Vec<_> = portals
        .into_iter()
        .map(|portal| {
            tokio::spawn(async move {
                let t = Instant::now();
                let response = portal.launch_raw("bench", Some(&portal.csrf)).await?;
                if response.status != 200 {
                    bail!("launch answered {}: {}", response.status, response.text());
                }
                anyhow::Ok(t.elapsed())
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.push(task.await??);
    }
    Ok(row("POST /api/launch (decision + atomic session record + ticket)", samples, start.elapsed()))
}
