//! The administration commands (`src/admin_cli.rs`), parsed with clap and run against a real
//! SQLite store, with standard input and output captured.
#![allow(clippy::unwrap_used, clippy::panic, missing_docs, unreachable_pub)]

#[allow(dead_code)]
#[path = "../src/admin_cli.rs"]
mod admin_cli;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use admin_cli::{AdminCommand, cli_actor, open_admin, run_with};
use bascule_admin::{Actor, Admin, Lang};
use bascule_domain::access::Role;
use bascule_domain::id::HostId;
use clap::Parser;

#[derive(Parser)]
struct TestCli {
    #[command(subcommand)]
    command: AdminCommand,
}

struct Site {
    admin: Admin,
    dir: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn site() -> Site {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "bascule-admin-cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bascule.db").display());
    let admin = open_admin(&url, &dir, false).await.unwrap();
    Site { admin, dir }
}

fn actor(lang: Lang) -> Actor {
    Actor {
        login: "cli:test".into(),
        roles: vec![Role::Admin],
        address: None,
        lang,
    }
}

/// Runs `bascule ARGS…` with `stdin`, returning the output or the error's text.
async fn bascule(site: &Site, lang: Lang, args: &[&str], stdin: &str) -> Result<String, String> {
    let mut argv = vec!["bascule"];
    argv.extend_from_slice(args);
    let cli = TestCli::try_parse_from(argv).map_err(|error| error.to_string())?;
    let mut input = stdin.as_bytes();
    let mut out = Vec::new();
    run_with(&site.admin, &actor(lang), cli.command, &mut input, &mut out)
        .await
        .map_err(|error| error.to_string())?;
    Ok(String::from_utf8(out).unwrap())
}

async fn ok(site: &Site, args: &[&str], stdin: &str) -> String {
    bascule(site, Lang::En, args, stdin)
        .await
        .unwrap_or_else(|error| panic!("bascule {args:?}: {error}"))
}

