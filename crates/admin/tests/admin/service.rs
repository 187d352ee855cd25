//! The service: validation messages in both languages, sealing, roles, audit, conflicts, flows.

use argon2::PasswordVerifier;
use bascule_admin::{
    AdminError, EntitlementSpec, GroupSpec, HostSpec, Icon, Lang, LicenceSpec, PasswordSpec,
    PolicySpec, PoolSpec, ResourceSpec, UserSpec,
};
use bascule_domain::access::Role;
use bascule_domain::id::{HostId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::Health;
use bascule_domain::session::SessionRecord;
use bascule_domain::time::Timestamp;
use bascule_store::{AuthSource, UserAuth};

use crate::common::{
    Site, actor, admin, helpdesk, on_both_backends, plain_user, rdp_host, sqlite_site, vnc_host,
};

/// Asserts an `Invalid` error on `field` with these messages.
#[track_caller]
fn assert_invalid(
    result: Result<impl std::fmt::Debug, AdminError>,
    field: &str,
    en: &str,
    fr: &str,
) {
    let error = result.expect_err("refused");
    assert_eq!(error.code(), "invalid", "{error:?}");
    assert_eq!(error.http_status(), 400);
    assert_eq!(error.field(), Some(field), "{error:?}");
    assert_eq!(error.message(Lang::En), en);
    assert_eq!(error.message(Lang::Fr), fr);
    assert_eq!(error.to_string(), en);
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn pool_of(site: &Site, id: &str, hosts: &[&str]) {
    site.admin
        .put_pool(
            &admin(),
            id,
            &PoolSpec {
                hosts: hosts.iter().map(|host| host.to_string()).collect(),
                ..PoolSpec::default()
            },
        )
        .await
        .unwrap();
}

fn desktop(id: &str, pool: &str) -> ResourceSpec {
    ResourceSpec {
        id: id.into(),
        name_fr: "Bureau".into(),
        name_en: "Desktop".into(),
        pool: pool.into(),
        ..ResourceSpec::default()
    }
}

fn user(login: &str) -> UserSpec {
    UserSpec {
        login: login.into(),
        display_name: format!("Agent {login}"),
        password: Some("un mot de passe long".into()),
        ..UserSpec::default()
    }
}

#[tokio::test]
async fn host_validation_messages_in_both_languages() {
    let site = sqlite_site(false).await;
    let chef = admin();
    let cases: Vec<(HostSpec, &str, &str, &str)> = vec![
        (
            HostSpec {
                port: Some(70000),
                ..rdp_host("h1")
            },
            "port",
            "port: must be 1-65535",
            "port : doit être entre 1 et 65535",
        ),
        (
            HostSpec {
                id: "h 1".into(),
                ..rdp_host("h1")
            },
            "id",
            "id: \"h 1\" is not an id: use 1 to 64 characters among A-Z, a-z, 0-9, _ and -",
            "id : « h 1 » n'est pas un identifiant : 1 à 64 caractères parmi A-Z, a-z, 0-9, _ et -",
        ),
        (
            HostSpec {
                protocol: "ssh".into(),
                ..rdp_host("h1")
            },
            "protocol",
            "protocol: \"ssh\" is not rdp or vnc",
            "protocol : « ssh » n'est pas une valeur acceptée (rdp ou vnc)",
        ),
        (
            HostSpec {
                protocol: String::new(),
                ..rdp_host("h1")
            },
            "protocol",
            "protocol: is required",
            "protocol : est obligatoire",
        ),
        (
            HostSpec {
                address: "rds 1".into(),
                ..rdp_host("h1")
            },
            "address",
            "address: \"rds 1\" is neither a host name nor an IP address",
            "address : « rds 1 » n'est ni un nom d'hôte ni une adresse IP",
        ),
        (
            HostSpec {
                address: " ".into(),
                ..rdp_host("h1")
            },
            "address",
            "address: is required",
            "address : est obligatoire",
        ),
        (
            HostSpec {
                max_sessions: Some(0),
                ..rdp_host("h1")
            },
            "max_sessions",
            "max_sessions: must be 1-10000",
            "max_sessions : doit être entre 1 et 10000",
        ),
        (
            HostSpec {
                weight: Some(-1),
                ..rdp_host("h1")
            },
            "weight",
            "weight: must be 0-1000",
            "weight : doit être entre 0 et 1000",
        ),
        (
            HostSpec {
                certificate: Some("pin:zz".into()),
                ..rdp_host("h1")
            },
            "certificate",
            "certificate: \"pin:zz\" is not tofu, system, pin:<sha-256 hex> or accept-any",
            "certificate : « pin:zz » n'est pas une valeur acceptée (tofu, system, pin:<sha-256 hex> ou accept-any)",
        ),
        (
            HostSpec {
                certificate: Some("accept-any".into()),
                ..rdp_host("h1")
            },
            "certificate",
            "certificate: accept-any is refused: this gateway is not configured with allow_insecure_certificates",
            "certificate : accept-any est refusé : cette passerelle n'est pas configurée avec allow_insecure_certificates",
        ),
        (
            HostSpec {
                username: None,
                ..rdp_host("h1")
            },
            "username",
            "username: service credentials of an RDP host need a username and a password",
            "username : les identifiants de service d'un hôte RDP demandent un nom d'utilisateur et un mot de passe",
        ),
        (
            HostSpec {
                password: None,
                ..rdp_host("h1")
            },
            "password",
            "password: service credentials of an RDP host need a username and a password",
            "password : les identifiants de service d'un hôte RDP demandent un nom d'utilisateur et un mot de passe",
        ),
        (
            HostSpec {
                credentials: Some("passthrough".into()),
                username: None,
                ..rdp_host("h1")
            },
            "password",
            "password: must be empty with passthrough credentials: each user logs in with their own",
            "password : doit rester vide avec les identifiants transmis (passthrough) : chaque utilisateur se connecte avec les siens",
        ),
        (
            HostSpec {
                credentials: Some("kerberos".into()),
                ..rdp_host("h1")
            },
            "credentials",
            "credentials: \"kerberos\" is not service or passthrough",
            "credentials : « kerberos » n'est pas une valeur acceptée (service ou passthrough)",
        ),
        (
            HostSpec {
                keyboard: Some("scancode".into()),
                ..rdp_host("h1")
            },
            "keyboard",
            "keyboard: scancode applies to VNC hosts only (RDP always sends scancodes)",
            "keyboard : scancode ne s'applique qu'aux hôtes VNC (RDP envoie toujours des scancodes)",
        ),
        (
            HostSpec {
                security: Some("ssl".into()),
                ..rdp_host("h1")
            },
            "security",
            "security: \"ssl\" is not negotiate, tls or nla",
            "security : « ssl » n'est pas une valeur acceptée (negotiate, tls ou nla)",
        ),
        (
            HostSpec {
                h264: Some(true),
                ..vnc_host("v1")
            },
            "h264",
            "h264: applies to RDP hosts only",
            "h264 : ne s'applique qu'aux hôtes RDP",
        ),
        (
            HostSpec {
                keyboard_layout: Some(0),
                ..rdp_host("h1")
            },
            "keyboard_layout",
            "keyboard_layout: must be 1-4294967295",
            "keyboard_layout : doit être entre 1 et 4294967295",
        ),
        (
            HostSpec {
                username: Some("du\tpont".into()),
                ..rdp_host("h1")
            },
            "username",
            "username: must not contain control characters (line breaks, tabs…)",
            "username : ne doit pas contenir de caractères de contrôle (sauts de ligne, tabulations…)",
        ),
        (
            HostSpec {
                username: Some("admin".into()),
                ..vnc_host("v1")
            },
            "username",
            "username: a VNC host takes an optional password only",
            "username : un hôte VNC ne prend qu'un mot de passe, facultatif",
        ),
        (
            HostSpec {
                credentials: Some("passthrough".into()),
                ..vnc_host("v1")
            },
            "credentials",
            "credentials: a VNC host takes an optional password only",
            "credentials : un hôte VNC ne prend qu'un mot de passe, facultatif",
        ),
        (
            HostSpec {
                security: Some("nla".into()),
                ..vnc_host("v1")
            },
            "security",
            "security: applies to RDP hosts only",
            "security : ne s'applique qu'aux hôtes RDP",
        ),
        (
            HostSpec {
                certificate: Some("system".into()),
                ..vnc_host("v1")
            },
            "certificate",
            "certificate: applies to RDP hosts only",
            "certificate : ne s'applique qu'aux hôtes RDP",
        ),
    ];
    for (spec, field, en, fr) in cases {
        let id = spec.id.clone();
        assert_invalid(site.admin.create_host(&chef, &spec).await, field, en, fr);
        // Nothing was stored, and the refusal is in the audit log.
        assert!(
            site.store()
                .get_host(&HostId::new(id.clone()))
                .await
                .unwrap()
                .is_none()
        );
        let entry = site.last_audit().await;
        assert_eq!(entry.action, "host.create");
        assert_eq!(entry.target, id);
        assert!(
            entry
                .outcome
                .starts_with(&format!("refused: invalid ({field}:")),
            "{}",
            entry.outcome
        );
    }
    // A valid VNC host with only a password, and a pinned RDP host, are accepted.
    let mut vnc = vnc_host("v1");
    vnc.password = Some("vnc-pass".into());
    vnc.keyboard = Some("scancode".into());
    let view = site.admin.create_host(&chef, &vnc).await.unwrap();
    assert_eq!(view.port, 5900);
    assert!(view.password_set);
    let pin = format!("pin:{}", ["AB"; 32].join(":"));
    let view = site
        .admin
        .create_host(
            &chef,
            &HostSpec {
                certificate: Some(pin),
                ..rdp_host("h1")
            },
        )
        .await
        .unwrap();
    assert_eq!(view.certificate, format!("pin:{}", "ab".repeat(32)));
    assert_eq!(view.port, 3389);
    assert_eq!(view.keyboard_layout, 0x040C);
    assert!(!view.h264, "H.264 from the host is off unless asked for");
    // Creating it again is a conflict; putting it replaces it.
    let error = site
        .admin
        .create_host(&chef, &rdp_host("h1"))
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), 409);
    assert_eq!(error.message(Lang::En), "host \"h1\" exists already");
    assert_eq!(error.message(Lang::Fr), "l'hôte « h1 » existe déjà");
    let view = site
        .admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    assert_eq!(view.certificate, "tofu");
}

