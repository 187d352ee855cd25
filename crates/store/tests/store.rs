//! Every operation group runs the same body against SQLite (a temporary file) and PostgreSQL
//! (`BASCULE_TEST_POSTGRES_URL`, one fresh schema per test; `scripts/test.sh` starts the server).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bascule_domain::access::{Entitlement, Group, Role, Subject, User};
use bascule_domain::broker::{LaunchDecision, LaunchRequest, decide_launch};
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Balancing, Health, Host, Pool, Protocol, Resource, ResourceKind};
use bascule_domain::policy::{EffectivePolicy, Limit, Policy, PolicyScope, ScopedPolicy};
use bascule_domain::session::{EndReason, FailReason, SessionRecord, SessionState};
use bascule_domain::time::{AllowedHours, TimeWindow, Timestamp, WeekdaySet};
use bascule_store::backup::{
    AuditRow, DailyReportRow, HostRow, IncidentRow, SessionStatsRow, SettingRow, SiteRow, UserRow,
};
use bascule_store::{
    AuditEntry, AuthSource, Backend, Backup, CapacityLimit, Incident, LicenceSample, NewIncident,
    SessionStats, Site, Store, StoreError, StoredReport, UserAuth,
};
use sqlx::Connection;

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A migrated store on a new temporary file; the caller removes the files with `remove_sqlite`.
async fn sqlite_store() -> (Store, PathBuf) {
    let path = std::env::temp_dir().join(format!("bascule-store-test-{}.db", unique_suffix()));
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    (store, path)
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}

/// The URL of a new empty schema on the test server.
async fn postgres_url() -> String {
    let Ok(base) = std::env::var("BASCULE_TEST_POSTGRES_URL") else {
        panic!("set BASCULE_TEST_POSTGRES_URL (scripts/test.sh starts PostgreSQL)");
    };
    let schema = format!("t_{}", unique_suffix());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

async fn postgres_store() -> Store {
    let url = postgres_url().await;
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.unwrap();
    store
}

/// Runs `$body(store)` once per backend: `$body::sqlite` and `$body::postgres`.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let (store, path) = super::sqlite_store().await;
                super::$body(store).await;
                super::remove_sqlite(&path);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$body(super::postgres_store().await).await;
            }
        }
    )*};
}

on_both_backends!(
    migrations_are_idempotent,
    inventory_and_access_round_trip,
    world_feeds_decide_launch,
    session_limits_and_states,
    concurrent_starts_never_overspend,
    audit_log,
    licence_samples,
    user_auth_and_memberships,
    host_and_resource_settings,
    generic_settings,
    session_history,
    backup_round_trip,
    import_refusals_and_atomicity,
    incidents,
    sites,
    session_stats,
    sessions_overlapping,
    daily_reports,
    recent_audit_by_actor_and_target,
);

async fn recent_audit_by_actor_and_target(store: Store) {
    let entry = |t: i64, actor: &str, action: &str, target: &str| bascule_store::AuditEntry {
        at: at(t),
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        address: None,
        outcome: "ok".into(),
    };
    for (t, actor, action, target) in [
        (100, "alice", "login", "portal"),
        (200, "alice", "launch", "desk"),
        (300, "bob", "login", "portal"),
        (400, "system", "host.health", "h1"),
        (500, "admin", "host.drain", "h1"),
        (600, "alice", "login.totp", "portal"),
        (700, "x", "login_", "portal"),
    ] {
        store.append_audit(&entry(t, actor, action, target)).await.unwrap();
    }
    let recent = |filter, from, limit| {
        let store = store.clone();
        async move {
            store.audit_recent(&filter, at(from), limit).await.unwrap().into_iter().map(|e| e.at.unix_seconds()).collect::<Vec<_>>()
        }
    };
    let alice = bascule_store::AuditFilter { actor: Some("alice"), ..Default::default() };
    assert_eq!(recent(alice, 0, 10).await, [600, 200, 100], "newest first");
    assert_eq!(recent(alice, 150, 10).await, [600, 200], "from");
    assert_eq!(recent(alice, 0, 1).await, [600], "limit");
    let logins = bascule_store::AuditFilter { actor: Some("alice"), action_prefix: Some("login"), ..Default::default() };
    assert_eq!(recent(logins, 0, 10).await, [600, 100]);
    let h1 = bascule_store::AuditFilter { target: Some("h1"), action_prefix: Some("host."), ..Default::default() };
    assert_eq!(recent(h1, 0, 10).await, [500, 400]);
    // `_` and `%` in a prefix are literal.
    let literal = bascule_store::AuditFilter { action_prefix: Some("login_"), ..Default::default() };
    assert_eq!(recent(literal, 0, 10).await, [700]);
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(seconds)
}

fn host(id: &str, max_sessions: u32) -> Host {
    Host::new(
        HostId::new(id),
        id.to_uppercase(),
        Protocol::Rdp,
        format!("{id}.lan"),
        3389,
        max_sessions,
    )
}

fn start(id: &str, user: &str, resource: &str, host: &str, now: i64) -> SessionRecord {
    SessionRecord::start(
        SessionId::new(id),
        UserId::new(user),
        ResourceId::new(resource),
        HostId::new(host),
        at(now),
    )
}

/// A pool `p` of `hosts`, a desktop `desk` on it, and user `u1` entitled to it.
async fn small_site(store: &Store, hosts: &[Host]) {
    for host in hosts {
        store.upsert_host(host).await.unwrap();
    }
    let ids = hosts.iter().map(|host| host.id.clone()).collect();
    store
        .upsert_pool(&Pool::new(
            PoolId::new("p"),
            "Pool",
            ids,
            Balancing::FewestSessions,
        ))
        .await
        .unwrap();
    store
        .upsert_resource(&Resource::new(
            ResourceId::new("desk"),
            ResourceKind::Desktop,
            "Bureau",
            "Desktop",
            PoolId::new("p"),
        ))
        .await
        .unwrap();
    store
        .upsert_user(&User::new(UserId::new("u1"), "alice", "Alice"))
        .await
        .unwrap();
    store
        .add_entitlement(&Entitlement {
            subject: Subject::User(UserId::new("u1")),
            resource: ResourceId::new("desk"),
        })
        .await
        .unwrap();
}

async fn migrations_are_idempotent(store: Store) {
    // The helper migrated once already.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.list_users().await.unwrap().is_empty());
    assert_eq!(store.licence_capacity().await.unwrap(), 0);
}

