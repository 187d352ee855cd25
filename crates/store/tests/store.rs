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
use bascule_store::{AuditEntry, Backend, CapacityLimit, LicenceSample, Store, StoreError};
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

async fn postgres_store() -> Store {
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
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
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
);

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