#[tokio::test]
async fn accept_any_needs_the_insecure_switch() {
    let site = sqlite_site(true).await;
    let spec = HostSpec {
        certificate: Some("accept-any".into()),
        ..rdp_host("demo")
    };
    let view = site.admin.put_host(&admin(), "demo", &spec).await.unwrap();
    assert_eq!(view.certificate, "accept-any");
    let raw = site
        .store()
        .get_host_settings(&HostId::new("demo"))
        .await
        .unwrap()
        .unwrap();
    let settings = bascule_admin::HostSettings::from_json(&raw).unwrap();
    assert_eq!(
        settings.parse_certificate(),
        Some(bascule_admin::CertificateRule::AcceptAny)
    );
}

#[tokio::test]
async fn pool_and_resource_validation_messages() {
    let site = sqlite_site(false).await;
    let chef = admin();
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    site.admin
        .put_host(&chef, "v1", &vnc_host("v1"))
        .await
        .unwrap();
    let pool = |hosts: &[&str]| PoolSpec {
        id: "rds".into(),
        hosts: hosts.iter().map(|host| host.to_string()).collect(),
        ..PoolSpec::default()
    };
    assert_invalid(
        site.admin.create_pool(&chef, &pool(&["h1", "h9"])).await,
        "hosts[1]",
        "hosts[1]: host \"h9\" does not exist",
        "hosts[1] : l'hôte « h9 » n'existe pas",
    );
    assert_invalid(
        site.admin.create_pool(&chef, &pool(&["h1", "h1"])).await,
        "hosts[1]",
        "hosts[1]: \"h1\" is listed twice",
        "hosts[1] : « h1 » figure deux fois",
    );
    assert_invalid(
        site.admin.create_pool(&chef, &pool(&["h1", "v1"])).await,
        "hosts[1]",
        "hosts[1]: host \"h1\" (RDP) and host \"v1\" (VNC) would share pool \"rds\": a pool's hosts speak one protocol",
        "hosts[1] : l'hôte « h1 » (RDP) et l'hôte « v1 » (VNC) seraient dans le même pool « rds » : les hôtes d'un pool parlent un seul protocole",
    );
    assert_invalid(
        site.admin
            .create_pool(
                &chef,
                &PoolSpec {
                    balancing: Some("random".into()),
                    ..pool(&[])
                },
            )
            .await,
        "balancing",
        "balancing: \"random\" is not fewest_sessions or weighted",
        "balancing : « random » n'est pas une valeur acceptée (fewest_sessions ou weighted)",
    );
    pool_of(&site, "rds", &["h1"]).await;
    pool_of(&site, "vnc", &["v1"]).await;

    assert_invalid(
        site.admin
            .create_resource(&chef, &desktop("bureau", "nowhere"))
            .await,
        "pool",
        "pool: pool \"nowhere\" does not exist",
        "pool : le pool « nowhere » n'existe pas",
    );
    let app = |pool: &str| ResourceSpec {
        kind: Some("application".into()),
        program: Some("C:\\Program Files\\Compta\\compta.exe".into()),
        ..desktop("compta", pool)
    };
    assert_invalid(
        site.admin
            .create_resource(
                &chef,
                &ResourceSpec {
                    program: None,
                    ..app("rds")
                },
            )
            .await,
        "program",
        "program: is required",
        "program : est obligatoire",
    );
    assert_invalid(
        site.admin
            .create_resource(
                &chef,
                &ResourceSpec {
                    program: Some("x.exe".into()),
                    ..desktop("bureau", "rds")
                },
            )
            .await,
        "program",
        "program: must be empty for a desktop (only applications run a program)",
        "program : doit rester vide pour un bureau (seules les applications lancent un programme)",
    );
    assert_invalid(
        site.admin.create_resource(&chef, &app("vnc")).await,
        "program",
        "program: applies to RDP pools only, and pool \"vnc\" has VNC hosts",
        "program : ne s'applique qu'aux pools RDP, et le pool « vnc » contient des hôtes VNC",
    );
    assert_invalid(
        site.admin
            .create_resource(
                &chef,
                &ResourceSpec {
                    name_en: " ".into(),
                    ..desktop("bureau", "rds")
                },
            )
            .await,
        "name_en",
        "name_en: is required",
        "name_en : est obligatoire",
    );
    assert_invalid(
        site.admin
            .create_resource(
                &chef,
                &ResourceSpec {
                    kind: Some("web".into()),
                    ..desktop("bureau", "rds")
                },
            )
            .await,
        "kind",
        "kind: \"web\" is not desktop or application",
        "kind : « web » n'est pas une valeur acceptée (desktop ou application)",
    );
    let with_icon = |mime: &str, data: String| ResourceSpec {
        icon: Some(Icon {
            mime: mime.into(),
            data,
        }),
        ..desktop("bureau", "rds")
    };
    assert_invalid(
        site.admin
            .create_resource(&chef, &with_icon("image/gif", b64(b"GIF89a")))
            .await,
        "icon.mime",
        "icon.mime: \"image/gif\" is not image/png or image/svg+xml",
        "icon.mime : « image/gif » n'est pas une valeur acceptée (image/png ou image/svg+xml)",
    );
    assert_invalid(
        site.admin
            .create_resource(&chef, &with_icon("image/png", "%%%".into()))
            .await,
        "icon.data",
        "icon.data: is not valid base64",
        "icon.data : n'est pas du base64 valide",
    );
    assert_invalid(
        site.admin
            .create_resource(&chef, &with_icon("image/png", b64(b"<svg/>")))
            .await,
        "icon.data",
        "icon.data: does not hold a PNG image",
        "icon.data : ne contient pas une image PNG",
    );
    assert_invalid(
        site.admin
            .create_resource(&chef, &with_icon("image/svg+xml", b64(PNG)))
            .await,
        "icon.data",
        "icon.data: does not hold a SVG image",
        "icon.data : ne contient pas une image SVG",
    );
    let mut big = PNG.to_vec();
    big.resize(64 * 1024 + 1, 0);
    assert_invalid(
        site.admin
            .create_resource(&chef, &with_icon("image/png", b64(&big)))
            .await,
        "icon.data",
        "icon.data: must be at most 64 KiB once decoded",
        "icon.data : doit faire au plus 64 Kio une fois décodée",
    );
    big.truncate(64 * 1024);
    let view = site
        .admin
        .create_resource(&chef, &with_icon("image/png", b64(&big)))
        .await
        .unwrap();
    assert_eq!(view.icon.unwrap().data.len(), b64(&big).len());
    let svg = b64(b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    let view = site
        .admin
        .put_resource(&chef, "bureau", &with_icon("image/svg+xml", svg.clone()))
        .await
        .unwrap();
    assert_eq!(
        view.icon.as_ref().map(|icon| icon.mime.as_str()),
        Some("image/svg+xml")
    );
    // The icon lives in the resource's settings document.
    let raw = site
        .store()
        .get_resource_settings(&ResourceId::new("bureau"))
        .await
        .unwrap()
        .unwrap();
    assert!(raw.contains(&svg), "{raw}");
    // An application on the RDP pool; then a VNC host may no longer join that pool.
    let view = site
        .admin
        .create_resource(&chef, &app("rds"))
        .await
        .unwrap();
    assert_eq!(view.kind, "application");
    assert_invalid(
        site.admin
            .put_pool(
                &chef,
                "rds",
                &PoolSpec {
                    hosts: vec!["v1".into()],
                    ..PoolSpec::default()
                },
            )
            .await,
        "hosts[0]",
        "hosts[0]: pool \"rds\" publishes the application \"compta\", which needs RDP hosts",
        "hosts[0] : le pool « rds » publie l'application « compta », qui demande des hôtes RDP",
    );
    // Nor may its RDP host turn into a VNC one.
    assert_invalid(
        site.admin
            .put_host(
                &chef,
                "h1",
                &HostSpec {
                    protocol: "vnc".into(),
                    ..vnc_host("h1")
                },
            )
            .await,
        "protocol",
        "protocol: pool \"rds\" publishes the application \"compta\", which needs RDP hosts",
        "protocol : le pool « rds » publie l'application « compta », qui demande des hôtes RDP",
    );
    // A body whose id differs from the URL's is refused.
    assert_invalid(
        site.admin
            .put_resource(&chef, "autre", &desktop("bureau", "rds"))
            .await,
        "id",
        "id: must match the URL (\"autre\")",
        "id : doit correspondre à l'URL (« autre »)",
    );
}

#[tokio::test]
async fn user_group_entitlement_and_policy_validation_messages() {
    let site = sqlite_site(false).await;
    let chef = admin();
    assert_invalid(
        site.admin.create_user(&chef, &user("jean dupont")).await,
        "login",
        "login: \"jean dupont\" is not a login: use 1 to 64 characters among A-Z, a-z, 0-9, ., _, @ and -",
        "login : « jean dupont » n'est pas un identifiant de connexion : 1 à 64 caractères parmi A-Z, a-z, 0-9, ., _, @ et -",
    );
    assert_invalid(
        site.admin
            .create_user(
                &chef,
                &UserSpec {
                    password: Some("court".into()),
                    ..user("jean")
                },
            )
            .await,
        "password",
        "password: must be at least 12 characters",
        "password : doit faire au moins 12 caractères",
    );
    assert_invalid(
        site.admin
            .create_user(
                &chef,
                &UserSpec {
                    roles: vec!["user".into(), "root".into()],
                    ..user("jean")
                },
            )
            .await,
        "roles[1]",
        "roles[1]: \"root\" is not user, helpdesk or admin",
        "roles[1] : « root » n'est pas une valeur acceptée (user, helpdesk ou admin)",
    );
    assert_invalid(
        site.admin
            .create_user(
                &chef,
                &UserSpec {
                    groups: vec!["compta".into()],
                    ..user("jean")
                },
            )
            .await,
        "groups[0]",
        "groups[0]: group \"compta\" does not exist",
        "groups[0] : le groupe « compta » n'existe pas",
    );
    assert!(
        site.store()
            .get_user_by_login("jean")
            .await
            .unwrap()
            .is_none()
    );
    assert_invalid(
        site.admin
            .put_group(
                &chef,
                "compta",
                &GroupSpec {
                    id: "rh".into(),
                    ..GroupSpec::default()
                },
            )
            .await,
        "id",
        "id: must match the URL (\"compta\")",
        "id : doit correspondre à l'URL (« compta »)",
    );
    assert_invalid(
        site.admin
            .grant(
                &chef,
                &EntitlementSpec {
                    user: Some("jean".into()),
                    group: Some("compta".into()),
                    resource: "bureau".into(),
                },
            )
            .await,
        "user",
        "user: give exactly one of user and group",
        "user : indiquez soit user, soit group",
    );
    assert_invalid(
        site.admin
            .grant(
                &chef,
                &EntitlementSpec {
                    user: Some("jean".into()),
                    resource: "bureau".into(),
                    ..EntitlementSpec::default()
                },
            )
            .await,
        "user",
        "user: user \"jean\" does not exist",
        "user : l'utilisateur « jean » n'existe pas",
    );
    site.admin.create_user(&chef, &user("jean")).await.unwrap();
    assert_invalid(
        site.admin
            .grant(
                &chef,
                &EntitlementSpec {
                    user: Some("jean".into()),
                    resource: "bureau".into(),
                    ..EntitlementSpec::default()
                },
            )
            .await,
        "resource",
        "resource: resource \"bureau\" does not exist",
        "resource : la ressource « bureau » n'existe pas",
    );
    site.admin
        .put_group(&chef, "compta", &GroupSpec::default())
        .await
        .unwrap();
    let site_ref = &site;
    let policy = |spec: PolicySpec| async move {
        site_ref
            .admin
            .put_policy(&admin(), "group", "compta", &spec)
            .await
    };
    assert_invalid(
        policy(PolicySpec {
            allowed_hours: Some(vec![
                "mon-fri 07:00-19:00".into(),
                "mon-fry 07:00-19:00".into(),
            ]),
            ..PolicySpec::default()
        })
        .await,
        "allowed_hours[1]",
        "allowed_hours[1]: \"mon-fry 07:00-19:00\" is not like \"mon-fri 07:00-19:00\": unknown day \"fry\" (mon…sun or lun…dim)",
        "allowed_hours[1] : « mon-fry 07:00-19:00 » n'est pas de la forme « lun-ven 07:00-19:00 » : jour « fry » inconnu (lun…dim ou mon…sun)",
    );
    assert_invalid(
        policy(PolicySpec {
            allowed_hours: Some(vec!["lun-ven 7:00-25:00".into()]),
            ..PolicySpec::default()
        })
        .await,
        "allowed_hours[0]",
        "allowed_hours[0]: \"lun-ven 7:00-25:00\" is not like \"mon-fri 07:00-19:00\": \"25:00\" is not a time from 00:00 to 24:00",
        "allowed_hours[0] : « lun-ven 7:00-25:00 » n'est pas de la forme « lun-ven 07:00-19:00 » : « 25:00 » n'est pas une heure de 00:00 à 24:00",
    );
    assert_invalid(
        policy(PolicySpec {
            allowed_hours: Some(vec!["07:00-19:00".into()]),
            ..PolicySpec::default()
        })
        .await,
        "allowed_hours[0]",
        "allowed_hours[0]: \"07:00-19:00\" is not like \"mon-fri 07:00-19:00\": expected days, a space, then start-end",
        "allowed_hours[0] : « 07:00-19:00 » n'est pas de la forme « lun-ven 07:00-19:00 » : attendu : des jours, une espace, puis début-fin",
    );
    assert_invalid(
        policy(PolicySpec {
            max_bandwidth_kbps: Some(10),
            ..PolicySpec::default()
        })
        .await,
        "max_bandwidth_kbps",
        "max_bandwidth_kbps: must be 0 (unlimited) or 64-10000000",
        "max_bandwidth_kbps : doit être 0 (illimité) ou entre 64 et 10000000",
    );
    assert_invalid(
        policy(PolicySpec {
            idle_timeout_secs: Some(30),
            ..PolicySpec::default()
        })
        .await,
        "idle_timeout_secs",
        "idle_timeout_secs: must be 0 (unlimited) or 60-2592000",
        "idle_timeout_secs : doit être 0 (illimité) ou entre 60 et 2592000",
    );
    assert_invalid(
        policy(PolicySpec {
            disconnected_keep_secs: Some(-5),
            ..PolicySpec::default()
        })
        .await,
        "disconnected_keep_secs",
        "disconnected_keep_secs: must be 0-2592000",
        "disconnected_keep_secs : doit être entre 0 et 2592000",
    );
    assert_invalid(
        site.admin
            .put_policy(&chef, "team", "compta", &PolicySpec::default())
            .await,
        "scope",
        "scope: \"team\" is not group or resource",
        "scope : « team » n'est pas une valeur acceptée (group ou resource)",
    );
    let error = site
        .admin
        .put_policy(&chef, "resource", "absent", &PolicySpec::default())
        .await
        .unwrap_err();
    assert_eq!(error.http_status(), 404);
    assert_eq!(
        error.message(Lang::Fr),
        "la ressource « absent » n'existe pas"
    );
    assert_invalid(
        site.admin
            .set_licence_capacity(&chef, &LicenceSpec { capacity: Some(-1) })
            .await,
        "capacity",
        "capacity: must be 0-1000000",
        "capacity : doit être entre 0 et 1000000",
    );
    assert_invalid(
        site.admin
            .set_licence_capacity(&chef, &LicenceSpec { capacity: None })
            .await,
        "capacity",
        "capacity: is required",
        "capacity : est obligatoire",
    );
}

async fn passwords_are_sealed_at_rest(site: &Site) {
    let chef = admin();
    let plaintext = "Mot de passe RDP 1!";
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    let raw = site
        .store()
        .get_host_settings(&HostId::new("h1"))
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.contains(plaintext), "{raw}");
    let stored: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let sealed = stored["password"].as_str().unwrap().to_string();
    assert!(sealed.starts_with("enc:v1:"), "{sealed}");
    assert_eq!(site.key.decrypt(&sealed).unwrap().expose(), plaintext);
    assert_eq!(stored["username"], "svc-bascule");
    let settings = bascule_admin::HostSettings::from_json(&raw).unwrap();
    assert_eq!(
        settings.open_password(&site.key).unwrap().unwrap().expose(),
        plaintext
    );

    // The views say `password_set` and never carry the password, sealed or not.
    let view = site.admin.get_host(&chef, "h1").await.unwrap();
    assert!(view.password_set);
    let list = serde_json::to_string(&site.admin.list_hosts(&chef).await.unwrap()).unwrap();
    let one = serde_json::to_string(&view).unwrap();
    for text in [&list, &one] {
        assert!(
            !text.contains(plaintext) && !text.contains("enc:v1:"),
            "{text}"
        );
        assert!(text.contains("\"password_set\":true"), "{text}");
    }

    // A put without a password keeps the sealed one as it was; a new password is sealed anew.
    let keep = HostSpec {
        password: None,
        name: "Renommé".into(),
        ..rdp_host("h1")
    };
    site.admin.put_host(&chef, "h1", &keep).await.unwrap();
    let raw = site
        .store()
        .get_host_settings(&HostId::new("h1"))
        .await
        .unwrap()
        .unwrap();
    assert!(raw.contains(&sealed));
    let change = HostSpec {
        password: Some("Autre secret 2?".into()),
        ..rdp_host("h1")
    };
    site.admin.put_host(&chef, "h1", &change).await.unwrap();
    let raw = site
        .store()
        .get_host_settings(&HostId::new("h1"))
        .await
        .unwrap()
        .unwrap();
    let settings = bascule_admin::HostSettings::from_json(&raw).unwrap();
    assert_eq!(
        settings.open_password(&site.key).unwrap().unwrap().expose(),
        "Autre secret 2?"
    );
    assert!(!raw.contains("Autre secret"));

    // A VNC password is sealed too, and "" removes it.
    let vnc = HostSpec {
        password: Some("vnc-secret".into()),
        ..vnc_host("v1")
    };
    site.admin.put_host(&chef, "v1", &vnc).await.unwrap();
    let raw = site
        .store()
        .get_host_settings(&HostId::new("v1"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        raw.contains("enc:v1:") && !raw.contains("vnc-secret"),
        "{raw}"
    );
    let clear = HostSpec {
        password: Some(String::new()),
        ..vnc_host("v1")
    };
    let view = site.admin.put_host(&chef, "v1", &clear).await.unwrap();
    assert!(!view.password_set);
    let raw = site
        .store()
        .get_host_settings(&HostId::new("v1"))
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.contains("enc:v1:"), "{raw}");

    // User passwords are argon2id hashes; views never carry them.
    let view = site.admin.create_user(&chef, &user("jean")).await.unwrap();
    assert!(view.password_set);
    let auth = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    let hash = auth.password_hash.unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let parsed = argon2::PasswordHash::new(&hash).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"un mot de passe long", &parsed)
            .is_ok()
    );
    let text = serde_json::to_string(&site.admin.list_users(&chef).await.unwrap()).unwrap();
    assert!(
        !text.contains("argon2") && !text.contains("un mot de passe"),
        "{text}"
    );
    site.admin
        .set_user_password(
            &chef,
            "jean",
            &PasswordSpec {
                password: "nouveau mot de passe".into(),
            },
        )
        .await
        .unwrap();
    let auth = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    let parsed = argon2::PasswordHash::new(auth.password_hash.as_deref().unwrap()).unwrap();
    assert!(
        argon2::Argon2::default()
            .verify_password(b"nouveau mot de passe", &parsed)
            .is_ok()
    );
}