async fn inventory_and_access_round_trip(store: Store) {
    // Groups.
    let finance = Group::new(GroupId::new("finance"), "Finance");
    let staff = Group::new(GroupId::new("staff"), "Staff");
    store.upsert_group(&finance).await.unwrap();
    store.upsert_group(&staff).await.unwrap();
    let renamed = Group::new(GroupId::new("staff"), "Personnel");
    store.upsert_group(&renamed).await.unwrap();
    assert_eq!(
        store.list_groups().await.unwrap(),
        vec![finance.clone(), renamed.clone()]
    );
    assert_eq!(store.get_group(&GroupId::new("nope")).await.unwrap(), None);

    // Users and memberships.
    let mut alice = User::new(UserId::new("u1"), "alice", "Alice Martin");
    alice.groups = vec![GroupId::new("finance"), GroupId::new("staff")];
    alice.roles = vec![Role::User, Role::Helpdesk];
    let mut bob = User::new(UserId::new("u2"), "bob", "Bob");
    bob.enabled = false;
    bob.roles = vec![];
    store.upsert_user(&alice).await.unwrap();
    store.upsert_user(&bob).await.unwrap();
    assert_eq!(
        store.get_user(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_user_by_login("bob").await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );
    let duplicate_login = User::new(UserId::new("u3"), "alice", "Other Alice");
    assert!(matches!(
        store.upsert_user(&duplicate_login).await,
        Err(StoreError::Database(_))
    ));
    store.add_membership(&bob.id, &finance.id).await.unwrap();
    store.add_membership(&bob.id, &finance.id).await.unwrap();
    assert_eq!(
        store.members_of(&finance.id).await.unwrap(),
        vec![alice.id.clone(), bob.id.clone()]
    );
    assert!(store.remove_membership(&bob.id, &finance.id).await.unwrap());
    assert!(!store.remove_membership(&bob.id, &finance.id).await.unwrap());
    // Deleting a group drops its memberships.
    assert!(store.delete_group(&staff.id).await.unwrap());
    alice.groups = vec![GroupId::new("finance")];
    assert_eq!(
        store.get_user(&alice.id).await.unwrap(),
        Some(alice.clone())
    );

    // Hosts.
    let mut h1 = host("h1", 10);
    h1.draining = true;
    h1.weight = 3;
    h1.health = Health::Healthy;
    let mut h2 = host("h2", 5);
    h2.protocol = Protocol::Vnc;
    h2.port = 5901;
    h2.health = Health::Unhealthy {
        since: at(1_700_000_000),
        reason: "connection refused".into(),
    };
    let h3 = host("h3", 1);
    for host in [&h1, &h2, &h3] {
        store.upsert_host(host).await.unwrap();
    }
    assert_eq!(
        store.list_hosts().await.unwrap(),
        vec![h1.clone(), h2.clone(), h3.clone()]
    );
    h2.health = Health::Healthy;
    store.upsert_host(&h2).await.unwrap();
    assert_eq!(store.get_host(&h2.id).await.unwrap(), Some(h2.clone()));

    // Pools keep their hosts' order.
    let pool = Pool::new(
        PoolId::new("p"),
        "Pool",
        vec![h3.id.clone(), h1.id.clone(), h2.id.clone()],
        Balancing::Weighted,
    );
    store.upsert_pool(&pool).await.unwrap();
    assert_eq!(store.get_pool(&pool.id).await.unwrap(), Some(pool.clone()));
    // Deleting a host takes it out of its pools.
    assert!(store.delete_host(&h3.id).await.unwrap());
    assert!(!store.delete_host(&h3.id).await.unwrap());
    let pool = Pool::new(
        pool.id.clone(),
        "Pool",
        vec![h1.id.clone(), h2.id.clone()],
        Balancing::Weighted,
    );
    assert_eq!(store.list_pools().await.unwrap(), vec![pool.clone()]);

    // Resources.
    let desk = Resource::new(
        ResourceId::new("desk"),
        ResourceKind::Desktop,
        "Bureau",
        "Desktop",
        pool.id.clone(),
    );
    let compta = Resource::new(
        ResourceId::new("compta"),
        ResourceKind::Application {
            program: r"C:\Compta\compta.exe".into(),
        },
        "Comptabilité",
        "Accounting",
        pool.id.clone(),
    );
    store.upsert_resource(&desk).await.unwrap();
    store.upsert_resource(&compta).await.unwrap();
    assert_eq!(
        store.list_resources().await.unwrap(),
        vec![compta.clone(), desk.clone()]
    );
    assert_eq!(
        store.get_resource(&desk.id).await.unwrap(),
        Some(desk.clone())
    );
    let orphan = Resource::new(
        ResourceId::new("x"),
        ResourceKind::Desktop,
        "X",
        "X",
        PoolId::new("missing"),
    );
    assert!(
        store.upsert_resource(&orphan).await.is_err(),
        "foreign key on the pool"
    );
    assert!(
        store.delete_pool(&pool.id).await.is_err(),
        "a used pool cannot go"
    );

    // Entitlements.
    let by_user = Entitlement {
        subject: Subject::User(alice.id.clone()),
        resource: desk.id.clone(),
    };
    let by_group = Entitlement {
        subject: Subject::Group(finance.id.clone()),
        resource: compta.id.clone(),
    };
    store.add_entitlement(&by_user).await.unwrap();
    store.add_entitlement(&by_group).await.unwrap();
    store.add_entitlement(&by_group).await.unwrap();
    assert_eq!(
        store.list_entitlements().await.unwrap(),
        vec![by_group.clone(), by_user.clone()]
    );
    assert!(store.delete_entitlement(&by_user).await.unwrap());
    assert!(!store.delete_entitlement(&by_user).await.unwrap());

    // Policies: everything set, and nearly nothing set.
    let mut full = Policy::default();
    full.clipboard_in = Some(true);
    full.clipboard_out = Some(false);
    full.file_transfer = Some(true);
    full.max_bandwidth_kbps = Some(Limit::AtMost(2_000));
    full.idle_timeout_secs = Some(Limit::Unlimited);
    full.disconnected_keep_secs = Some(900);
    full.allowed_hours = Some(AllowedHours::new(vec![
        TimeWindow::new(WeekdaySet::working_days(), 7 * 60, 20 * 60).unwrap(),
        TimeWindow::new(WeekdaySet::all(), 22 * 60, 1_440).unwrap(),
    ]));
    let group_policy = ScopedPolicy {
        scope: PolicyScope::Group(finance.id.clone()),
        policy: full,
    };
    let mut sparse = Policy::default();
    sparse.allowed_hours = Some(AllowedHours::new(vec![]));
    let resource_policy = ScopedPolicy {
        scope: PolicyScope::Resource(compta.id.clone()),
        policy: sparse,
    };
    store.upsert_policy(&group_policy).await.unwrap();
    store.upsert_policy(&resource_policy).await.unwrap();
    assert_eq!(
        store.list_policies().await.unwrap(),
        vec![group_policy.clone(), resource_policy.clone()]
    );
    let mut replaced = resource_policy.clone();
    replaced.policy = Policy::default();
    replaced.policy.idle_timeout_secs = Some(Limit::AtMost(600));
    store.upsert_policy(&replaced).await.unwrap();
    assert_eq!(
        store.get_policy(&replaced.scope).await.unwrap(),
        Some(replaced.clone())
    );
    assert!(store.delete_policy(&replaced.scope).await.unwrap());
    assert_eq!(store.get_policy(&replaced.scope).await.unwrap(), None);

    // Deleting a resource drops its entitlements.
    assert!(store.delete_resource(&compta.id).await.unwrap());
    assert!(store.list_entitlements().await.unwrap().is_empty());
    assert!(store.delete_user(&bob.id).await.unwrap());
    assert_eq!(store.get_user(&bob.id).await.unwrap(), None);
}

async fn world_feeds_decide_launch(store: Store) {
    let mut sick = host("h0", 10);
    sick.health = Health::Unhealthy {
        since: at(100),
        reason: "timeout".into(),
    };
    small_site(&store, &[sick, host("h1", 10), host("h2", 10)]).await;
    store.set_licence_capacity(50).await.unwrap();
    // h1 carries two live sessions and one ended one; h2 one live session.
    store
        .upsert_user(&User::new(UserId::new("u9"), "zoe", "Zoé"))
        .await
        .unwrap();
    for (id, host) in [("s1", "h1"), ("s2", "h1"), ("s3", "h2"), ("s4", "h2")] {
        store
            .record_session_start(&start(id, "u9", "desk", host, 1_000), 50)
            .await
            .unwrap();
    }
    store
        .update_session_state(
            &SessionId::new("s4"),
            SessionState::Ended {
                at: at(1_500),
                reason: EndReason::LoggedOff,
            },
        )
        .await
        .unwrap();

    let world = store
        .load_world(EffectivePolicy::default(), 3_600)
        .await
        .unwrap();
    assert_eq!(world.licences.capacity, 50);
    assert_eq!(world.hosts.len(), 3);
    assert_eq!(world.sessions.len(), 3, "only the live sessions");
    let request = LaunchRequest {
        user: UserId::new("u1"),
        resource: ResourceId::new("desk"),
    };
    match decide_launch(&request, &world, at(2_000)).unwrap() {
        LaunchDecision::Start { host, .. } => assert_eq!(host, HostId::new("h2")),
        other => panic!("expected a start, got {other:?}"),
    }

    // A disconnected session of the user is rejoined.
    let mut mine = start("s5", "u1", "desk", "h1", 2_000);
    store.record_session_start(&mine, 50).await.unwrap();
    mine.activate().unwrap();
    mine.disconnect(at(2_100)).unwrap();
    store
        .update_session_state(mine.id(), mine.state())
        .await
        .unwrap();
    let world = store
        .load_world(EffectivePolicy::default(), 3_600)
        .await
        .unwrap();
    match decide_launch(&request, &world, at(2_200)).unwrap() {
        LaunchDecision::Reconnect { session, host, .. } => {
            assert_eq!((session, host), (SessionId::new("s5"), HostId::new("h1")));
        }
        other => panic!("expected a reconnection, got {other:?}"),
    }
}

async fn session_limits_and_states(store: Store) {
    small_site(&store, &[host("h1", 2), host("h2", 10)]).await;
    // Host h1 takes two, the third is refused because of the host.
    store
        .record_session_start(&start("s1", "u1", "desk", "h1", 10), 3)
        .await
        .unwrap();
    store
        .record_session_start(&start("s2", "u2", "desk", "h1", 11), 3)
        .await
        .unwrap();
    let refused = store
        .record_session_start(&start("s3", "u3", "desk", "h1", 12), 3)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::CapacityExceeded(CapacityLimit::Host { ref host, max_sessions: 2 })) if *host == HostId::new("h1")
        ),
        "{refused:?}"
    );
    // Capacity 3: the third start elsewhere succeeds, the fourth is refused for licences.
    store
        .record_session_start(&start("s3", "u3", "desk", "h2", 12), 3)
        .await
        .unwrap();
    let refused = store
        .record_session_start(&start("s4", "u4", "desk", "h2", 13), 3)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::CapacityExceeded(CapacityLimit::Licences {
                capacity: 3
            }))
        ),
        "{refused:?}"
    );
    assert_eq!(
        store.get_session(&SessionId::new("s4")).await.unwrap(),
        None
    );
    let missing_host = store
        .record_session_start(&start("s9", "u1", "desk", "nowhere", 13), 3)
        .await;
    assert!(matches!(
        missing_host,
        Err(StoreError::NotFound { kind: "host", .. })
    ));

    // Every state round-trips; ending and failing free the licence.
    let states = [
        SessionState::Active,
        SessionState::Disconnected { since: at(20) },
        SessionState::Ended {
            at: at(30),
            reason: EndReason::IdleTimeout,
        },
    ];
    for state in states {
        store
            .update_session_state(&SessionId::new("s1"), state)
            .await
            .unwrap();
        assert_eq!(
            store
                .get_session(&SessionId::new("s1"))
                .await
                .unwrap()
                .unwrap()
                .state(),
            state
        );
    }
    let failed = SessionState::Failed {
        at: at(31),
        reason: FailReason::CertificateRejected,
    };
    store
        .update_session_state(&SessionId::new("s2"), failed)
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_session_state(&SessionId::new("nope"), SessionState::Active)
            .await,
        Err(StoreError::NotFound {
            kind: "session",
            ..
        })
    ));
    let live: Vec<_> = store.live_sessions().await.unwrap();
    assert_eq!(live, vec![start("s3", "u3", "desk", "h2", 12)]);
    store
        .record_session_start(&start("s4", "u1", "desk", "h1", 40), 3)
        .await
        .unwrap();
    let of_u1 = store.sessions_of_user(&UserId::new("u1")).await.unwrap();
    let ids: Vec<_> = of_u1
        .iter()
        .map(|session| session.id().as_str().to_owned())
        .collect();
    assert_eq!(ids, ["s1", "s4"]);
    assert_eq!(of_u1[0].started_at(), at(10));
}

