//! A migrated store, a secret key and an `Admin` per test, with actors of each role.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bascule_admin::{Actor, Admin, HostSpec, Lang};
use bascule_domain::access::Role;
use bascule_domain::time::Timestamp;
use bascule_secrets::SecretKey;
use bascule_store::{AuditEntry, Backend, Store};
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

/// One test's world: the service, its store and key, and the files to remove.
pub struct Site {
    pub admin: Admin,
    pub key: Arc<SecretKey>,
    dir: PathBuf,
}

impl Site {
    pub fn store(&self) -> &Store {
        self.admin.store()
    }

    /// Every audit entry so far, in order.
    pub async fn audit(&self) -> Vec<AuditEntry> {
        self.store()
            .audit_between(
                Timestamp::from_unix_seconds(0),
                Timestamp::from_unix_seconds(i64::MAX / 2),
            )
            .await
            .unwrap()
    }

    /// The last audit entry.
    pub async fn last_audit(&self) -> AuditEntry {
        self.audit().await.pop().expect("an audit entry")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key_in(dir: &std::path::Path) -> Arc<SecretKey> {
    Arc::new(SecretKey::load_or_create(dir).unwrap())
}

/// A site on a new SQLite file.
pub async fn sqlite_site(allow_insecure: bool) -> Site {
    let dir = std::env::temp_dir().join(format!("bascule-admin-test-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bascule.db").display());
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    let key = key_in(&dir);
    let admin = Admin::new(store, key.clone()).allow_insecure_certificates(allow_insecure);
    Site { admin, key, dir }
}

/// A site on a fresh schema of the PostgreSQL server named by `BASCULE_TEST_POSTGRES_URL`
/// (`scripts/test.sh` starts one). Without it the test fails: it never passes silently.
pub async fn postgres_site() -> Option<Site> {
    let Ok(base) = std::env::var("BASCULE_TEST_POSTGRES_URL") else {
        panic!("set BASCULE_TEST_POSTGRES_URL (scripts/test.sh starts a throw-away PostgreSQL)");
    };
    let schema = format!("admin_{}", unique_suffix());
    let mut connection = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.unwrap();
    let dir = std::env::temp_dir().join(format!("bascule-admin-test-{}", unique_suffix()));
    let key = key_in(&dir);
    let admin = Admin::new(store, key.clone());
    Some(Site { admin, key, dir })
}

/// Runs `$body(&Site)` on SQLite and on PostgreSQL: `$body::sqlite` and `$body::postgres`.
macro_rules! on_both_backends {
    ($($body:ident),* $(,)?) => {$(
        mod $body {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let site = crate::common::sqlite_site(false).await;
                super::$body(&site).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(site) = crate::common::postgres_site().await {
                    super::$body(&site).await;
                }
            }
        }
    )*};
}
pub(crate) use on_both_backends;

pub fn actor(login: &str, role: Role, lang: Lang) -> Actor {
    Actor {
        login: login.into(),
        roles: vec![role],
        address: Some("192.0.2.7".into()),
        lang,
    }
}

pub fn admin() -> Actor {
    actor("chef", Role::Admin, Lang::En)
}

pub fn helpdesk() -> Actor {
    actor("support", Role::Helpdesk, Lang::Fr)
}

pub fn plain_user() -> Actor {
    actor("agent", Role::User, Lang::Fr)
}

/// An RDP host with service credentials.
pub fn rdp_host(id: &str) -> HostSpec {
    HostSpec {
        id: id.into(),
        name: format!("Serveur {id}"),
        protocol: "rdp".into(),
        address: format!("{id}.interne.example"),
        max_sessions: Some(20),
        username: Some("svc-bascule".into()),
        domain: Some("INTERNE".into()),
        password: Some("Mot de passe RDP 1!".into()),
        ..HostSpec::default()
    }
}

/// A VNC host without password.
pub fn vnc_host(id: &str) -> HostSpec {
    HostSpec {
        id: id.into(),
        protocol: "vnc".into(),
        address: "10.0.0.9".into(),
        ..HostSpec::default()
    }
}
