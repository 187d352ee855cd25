//! `bascule backup` and `bascule restore` through the binary: a backup of a SQLite database is
//! restored into a new one (and into PostgreSQL when `BASCULE_TEST_POSTGRES_URL` is set), with
//! the secret key; a restore into a database that is not empty is refused and changes nothing.

#![allow(clippy::unwrap_used)]
use bascule_domain::access::User;
use bascule_domain::id::{HostId, UserId};
use bascule_domain::inventory::{Host, Protocol};
use std::path::Path;
use std::process::Command;

fn bascule(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bascule")).args(args).output().expect("running bascule")
}

fn config(dir: &Path, database: Option<&str>) -> std::path::PathBuf {
    let path = dir.join("bascule.toml");
    let database = database.map(|url| format!("database = \"{url}\"\n")).unwrap_or_default();
    std::fs::write(&path, format!("data_dir = \"{}\"\n{database}", dir.display())).expect("config");
    path
}

fn temp(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bascule-backup-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn fill(url: &str, sealed: &str) {
    let store = bascule_store::Store::connect(url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store.upsert_user(&User::new(UserId::new("agent"), "agent", "Agent Dupont")).await.expect("user");
    store.upsert_host(&Host::new(HostId::new("rds1"), "RDS 1", Protocol::Rdp, "10.0.0.5", 3389, 40)).await.expect("host");
    store.set_host_settings(&HostId::new("rds1"), &format!("{{\"password\":\"{sealed}\"}}")).await.expect("settings");
    store.set_licence_capacity(1200).await.expect("licences");
    store.close().await;
}

/// A new empty schema on the test PostgreSQL server, as a URL.
async fn fresh_schema(base: &str) -> String {
    use sqlx::Connection;
    let schema = format!("backup_{}_{}", std::process::id(), std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    let mut admin = sqlx::PgConnection::connect(base).await.expect("PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("schema");
    admin.close().await.expect("close");
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_then_restore_elsewhere_with_the_key() {
    let source = temp("source");
    let key = bascule_secrets::SecretKey::load_or_create(&source).expect("key");
    let sealed = key.encrypt("service password");
    let source_url = format!("sqlite://{}?mode=rwc", source.join("bascule.db").display());
    fill(&source_url, &sealed).await;
    let source_config = config(&source, None);
    let file = source.join("backup.json");
    let out = bascule(&["backup", "--config", source_config.to_str().unwrap(), "--output", file.to_str().unwrap(), "--with-key"]);
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("protect this file"), "the key warning is shown");
    let text = std::fs::read_to_string(&file).expect("backup file");
    assert!(text.contains("\"agent\"") && text.contains(&sealed) && !text.contains("service password"));

    // Restore into a new data directory: SQLite, or PostgreSQL when the suite has one.
    let target = temp("target");
    let target_url = match std::env::var("BASCULE_TEST_POSTGRES_URL") {
        Ok(base) => Some(fresh_schema(&base).await),
        Err(_) => None,
    };
    let target_config = config(&target, target_url.as_deref());
    let out = bascule(&["restore", "--config", target_config.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let url = target_url.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", target.join("bascule.db").display()));
    let store = bascule_store::Store::connect(&url).await.expect("connect");
    let user = store.get_user(&UserId::new("agent")).await.expect("read").expect("restored user");
    assert_eq!(user.display_name, "Agent Dupont");
    assert_eq!(store.licence_capacity().await.expect("licences"), 1200);
    let settings = store.get_host_settings(&HostId::new("rds1")).await.expect("read").expect("restored host");
    let restored_key = bascule_secrets::SecretKey::load_or_create(&target).expect("restored key");
    let sealed_back = settings.split('"').nth(3).expect("sealed value");
    assert_eq!(restored_key.decrypt(sealed_back).expect("decrypts with the restored key").expose(), "service password");

    // A second restore into the now non-empty database is refused, and says why.
    let out = bascule(&["restore", "--config", target_config.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("empty") || stderr.contains("not empty"), "{stderr}");
    assert_eq!(store.list_users().await.expect("users").len(), 1, "nothing changed");
    store.close().await;
    let _ = std::fs::remove_dir_all(&source);
    let _ = std::fs::remove_dir_all(&target);
}

#[test]
fn a_file_that_is_not_a_backup_is_refused_clearly() {
    let dir = temp("garbage");
    let cfg = config(&dir, None);
    let file = dir.join("nope.json");
    std::fs::write(&file, "{\"hello\": 1}").expect("write");
    let out = bascule(&["restore", "--config", cfg.to_str().unwrap(), file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Bascule backup"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
