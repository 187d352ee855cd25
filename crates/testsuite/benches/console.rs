//! Console response times on a reference-size site: 1,500 users in 20 groups, 100 hosts in
//! 6 pools, 1,200 live sessions with statistics, 30 days of audit (logins, launches) and
//! incidents, seeded straight into the SQLite database; then each console page is fetched over
//! HTTPS as a helpdesk agent, and the table prints the median and p95 of 20 fetches.
//!
//! Run: `cargo bench -p bascule-testsuite --bench console`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use anyhow::{Result, bail};
use bascule_domain::access::{Entitlement, Group, Role, Subject, User};
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Balancing, Host, Pool, Protocol, Resource, ResourceKind};
use bascule_domain::session::SessionRecord;
use bascule_domain::time::Timestamp;
use std::time::{Duration, Instant};
use support::gateway::{User as SeedUser, start_gateway};
use support::http::login;

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run())
}

async fn seed(url: &str) -> Result<()> {
    let store = bascule_store::Store::connect(url).await?;
    store.migrate().await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let at = |s: i64| Timestamp::from_unix_seconds(s);
    for g in 0..20 {
        store.upsert_group(&Group::new(GroupId::new(format!("g{g}")), format!("Groupe {g}"))).await?;
    }
    eprintln!("  users…");
    for u in 0..1500 {
        let mut user = User::new(UserId::new(format!("u{u:04}")), format!("u{u:04}"), format!("Agent {u:04}"));
        user.groups = vec![GroupId::new(format!("g{}", u % 20))];
        user.roles = vec![Role::User];
        store.upsert_user(&user).await?;
    }
    eprintln!("  hosts, pools, resources…");
    for h in 0..100 {
        store.upsert_host(&Host::new(HostId::new(format!("h{h:03}")), format!("h{h:03}"), Protocol::Rdp, "10.0.0.1", 3389, 40)).await?;
    }
    for p in 0..6 {
        let hosts = (0..100).filter(|h| h % 6 == p).map(|h| HostId::new(format!("h{h:03}"))).collect();
        store.upsert_pool(&Pool::new(PoolId::new(format!("p{p}")), format!("p{p}"), hosts, Balancing::FewestSessions)).await?;
    }
    for r in 0..30 {
        store
            .upsert_resource(&Resource::new(ResourceId::new(format!("r{r}")), ResourceKind::Desktop, "Bureau", "Desktop", PoolId::new(format!("p{}", r % 6))))
            .await?;
        store.add_entitlement(&Entitlement { subject: Subject::Group(GroupId::new(format!("g{}", r % 20))), resource: ResourceId::new(format!("r{r}")) }).await?;
    }
    store.set_licence_capacity(1500).await?;
    eprintln!("  1,200 live sessions with statistics…");
    for s in 0..1200 {
        // Active: the gateway turns them *disconnected* at start (their connections belonged to
        // an earlier process), and they stay live.
        let record = SessionRecord::restore(
            SessionId::new(format!("s{s:05}")),
            UserId::new(format!("u{s:04}")),
            ResourceId::new(format!("r{}", s % 30)),
            HostId::new(format!("h{:03}", s % 100)),
            bascule_domain::session::SessionState::Active,
            at(now - 3600 - s as i64),
        );
        store.record_session_start(&record, 1500).await?;
        store
            .upsert_session_stats(&bascule_store::SessionStats {
                session: SessionId::new(format!("s{s:05}")),
                client_address: Some(format!("10.{}.{}.{}", s % 4, s / 256 % 256, s % 256)),
                bytes_to_client: 2_000_000 + s as u64,
                bytes_from_client: 100_000,
                frames: 5000,
                rtt_buckets: vec![0, 0, 10, 50, 30, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                updated_at: at(now),
            })
            .await?;
    }
    eprintln!("  30 days of audit and incidents…");
    for day in 0..30i64 {
        for i in 0..1500i64 {
            let t = now - day * 86400 - i * 20;
            let login = format!("u{:04}", i % 1500);
            let entry = |action: &str, outcome: &str| bascule_store::AuditEntry {
                at: at(t),
                actor: login.clone(),
                action: action.into(),
                target: "portal".into(),
                address: Some("10.1.2.3".into()),
                outcome: outcome.into(),
            };
            store.append_audit(&entry("login", if i % 50 == 0 { "failure: wrong credentials" } else { "success" })).await?;
            store.append_audit(&entry("launch", "start session x on host h001 (3 ms)")).await?;
        }
        for i in 0..10 {
            store
                .add_incident(&bascule_store::NewIncident {
                    at: at(now - day * 86400 - i * 600),
                    author: "hotline".into(),
                    user: Some(UserId::new(format!("u{:04}", i * 7))),
                    session: None,
                    category: "network".into(),
                    text: "Lenteur signalée".into(),
                })
                .await?;
        }
        eprint!("\r  day {}/30", day + 1);
    }
    eprintln!();
    store.close().await;
    Ok(())
}

async fn run() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("bascule-console-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("seed.db").display());
    eprintln!("[1/3] seeding a reference-size site…");
    let started = Instant::now();
    seed(&url).await?;
    eprintln!("      seeded in {:.1} s", started.elapsed().as_secs_f64());
    eprintln!("[2/3] starting a gateway on it…");
    let extra = format!("database = \"{url}\"\n");
    // `database` must come before any table: start_gateway puts `extra` right after data_dir.
    let gateway = start_gateway(&[SeedUser::new("hotline", "bench password 1", &[]).roles(&["helpdesk"])], &[], &extra).await?;
    let agent = login(gateway.addr, "hotline", "bench password 1").await?;
    let listed = agent.get("/console/sessions.json").await?.json()?;
    if listed["count"].as_u64() != Some(1200) {
        bail!("the console lists {} sessions, not the 1,200 seeded", listed["count"]);
    }
    eprintln!("[3/3] fetching console pages (20 times each)…");
    let pages = [
        ("/console/sessions", "live sessions (1,200)"),
        ("/console/sessions.json", "live sessions, JSON refresh"),
        ("/console/sessions?q=u00", "live sessions, search"),
        ("/console/users?q=u01", "user search"),
        ("/console/users/u0042", "user page"),
        ("/console/hosts", "hosts (100)"),
        ("/console/hosts/h042", "host page"),
        ("/console/audit", "audit log, last day"),
        ("/console/audit.csv?from=2000-01-01", "audit CSV, 30 days"),
        ("/console/incidents", "incidents, 30 days"),
        ("/console/report", "daily report + 30-day trend"),
        ("/metrics", "/metrics"),
    ];
    println!();
    println!("| page | what | p50 (ms) | p95 (ms) | bytes |");
    println!("|---|---|---:|---:|---:|");
    for (path, what) in pages {
        let mut samples = Vec::new();
        let mut bytes = 0;
        for _ in 0..20 {
            let t = Instant::now();
            let response = agent.get(path).await?;
            samples.push(t.elapsed());
            if response.status != 200 {
                bail!("{path} answered {}", response.status);
            }
            bytes = response.body.len();
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("| `{path}` | {what} | {:.1} | {:.1} | {bytes} |", ms(samples[10]), ms(samples[18]));
    }
    gateway.running.shutdown().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