#[tokio::test]
async fn hosts_read_passwords_from_stdin_only_and_seal_them() {
    let site = site().await;
    // No password on the command line: clap knows no such option.
    let error = bascule(
        &site,
        Lang::En,
        &[
            "host",
            "add",
            "rds1",
            "--protocol",
            "rdp",
            "--password",
            "secret",
        ],
        "",
    )
    .await
    .unwrap_err();
    assert!(
        error.contains("unexpected argument '--password'"),
        "{error}"
    );

    let out = ok(
        &site,
        &[
            "host",
            "add",
            "rds1",
            "--protocol",
            "rdp",
            "--address",
            "rds1.interne.example",
            "--username",
            "svc-bascule",
            "--domain",
            "INTERNE",
            "--max-sessions",
            "30",
            "--keyboard-layout",
            "0x080C",
            "--password-stdin",
        ],
        "Secret RDP 1!\n",
    )
    .await;
    assert!(out.contains("password_set     yes\n"), "{out}");
    assert!(out.contains("keyboard_layout  0x080c\n"), "{out}");
    assert!(
        out.contains("address          rds1.interne.example:3389\n"),
        "{out}"
    );
    assert!(!out.contains("Secret RDP"));
    let raw = site
        .admin
        .store()
        .get_host_settings(&HostId::new("rds1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.contains("\"password\":\"enc:v1:") && !raw.contains("Secret RDP"),
        "{raw}"
    );
    assert_eq!(
        site.admin
            .key()
            .decrypt(
                serde_json::from_str::<serde_json::Value>(&raw).unwrap()["password"]
                    .as_str()
                    .unwrap()
            )
            .unwrap()
            .expose(),
        "Secret RDP 1!"
    );

    // `host set` changes what it is told and keeps the password.
    let out = ok(
        &site,
        &["host", "set", "rds1", "--weight", "3", "--json"],
        "",
    )
    .await;
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["weight"], 3);
    assert_eq!(view["max_sessions"], 30);
    assert_eq!(view["password_set"], true);
    assert!(view.get("password").is_none());
    let after = site
        .admin
        .store()
        .get_host_settings(&HostId::new("rds1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&after).unwrap()["password"],
        serde_json::from_str::<serde_json::Value>(&raw).unwrap()["password"]
    );

    // An empty standard input is refused, in the actor's language.
    let error = bascule(
        &site,
        Lang::Fr,
        &[
            "host",
            "add",
            "v1",
            "--protocol",
            "vnc",
            "--address",
            "10.0.0.9",
            "--password-stdin",
        ],
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(error, "aucun mot de passe sur l'entrée standard");

    let out = ok(
        &site,
        &[
            "host",
            "add",
            "v1",
            "--protocol",
            "vnc",
            "--address",
            "10.0.0.9",
        ],
        "",
    )
    .await;
    assert!(out.contains("address          10.0.0.9:5900\n"), "{out}");
    let out = ok(&site, &["host", "list"], "").await;
    assert_eq!(
        out,
        "ID    PROTOCOL  ADDRESS                    SESSIONS  WEIGHT  DRAINING  HEALTH   POOLS  NAME\n\
         rds1  rdp       rds1.interne.example:3389  0/30      3       no        unknown  -      rds1\n\
         v1    vnc       10.0.0.9:5900              0/1       1       no        unknown  -      v1\n"
    );
    let out = ok(&site, &["host", "drain", "rds1"], "").await;
    assert_eq!(
        out,
        "host rds1 draining: its 0 session(s) stay, no new one goes there\n"
    );
    let out = ok(&site, &["host", "show", "rds1", "--json"], "").await;
    assert!(out.contains("\"draining\": true"), "{out}");
    ok(&site, &["host", "undrain", "rds1"], "").await;
    assert_eq!(
        ok(&site, &["host", "remove", "v1"], "").await,
        "host v1 removed\n"
    );
}

#[tokio::test]
async fn refusals_are_the_services_in_both_languages() {
    let site = site().await;
    let args = [
        "host",
        "add",
        "h1",
        "--protocol",
        "rdp",
        "--address",
        "rds1",
        "--port",
        "70000",
        "--username",
        "svc",
        "--password-stdin",
    ];
    let error = bascule(&site, Lang::Fr, &args, "secret\n")
        .await
        .unwrap_err();
    assert_eq!(error, "port : doit être entre 1 et 65535");
    let error = bascule(&site, Lang::En, &args, "secret\n")
        .await
        .unwrap_err();
    assert_eq!(error, "port: must be 1-65535");
    let error = bascule(
        &site,
        Lang::En,
        &[
            "host",
            "add",
            "h1",
            "--protocol",
            "rdp",
            "--address",
            "rds1",
            "--certificate",
            "pin:zz",
        ],
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        "certificate: \"pin:zz\" is not tofu, system, pin:<sha-256 hex> or accept-any"
    );
    let error = bascule(&site, Lang::Fr, &["pool", "add", "rds", "--host", "h9"], "")
        .await
        .unwrap_err();
    assert_eq!(error, "hosts[0] : l'hôte « h9 » n'existe pas");
    let error = bascule(&site, Lang::En, &["user", "show", "personne"], "")
        .await
        .unwrap_err();
    assert_eq!(error, "user \"personne\" does not exist");
    // The refusals are audited with the CLI's actor.
    let audit = site
        .admin
        .store()
        .audit_between(
            bascule_domain::time::Timestamp::from_unix_seconds(0),
            bascule_domain::time::Timestamp::from_unix_seconds(i64::MAX / 2),
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 4, "{audit:?}");
    assert!(audit.iter().all(|entry| entry.actor == "cli:test" && entry.outcome.starts_with("refused: invalid")));
}

#[tokio::test]
async fn from_pool_to_effective_policy() {
    let site = site().await;
    ok(
        &site,
        &[
            "host",
            "add",
            "rds1",
            "--protocol",
            "rdp",
            "--address",
            "rds1",
            "--username",
            "svc",
            "--password-stdin",
        ],
        "secret\n",
    )
    .await;
    let out = ok(
        &site,
        &[
            "pool",
            "add",
            "rds",
            "--host",
            "rds1",
            "--name",
            "Ferme RDS",
        ],
        "",
    )
    .await;
    assert_eq!(
        out,
        "ID   PROTOCOL  BALANCING        HOSTS  RESOURCES  NAME\n\
         rds  rdp       fewest_sessions  rds1   -          Ferme RDS\n"
    );
    let icon = site.dir.join("compta.svg");
    std::fs::write(&icon, "<svg xmlns=\"http://www.w3.org/2000/svg\"/>").unwrap();
    let out = ok(
        &site,
        &[
            "resource",
            "add",
            "compta",
            "--pool",
            "rds",
            "--name-fr",
            "Comptabilité",
            "--name-en",
            "Accounting",
            "--kind",
            "application",
            "--program",
            "C:\\Compta\\compta.exe",
            "--icon",
            icon.to_str().unwrap(),
        ],
        "",
    )
    .await;
    assert!(
        out.contains("program      C:\\Compta\\compta.exe\n"),
        "{out}"
    );
    assert!(out.contains("icon         image/svg+xml ("), "{out}");
    ok(
        &site,
        &["group", "add", "compta", "--name", "Comptabilité"],
        "",
    )
    .await;
    let out = ok(
        &site,
        &[
            "user",
            "add",
            "jean",
            "--display-name",
            "Jean Dupont",
            "--group",
            "compta",
            "--password-stdin",
        ],
        "un mot de passe long\n",
    )
    .await;
    assert!(out.contains("password_set   yes\n"), "{out}");
    assert!(out.contains("groups         compta\n"), "{out}");
    let out = ok(
        &site,
        &[
            "entitle",
            "grant",
            "--group",
            "compta",
            "--resource",
            "compta",
        ],
        "",
    )
    .await;
    assert_eq!(out, "group compta may open compta\n");
    let out = ok(&site, &["entitle", "list"], "").await;
    assert_eq!(out, "WHO           RESOURCE\ngroup compta  compta\n");
    let out = ok(
        &site,
        &[
            "policy",
            "set",
            "--group",
            "compta",
            "--clipboard-out",
            "false",
            "--hours",
            "lun-ven 07:00-19:00",
            "--max-bandwidth-kbps",
            "0",
        ],
        "",
    )
    .await;
    assert!(out.contains("clipboard_out           no\n"), "{out}");
    assert!(out.contains("max_bandwidth_kbps      unlimited\n"), "{out}");
    assert!(
        out.contains("allowed_hours           mon-fri 07:00-19:00\n"),
        "{out}"
    );
    assert!(out.contains("clipboard_in            (not set)\n"), "{out}");
    // A second `policy set` keeps the other fields; `--unset` removes one.
    let out = ok(
        &site,
        &[
            "policy",
            "set",
            "--group",
            "compta",
            "--file-transfer",
            "true",
            "--unset",
            "max_bandwidth_kbps",
        ],
        "",
    )
    .await;
    assert!(out.contains("clipboard_out           no\n"), "{out}");
    assert!(out.contains("file_transfer           yes\n"), "{out}");
    assert!(out.contains("max_bandwidth_kbps      (not set)\n"), "{out}");
    let out = ok(
        &site,
        &[
            "policy",
            "effective",
            "--user",
            "jean",
            "--resource",
            "compta",
        ],
        "",
    )
    .await;
    assert_eq!(
        out,
        "FIELD                   VALUE                SOURCE\n\
         entitled                yes                  -\n\
         clipboard_in            yes                  default\n\
         clipboard_out           no                   group:compta\n\
         file_transfer           yes                  group:compta\n\
         max_bandwidth_kbps      unlimited            default\n\
         idle_timeout_secs       never                default\n\
         disconnected_keep_secs  3600                 default\n\
         allowed_hours           mon-fri 07:00-19:00  group:compta\n"
    );
    let out = ok(&site, &["licence", "set", "40"], "").await;
    assert_eq!(out, "capacity   40\nin_use     0\navailable  40\n");
    let out = ok(&site, &["licence", "show", "--json"], "").await;
    let view: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        view,
        serde_json::json!({"capacity": 40, "in_use": 0, "available": 40})
    );
    let error = bascule(&site, Lang::En, &["pool", "remove", "rds"], "")
        .await
        .unwrap_err();
    assert_eq!(
        error,
        "pool \"rds\" serves resource \"compta\": delete them or move them to another pool first"
    );
}