async fn concurrent_starts_never_overspend(store: Store) {
    small_site(&store, &[host("h1", 100)]).await;
    let tasks: Vec<_> = (0..20)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move {
                let record = start(
                    &format!("s{index}"),
                    &format!("u{index}"),
                    "desk",
                    "h1",
                    100 + index,
                );
                store.record_session_start(&record, 10).await
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::CapacityExceeded(CapacityLimit::Licences { capacity: 10 })) => {
                refused += 1
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((ok, refused), (10, 10));
    assert_eq!(store.live_sessions().await.unwrap().len(), 10);
}

async fn audit_log(store: Store) {
    let entry = |seconds, action: &str, address: Option<&str>| AuditEntry {
        at: at(seconds),
        actor: "alice".into(),
        action: action.into(),
        target: "desk".into(),
        address: address.map(str::to_owned),
        outcome: "ok".into(),
    };
    let entries = [
        entry(100, "login", Some("192.0.2.7")),
        entry(200, "launch", None),
        entry(200, "host.drain", Some("2001:db8::1")),
        entry(300, "logout", Some("192.0.2.7")),
    ];
    for line in &entries {
        store.append_audit(line).await.unwrap();
    }
    assert_eq!(
        store.audit_between(at(150), at(300)).await.unwrap(),
        entries[1..3].to_vec()
    );
    assert_eq!(
        store.audit_between(at(0), at(1_000)).await.unwrap(),
        entries.to_vec()
    );
    assert!(
        store
            .audit_between(at(301), at(400))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn licence_samples(store: Store) {
    let samples: Vec<_> = (0..5)
        .map(|index| LicenceSample {
            at: at(60 * index),
            in_use: u32::try_from(index).unwrap() * 2,
            capacity: 25,
        })
        .collect();
    for sample in samples.iter().rev() {
        store.record_licence_sample(*sample).await.unwrap();
    }
    assert_eq!(
        store
            .licence_samples_between(at(60), at(240))
            .await
            .unwrap(),
        samples[1..4].to_vec()
    );
}

const ALICE_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

async fn user_auth_and_memberships(store: Store) {
    for (id, name) in [("finance", "Finance"), ("staff", "Staff"), ("ops", "Ops")] {
        store
            .upsert_group(&Group::new(GroupId::new(id), name))
            .await
            .unwrap();
    }
    let mut alice = User::new(UserId::new("u1"), "alice", "Alice");
    alice.groups = vec![GroupId::new("finance")];
    store.upsert_user(&alice).await.unwrap();
    let nobody = UserId::new("nobody");

    // A new user is local, without password or TOTP.
    assert_eq!(
        store.get_user_auth(&alice.id).await.unwrap(),
        Some(UserAuth {
            source: AuthSource::Local,
            password_hash: None,
            totp_secret: None,
            totp_confirmed: false,
        })
    );
    assert_eq!(
        UserAuth::default(),
        store.get_user_auth(&alice.id).await.unwrap().unwrap()
    );
    assert_eq!(store.get_user_auth(&nobody).await.unwrap(), None);
    let missing = store.set_user_auth(&nobody, &UserAuth::default()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { kind: "user", ref id }) if id == "nobody"),
        "{missing:?}"
    );

    let local = UserAuth {
        source: AuthSource::Local,
        password_hash: Some(ALICE_HASH.into()),
        totp_secret: Some("sealed:v1:Zm9vYmFy".into()),
        totp_confirmed: true,
    };
    store.set_user_auth(&alice.id, &local).await.unwrap();
    assert_eq!(
        store.get_user_auth(&alice.id).await.unwrap(),
        Some(local.clone())
    );
    // Debug never shows the secrets.
    let shown = format!("{local:?}");
    assert!(
        !shown.contains("argon2") && !shown.contains("sealed"),
        "{shown}"
    );
    assert!(
        shown.contains("<redacted>") && shown.contains("totp_confirmed: true"),
        "{shown}"
    );

    // Upserting the user (a rename, new roles) keeps its login material.
    alice.display_name = "Alice Martin".into();
    alice.roles = vec![Role::Admin];
    store.upsert_user(&alice).await.unwrap();
    assert_eq!(
        store.get_user(&alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.get_user_auth(&alice.id).await.unwrap(),
        Some(local.clone())
    );

    let directory = UserAuth {
        source: AuthSource::Directory,
        password_hash: None,
        totp_secret: None,
        totp_confirmed: false,
    };
    store.set_user_auth(&alice.id, &directory).await.unwrap();
    assert_eq!(
        store.get_user_auth(&alice.id).await.unwrap(),
        Some(directory)
    );

    // Memberships are replaced as a whole; duplicates count once.
    let ids = |names: &[&str]| {
        names
            .iter()
            .map(|name| GroupId::new(*name))
            .collect::<Vec<_>>()
    };
    store
        .set_memberships(&alice.id, &ids(&["staff", "ops", "staff"]))
        .await
        .unwrap();
    assert_eq!(
        store.get_user(&alice.id).await.unwrap().unwrap().groups,
        ids(&["ops", "staff"])
    );
    assert!(
        store
            .members_of(&GroupId::new("finance"))
            .await
            .unwrap()
            .is_empty()
    );
    // An unknown group: refused, nothing changes.
    let refused = store
        .set_memberships(&alice.id, &ids(&["finance", "missing"]))
        .await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { kind: "group", ref id }) if id == "missing"),
        "{refused:?}"
    );
    assert_eq!(
        store.get_user(&alice.id).await.unwrap().unwrap().groups,
        ids(&["ops", "staff"])
    );
    let refused = store.set_memberships(&nobody, &ids(&["finance"])).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { kind: "user", .. })),
        "{refused:?}"
    );
    assert!(
        store
            .members_of(&GroupId::new("finance"))
            .await
            .unwrap()
            .is_empty()
    );
    store.set_memberships(&alice.id, &[]).await.unwrap();
    assert!(
        store
            .get_user(&alice.id)
            .await
            .unwrap()
            .unwrap()
            .groups
            .is_empty()
    );
}