async fn roles_are_enforced_and_refusals_audited(site: &Site) {
    let chef = admin();
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    site.admin.create_user(&chef, &user("jean")).await.unwrap();
    let support = helpdesk();
    let agent = plain_user();

    // The helpdesk reads everything and resets TOTP, but changes neither inventory nor access.
    assert_eq!(site.admin.list_hosts(&support).await.unwrap().len(), 1);
    assert_eq!(site.admin.list_users(&support).await.unwrap().len(), 1);
    assert!(site.admin.licences(&support).await.is_ok());
    assert!(site.admin.list_sessions(&support).await.is_ok());
    assert!(site.admin.reset_totp(&support, "jean").await.is_ok());
    let forbidden: Vec<(&str, Result<(), AdminError>)> = vec![
        (
            "host.put",
            site.admin
                .put_host(&support, "h2", &rdp_host("h2"))
                .await
                .map(drop),
        ),
        (
            "host.drain",
            site.admin
                .set_draining(&support, "h1", true)
                .await
                .map(drop),
        ),
        ("host.delete", site.admin.delete_host(&support, "h1").await),
        (
            "pool.put",
            site.admin
                .put_pool(&support, "p", &PoolSpec::default())
                .await
                .map(drop),
        ),
        (
            "user.create",
            site.admin
                .create_user(&support, &user("paul"))
                .await
                .map(drop),
        ),
        (
            "user.disable",
            site.admin
                .set_user_enabled(&support, "jean", false)
                .await
                .map(drop),
        ),
        (
            "user.password",
            site.admin
                .set_user_password(
                    &support,
                    "jean",
                    &PasswordSpec {
                        password: "x".repeat(20),
                    },
                )
                .await,
        ),
        (
            "licence.set",
            site.admin
                .set_licence_capacity(&support, &LicenceSpec { capacity: Some(9) })
                .await
                .map(drop),
        ),
        (
            "policy.put",
            site.admin
                .put_policy(&support, "group", "g", &PolicySpec::default())
                .await
                .map(drop),
        ),
    ];
    for (action, result) in forbidden {
        let error = result.expect_err(action);
        assert!(
            matches!(error, AdminError::Forbidden),
            "{action}: {error:?}"
        );
        assert_eq!(error.http_status(), 403);
        assert_eq!(
            error.message(Lang::Fr),
            "vos rôles ne permettent pas cette action"
        );
        assert_eq!(
            error.message(Lang::En),
            "your roles do not allow this action"
        );
        let entry = site
            .audit()
            .await
            .into_iter()
            .rev()
            .find(|entry| entry.action == action)
            .unwrap();
        assert_eq!(entry.actor, "support");
        assert_eq!(entry.outcome, "refused: forbidden");
        assert_eq!(entry.address.as_deref(), Some("192.0.2.7"));
    }
    assert!(
        site.store()
            .get_host(&HostId::new("h2"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(site.store().licence_capacity().await.unwrap(), 0);

    // A plain user sees nothing, and cannot reset a TOTP.
    assert!(matches!(
        site.admin.list_hosts(&agent).await,
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        site.admin.get_user(&agent, "jean").await,
        Err(AdminError::Forbidden)
    ));
    assert!(matches!(
        site.admin.reset_totp(&agent, "jean").await,
        Err(AdminError::Forbidden)
    ));
    let entry = site.last_audit().await;
    assert_eq!(
        (
            entry.actor.as_str(),
            entry.action.as_str(),
            entry.target.as_str(),
            entry.outcome.as_str()
        ),
        ("agent", "user.totp_reset", "jean", "refused: forbidden")
    );
}

async fn audit_records_success_and_refusal(site: &Site) {
    let chef = admin();
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    let _ = site
        .admin
        .put_host(
            &chef,
            "h1",
            &HostSpec {
                port: Some(0),
                ..rdp_host("h1")
            },
        )
        .await
        .unwrap_err();
    pool_of(site, "rds", &["h1"]).await;
    let _ = site.admin.delete_host(&chef, "h1").await.unwrap_err();
    site.admin.set_draining(&chef, "h1", true).await.unwrap();
    site.admin.set_draining(&chef, "h1", false).await.unwrap();
    let _ = site.admin.delete_pool(&chef, "absent").await.unwrap_err();
    let entries = site.audit().await;
    let seen: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|entry| {
            (
                entry.action.as_str(),
                entry.target.as_str(),
                entry.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("host.put", "h1", "ok"),
            ("host.put", "h1", "refused: invalid (port: out_of_range)"),
            ("pool.put", "rds", "ok"),
            ("host.delete", "h1", "refused: conflict"),
            ("host.drain", "h1", "ok"),
            ("host.undrain", "h1", "ok"),
            ("pool.delete", "absent", "refused: not_found"),
        ]
    );
    for entry in &entries {
        assert_eq!(entry.actor, "chef");
        assert_eq!(entry.address.as_deref(), Some("192.0.2.7"));
        assert!(entry.at.unix_seconds() > 1_700_000_000);
    }
}

async fn deletions_refuse_with_the_reason(site: &Site) {
    let chef = admin();
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    site.admin
        .put_host(&chef, "h2", &rdp_host("h2"))
        .await
        .unwrap();
    pool_of(site, "rds", &["h1"]).await;
    pool_of(site, "secours", &["h1", "h2"]).await;
    site.admin
        .put_resource(&chef, "bureau", &desktop("bureau", "rds"))
        .await
        .unwrap();
    site.admin
        .put_group(&chef, "compta", &GroupSpec::default())
        .await
        .unwrap();
    site.admin.create_user(&chef, &user("jean")).await.unwrap();

    let error = site.admin.delete_host(&chef, "h1").await.unwrap_err();
    assert_eq!(error.http_status(), 409);
    assert_eq!(
        error.message(Lang::En),
        "host \"h1\" is in pools \"rds\" and \"secours\": take it out first"
    );
    assert_eq!(
        error.message(Lang::Fr),
        "l'hôte « h1 » fait partie des pools « rds » et « secours » : retirez-l'en d'abord"
    );
    let error = site.admin.delete_pool(&chef, "rds").await.unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "pool \"rds\" serves resource \"bureau\": delete them or move them to another pool first"
    );
    assert_eq!(
        error.message(Lang::Fr),
        "le pool « rds » sert la ressource « bureau » : supprimez-les ou changez leur pool d'abord"
    );

    // A live session on h2 blocks its deletion even once it left every pool.
    site.admin
        .put_pool(&chef, "secours", &PoolSpec::default())
        .await
        .unwrap();
    site.store().set_licence_capacity(10).await.unwrap();
    let session = SessionRecord::start(
        SessionId::new("s1"),
        UserId::new("jean"),
        ResourceId::new("bureau"),
        HostId::new("h2"),
        Timestamp::from_unix_seconds(1_772_000_000),
    );
    site.store()
        .record_session_start(&session, 10)
        .await
        .unwrap();
    let error = site.admin.delete_host(&chef, "h2").await.unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "host \"h2\" still has 1 live session: drain it and wait for them to end"
    );
    assert_eq!(
        error.message(Lang::Fr),
        "l'hôte « h2 » a encore 1 session en cours : mettez-le en mode drainage et attendez qu'elles se terminent"
    );
    let error = site
        .admin
        .delete_resource(&chef, "bureau")
        .await
        .unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "resource \"bureau\" still has 1 live session(s): wait for them to end"
    );
    assert_eq!(
        site.admin
            .get_host(&chef, "h2")
            .await
            .unwrap()
            .live_sessions,
        1
    );

    // A group named by an entitlement and a policy stays until they go.
    site.admin
        .grant(
            &chef,
            &EntitlementSpec {
                group: Some("compta".into()),
                resource: "bureau".into(),
                ..EntitlementSpec::default()
            },
        )
        .await
        .unwrap();
    site.admin
        .put_policy(
            &chef,
            "group",
            "compta",
            &PolicySpec {
                file_transfer: Some(true),
                ..PolicySpec::default()
            },
        )
        .await
        .unwrap();
    let error = site.admin.delete_group(&chef, "compta").await.unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "group \"compta\" is still used by 1 entitlement(s) and a policy: remove them first"
    );
    assert_eq!(
        error.message(Lang::Fr),
        "le groupe « compta » est encore utilisé par 1 droit(s) d'accès et une politique : retirez-les d'abord"
    );
    site.admin
        .delete_policy(&chef, "group", "compta")
        .await
        .unwrap();
    site.admin
        .revoke(
            &chef,
            &EntitlementSpec {
                group: Some("compta".into()),
                resource: "bureau".into(),
                ..EntitlementSpec::default()
            },
        )
        .await
        .unwrap();
    site.admin.delete_group(&chef, "compta").await.unwrap();
    let error = site.admin.get_group(&chef, "compta").await.unwrap_err();
    assert_eq!(error.http_status(), 404);
    assert_eq!(error.message(Lang::En), "group \"compta\" does not exist");

    // Once emptied and unused, a pool and a host go.
    site.admin.delete_pool(&chef, "secours").await.unwrap();
    assert!(
        site.store()
            .get_pool(&bascule_domain::id::PoolId::new("secours"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn full_flow_and_effective_policy(site: &Site) {
    let chef = admin();
    site.admin
        .put_group(
            &chef,
            "compta",
            &GroupSpec {
                name: "Comptabilité".into(),
                ..GroupSpec::default()
            },
        )
        .await
        .unwrap();
    site.admin
        .put_group(&chef, "rh", &GroupSpec::default())
        .await
        .unwrap();
    let jean = site
        .admin
        .create_user(
            &chef,
            &UserSpec {
                groups: vec!["compta".into()],
                ..user("jean.dupont@interne")
            },
        )
        .await
        .unwrap();
    assert_eq!(jean.groups, vec!["compta"]);
    assert_eq!(jean.roles, vec!["user"]);
    assert_eq!(jean.source, "local");
    let group = site
        .admin
        .add_member(&chef, "rh", "jean.dupont@interne")
        .await
        .unwrap();
    assert_eq!(group.members, vec!["jean.dupont@interne"]);
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    pool_of(site, "rds", &["h1"]).await;
    site.admin
        .put_resource(&chef, "bureau", &desktop("bureau", "rds"))
        .await
        .unwrap();
    let granted = site
        .admin
        .grant(
            &chef,
            &EntitlementSpec {
                group: Some("compta".into()),
                resource: "bureau".into(),
                ..EntitlementSpec::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(granted.group.as_deref(), Some("compta"));
    site.admin
        .put_policy(
            &chef,
            "group",
            "compta",
            &PolicySpec {
                clipboard_out: Some(false),
                max_bandwidth_kbps: Some(2000),
                allowed_hours: Some(vec!["lun-ven 07:00-19:00".into()]),
                ..PolicySpec::default()
            },
        )
        .await
        .unwrap();
    site.admin
        .put_policy(
            &chef,
            "group",
            "rh",
            &PolicySpec {
                max_bandwidth_kbps: Some(0),
                allowed_hours: Some(vec!["sat 08:00-12:00".into()]),
                ..PolicySpec::default()
            },
        )
        .await
        .unwrap();
    let view = site
        .admin
        .put_policy(
            &chef,
            "resource",
            "bureau",
            &PolicySpec {
                file_transfer: Some(true),
                idle_timeout_secs: Some(900),
                ..PolicySpec::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(view.idle_timeout_secs, Some(900));
    let stored = site
        .admin
        .get_policy(&chef, "group", "compta")
        .await
        .unwrap();
    assert_eq!(
        stored.allowed_hours,
        Some(vec!["mon-fri 07:00-19:00".to_string()])
    );
    assert_eq!(stored.max_bandwidth_kbps, Some(2000));
    assert_eq!(stored.clipboard_in, None);
    assert_eq!(site.admin.list_policies(&chef).await.unwrap().len(), 3);

    let effective = site
        .admin
        .effective_policy(&helpdesk(), "jean.dupont@interne", "bureau")
        .await
        .unwrap();
    assert!(effective.entitled);
    assert_eq!(
        (
            effective.clipboard_in.value,
            effective.clipboard_in.source.as_str()
        ),
        (true, "default")
    );
    assert_eq!(
        (
            effective.clipboard_out.value,
            effective.clipboard_out.source.as_str()
        ),
        (false, "group:compta")
    );
    assert_eq!(
        (
            effective.file_transfer.value,
            effective.file_transfer.source.as_str()
        ),
        (true, "resource")
    );
    assert_eq!(
        (
            effective.max_bandwidth_kbps.value,
            effective.max_bandwidth_kbps.source.as_str()
        ),
        (0, "group:rh")
    );
    assert_eq!(
        (
            effective.idle_timeout_secs.value,
            effective.idle_timeout_secs.source.as_str()
        ),
        (900, "resource")
    );
    assert_eq!(
        (
            effective.disconnected_keep_secs.value,
            effective.disconnected_keep_secs.source.as_str()
        ),
        (3600, "default")
    );
    assert_eq!(
        effective.allowed_hours.value,
        vec![
            "mon-fri 07:00-19:00".to_string(),
            "sat 08:00-12:00".to_string()
        ]
    );
    assert_eq!(effective.allowed_hours.source, "groups:compta,rh");

    // Out of compta, the entitlement and its policy no longer apply.
    site.admin
        .remove_member(&chef, "compta", "jean.dupont@interne")
        .await
        .unwrap();
    let effective = site
        .admin
        .effective_policy(&chef, "jean.dupont@interne", "bureau")
        .await
        .unwrap();
    assert!(!effective.entitled);
    assert_eq!(effective.clipboard_out.source, "default");
    let error = site
        .admin
        .remove_member(&chef, "compta", "jean.dupont@interne")
        .await
        .unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "user \"jean.dupont@interne\" is not a member of this group"
    );
    let error = site
        .admin
        .effective_policy(&chef, "personne", "bureau")
        .await
        .unwrap_err();
    assert_eq!(
        error.message(Lang::Fr),
        "l'utilisateur « personne » n'existe pas"
    );

    // A direct entitlement, listed with the login; deleting the user revokes it.
    site.admin
        .grant(
            &chef,
            &EntitlementSpec {
                user: Some("jean.dupont@interne".into()),
                resource: "bureau".into(),
                ..EntitlementSpec::default()
            },
        )
        .await
        .unwrap();
    let list = site.admin.list_entitlements(&chef).await.unwrap();
    assert!(
        list.iter()
            .any(|entitlement| entitlement.user.as_deref() == Some("jean.dupont@interne"))
    );
    site.admin
        .delete_user(&chef, "jean.dupont@interne")
        .await
        .unwrap();
    let list = site.admin.list_entitlements(&chef).await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].group.as_deref(), Some("compta"));
    let error = site
        .admin
        .revoke(
            &chef,
            &EntitlementSpec {
                group: Some("rh".into()),
                resource: "bureau".into(),
                ..EntitlementSpec::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.message(Lang::En),
        "entitlement \"group:rh/bureau\" does not exist"
    );

    // Deleting the resource takes its own policy with it.
    site.admin.delete_resource(&chef, "bureau").await.unwrap();
    assert!(
        site.admin
            .get_policy(&chef, "resource", "bureau")
            .await
            .is_err()
    );
    assert_eq!(site.admin.list_entitlements(&chef).await.unwrap().len(), 0);
}

on_both_backends!(
    passwords_are_sealed_at_rest,
    roles_are_enforced_and_refusals_audited,
    audit_records_success_and_refusal,
    deletions_refuse_with_the_reason,
    full_flow_and_effective_policy,
    accounts_totp_and_self_protection,
    hosts_keep_health_and_drain,
    licences_and_sessions,
);

async fn accounts_totp_and_self_protection(site: &Site) {
    let chef = admin();
    site.admin
        .create_user(
            &chef,
            &UserSpec {
                roles: vec!["admin".into()],
                password: None,
                ..user("chef")
            },
        )
        .await
        .unwrap();
    let view = site.admin.create_user(&chef, &user("jean")).await.unwrap();
    assert!(!view.totp_enrolled);
    let mut auth = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    auth.totp_secret = Some("enc:v1:sealed-totp".into());
    auth.totp_confirmed = true;
    site.store()
        .set_user_auth(&UserId::new("jean"), &auth)
        .await
        .unwrap();
    let view = site.admin.get_user(&chef, "jean").await.unwrap();
    assert!(view.totp_enrolled);
    let text = serde_json::to_string(&view).unwrap();
    assert!(!text.contains("sealed-totp"), "{text}");

    let view = site.admin.reset_totp(&helpdesk(), "jean").await.unwrap();
    assert!(!view.totp_enrolled);
    let auth = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.totp_secret, None);
    assert!(!auth.totp_confirmed);
    assert!(
        auth.password_hash.is_some(),
        "a TOTP reset keeps the password"
    );
    let entry = site.last_audit().await;
    assert_eq!(
        (
            entry.action.as_str(),
            entry.actor.as_str(),
            entry.outcome.as_str()
        ),
        ("user.totp_reset", "support", "ok")
    );

    let view = site
        .admin
        .set_user_enabled(&chef, "jean", false)
        .await
        .unwrap();
    assert!(!view.enabled);
    assert!(
        !site
            .store()
            .get_user_by_login("jean")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        site.admin
            .set_user_enabled(&chef, "jean", true)
            .await
            .unwrap()
            .enabled
    );

    // One's own account: no delete, no disable, no demotion.
    for result in [
        site.admin.delete_user(&chef, "chef").await,
        site.admin
            .set_user_enabled(&chef, "chef", false)
            .await
            .map(drop),
        site.admin
            .put_user(
                &chef,
                "chef",
                &UserSpec {
                    roles: vec!["helpdesk".into()],
                    password: None,
                    ..user("chef")
                },
            )
            .await
            .map(drop),
    ] {
        let error = result.unwrap_err();
        assert_eq!(error.http_status(), 409);
        assert_eq!(
            error.message(Lang::En),
            "you cannot delete or disable your own account, nor take the admin role from it"
        );
        assert_eq!(
            error.message(Lang::Fr),
            "vous ne pouvez ni supprimer ni désactiver votre propre compte, ni lui retirer le rôle admin"
        );
    }
    assert!(
        site.store()
            .get_user_by_login("chef")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );

    // A directory account has no local password to set.
    let mut directory = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    directory.source = AuthSource::Directory;
    directory.password_hash = None;
    site.store()
        .set_user_auth(&UserId::new("jean"), &directory)
        .await
        .unwrap();
    assert_invalid(
        site.admin
            .set_user_password(
                &chef,
                "jean",
                &PasswordSpec {
                    password: "un autre mot de passe".into(),
                },
            )
            .await,
        "password",
        "password: this account comes from the directory: its password is changed there",
        "password : ce compte vient de l'annuaire : son mot de passe se change dans l'annuaire",
    );
    let view = site.admin.get_user(&chef, "jean").await.unwrap();
    assert_eq!(view.source, "directory");
    assert!(!view.password_set);
    // Putting the user again keeps its login material.
    site.admin
        .put_user(
            &chef,
            "jean",
            &UserSpec {
                password: None,
                display_name: "Jean D.".into(),
                ..user("jean")
            },
        )
        .await
        .unwrap();
    let auth: UserAuth = site
        .store()
        .get_user_auth(&UserId::new("jean"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(auth.source, AuthSource::Directory);
    assert_eq!(
        site.admin
            .get_user(&chef, "jean")
            .await
            .unwrap()
            .display_name,
        "Jean D."
    );
    let error = site
        .admin
        .create_user(&chef, &user("jean"))
        .await
        .unwrap_err();
    assert_eq!(
        error.message(Lang::Fr),
        "l'utilisateur « jean » existe déjà"
    );
    let error = site.admin.get_user(&chef, "paul").await.unwrap_err();
    assert_eq!(error.code(), "not_found");
}

async fn hosts_keep_health_and_drain(site: &Site) {
    let chef = admin();
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    let unhealthy = Health::Unhealthy {
        since: Timestamp::from_unix_seconds(1_772_000_000),
        reason: "connection refused".into(),
    };
    site.store()
        .set_host_health(&HostId::new("h1"), &unhealthy)
        .await
        .unwrap();
    let view = site
        .admin
        .put_host(
            &chef,
            "h1",
            &HostSpec {
                weight: Some(3),
                password: None,
                ..rdp_host("h1")
            },
        )
        .await
        .unwrap();
    assert_eq!(view.weight, 3);
    assert_eq!(view.health.state, "unhealthy");
    assert_eq!(view.health.since, Some(1_772_000_000));
    assert_eq!(view.health.reason.as_deref(), Some("connection refused"));
    let view = site.admin.set_draining(&chef, "h1", true).await.unwrap();
    assert!(view.draining);
    assert_eq!(view.health.state, "unhealthy");
    assert!(
        site.store()
            .get_host(&HostId::new("h1"))
            .await
            .unwrap()
            .unwrap()
            .draining
    );
    assert!(
        !site
            .admin
            .set_draining(&chef, "h1", false)
            .await
            .unwrap()
            .draining
    );
    let error = site
        .admin
        .set_draining(&chef, "h9", true)
        .await
        .unwrap_err();
    assert_eq!(error.message(Lang::En), "host \"h9\" does not exist");
    assert_eq!(error.message(Lang::Fr), "l'hôte « h9 » n'existe pas");
    assert_eq!(error.http_status(), 404);
}

async fn licences_and_sessions(site: &Site) {
    let chef = admin();
    let view = site.admin.licences(&chef).await.unwrap();
    assert_eq!((view.capacity, view.in_use, view.available), (0, 0, 0));
    let view = site
        .admin
        .set_licence_capacity(&chef, &LicenceSpec { capacity: Some(25) })
        .await
        .unwrap();
    assert_eq!((view.capacity, view.in_use, view.available), (25, 0, 25));
    site.admin
        .put_host(&chef, "h1", &rdp_host("h1"))
        .await
        .unwrap();
    pool_of(site, "rds", &["h1"]).await;
    site.admin
        .put_resource(&chef, "bureau", &desktop("bureau", "rds"))
        .await
        .unwrap();
    site.admin.create_user(&chef, &user("jean")).await.unwrap();
    let session = SessionRecord::start(
        SessionId::new("s1"),
        UserId::new("jean"),
        ResourceId::new("bureau"),
        HostId::new("h1"),
        Timestamp::from_unix_seconds(1_772_000_000),
    );
    site.store()
        .record_session_start(&session, 25)
        .await
        .unwrap();
    let view = site.admin.licences(&helpdesk()).await.unwrap();
    assert_eq!((view.capacity, view.in_use, view.available), (25, 1, 24));
    let sessions = site.admin.list_sessions(&helpdesk()).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].user, "jean");
    assert_eq!(sessions[0].host, "h1");
    assert_eq!(sessions[0].state, "starting");
    assert_eq!(sessions[0].started_at, 1_772_000_000);
    let entry = site
        .audit()
        .await
        .into_iter()
        .find(|entry| entry.action == "licence.set")
        .unwrap();
    assert_eq!(
        (entry.target.as_str(), entry.outcome.as_str()),
        ("25", "ok")
    );
}

#[tokio::test]
async fn a_helpdesk_actor_with_several_roles_gets_the_union() {
    let site = sqlite_site(false).await;
    let mut both = actor("double", Role::Helpdesk, Lang::En);
    both.roles.push(Role::Admin);
    assert!(
        site.admin
            .put_host(&both, "h1", &rdp_host("h1"))
            .await
            .is_ok()
    );
    let nobody = bascule_admin::Actor::new("personne", vec![]);
    assert!(matches!(
        site.admin.list_hosts(&nobody).await,
        Err(AdminError::Forbidden)
    ));
}
