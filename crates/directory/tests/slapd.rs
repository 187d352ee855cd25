//! Against the testbed's real OpenLDAP slapd: run `scripts/testbed.sh up` first (TB_DIR selects the testbed,
//! default /tmp/bascule-testbed). These tests fail, never skip, when the testbed is missing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bascule_directory::{Directory, DirectoryConfig, DirectoryError, GroupLookup};

struct Testbed {
    ldap_url: String,
    ldaps_url: String,
    base: String,
    admin_dn: String,
    admin_pass: String,
    ca_pem: Vec<u8>,
}

fn testbed() -> Testbed {
    let dir = std::env::var("TB_DIR").unwrap_or_else(|_| "/tmp/bascule-testbed".into());
    let path = format!("{dir}/env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}: run scripts/testbed.sh up first"));
    let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let get = |k: &str| {
        env.get(k)
            .unwrap_or_else(|| {
                panic!(
                    "{k} missing from {path} (slapd not started?): run scripts/testbed.sh up first"
                )
            })
            .to_string()
    };
    let ca = get("TB_LDAP_CA");
    Testbed {
        ldap_url: get("TB_LDAP_URL"),
        ldaps_url: get("TB_LDAPS_URL"),
        base: get("TB_LDAP_BASE"),
        admin_dn: get("TB_LDAP_ADMIN_DN"),
        admin_pass: get("TB_LDAP_ADMIN_PASS"),
        ca_pem: std::fs::read(&ca)
            .unwrap_or_else(|e| panic!("{ca}: {e}: run scripts/testbed.sh up first")),
    }
}

fn config(tb: &Testbed) -> DirectoryConfig {
    DirectoryConfig {
        url: tb.ldap_url.clone(),
        starttls: false,
        ca_certificate_pem: None,
        bind_dn: Some(tb.admin_dn.clone()),
        bind_password: Some(tb.admin_pass.clone()),
        base_dn: format!("ou=people,{}", tb.base),
        login_attribute: "uid".into(),
        user_filter: Some("(objectClass=inetOrgPerson)".into()),
        groups: GroupLookup::MemberOf,
        timeout: Duration::from_secs(5),
    }
}

fn dir(c: DirectoryConfig) -> Directory {
    Directory::new(c).expect("valid configuration")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn assert_alice(tb: &Testbed, u: &bascule_directory::DirectoryUser) {
    assert_eq!(u.dn, format!("uid=alice,ou=people,{}", tb.base));
    assert_eq!(u.login, "alice");
    assert_eq!(u.display_name.as_deref(), Some("Alice Martin"));
    assert_eq!(u.mail.as_deref(), Some("alice@example.org"));
    assert_eq!(
        sorted(u.groups.clone()),
        vec![
            format!("cn=admins,ou=groups,{}", tb.base),
            format!("cn=staff,ou=groups,{}", tb.base)
        ]
    );
    assert_eq!(sorted(u.group_names.clone()), vec!["admins", "staff"]);
}

#[tokio::test]
async fn alice_and_bob_with_member_of() {
    let tb = testbed();
    let d = dir(config(&tb));
    let alice = d.authenticate("alice", "alicepass").await.expect("alice");
    assert_alice(&tb, &alice);
    let bob = d.authenticate("bob", "bobpass").await.expect("bob");
    assert_eq!(bob.dn, format!("uid=bob,ou=people,{}", tb.base));
    assert_eq!(bob.display_name.as_deref(), Some("Bob Durand"));
    assert_eq!(bob.groups, vec![format!("cn=staff,ou=groups,{}", tb.base)]);
    assert_eq!(bob.group_names, vec!["staff"]);
}

#[tokio::test]
async fn alice_and_bob_with_group_search() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        groups: GroupLookup::Search {
            base_dn: format!("ou=groups,{}", tb.base),
            filter: "(member={dn})".into(),
        },
        ..config(&tb)
    });
    assert_alice(
        &tb,
        &d.authenticate("alice", "alicepass").await.expect("alice"),
    );
    let bob = d.authenticate("bob", "bobpass").await.expect("bob");
    assert_eq!(bob.groups, vec![format!("cn=staff,ou=groups,{}", tb.base)]);
    assert_eq!(bob.group_names, vec!["staff"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_give_the_same_error() {
    let tb = testbed();
    let d = dir(config(&tb));
    let wrong = d
        .authenticate("alice", "bobpass")
        .await
        .expect_err("wrong password");
    let unknown = d
        .authenticate("mallory", "alicepass")
        .await
        .expect_err("unknown user");
    assert!(
        matches!(wrong, DirectoryError::InvalidCredentials),
        "{wrong:?}"
    );
    assert!(
        matches!(unknown, DirectoryError::InvalidCredentials),
        "{unknown:?}"
    );
    assert_eq!(wrong.code(), unknown.code());
    assert_eq!(wrong.to_string(), unknown.to_string());
}

#[tokio::test]
async fn empty_password_is_refused_without_binding() {
    let tb = testbed();
    let d = dir(config(&tb));
    let e = d
        .authenticate("alice", "")
        .await
        .expect_err("empty password");
    assert!(matches!(e, DirectoryError::InvalidCredentials), "{e:?}");
    // Refused before any network access: against a closed port it is still InvalidCredentials.
    let closed = dir(DirectoryConfig {
        url: format!("ldap://127.0.0.1:{}", closed_port()),
        ..config(&tb)
    });
    let e = closed
        .authenticate("alice", "")
        .await
        .expect_err("empty password");
    assert!(matches!(e, DirectoryError::InvalidCredentials), "{e:?}");
}

#[tokio::test]
async fn hostile_login_is_escaped() {
    let tb = testbed();
    let d = dir(config(&tb));
    for login in ["*)(uid=*", "*", "alice)(|(uid=*", "al*"] {
        let e = d.authenticate(login, "alicepass").await.expect_err(login);
        assert!(
            matches!(e, DirectoryError::InvalidCredentials),
            "{login}: {e:?}"
        );
    }
    // With no extra user filter too
    let d = dir(DirectoryConfig {
        user_filter: None,
        ..config(&tb)
    });
    let e = d
        .authenticate("*)(uid=*", "alicepass")
        .await
        .expect_err("hostile");
    assert!(matches!(e, DirectoryError::InvalidCredentials), "{e:?}");
}

#[tokio::test]
async fn ldaps_with_the_testbed_ca() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        url: tb.ldaps_url.clone(),
        ca_certificate_pem: Some(tb.ca_pem.clone()),
        ..config(&tb)
    });
    assert_alice(
        &tb,
        &d.authenticate("alice", "alicepass")
            .await
            .expect("alice over LDAPS"),
    );
}