#[tokio::test]
async fn user_accounts() {
    let site = site().await;
    ok(&site, &["group", "add", "rh"], "").await;
    let out = ok(
        &site,
        &[
            "user", "add", "marie", "--role", "helpdesk", "--role", "user",
        ],
        "",
    )
    .await;
    assert!(out.contains("password_set   no\n"), "{out}");
    let error = bascule(&site, Lang::En, &["user", "password", "marie"], "court\n")
        .await
        .unwrap_err();
    assert_eq!(error, "password: must be at least 12 characters");
    let out = ok(
        &site,
        &["user", "password", "marie"],
        "un mot de passe long\r\n",
    )
    .await;
    assert_eq!(out, "password of marie changed\n");
    let auth = site
        .admin
        .store()
        .get_user_auth(&bascule_domain::id::UserId::new("marie"))
        .await
        .unwrap()
        .unwrap();
    assert!(auth.password_hash.unwrap().starts_with("$argon2id$"));
    assert_eq!(
        ok(&site, &["user", "disable", "marie"], "").await,
        "user marie disabled\n"
    );
    ok(&site, &["user", "set", "marie", "--group", "rh"], "").await;
    let out = ok(&site, &["user", "list"], "").await;
    assert_eq!(
        out,
        "LOGIN  ROLES          GROUPS  ENABLED  SOURCE  TOTP  NAME\n\
         marie  helpdesk,user  rh      no       local   no    marie\n"
    );
    ok(&site, &["user", "enable", "marie"], "").await;
    let out = ok(&site, &["user", "totp-reset", "marie"], "").await;
    assert_eq!(
        out,
        "second factor of marie forgotten: the next login enrols a new one\n"
    );
    let out = ok(&site, &["group", "list"], "").await;
    assert_eq!(out, "ID  MEMBERS  NAME\nrh  marie    rh\n");
    ok(&site, &["group", "remove-member", "rh", "marie"], "").await;
    ok(&site, &["group", "remove", "rh"], "").await;
    assert_eq!(
        ok(&site, &["user", "remove", "marie"], "").await,
        "user marie removed\n"
    );
    assert_eq!(ok(&site, &["user", "list", "--json"], "").await, "[]\n");
}

#[test]
fn the_cli_actor_is_an_admin_named_after_the_unix_user() {
    let actor = cli_actor();
    assert!(actor.login.starts_with("cli:"));
    assert_eq!(actor.roles, vec![Role::Admin]);
    assert_eq!(actor.address, None);
}