async fn host_and_resource_settings(store: Store) {
    let mut h1 = host("h1", 4);
    h1.draining = true;
    small_site(&store, &[h1.clone()]).await;
    let nowhere = HostId::new("nowhere");

    // Hosts: `{}` until set, kept by upserts.
    assert_eq!(
        store.get_host_settings(&h1.id).await.unwrap().as_deref(),
        Some("{}")
    );
    assert_eq!(store.get_host_settings(&nowhere).await.unwrap(), None);
    let settings = r#"{"security":"nla","certificate_sha256":"ab:cd","domain":"CORP"}"#;
    store.set_host_settings(&h1.id, settings).await.unwrap();
    assert_eq!(
        store.get_host_settings(&h1.id).await.unwrap().as_deref(),
        Some(settings)
    );
    h1.name = "Renamed".into();
    h1.weight = 7;
    store.upsert_host(&h1).await.unwrap();
    assert_eq!(store.get_host(&h1.id).await.unwrap(), Some(h1.clone()));
    assert_eq!(
        store.get_host_settings(&h1.id).await.unwrap().as_deref(),
        Some(settings)
    );
    let missing = store.set_host_settings(&nowhere, "{}").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { kind: "host", ref id }) if id == "nowhere"),
        "{missing:?}"
    );

    // Health alone changes; the rest of the host and its settings stay.
    let sick = Health::Unhealthy {
        since: at(1_700_000_123),
        reason: "TLS handshake failed".into(),
    };
    store.set_host_health(&h1.id, &sick).await.unwrap();
    h1.health = sick;
    assert_eq!(store.get_host(&h1.id).await.unwrap(), Some(h1.clone()));
    let row = &store.export().await.unwrap().hosts[0];
    assert_eq!(
        (
            row.health.as_str(),
            row.health_since,
            row.health_reason.as_deref()
        ),
        (
            "unhealthy",
            Some(1_700_000_123),
            Some("TLS handshake failed")
        )
    );
    store
        .set_host_health(&h1.id, &Health::Healthy)
        .await
        .unwrap();
    h1.health = Health::Healthy;
    assert_eq!(store.get_host(&h1.id).await.unwrap(), Some(h1.clone()));
    let row = &store.export().await.unwrap().hosts[0];
    assert_eq!(
        (
            row.health.as_str(),
            row.health_since,
            row.health_reason.as_deref(),
            row.settings.as_str()
        ),
        ("healthy", None, None, settings)
    );
    assert!(matches!(
        store.set_host_health(&nowhere, &Health::Unknown).await,
        Err(StoreError::NotFound { kind: "host", .. })
    ));

    // Resources: the same.
    let desk = ResourceId::new("desk");
    assert_eq!(
        store.get_resource_settings(&desk).await.unwrap().as_deref(),
        Some("{}")
    );
    assert_eq!(
        store
            .get_resource_settings(&ResourceId::new("none"))
            .await
            .unwrap(),
        None
    );
    let settings = r#"{"keyboard_layout":"fr-FR","résolution":[1920,1080]}"#;
    store.set_resource_settings(&desk, settings).await.unwrap();
    let renamed = Resource::new(
        desk.clone(),
        ResourceKind::Application {
            program: "notepad.exe".into(),
        },
        "Bloc-notes",
        "Notepad",
        PoolId::new("p"),
    );
    store.upsert_resource(&renamed).await.unwrap();
    assert_eq!(store.get_resource(&desk).await.unwrap(), Some(renamed));
    assert_eq!(
        store.get_resource_settings(&desk).await.unwrap().as_deref(),
        Some(settings)
    );
    let missing = store
        .set_resource_settings(&ResourceId::new("none"), "{}")
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { kind: "resource", ref id }) if id == "none"),
        "{missing:?}"
    );
}

async fn generic_settings(store: Store) {
    assert_eq!(store.get_setting("portal.title").await.unwrap(), None);
    store.set_setting("portal.title", "Bascule").await.unwrap();
    store.set_setting("portal.motd", "").await.unwrap();
    assert_eq!(
        store.get_setting("portal.title").await.unwrap().as_deref(),
        Some("Bascule")
    );
    store
        .set_setting("portal.title", "Bureau à distance ✓")
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("portal.title").await.unwrap().as_deref(),
        Some("Bureau à distance ✓")
    );
    assert_eq!(
        store.get_setting("portal.motd").await.unwrap().as_deref(),
        Some("")
    );
    // The licence capacity is a setting like the others.
    store.set_licence_capacity(12).await.unwrap();
    assert_eq!(
        store
            .get_setting("licence_capacity")
            .await
            .unwrap()
            .as_deref(),
        Some("12")
    );
    store.set_setting("licence_capacity", "30").await.unwrap();
    assert_eq!(store.licence_capacity().await.unwrap(), 30);
}

async fn session_history(store: Store) {
    small_site(&store, &[host("h1", 10), host("h2", 10), host("h3", 10)]).await;
    for (id, host, started) in [
        ("s1", "h1", 10),
        ("s2", "h2", 20),
        ("s3", "h1", 30),
        ("s4", "h2", 30),
        ("s5", "h1", 40),
        ("s6", "h3", 50),
    ] {
        store
            .record_session_start(&start(id, "u1", "desk", host, started), 100)
            .await
            .unwrap();
    }
    store
        .update_session_state(
            &SessionId::new("s4"),
            SessionState::Ended {
                at: at(35),
                reason: EndReason::LoggedOff,
            },
        )
        .await
        .unwrap();
    store
        .update_session_state(
            &SessionId::new("s6"),
            SessionState::Failed {
                at: at(51),
                reason: FailReason::HostUnreachable,
            },
        )
        .await
        .unwrap();
    store
        .update_session_state(
            &SessionId::new("s5"),
            SessionState::Disconnected { since: at(45) },
        )
        .await
        .unwrap();

    // [20, 40), newest first, ended ones included, ties by id descending.
    let between = store.sessions_between(at(20), at(40)).await.unwrap();
    let ids: Vec<_> = between
        .iter()
        .map(|session| session.id().as_str())
        .collect();
    assert_eq!(ids, ["s4", "s3", "s2"]);
    assert_eq!(
        between[0].state(),
        SessionState::Ended {
            at: at(35),
            reason: EndReason::LoggedOff
        }
    );
    assert_eq!(between[1], start("s3", "u1", "desk", "h1", 30));
    assert!(
        store
            .sessions_between(at(51), at(100))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.sessions_between(at(0), at(100)).await.unwrap().len(),
        6
    );

    // Live sessions per host: h1 has s1, s3 and s5 (disconnected); h2 has s2; h3 none.
    assert_eq!(
        store.session_count_by_host().await.unwrap(),
        vec![(HostId::new("h1"), 3), (HostId::new("h2"), 1)]
    );
}