#[tokio::test]
async fn ldaps_without_the_ca_is_a_tls_error() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        url: tb.ldaps_url.clone(),
        ca_certificate_pem: None,
        ..config(&tb)
    });
    let e = d
        .authenticate("alice", "alicepass")
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(e, DirectoryError::Tls(_)), "{e:?}");
    assert_eq!(e.code(), "directory.tls");
}

#[tokio::test]
async fn starttls_with_the_testbed_ca() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        starttls: true,
        ca_certificate_pem: Some(tb.ca_pem.clone()),
        ..config(&tb)
    });
    assert_alice(
        &tb,
        &d.authenticate("alice", "alicepass")
            .await
            .expect("alice over StartTLS"),
    );
    let e = d
        .authenticate("alice", "wrong")
        .await
        .expect_err("wrong password");
    assert!(matches!(e, DirectoryError::InvalidCredentials), "{e:?}");
    // StartTLS without the CA fails on the certificate
    let d = dir(DirectoryConfig {
        starttls: true,
        ..config(&tb)
    });
    let e = d
        .authenticate("alice", "alicepass")
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(e, DirectoryError::Tls(_)), "{e:?}");
}

#[tokio::test]
async fn wrong_service_password_is_misconfigured() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        bind_password: Some("not-the-password".into()),
        ..config(&tb)
    });
    let e = d
        .authenticate("alice", "alicepass")
        .await
        .expect_err("bad service account");
    assert!(matches!(e, DirectoryError::Misconfigured(_)), "{e:?}");
}

/// A port on which nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn unreachable_port() {
    let tb = testbed();
    let d = dir(DirectoryConfig {
        url: format!("ldap://127.0.0.1:{}", closed_port()),
        ..config(&tb)
    });
    let e = d
        .authenticate("alice", "alicepass")
        .await
        .expect_err("closed port");
    assert!(matches!(e, DirectoryError::Unreachable(_)), "{e:?}");
    assert_eq!(e.code(), "directory.unreachable");
}

#[tokio::test]
async fn silent_server_times_out() {
    let tb = testbed();
    // Accepts TCP connections (the kernel does, from the backlog) and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let timeout = Duration::from_millis(700);
    for url in [
        format!("ldap://127.0.0.1:{port}"),
        format!("ldaps://127.0.0.1:{port}"),
    ] {
        let d = dir(DirectoryConfig {
            url: url.clone(),
            timeout,
            ca_certificate_pem: Some(tb.ca_pem.clone()),
            ..config(&tb)
        });
        let t0 = Instant::now();
        let e = d
            .authenticate("alice", "alicepass")
            .await
            .expect_err("silent server");
        let elapsed = t0.elapsed();
        assert!(matches!(e, DirectoryError::Timeout), "{url}: {e:?}");
        assert!(
            elapsed >= timeout && elapsed < timeout * 2,
            "{url}: took {elapsed:?}"
        );
    }
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_authentications_reuse_the_service_connection() {
    let tb = testbed();
    let d = std::sync::Arc::new(dir(config(&tb)));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let (login, pw) = if i % 2 == 0 {
                ("alice", "alicepass")
            } else {
                ("bob", "bobpass")
            };
            d.authenticate(login, pw).await.map(|u| u.login)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let login = t
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("authentication {i}: {e:?}"));
        assert_eq!(login, if i % 2 == 0 { "alice" } else { "bob" });
    }
    // And again after the burst, on the same (reused) service connection
    assert_eq!(
        d.authenticate("bob", "bobpass")
            .await
            .expect("bob")
            .group_names,
        vec!["staff"]
    );
}