/// Every kind of row, through the public API: two users with login material, three groups,
/// hosts in every health, two pools, two resources with settings, entitlements, policies,
/// sessions in every state, licence samples, audit lines and settings.
async fn fill(store: &Store) {
    let mut sick = host("h2", 5);
    sick.protocol = Protocol::Vnc;
    sick.port = 5901;
    sick.health = Health::Unhealthy {
        since: at(1_700_000_000),
        reason: "connection refused".into(),
    };
    let mut h1 = host("h1", 10);
    h1.health = Health::Healthy;
    h1.draining = true;
    h1.weight = 3;
    small_site(store, &[host("h0", 10), h1, sick]).await;
    store
        .upsert_pool(&Pool::new(
            PoolId::new("empty"),
            "Vide",
            vec![],
            Balancing::Weighted,
        ))
        .await
        .unwrap();
    store
        .set_host_settings(&HostId::new("h1"), r#"{"security":"nla"}"#)
        .await
        .unwrap();
    store
        .upsert_resource(&Resource::new(
            ResourceId::new("compta"),
            ResourceKind::Application {
                program: r"C:\Compta\compta.exe".into(),
            },
            "Comptabilité",
            "Accounting",
            PoolId::new("p"),
        ))
        .await
        .unwrap();
    store
        .set_resource_settings(&ResourceId::new("desk"), r#"{"keyboard_layout":"fr-FR"}"#)
        .await
        .unwrap();

    for (id, name) in [
        ("finance", "Finance"),
        ("staff", "Personnel"),
        ("x", "Sans membres"),
    ] {
        store
            .upsert_group(&Group::new(GroupId::new(id), name))
            .await
            .unwrap();
    }
    let mut zoe = User::new(UserId::new("u2"), "zoe", "Zoé \"Z\" Dupont");
    zoe.enabled = false;
    zoe.roles = vec![Role::User, Role::Admin];
    store.upsert_user(&zoe).await.unwrap();
    store
        .set_memberships(
            &UserId::new("u1"),
            &[GroupId::new("finance"), GroupId::new("staff")],
        )
        .await
        .unwrap();
    store
        .add_membership(&UserId::new("u2"), &GroupId::new("staff"))
        .await
        .unwrap();
    store
        .set_user_auth(
            &UserId::new("u1"),
            &UserAuth {
                source: AuthSource::Local,
                password_hash: Some(ALICE_HASH.into()),
                totp_secret: Some("sealed:v1:c2VjcmV0".into()),
                totp_confirmed: true,
            },
        )
        .await
        .unwrap();
    store
        .set_user_auth(
            &UserId::new("u2"),
            &UserAuth {
                source: AuthSource::Directory,
                password_hash: None,
                totp_secret: None,
                totp_confirmed: false,
            },
        )
        .await
        .unwrap();
    store
        .add_entitlement(&Entitlement {
            subject: Subject::Group(GroupId::new("finance")),
            resource: ResourceId::new("compta"),
        })
        .await
        .unwrap();

    let mut full = Policy::default();
    full.clipboard_in = Some(true);
    full.clipboard_out = Some(false);
    full.file_transfer = Some(true);
    full.max_bandwidth_kbps = Some(Limit::AtMost(2_000));
    full.idle_timeout_secs = Some(Limit::Unlimited);
    full.disconnected_keep_secs = Some(900);
    full.allowed_hours = Some(AllowedHours::new(vec![
        TimeWindow::new(WeekdaySet::working_days(), 7 * 60, 20 * 60).unwrap(),
    ]));
    store
        .upsert_policy(&ScopedPolicy {
            scope: PolicyScope::Group(GroupId::new("finance")),
            policy: full,
        })
        .await
        .unwrap();
    let mut sparse = Policy::default();
    sparse.allowed_hours = Some(AllowedHours::new(vec![]));
    store
        .upsert_policy(&ScopedPolicy {
            scope: PolicyScope::Resource(ResourceId::new("compta")),
            policy: sparse,
        })
        .await
        .unwrap();

    store.set_licence_capacity(50).await.unwrap();
    for (id, host, started) in [
        ("s1", "h1", 1_000),
        ("s2", "h1", 1_100),
        ("s3", "h0", 1_200),
        ("s4", "h0", 1_300),
        ("s5", "h1", 1_400),
    ] {
        store
            .record_session_start(&start(id, "u1", "desk", host, started), 50)
            .await
            .unwrap();
    }
    let states = [
        ("s1", SessionState::Active),
        ("s2", SessionState::Disconnected { since: at(1_150) }),
        (
            "s3",
            SessionState::Ended {
                at: at(1_250),
                reason: EndReason::EndedByStaff,
            },
        ),
        (
            "s4",
            SessionState::Failed {
                at: at(1_301),
                reason: FailReason::AuthenticationFailed,
            },
        ),
    ];
    for (id, state) in states {
        store
            .update_session_state(&SessionId::new(id), state)
            .await
            .unwrap();
    }
    for (minute, in_use) in [(0, 0), (1, 2), (2, 2)] {
        store
            .record_licence_sample(LicenceSample {
                at: at(1_000 + 60 * minute),
                in_use,
                capacity: 50,
            })
            .await
            .unwrap();
    }
    // Appended out of time order: the log keeps the order of appending.
    for (seconds, action, address) in [
        (1_200, "login", Some("192.0.2.7")),
        (1_100, "launch", None),
        (1_300, "host.drain", Some("2001:db8::1")),
    ] {
        store
            .append_audit(&AuditEntry {
                at: at(seconds),
                actor: "alice".into(),
                action: action.into(),
                target: "desk".into(),
                address: address.map(str::to_owned),
                outcome: "ok".into(),
            })
            .await
            .unwrap();
    }
    store
        .set_setting("portal.title", "Bureau à distance")
        .await
        .unwrap();
    store
        .upsert_site(&Site {
            id: "meaux".into(),
            name: "MDS Meaux".into(),
            ranges: vec!["10.20.0.0/16".into(), "2001:db8:20::/48".into()],
        })
        .await
        .unwrap();
    // Recorded out of time order: the backup keeps the order of recording.
    for (seconds, category) in [(1_500, "printer"), (1_400, "password")] {
        store
            .add_incident(&NewIncident {
                at: at(seconds),
                author: "helpdesk1".into(),
                user: Some(UserId::new("u1")),
                session: None,
                category: category.into(),
                text: "« Ça ne marche pas »".into(),
            })
            .await
            .unwrap();
    }
    store
        .upsert_session_stats(&SessionStats {
            session: SessionId::new("s1"),
            client_address: Some("10.20.3.4".into()),
            bytes_to_client: 5_000_000_000,
            bytes_from_client: 20_000,
            frames: 300,
            rtt_buckets: vec![0, 3, 1],
            updated_at: at(1_600),
        })
        .await
        .unwrap();
    store
        .save_daily_report("1970-01-01", at(86_400), r#"{"day":"1970-01-01"}"#)
        .await
        .unwrap();
}

/// Everything a backup holds, read back through the domain API (to compare two stores).
async fn domain_view(store: &Store) -> impl PartialEq + std::fmt::Debug {
    let mut auth = Vec::new();
    for user in store.list_users().await.unwrap() {
        auth.push(format!(
            "{:?}",
            store.get_user_auth(&user.id).await.unwrap().map(|auth| (
                auth.source,
                auth.password_hash,
                auth.totp_secret,
                auth.totp_confirmed
            ))
        ));
    }
    let mut settings = Vec::new();
    for host in store.list_hosts().await.unwrap() {
        settings.push(store.get_host_settings(&host.id).await.unwrap());
    }
    for resource in store.list_resources().await.unwrap() {
        settings.push(store.get_resource_settings(&resource.id).await.unwrap());
    }
    (
        (
            store.list_users().await.unwrap(),
            store.list_groups().await.unwrap(),
            store.list_hosts().await.unwrap(),
            store.list_pools().await.unwrap(),
            store.list_resources().await.unwrap(),
            store.list_entitlements().await.unwrap(),
            store.list_policies().await.unwrap(),
        ),
        (
            store.sessions_between(at(0), at(i64::MAX)).await.unwrap(),
            store
                .licence_samples_between(at(0), at(i64::MAX))
                .await
                .unwrap(),
            store.audit_between(at(0), at(i64::MAX)).await.unwrap(),
            store.licence_capacity().await.unwrap(),
            store.get_setting("portal.title").await.unwrap(),
            auth,
            settings,
        ),
        (
            store.list_sites().await.unwrap(),
            store.incidents_between(at(0), at(i64::MAX)).await.unwrap(),
            store
                .session_stats_of(&[SessionId::new("s1"), SessionId::new("s2")])
                .await
                .unwrap(),
            store.daily_reports_between("0000", "9999").await.unwrap(),
        ),
    )
}

/// A filled SQLite store is exported, written to JSON, read back and imported into `store`
/// (SQLite, or PostgreSQL: the migration path); `store` exported again equals the first export,
/// and imports into a new SQLite store equally (PostgreSQL to SQLite).
async fn backup_round_trip(store: Store) {
    let (source, source_path) = sqlite_store().await;
    fill(&source).await;
    let backup = source.export().await.unwrap();

    // The backup holds every table, values as stored.
    assert_eq!(
        (backup.format.as_str(), backup.version, backup.schema),
        ("bascule-backup", 1, 4)
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(backup.created_at.abs_diff(i64::try_from(now).unwrap()) < 60);
    let counts = [
        backup.users.len(),
        backup.groups.len(),
        backup.memberships.len(),
        backup.hosts.len(),
        backup.pools.len(),
        backup.pool_hosts.len(),
        backup.resources.len(),
        backup.entitlements.len(),
        backup.policies.len(),
        backup.sessions.len(),
        backup.licence_usage.len(),
        backup.audit.len(),
        backup.settings.len(),
    ];
    assert_eq!(counts, [2, 3, 3, 3, 2, 3, 2, 2, 2, 5, 3, 3, 2]);
    assert_eq!(
        backup.sites,
        [SiteRow {
            id: "meaux".into(),
            name: "MDS Meaux".into(),
            ranges: "10.20.0.0/16,2001:db8:20::/48".into(),
        }]
    );
    let categories: Vec<_> = backup
        .incidents
        .iter()
        .map(|row| (row.at, row.category.as_str()))
        .collect();
    assert_eq!(categories, [(1_500, "printer"), (1_400, "password")]);
    assert_eq!(
        backup.incidents[1],
        IncidentRow {
            at: 1_400,
            author: "helpdesk1".into(),
            user_id: Some("u1".into()),
            session_id: None,
            category: "password".into(),
            text: "« Ça ne marche pas »".into(),
        }
    );
    assert_eq!(
        backup.session_stats,
        [SessionStatsRow {
            session_id: "s1".into(),
            client_address: Some("10.20.3.4".into()),
            bytes_to_client: 5_000_000_000,
            bytes_from_client: 20_000,
            frames: 300,
            rtt_buckets: "[0,3,1]".into(),
            updated_at: 1_600,
        }]
    );
    assert_eq!(
        backup.daily_reports,
        [DailyReportRow {
            day: "1970-01-01".into(),
            computed_at: 86_400,
            body: r#"{"day":"1970-01-01"}"#.into(),
        }]
    );
    assert_eq!(
        backup.users[0],
        UserRow {
            id: "u1".into(),
            login: "alice".into(),
            display_name: "Alice".into(),
            enabled: 1,
            roles: "user".into(),
            source: "local".into(),
            password_hash: Some(ALICE_HASH.into()),
            totp_secret: Some("sealed:v1:c2VjcmV0".into()),
            totp_confirmed: 1,
        }
    );
    assert_eq!(
        (
            backup.users[1].source.as_str(),
            backup.users[1].enabled,
            backup.users[1].roles.as_str()
        ),
        ("directory", 0, "user,admin")
    );
    assert_eq!(
        backup.hosts[2],
        HostRow {
            id: "h2".into(),
            name: "H2".into(),
            protocol: "vnc".into(),
            address: "h2.lan".into(),
            port: 5901,
            max_sessions: 5,
            draining: 0,
            weight: 1,
            health: "unhealthy".into(),
            health_since: Some(1_700_000_000),
            health_reason: Some("connection refused".into()),
            settings: "{}".into(),
        }
    );
    assert_eq!(backup.hosts[1].settings, r#"{"security":"nla"}"#);
    let positions: Vec<_> = backup
        .pool_hosts
        .iter()
        .map(|row| (row.pool_id.as_str(), row.host_id.as_str(), row.position))
        .collect();
    assert_eq!(positions, [("p", "h0", 0), ("p", "h1", 1), ("p", "h2", 2)]);
    assert_eq!(
        (
            backup.resources[1].id.as_str(),
            backup.resources[1].settings.as_str()
        ),
        ("desk", r#"{"keyboard_layout":"fr-FR"}"#)
    );
    assert_eq!(
        (
            backup.policies[0].max_bandwidth_kbps,
            backup.policies[0].idle_timeout_secs
        ),
        (Some(2_000), Some(-1))
    );
    assert_eq!(
        (
            backup.sessions[3].state.as_str(),
            backup.sessions[3].state_at,
            backup.sessions[3].state_reason.as_deref()
        ),
        ("failed", Some(1_301), Some("authentication_failed"))
    );
    assert_eq!(
        backup.audit[0],
        AuditRow {
            at: 1_200,
            actor: "alice".into(),
            action: "login".into(),
            target: "desk".into(),
            address: Some("192.0.2.7".into()),
            outcome: "ok".into(),
        }
    );
    assert_eq!(backup.audit[1].address, None);
    assert_eq!(
        backup.settings,
        [
            SettingRow {
                key: "licence_capacity".into(),
                value: "50".into()
            },
            SettingRow {
                key: "portal.title".into(),
                value: "Bureau à distance".into()
            },
        ]
    );

    // A backup written before migration 0003 (no such tables) reads as having none of them.
    let mut older: serde_json::Value = serde_json::from_str(&backup.to_json().unwrap()).unwrap();
    for table in ["sites", "incidents", "session_stats", "daily_reports"] {
        older.as_object_mut().unwrap().remove(table).unwrap();
    }
    older["schema"] = 2.into();
    let older = Backup::from_json(&older.to_string()).unwrap();
    assert_eq!((older.schema, older.users.len()), (2, 2));
    assert!(older.sites.is_empty() && older.incidents.is_empty());
    assert!(older.session_stats.is_empty() && older.daily_reports.is_empty());

    // Through JSON.
    let json = backup.to_json().unwrap();
    assert!(
        json.contains(r#""format": "bascule-backup""#),
        "{json:.200}"
    );
    let read = Backup::from_json(&json).unwrap();
    assert_eq!(read, backup);
    assert_eq!(
        serde_json::from_str::<Backup>(&serde_json::to_string(&backup).unwrap()).unwrap(),
        backup
    );

    // Into the store under test.
    store.import(&read).await.unwrap();
    let mut again = store.export().await.unwrap();
    again.created_at = backup.created_at;
    assert_eq!(again, backup);
    assert_eq!(domain_view(&store).await, domain_view(&source).await);
    // The imported audit log goes on numbering after the imported lines.
    let later = AuditEntry {
        at: at(1),
        actor: "system".into(),
        action: "import".into(),
        target: String::new(),
        address: None,
        outcome: "ok".into(),
    };
    store.append_audit(&later).await.unwrap();
    assert_eq!(
        store.export().await.unwrap().audit.last().unwrap().action,
        "import"
    );
    // The imported sessions count against the limits.
    let refused = store
        .record_session_start(&start("s9", "u1", "desk", "h1", 2_000), 3)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::CapacityExceeded(CapacityLimit::Licences {
                capacity: 3
            }))
        ),
        "{refused:?}"
    );

    // And out again, into a new SQLite store.
    let (third, third_path) = sqlite_store().await;
    third.import(&again).await.unwrap();
    let mut third_export = third.export().await.unwrap();
    third_export.created_at = backup.created_at;
    assert_eq!(third_export, backup);
    third.close().await;
    source.close().await;
    remove_sqlite(&third_path);
    remove_sqlite(&source_path);
}

async fn import_refusals_and_atomicity(store: Store) {
    let (source, source_path) = sqlite_store().await;
    fill(&source).await;
    let backup = source.export().await.unwrap();
    source.close().await;
    remove_sqlite(&source_path);
    let empty = store.export().await.unwrap();
    let assert_unchanged = |label: &'static str, expected: Backup| {
        let store = store.clone();
        async move {
            let mut now = store.export().await.unwrap();
            now.created_at = expected.created_at;
            assert_eq!(now, expected, "{label}");
        }
    };

    // Unknown format, version or schema: refused with a message naming them, nothing written.
    let mut newer = backup.clone();
    newer.version = 2;
    let refused = store.import(&newer).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::UnsupportedBackup(_)),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "unsupported backup: version 2 (this version of Bascule reads bascule-backup version 1)"
    );
    let mut other = backup.clone();
    other.format = "guacamole-dump".into();
    let refused = store.import(&other).await.unwrap_err();
    assert!(
        refused.to_string().contains("\"guacamole-dump\""),
        "{refused}"
    );
    let mut future = backup.clone();
    future.schema = 99;
    let refused = store.import(&future).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::UnsupportedBackup(ref text) if text.contains("schema 99")),
        "{refused:?}"
    );
    assert_unchanged("after refused versions", empty.clone()).await;
    // From JSON, a newer version is refused before its (unknown) layout is read.
    let refused =
        Backup::from_json(r#"{"format":"bascule-backup","version":7,"tables":{}}"#).unwrap_err();
    assert!(
        matches!(refused, StoreError::UnsupportedBackup(ref text) if text.starts_with("version 7")),
        "{refused:?}"
    );
    let refused = Backup::from_json(r#"{"format":"bascule-backup","version":1}"#).unwrap_err();
    assert!(
        matches!(refused, StoreError::InvalidBackup(_)),
        "{refused:?}"
    );
    assert!(matches!(
        Backup::from_json("not json"),
        Err(StoreError::InvalidBackup(_))
    ));

    // A backup failing late (a duplicate session id, inserted after the whole inventory):
    // the transaction leaves nothing behind.
    let mut broken = backup.clone();
    broken.sessions.push(broken.sessions[0].clone());
    let failed = store.import(&broken).await.unwrap_err();
    assert!(matches!(failed, StoreError::Database(_)), "{failed:?}");
    assert_unchanged("after a failed import", empty.clone()).await;
    // A dangling foreign key fails the same way.
    let mut dangling = backup.clone();
    dangling.memberships[0].group_id = "missing".into();
    assert!(matches!(
        store.import(&dangling).await,
        Err(StoreError::Database(_))
    ));
    assert_unchanged("after a dangling membership", empty.clone()).await;

    // Audit lines, licence samples and settings already there do not block an import: they
    // stay, and the backup's settings win.
    let earlier = AuditEntry {
        at: at(5_000),
        actor: "system".into(),
        action: "start".into(),
        target: String::new(),
        address: None,
        outcome: "ok".into(),
    };
    store.append_audit(&earlier).await.unwrap();
    store.set_licence_capacity(7).await.unwrap();
    store.set_setting("local.only", "kept").await.unwrap();
    store.import(&backup).await.unwrap();
    let audit = store.audit_between(at(0), at(i64::MAX)).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(actions, ["launch", "login", "host.drain", "start"]);
    assert_eq!(store.export().await.unwrap().audit[0].action, "start");
    assert_eq!(store.licence_capacity().await.unwrap(), 50);
    assert_eq!(
        store.get_setting("local.only").await.unwrap().as_deref(),
        Some("kept")
    );
    assert_eq!(store.list_users().await.unwrap().len(), 2);

    // A database with data: refused, naming the table, and nothing changes.
    let before = store.export().await.unwrap();
    let refused = store.import(&backup).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::NotEmpty { table: "users" }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("not empty"), "{refused}");
    assert_unchanged("after a refused import", before).await;

    // Any one inventory table is enough to refuse.
    let (other, other_path) = sqlite_store().await;
    other.upsert_host(&host("h7", 1)).await.unwrap();
    assert!(matches!(
        other.import(&backup).await,
        Err(StoreError::NotEmpty { table: "hosts" })
    ));
    assert_eq!(other.list_hosts().await.unwrap(), vec![host("h7", 1)]);
    assert!(other.list_users().await.unwrap().is_empty());
    other.close().await;
    remove_sqlite(&other_path);
    // So is a site, or a session's statistics; daily reports are not: the backup's replace
    // those of the same day.
    let (other, other_path) = sqlite_store().await;
    other
        .upsert_site(&Site {
            id: "hq".into(),
            name: "HQ".into(),
            ranges: vec!["10.0.0.0/8".into()],
        })
        .await
        .unwrap();
    assert!(matches!(
        other.import(&backup).await,
        Err(StoreError::NotEmpty { table: "sites" })
    ));
    assert!(other.delete_site("hq").await.unwrap());
    other
        .upsert_session_stats(&stats("s1", 1, 1))
        .await
        .unwrap();
    assert!(matches!(
        other.import(&backup).await,
        Err(StoreError::NotEmpty {
            table: "session_stats"
        })
    ));
    other.close().await;
    remove_sqlite(&other_path);
    let (other, other_path) = sqlite_store().await;
    other
        .save_daily_report("1970-01-01", at(5), "{}")
        .await
        .unwrap();
    other
        .save_daily_report("1970-01-02", at(6), "{}")
        .await
        .unwrap();
    other.import(&backup).await.unwrap();
    let reports = other
        .daily_reports_between("1970-01-01", "1970-01-02")
        .await
        .unwrap();
    assert_eq!(
        reports
            .iter()
            .map(|report| (
                report.day.as_str(),
                report.computed_at,
                report.body.as_str()
            ))
            .collect::<Vec<_>>(),
        [
            ("1970-01-01", at(86_400), r#"{"day":"1970-01-01"}"#),
            ("1970-01-02", at(6), "{}")
        ]
    );
    other.close().await;
    remove_sqlite(&other_path);
}

fn incident(seconds: i64, user: Option<&str>, category: &str) -> NewIncident {
    NewIncident {
        at: at(seconds),
        author: "hotline".into(),
        user: user.map(UserId::new),
        session: None,
        category: category.into(),
        text: format!("{category} at {seconds}"),
    }
}

async fn incidents(store: Store) {
    let first = store
        .add_incident(&incident(100, Some("u1"), "password"))
        .await
        .unwrap();
    let mut with_session = incident(50, Some("u2"), "network");
    with_session.session = Some(SessionId::new("s9"));
    let second = store.add_incident(&with_session).await.unwrap();
    let third = store
        .add_incident(&incident(200, None, "printer"))
        .await
        .unwrap();
    let fourth = store
        .add_incident(&incident(100, Some("u1"), "network"))
        .await
        .unwrap();
    assert!(
        first < second && second < third && third < fourth,
        "{first} {second} {third} {fourth}"
    );

    // [50, 200): by time then number.
    let between = store.incidents_between(at(50), at(200)).await.unwrap();
    let seen: Vec<_> = between
        .iter()
        .map(|incident| {
            (
                incident.id,
                incident.at.unix_seconds(),
                incident.category.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (second, 50, "network"),
            (first, 100, "password"),
            (fourth, 100, "network")
        ]
    );
    assert_eq!(
        between[0],
        Incident {
            id: second,
            at: at(50),
            author: "hotline".into(),
            user: Some(UserId::new("u2")),
            session: Some(SessionId::new("s9")),
            category: "network".into(),
            text: "network at 50".into(),
        }
    );
    assert_eq!(store.incidents_between(at(201), at(300)).await.unwrap(), []);

    // Of one user: newest first, at most `limit`.
    let of_u1 = store
        .incidents_of_user(&UserId::new("u1"), 10)
        .await
        .unwrap();
    let ids: Vec<_> = of_u1.iter().map(|incident| incident.id).collect();
    assert_eq!(ids, [fourth, first]);
    let last = store
        .incidents_of_user(&UserId::new("u1"), 1)
        .await
        .unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].id, fourth);
    assert!(
        store
            .incidents_of_user(&UserId::new("nobody"), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn sites(store: Store) {
    let meaux = Site {
        id: "meaux".into(),
        name: "MDS Meaux".into(),
        ranges: vec![
            "10.20.0.0/16".into(),
            "10.21.0.0/16".into(),
            "2001:db8::/32".into(),
        ],
    };
    let hq = Site {
        id: "hq".into(),
        name: "Siège".into(),
        ranges: vec!["192.0.2.0/24".into()],
    };
    store.upsert_site(&meaux).await.unwrap();
    store.upsert_site(&hq).await.unwrap();
    assert_eq!(
        store.list_sites().await.unwrap(),
        vec![hq.clone(), meaux.clone()]
    );
    assert_eq!(store.get_site("meaux").await.unwrap(), Some(meaux.clone()));
    assert_eq!(store.get_site("nope").await.unwrap(), None);

    // Replaced whole; the store does not judge the ranges.
    let renamed = Site {
        id: "meaux".into(),
        name: "Meaux".into(),
        ranges: vec!["not a cidr".into()],
    };
    store.upsert_site(&renamed).await.unwrap();
    assert_eq!(store.get_site("meaux").await.unwrap(), Some(renamed));
    // No ranges at all reads back as none.
    let empty = Site {
        id: "empty".into(),
        name: "Vide".into(),
        ranges: vec![],
    };
    store.upsert_site(&empty).await.unwrap();
    assert_eq!(store.get_site("empty").await.unwrap(), Some(empty));
    // A comma would split a range: refused.
    let comma = Site {
        id: "bad".into(),
        name: "Bad".into(),
        ranges: vec!["10.0.0.0/8,10.1.0.0/16".into()],
    };
    assert!(matches!(
        store.upsert_site(&comma).await,
        Err(StoreError::Unsupported(_))
    ));

    assert!(store.delete_site("meaux").await.unwrap());
    assert!(!store.delete_site("meaux").await.unwrap());
    let ids: Vec<_> = store
        .list_sites()
        .await
        .unwrap()
        .into_iter()
        .map(|site| site.id)
        .collect();
    assert_eq!(ids, ["empty", "hq"]);
}

fn stats(session: &str, bytes: u64, updated: i64) -> SessionStats {
    SessionStats {
        session: SessionId::new(session),
        client_address: Some("10.20.1.2".into()),
        bytes_to_client: bytes,
        bytes_from_client: bytes / 10,
        frames: 7,
        rtt_buckets: vec![1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4],
        updated_at: at(updated),
    }
}

async fn session_stats(store: Store) {
    small_site(&store, &[host("h1", 10)]).await;
    for (id, started) in [("s1", 100), ("s2", 200), ("s3", 5_000)] {
        store
            .record_session_start(&start(id, "u1", "desk", "h1", started), 100)
            .await
            .unwrap();
    }
    store
        .update_session_state(
            &SessionId::new("s1"),
            SessionState::Ended {
                at: at(900),
                reason: EndReason::LoggedOff,
            },
        )
        .await
        .unwrap();

    // Large counters (beyond u32) round-trip.
    let big = stats("s1", 6_000_000_000, 900);
    store.upsert_session_stats(&big).await.unwrap();
    assert_eq!(
        store
            .get_session_stats(&SessionId::new("s1"))
            .await
            .unwrap(),
        Some(big.clone())
    );
    // A later write replaces the earlier one.
    let mut s2 = stats("s2", 10, 250);
    store.upsert_session_stats(&s2).await.unwrap();
    s2.bytes_to_client = 20;
    s2.client_address = None;
    s2.rtt_buckets = vec![];
    s2.updated_at = at(300);
    store.upsert_session_stats(&s2).await.unwrap();
    assert_eq!(
        store
            .get_session_stats(&SessionId::new("s2"))
            .await
            .unwrap(),
        Some(s2.clone())
    );
    let s3 = stats("s3", 5, 5_100);
    store.upsert_session_stats(&s3).await.unwrap();
    // Statistics of a session the store does not know are kept too (written beside the record).
    let orphan = stats("zz", 1, 1);
    store.upsert_session_stats(&orphan).await.unwrap();
    assert_eq!(
        store
            .get_session_stats(&SessionId::new("none"))
            .await
            .unwrap(),
        None
    );

    // By ids (unknown ids are skipped), by session id.
    let of = store
        .session_stats_of(&[
            SessionId::new("s3"),
            SessionId::new("x"),
            SessionId::new("s1"),
        ])
        .await
        .unwrap();
    assert_eq!(of, vec![big.clone(), s3.clone()]);
    assert_eq!(store.session_stats_of(&[]).await.unwrap(), []);
    // More ids than one query takes.
    let many: Vec<_> = (0..1_203)
        .map(|n| SessionId::new(format!("m{n}")))
        .collect();
    assert_eq!(store.session_stats_of(&many).await.unwrap(), []);

    // Through the sessions that overlap [1_000, 6_000): s1 ended at 900, s2 and s3 are live.
    let between = store
        .session_stats_between(at(1_000), at(6_000))
        .await
        .unwrap();
    assert_eq!(between, vec![s2.clone(), s3.clone()]);
    // [0, 1_000): s1 and s2 (s3 starts later).
    let between = store.session_stats_between(at(0), at(1_000)).await.unwrap();
    assert_eq!(between, vec![big, s2]);

    // Negative or oversized values are refused.
    let huge = stats("s9", u64::MAX, 1);
    assert!(matches!(
        store.upsert_session_stats(&huge).await,
        Err(StoreError::Unsupported(_))
    ));
}

async fn sessions_overlapping(store: Store) {
    small_site(&store, &[host("h1", 10)]).await;
    // Day = [1_000, 2_000).
    let cases: [(&str, i64, Option<SessionState>); 8] = [
        // Ended before the day.
        (
            "before",
            100,
            Some(SessionState::Ended {
                at: at(999),
                reason: EndReason::LoggedOff,
            }),
        ),
        // Ended exactly at its start: included (state_at >= from).
        (
            "edge",
            500,
            Some(SessionState::Ended {
                at: at(1_000),
                reason: EndReason::LoggedOff,
            }),
        ),
        // Spans midnight into the day.
        (
            "overnight",
            900,
            Some(SessionState::Ended {
                at: at(1_100),
                reason: EndReason::IdleTimeout,
            }),
        ),
        // Inside, failed.
        (
            "failed",
            1_200,
            Some(SessionState::Failed {
                at: at(1_201),
                reason: FailReason::TimedOut,
            }),
        ),
        // Started before, still live (disconnected since before the day).
        (
            "old-live",
            10,
            Some(SessionState::Disconnected { since: at(20) }),
        ),
        // Inside, live.
        ("live", 1_500, None),
        // Starts exactly at the day's end: excluded.
        ("after", 2_000, None),
        // Spans the whole day, ended later.
        (
            "long",
            950,
            Some(SessionState::Ended {
                at: at(2_500),
                reason: EndReason::HostLost,
            }),
        ),
    ];
    for (id, started, state) in cases {
        store
            .record_session_start(&start(id, "u1", "desk", "h1", started), 100)
            .await
            .unwrap();
        if let Some(state) = state {
            store
                .update_session_state(&SessionId::new(id), state)
                .await
                .unwrap();
        }
    }
    let overlapping = store
        .sessions_overlapping(at(1_000), at(2_000))
        .await
        .unwrap();
    let ids: Vec<_> = overlapping
        .iter()
        .map(|session| session.id().as_str())
        .collect();
    assert_eq!(
        ids,
        ["old-live", "edge", "overnight", "long", "failed", "live"]
    );
    assert_eq!(
        overlapping[2].state(),
        SessionState::Ended {
            at: at(1_100),
            reason: EndReason::IdleTimeout
        }
    );
    assert!(
        store
            .sessions_overlapping(at(0), at(10))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn daily_reports(store: Store) {
    assert_eq!(store.get_daily_report("2026-03-10").await.unwrap(), None);
    store
        .save_daily_report("2026-03-10", at(1_000), r#"{"v":1}"#)
        .await
        .unwrap();
    store
        .save_daily_report("2026-03-09", at(900), r#"{"v":0}"#)
        .await
        .unwrap();
    store
        .save_daily_report("2026-03-12", at(1_200), r#"{"v":2}"#)
        .await
        .unwrap();
    // Saving again replaces.
    store
        .save_daily_report("2026-03-10", at(1_100), r#"{"v":"é"}"#)
        .await
        .unwrap();
    assert_eq!(
        store.get_daily_report("2026-03-10").await.unwrap(),
        Some(StoredReport {
            day: "2026-03-10".into(),
            computed_at: at(1_100),
            body: r#"{"v":"é"}"#.into(),
        })
    );
    // Both ends included, by day.
    let days: Vec<_> = store
        .daily_reports_between("2026-03-09", "2026-03-12")
        .await
        .unwrap()
        .into_iter()
        .map(|report| report.day)
        .collect();
    assert_eq!(days, ["2026-03-09", "2026-03-10", "2026-03-12"]);
    let days: Vec<_> = store
        .daily_reports_between("2026-03-10", "2026-03-11")
        .await
        .unwrap()
        .into_iter()
        .map(|report| report.day)
        .collect();
    assert_eq!(days, ["2026-03-10"]);
    assert!(
        store
            .daily_reports_between("2026-03-13", "2026-12-31")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Migration 0002 on a database filled at 0001: existing rows get the defaults.
async fn upgrade_from_0001(url: &str, migrator: &sqlx::migrate::Migrator) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    migrator.run_to(1, &pool).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO users (id, login, display_name, enabled, roles)
           VALUES ('u1', 'alice', 'Alice', 1, 'user');
         INSERT INTO hosts (id, name, protocol, address, port, max_sessions, draining, weight, health)
           VALUES ('h1', 'H1', 'rdp', 'h1.lan', 3389, 2, 0, 1, 'healthy');
         INSERT INTO pools (id, name, balancing) VALUES ('p', 'Pool', 'weighted');
         INSERT INTO resources (id, kind, name_fr, name_en, pool_id)
           VALUES ('desk', 'desktop', 'Bureau', 'Desktop', 'p');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(
        store.get_user_auth(&UserId::new("u1")).await.unwrap(),
        Some(UserAuth::default())
    );
    assert_eq!(
        store
            .get_user(&UserId::new("u1"))
            .await
            .unwrap()
            .unwrap()
            .login,
        "alice"
    );
    assert_eq!(
        store
            .get_host_settings(&HostId::new("h1"))
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    assert_eq!(
        store
            .get_resource_settings(&ResourceId::new("desk"))
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
    // The new columns' checks hold (the store exposes no raw SQL: a second pool).
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    assert!(
        sqlx::query("UPDATE users SET source = 'ldap' WHERE id = 'u1'")
            .execute(&pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("UPDATE users SET totp_confirmed = 2 WHERE id = 'u1'")
            .execute(&pool)
            .await
            .is_err()
    );
    pool.close().await;
    store.close().await;
}

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

mod upgrade_from_0001 {
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        let path =
            std::env::temp_dir().join(format!("bascule-store-test-{}.db", super::unique_suffix()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        super::upgrade_from_0001(&url, &super::SQLITE_MIGRATOR).await;
        super::remove_sqlite(&path);
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        let url = super::postgres_url().await;
        super::upgrade_from_0001(&url, &super::POSTGRES_MIGRATOR).await;
    }
}
