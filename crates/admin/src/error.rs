//! Why a request was refused, with a stable code, an HTTP status and a message in French and in
//! English.
//!
//! Field-level problems are [`AdminError::Invalid`] with the field's name (as in the JSON body,
//! e.g. `port`, `hosts[1]`, `allowed_hours[0]`) and a [`Reason`]; the message reads
//! `port: must be 1-65535` in English and `port : doit être entre 1 et 65535` in French.

use bascule_domain::inventory::Protocol;
use bascule_store::StoreError;

use crate::spec::protocol_label;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The language of the messages shown to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Français (the default: Bascule's first users are French administrations).
    #[default]
    Fr,
    /// English.
    En,
}

impl Lang {
    /// The language a browser prefers, from its `Accept-Language` header: the first of `fr` or
    /// `en` it names, French if neither.
    pub fn from_accept_language(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("fr") {
                return Lang::Fr;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Fr
    }

    /// The language of a POSIX locale such as `LANG=en_GB.UTF-8`: English for `en…`, French
    /// otherwise.
    pub fn from_locale(locale: &str) -> Lang {
        if locale.to_ascii_lowercase().starts_with("en") {
            Lang::En
        } else {
            Lang::Fr
        }
    }

    fn pick<'a>(self, fr: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// Quotes a value the way each language does: `"x"` or `« x »`.
pub(crate) fn quote(lang: Lang, value: &str) -> String {
    match lang {
        Lang::Fr => format!("« {value} »"),
        Lang::En => format!("\"{value}\""),
    }
}

/// `"a", "b" and "c"` / `« a », « b » et « c »`.
fn quoted_list(lang: Lang, values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|value| quote(lang, value)).collect();
    join_last(&quoted, lang.pick(" et ", " and "))
}

/// Joins with `, ` and `last` before the final item.
fn join_last(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., end] => format!("{}{last}{end}", init.join(", ")),
    }
}

/// What kind of thing a message talks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A user account.
    User,
    /// A group of users.
    Group,
    /// A session host.
    Host,
    /// A pool of hosts.
    Pool,
    /// A published resource.
    Resource,
    /// An entitlement.
    Entitlement,
    /// A policy.
    Policy,
    /// A user's membership of a group.
    Membership,
}

impl Kind {
    /// A stable lowercase name (`host`, `pool`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Host => "host",
            Kind::Pool => "pool",
            Kind::Resource => "resource",
            Kind::Entitlement => "entitlement",
            Kind::Policy => "policy",
            Kind::Membership => "membership",
        }
    }

    /// The noun with its article in French, bare in English.
    fn noun(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Kind::User, Lang::Fr) => "l'utilisateur",
            (Kind::Group, Lang::Fr) => "le groupe",
            (Kind::Host, Lang::Fr) => "l'hôte",
            (Kind::Pool, Lang::Fr) => "le pool",
            (Kind::Resource, Lang::Fr) => "la ressource",
            (Kind::Entitlement, Lang::Fr) => "le droit d'accès",
            (Kind::Policy, Lang::Fr) => "la politique",
            (Kind::Membership, Lang::Fr) => "l'appartenance",
            (kind, Lang::En) => kind.as_str(),
        }
    }

    /// `host "h1" does not exist` / `l'hôte « h1 » n'existe pas`.
    fn does_not_exist(self, id: &str, lang: Lang) -> String {
        if self == Kind::Membership {
            return match lang {
                Lang::Fr => format!(
                    "l'utilisateur {} n'est pas membre de ce groupe",
                    quote(lang, id)
                ),
                Lang::En => format!("user {} is not a member of this group", quote(lang, id)),
            };
        }
        let noun = self.noun(lang);
        match lang {
            Lang::Fr => format!("{noun} {} n'existe pas", quote(lang, id)),
            Lang::En => format!("{noun} {} does not exist", quote(lang, id)),
        }
    }
}

/// The JSON type a field expects, for [`Reason::WrongType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonType {
    /// A string.
    Text,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// An array.
    List,
    /// An object.
    Object,
    /// Something else serde named.
    Other,
}

/// Why an allowed-hours window could not be read (inside [`Reason::BadHours`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HoursProblem {
    /// Not `days start-end`.
    Shape,
    /// A day name that is neither English nor French.
    UnknownDay(String),
    /// A time that is not `HH:MM` from 00:00 to 24:00.
    BadTime(String),
    /// The window starts and ends at the same minute.
    EmptyWindow,
}

impl HoursProblem {
    fn text(&self, lang: Lang) -> String {
        match (self, lang) {
            (HoursProblem::Shape, Lang::Fr) => {
                "attendu : des jours, une espace, puis début-fin".into()
            }
            (HoursProblem::Shape, Lang::En) => "expected days, a space, then start-end".into(),
            (HoursProblem::UnknownDay(day), Lang::Fr) => {
                format!("jour {} inconnu (lun…dim ou mon…sun)", quote(lang, day))
            }
            (HoursProblem::UnknownDay(day), Lang::En) => {
                format!("unknown day {} (mon…sun or lun…dim)", quote(lang, day))
            }
            (HoursProblem::BadTime(time), Lang::Fr) => {
                format!("{} n'est pas une heure de 00:00 à 24:00", quote(lang, time))
            }
            (HoursProblem::BadTime(time), Lang::En) => {
                format!("{} is not a time from 00:00 to 24:00", quote(lang, time))
            }
            (HoursProblem::EmptyWindow, Lang::Fr) => {
                "la plage commence et finit à la même heure".into()
            }
            (HoursProblem::EmptyWindow, Lang::En) => {
                "the window starts and ends at the same time".into()
            }
        }
    }
}

/// Why a field was refused. [`Reason::code`] is stable; [`Reason::text`] is for people.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The field is missing or empty.
    Required,
    /// Not an id (1-64 characters among `A-Z a-z 0-9 _ -`).
    BadId {
        /// The value given.
        value: String,
    },
    /// Not a login (1-64 characters among `A-Z a-z 0-9 . _ @ -`).
    BadLogin {
        /// The value given.
        value: String,
    },
    /// Longer than allowed.
    TooLong {
        /// The most characters allowed.
        max: usize,
    },
    /// Shorter than allowed.
    TooShort {
        /// The fewest characters allowed.
        min: usize,
    },
    /// Holds a control character (line break, tab, …).
    ControlCharacters,
    /// A number out of its range.
    OutOfRange {
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A number that must be 0 (unlimited) or in a range.
    ZeroOrRange {
        /// The smallest value allowed besides 0.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// Not one of the accepted words.
    NotOneOf {
        /// The value given.
        value: String,
        /// The accepted words.
        allowed: &'static [&'static str],
    },
    /// `accept-any` while the gateway refuses insecure certificate rules.
    InsecureCertificate,
    /// A setting of RDP hosts given for a VNC host.
    RdpOnly,
    /// `scancode` given for an RDP host.
    ScancodeVncOnly,
    /// A VNC host takes a password only.
    VncPasswordOnly,
    /// Service credentials of an RDP host need a username and a password.
    ServiceCredentialsNeeded,
    /// Pass-through credentials take no username nor password.
    PassthroughTakesNoCredentials,
    /// Neither a host name nor an IP address.
    BadAddress {
        /// The value given.
        value: String,
    },
    /// A reference to something that does not exist.
    UnknownReference {
        /// What kind of thing.
        kind: Kind,
        /// Its id (a login for users).
        id: String,
    },
    /// The same value twice in a list.
    Duplicate {
        /// The repeated value.
        value: String,
    },
    /// Two hosts of one pool would speak different protocols.
    MixedProtocols {
        /// The pool.
        pool: String,
        /// One host.
        host: String,
        /// Its protocol.
        protocol: Protocol,
        /// Another host of the pool.
        other: String,
        /// Its protocol.
        other_protocol: Protocol,
    },
    /// A setting of RDP resources on a pool of VNC hosts.
    NeedsRdpPool {
        /// The pool.
        pool: String,
    },
    /// A VNC host in a pool that publishes an application.
    PublishesApplication {
        /// The pool.
        pool: String,
        /// The application resource.
        resource: String,
    },
    /// A program for a desktop resource.
    DesktopTakesNoProgram,
    /// An icon larger than allowed once decoded.
    IconTooLarge {
        /// The limit in KiB.
        max_kib: usize,
    },
    /// Not base64.
    NotBase64,
    /// The icon's bytes are not of its declared type.
    IconMismatch {
        /// `PNG` or `SVG`.
        format: &'static str,
    },
    /// An allowed-hours window that cannot be read.
    BadHours {
        /// The text given.
        value: String,
        /// What is wrong with it.
        problem: HoursProblem,
    },
    /// A password for an account that logs in against the directory.
    DirectoryAccount,
    /// The body names another object than the URL.
    PathMismatch {
        /// The id in the URL.
        expected: String,
    },
    /// An entitlement names both a user and a group, or neither.
    SubjectChoice,
    /// A field the request type does not have.
    UnknownField {
        /// The fields it has.
        expected: Vec<String>,
    },
    /// The JSON value has the wrong type.
    WrongType {
        /// What was expected.
        expected: JsonType,
    },
}

impl Reason {
    /// A stable code for programs (`out_of_range`, `unknown_reference`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Required => "required",
            Reason::BadId { .. } => "bad_id",
            Reason::BadLogin { .. } => "bad_login",
            Reason::TooLong { .. } => "too_long",
            Reason::TooShort { .. } => "too_short",
            Reason::ControlCharacters => "control_characters",
            Reason::OutOfRange { .. } | Reason::ZeroOrRange { .. } => "out_of_range",
            Reason::NotOneOf { .. } => "not_one_of",
            Reason::InsecureCertificate => "insecure_certificate",
            Reason::RdpOnly => "rdp_only",
            Reason::ScancodeVncOnly => "vnc_only",
            Reason::VncPasswordOnly => "vnc_password_only",
            Reason::ServiceCredentialsNeeded => "credentials_needed",
            Reason::PassthroughTakesNoCredentials => "passthrough_takes_no_credentials",
            Reason::BadAddress { .. } => "bad_address",
            Reason::UnknownReference { .. } => "unknown_reference",
            Reason::Duplicate { .. } => "duplicate",
            Reason::MixedProtocols { .. } => "mixed_protocols",
            Reason::NeedsRdpPool { .. } => "needs_rdp_pool",
            Reason::PublishesApplication { .. } => "publishes_application",
            Reason::DesktopTakesNoProgram => "desktop_takes_no_program",
            Reason::IconTooLarge { .. } => "icon_too_large",
            Reason::NotBase64 => "not_base64",
            Reason::IconMismatch { .. } => "icon_mismatch",
            Reason::BadHours { .. } => "bad_hours",
            Reason::DirectoryAccount => "directory_account",
            Reason::PathMismatch { .. } => "path_mismatch",
            Reason::SubjectChoice => "subject_choice",
            Reason::UnknownField { .. } => "unknown_field",
            Reason::WrongType { .. } => "wrong_type",
        }
    }

    /// The reason, for a person, without the field's name.
    pub fn text(&self, lang: Lang) -> String {
        let q = |value: &str| quote(lang, value);
        match (self, lang) {
            (Reason::Required, Lang::Fr) => "est obligatoire".into(),
            (Reason::Required, Lang::En) => "is required".into(),
            (Reason::BadId { value }, Lang::Fr) => format!(
                "{} n'est pas un identifiant : 1 à 64 caractères parmi A-Z, a-z, 0-9, _ et -",
                q(value)
            ),
            (Reason::BadId { value }, Lang::En) => format!(
                "{} is not an id: use 1 to 64 characters among A-Z, a-z, 0-9, _ and -",
                q(value)
            ),
            (Reason::BadLogin { value }, Lang::Fr) => format!(
                "{} n'est pas un identifiant de connexion : 1 à 64 caractères parmi A-Z, a-z, 0-9, ., _, @ et -",
                q(value)
            ),
            (Reason::BadLogin { value }, Lang::En) => format!(
                "{} is not a login: use 1 to 64 characters among A-Z, a-z, 0-9, ., _, @ and -",
                q(value)
            ),
            (Reason::TooLong { max }, Lang::Fr) => format!("doit faire au plus {max} caractères"),
            (Reason::TooLong { max }, Lang::En) => format!("must be at most {max} characters"),
            (Reason::TooShort { min }, Lang::Fr) => format!("doit faire au moins {min} caractères"),
            (Reason::TooShort { min }, Lang::En) => format!("must be at least {min} characters"),
            (Reason::ControlCharacters, Lang::Fr) => {
                "ne doit pas contenir de caractères de contrôle (sauts de ligne, tabulations…)"
                    .into()
            }
            (Reason::ControlCharacters, Lang::En) => {
                "must not contain control characters (line breaks, tabs…)".into()
            }
            (Reason::OutOfRange { min, max }, Lang::Fr) => {
                format!("doit être entre {min} et {max}")
            }
            (Reason::OutOfRange { min, max }, Lang::En) => format!("must be {min}-{max}"),
            (Reason::ZeroOrRange { min, max }, Lang::Fr) => {
                format!("doit être 0 (illimité) ou entre {min} et {max}")
            }
            (Reason::ZeroOrRange { min, max }, Lang::En) => {
                format!("must be 0 (unlimited) or {min}-{max}")
            }
            (Reason::NotOneOf { value, allowed }, Lang::Fr) => {
                let allowed: Vec<String> = allowed.iter().map(|word| word.to_string()).collect();
                format!(
                    "{} n'est pas une valeur acceptée ({})",
                    q(value),
                    join_last(&allowed, " ou ")
                )
            }
            (Reason::NotOneOf { value, allowed }, Lang::En) => {
                let allowed: Vec<String> = allowed.iter().map(|word| word.to_string()).collect();
                format!("{} is not {}", q(value), join_last(&allowed, " or "))
            }
            (Reason::InsecureCertificate, Lang::Fr) => {
                "accept-any est refusé : cette passerelle n'est pas configurée avec allow_insecure_certificates".into()
            }
            (Reason::InsecureCertificate, Lang::En) => {
                "accept-any is refused: this gateway is not configured with allow_insecure_certificates".into()
            }
            (Reason::RdpOnly, Lang::Fr) => "ne s'applique qu'aux hôtes RDP".into(),
            (Reason::RdpOnly, Lang::En) => "applies to RDP hosts only".into(),
            (Reason::ScancodeVncOnly, Lang::Fr) => {
                "scancode ne s'applique qu'aux hôtes VNC (RDP envoie toujours des scancodes)".into()
            }
            (Reason::ScancodeVncOnly, Lang::En) => {
                "scancode applies to VNC hosts only (RDP always sends scancodes)".into()
            }
            (Reason::VncPasswordOnly, Lang::Fr) => {
                "un hôte VNC ne prend qu'un mot de passe, facultatif".into()
            }
            (Reason::VncPasswordOnly, Lang::En) => {
                "a VNC host takes an optional password only".into()
            }
            (Reason::ServiceCredentialsNeeded, Lang::Fr) => {
                "les identifiants de service d'un hôte RDP demandent un nom d'utilisateur et un mot de passe".into()
            }
            (Reason::ServiceCredentialsNeeded, Lang::En) => {
                "service credentials of an RDP host need a username and a password".into()
            }
            (Reason::PassthroughTakesNoCredentials, Lang::Fr) => {
                "doit rester vide avec les identifiants transmis (passthrough) : chaque utilisateur se connecte avec les siens".into()
            }
            (Reason::PassthroughTakesNoCredentials, Lang::En) => {
                "must be empty with passthrough credentials: each user logs in with their own".into()
            }
            (Reason::BadAddress { value }, Lang::Fr) => {
                format!("{} n'est ni un nom d'hôte ni une adresse IP", q(value))
            }
            (Reason::BadAddress { value }, Lang::En) => {
                format!("{} is neither a host name nor an IP address", q(value))
            }
            (Reason::UnknownReference { kind, id }, lang) => kind.does_not_exist(id, lang),
            (Reason::Duplicate { value }, Lang::Fr) => format!("{} figure deux fois", q(value)),
            (Reason::Duplicate { value }, Lang::En) => format!("{} is listed twice", q(value)),
            (
                Reason::MixedProtocols {
                    pool,
                    host,
                    protocol,
                    other,
                    other_protocol,
                },
                Lang::Fr,
            ) => format!(
                "l'hôte {} ({}) et l'hôte {} ({}) seraient dans le même pool {} : les hôtes d'un pool parlent un seul protocole",
                q(host),
                protocol_label(*protocol),
                q(other),
                protocol_label(*other_protocol),
                q(pool)
            ),
            (
                Reason::MixedProtocols {
                    pool,
                    host,
                    protocol,
                    other,
                    other_protocol,
                },
                Lang::En,
            ) => format!(
                "host {} ({}) and host {} ({}) would share pool {}: a pool's hosts speak one protocol",
                q(host),
                protocol_label(*protocol),
                q(other),
                protocol_label(*other_protocol),
                q(pool)
            ),
            (Reason::NeedsRdpPool { pool }, Lang::Fr) => format!(
                "ne s'applique qu'aux pools RDP, et le pool {} contient des hôtes VNC",
                q(pool)
            ),
            (Reason::NeedsRdpPool { pool }, Lang::En) => format!(
                "applies to RDP pools only, and pool {} has VNC hosts",
                q(pool)
            ),
            (Reason::PublishesApplication { pool, resource }, Lang::Fr) => format!(
                "le pool {} publie l'application {}, qui demande des hôtes RDP",
                q(pool),
                q(resource)
            ),
            (Reason::PublishesApplication { pool, resource }, Lang::En) => format!(
                "pool {} publishes the application {}, which needs RDP hosts",
                q(pool),
                q(resource)
            ),
            (Reason::DesktopTakesNoProgram, Lang::Fr) => {
                "doit rester vide pour un bureau (seules les applications lancent un programme)"
                    .into()
            }
            (Reason::DesktopTakesNoProgram, Lang::En) => {
                "must be empty for a desktop (only applications run a program)".into()
            }
            (Reason::IconTooLarge { max_kib }, Lang::Fr) => {
                format!("doit faire au plus {max_kib} Kio une fois décodée")
            }
            (Reason::IconTooLarge { max_kib }, Lang::En) => {
                format!("must be at most {max_kib} KiB once decoded")
            }
            (Reason::NotBase64, Lang::Fr) => "n'est pas du base64 valide".into(),
            (Reason::NotBase64, Lang::En) => "is not valid base64".into(),
            (Reason::IconMismatch { format }, Lang::Fr) => {
                format!("ne contient pas une image {format}")
            }
            (Reason::IconMismatch { format }, Lang::En) => {
                format!("does not hold a {format} image")
            }
            (Reason::BadHours { value, problem }, Lang::Fr) => format!(
                "{} n'est pas de la forme « lun-ven 07:00-19:00 » : {}",
                q(value),
                problem.text(lang)
            ),
            (Reason::BadHours { value, problem }, Lang::En) => format!(
                "{} is not like \"mon-fri 07:00-19:00\": {}",
                q(value),
                problem.text(lang)
            ),
            (Reason::DirectoryAccount, Lang::Fr) => {
                "ce compte vient de l'annuaire : son mot de passe se change dans l'annuaire".into()
            }
            (Reason::DirectoryAccount, Lang::En) => {
                "this account comes from the directory: its password is changed there".into()
            }
            (Reason::PathMismatch { expected }, Lang::Fr) => {
                format!("doit correspondre à l'URL ({})", q(expected))
            }
            (Reason::PathMismatch { expected }, Lang::En) => {
                format!("must match the URL ({})", q(expected))
            }
            (Reason::SubjectChoice, Lang::Fr) => "indiquez soit user, soit group".into(),
            (Reason::SubjectChoice, Lang::En) => "give exactly one of user and group".into(),
            (Reason::UnknownField { expected }, Lang::Fr) => format!(
                "n'est pas un champ connu (champs connus : {})",
                expected.join(", ")
            ),
            (Reason::UnknownField { expected }, Lang::En) => {
                format!("is not a known field (known: {})", expected.join(", "))
            }
            (Reason::WrongType { expected }, Lang::Fr) => match expected {
                JsonType::Text => "doit être une chaîne de caractères".into(),
                JsonType::Integer => "doit être un nombre entier".into(),
                JsonType::Boolean => "doit être true ou false".into(),
                JsonType::List => "doit être une liste".into(),
                JsonType::Object => "doit être un objet".into(),
                JsonType::Other => "n'a pas le bon type".into(),
            },
            (Reason::WrongType { expected }, Lang::En) => match expected {
                JsonType::Text => "must be a string".into(),
                JsonType::Integer => "must be a whole number".into(),
                JsonType::Boolean => "must be true or false".into(),
                JsonType::List => "must be a list".into(),
                JsonType::Object => "must be an object".into(),
                JsonType::Other => "has the wrong type".into(),
            },
        }
    }
}

/// Why a change would leave the inventory or the access rules inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Conflict {
    /// Creating something that exists already.
    Exists {
        /// What kind of thing.
        kind: Kind,
        /// Its id.
        id: String,
    },
    /// Deleting a host that still carries live sessions.
    HostHasSessions {
        /// The host.
        host: String,
        /// Its live sessions.
        count: u32,
    },
    /// Deleting a host that pools still list.
    HostInPools {
        /// The host.
        host: String,
        /// The pools.
        pools: Vec<String>,
    },
    /// Deleting a pool that resources use.
    PoolUsed {
        /// The pool.
        pool: String,
        /// The resources.
        resources: Vec<String>,
    },
    /// Deleting a resource that live sessions use.
    ResourceHasSessions {
        /// The resource.
        resource: String,
        /// Its live sessions.
        count: u32,
    },
    /// Deleting a group that entitlements or a policy name.
    GroupUsed {
        /// The group.
        group: String,
        /// How many entitlements name it.
        entitlements: usize,
        /// Whether a policy is scoped to it.
        policy: bool,
    },
    /// Deleting, disabling or demoting one's own account.
    OwnAccount,
}

impl Conflict {
    /// A stable code (`host_in_pools`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Conflict::Exists { .. } => "exists",
            Conflict::HostHasSessions { .. } => "host_has_sessions",
            Conflict::HostInPools { .. } => "host_in_pools",
            Conflict::PoolUsed { .. } => "pool_used",
            Conflict::ResourceHasSessions { .. } => "resource_has_sessions",
            Conflict::GroupUsed { .. } => "group_used",
            Conflict::OwnAccount => "own_account",
        }
    }

    /// The conflict, for a person.
    pub fn text(&self, lang: Lang) -> String {
        let q = |value: &str| quote(lang, value);
        match (self, lang) {
            (Conflict::Exists { kind, id }, Lang::Fr) => {
                format!("{} {} existe déjà", kind.noun(lang), q(id))
            }
            (Conflict::Exists { kind, id }, Lang::En) => {
                format!("{} {} exists already", kind.noun(lang), q(id))
            }
            (Conflict::HostHasSessions { host, count }, Lang::Fr) => {
                let sessions = if *count > 1 {
                    format!("{count} sessions en cours")
                } else {
                    format!("{count} session en cours")
                };
                format!(
                    "l'hôte {} a encore {sessions} : mettez-le en mode drainage et attendez qu'elles se terminent",
                    q(host)
                )
            }
            (Conflict::HostHasSessions { host, count }, Lang::En) => {
                let sessions = if *count > 1 {
                    format!("{count} live sessions")
                } else {
                    format!("{count} live session")
                };
                format!(
                    "host {} still has {sessions}: drain it and wait for them to end",
                    q(host)
                )
            }
            (Conflict::HostInPools { host, pools }, Lang::Fr) => format!(
                "l'hôte {} fait partie {} {} : retirez-l'en d'abord",
                q(host),
                if pools.len() > 1 { "des pools" } else { "du pool" },
                quoted_list(lang, pools)
            ),
            (Conflict::HostInPools { host, pools }, Lang::En) => format!(
                "host {} is in {} {}: take it out first",
                q(host),
                if pools.len() > 1 { "pools" } else { "pool" },
                quoted_list(lang, pools)
            ),
            (Conflict::PoolUsed { pool, resources }, Lang::Fr) => format!(
                "le pool {} sert {} {} : supprimez-les ou changez leur pool d'abord",
                q(pool),
                if resources.len() > 1 { "les ressources" } else { "la ressource" },
                quoted_list(lang, resources)
            ),
            (Conflict::PoolUsed { pool, resources }, Lang::En) => format!(
                "pool {} serves {} {}: delete them or move them to another pool first",
                q(pool),
                if resources.len() > 1 { "resources" } else { "resource" },
                quoted_list(lang, resources)
            ),
            (Conflict::ResourceHasSessions { resource, count }, Lang::Fr) => format!(
                "la ressource {} a encore {count} session(s) en cours : attendez qu'elles se terminent",
                q(resource)
            ),
            (Conflict::ResourceHasSessions { resource, count }, Lang::En) => format!(
                "resource {} still has {count} live session(s): wait for them to end",
                q(resource)
            ),
            (
                Conflict::GroupUsed {
                    group,
                    entitlements,
                    policy,
                },
                Lang::Fr,
            ) => {
                let mut uses = Vec::new();
                if *entitlements > 0 {
                    uses.push(format!("{entitlements} droit(s) d'accès"));
                }
                if *policy {
                    uses.push("une politique".to_string());
                }
                format!(
                    "le groupe {} est encore utilisé par {} : retirez-les d'abord",
                    q(group),
                    join_last(&uses, " et ")
                )
            }
            (
                Conflict::GroupUsed {
                    group,
                    entitlements,
                    policy,
                },
                Lang::En,
            ) => {
                let mut uses = Vec::new();
                if *entitlements > 0 {
                    uses.push(format!("{entitlements} entitlement(s)"));
                }
                if *policy {
                    uses.push("a policy".to_string());
                }
                format!(
                    "group {} is still used by {}: remove them first",
                    q(group),
                    join_last(&uses, " and ")
                )
            }
            (Conflict::OwnAccount, Lang::Fr) => {
                "vous ne pouvez ni supprimer ni désactiver votre propre compte, ni lui retirer le rôle admin".into()
            }
            (Conflict::OwnAccount, Lang::En) => {
                "you cannot delete or disable your own account, nor take the admin role from it"
                    .into()
            }
        }
    }
}

/// Why an administration request failed.
///
/// The `Display` text is the English [`AdminError::message`].
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AdminError {
    /// A field is wrong; nothing was changed.
    #[error("{}", field_message(.field, .reason, Lang::En))]
    Invalid {
        /// The field, as named in the JSON body (`port`, `hosts[1]`, …).
        field: String,
        /// Why.
        reason: Reason,
    },
    /// The object named in the request does not exist.
    #[error("{}", .kind.does_not_exist(.id, Lang::En))]
    NotFound {
        /// What kind of object.
        kind: Kind,
        /// Its id (a login for users).
        id: String,
    },
    /// The change would leave things inconsistent; nothing was changed.
    #[error("{}", .0.text(Lang::En))]
    Conflict(Conflict),
    /// The actor's roles do not allow this action.
    #[error("your roles do not allow this action")]
    Forbidden,
    /// No authenticated actor (the gateway's middleware did not recognise the caller).
    #[error("sign in to the console first")]
    Unauthenticated,
    /// The body is not JSON.
    #[error("the body is not valid JSON (line {line}, column {column})")]
    Malformed {
        /// Where the parser stopped, from 1.
        line: usize,
        /// Where the parser stopped, from 1.
        column: usize,
    },
    /// The body is larger than the API accepts.
    #[error("the body is larger than {max} bytes")]
    TooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// No such route.
    #[error("no such API route")]
    NoRoute,
    /// The route exists, not with this method.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// The database failed.
    #[error("database error: {0}")]
    Store(#[from] StoreError),
}

fn field_message(field: &str, reason: &Reason, lang: Lang) -> String {
    match lang {
        Lang::Fr => format!("{field} : {}", reason.text(lang)),
        Lang::En => format!("{field}: {}", reason.text(lang)),
    }
}

impl AdminError {
    /// An [`AdminError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: Reason) -> AdminError {
        AdminError::Invalid {
            field: field.into(),
            reason,
        }
    }

    /// A stable code for programs: `invalid`, `not_found`, `conflict`, `forbidden`,
    /// `unauthenticated`, `malformed_json`, `too_large`, `no_route`, `method_not_allowed`, `store`.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Invalid { .. } => "invalid",
            AdminError::NotFound { .. } => "not_found",
            AdminError::Conflict(_) => "conflict",
            AdminError::Forbidden => "forbidden",
            AdminError::Unauthenticated => "unauthenticated",
            AdminError::Malformed { .. } => "malformed_json",
            AdminError::TooLarge { .. } => "too_large",
            AdminError::NoRoute => "no_route",
            AdminError::MethodNotAllowed => "method_not_allowed",
            AdminError::Store(_) => "store",
        }
    }

    /// The finer code: the [`Reason`] of an `Invalid`, the [`Conflict`]'s, the kind of a
    /// `NotFound`.
    pub fn detail_code(&self) -> Option<&'static str> {
        match self {
            AdminError::Invalid { reason, .. } => Some(reason.code()),
            AdminError::Conflict(conflict) => Some(conflict.code()),
            AdminError::NotFound { kind, .. } => Some(kind.as_str()),
            _ => None,
        }
    }

    /// The field at fault, for `Invalid`.
    pub fn field(&self) -> Option<&str> {
        match self {
            AdminError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The HTTP status that carries this error.
    pub fn http_status(&self) -> u16 {
        match self {
            AdminError::Invalid { .. } | AdminError::Malformed { .. } => 400,
            AdminError::Unauthenticated => 401,
            AdminError::Forbidden => 403,
            AdminError::NotFound { .. } | AdminError::NoRoute => 404,
            AdminError::MethodNotAllowed => 405,
            AdminError::Conflict(_) => 409,
            AdminError::TooLarge { .. } => 413,
            AdminError::Store(_) => 500,
        }
    }

    /// The message for a person, in `lang`.
    ///
    /// A database error is not detailed (the detail goes to the gateway's log).
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (AdminError::Invalid { field, reason }, lang) => field_message(field, reason, lang),
            (AdminError::NotFound { kind, id }, lang) => kind.does_not_exist(id, lang),
            (AdminError::Conflict(conflict), lang) => conflict.text(lang),
            (AdminError::Forbidden, Lang::Fr) => "vos rôles ne permettent pas cette action".into(),
            (AdminError::Forbidden, Lang::En) => "your roles do not allow this action".into(),
            (AdminError::Unauthenticated, Lang::Fr) => "connectez-vous d'abord à la console".into(),
            (AdminError::Unauthenticated, Lang::En) => "sign in to the console first".into(),
            (AdminError::Malformed { line, column }, Lang::Fr) => format!(
                "le corps de la requête n'est pas du JSON valide (ligne {line}, colonne {column})"
            ),
            (AdminError::Malformed { line, column }, Lang::En) => {
                format!("the body is not valid JSON (line {line}, column {column})")
            }
            (AdminError::TooLarge { max }, Lang::Fr) => {
                format!("le corps de la requête dépasse {max} octets")
            }
            (AdminError::TooLarge { max }, Lang::En) => {
                format!("the body is larger than {max} bytes")
            }
            (AdminError::NoRoute, Lang::Fr) => "cette route de l'API n'existe pas".into(),
            (AdminError::NoRoute, Lang::En) => "no such API route".into(),
            (AdminError::MethodNotAllowed, Lang::Fr) => {
                "cette méthode n'est pas permise sur cette route".into()
            }
            (AdminError::MethodNotAllowed, Lang::En) => {
                "this method is not allowed on this route".into()
            }
            (AdminError::Store(_), Lang::Fr) => {
                "la base de données a échoué ; le journal de la passerelle en dit plus".into()
            }
            (AdminError::Store(_), Lang::En) => {
                "the database failed; the gateway's log says more".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_and_locale() {
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,fr;q=0.8"),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Lang::Fr
        );
        assert_eq!(Lang::from_accept_language("de-DE"), Lang::Fr);
        assert_eq!(Lang::from_locale("en_US.UTF-8"), Lang::En);
        assert_eq!(Lang::from_locale("fr_FR.UTF-8"), Lang::Fr);
        assert_eq!(Lang::from_locale("C"), Lang::Fr);
    }

    #[test]
    fn lists_read_naturally() {
        let pools = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let conflict = Conflict::HostInPools {
            host: "h1".into(),
            pools,
        };
        assert_eq!(
            conflict.text(Lang::En),
            "host \"h1\" is in pools \"a\", \"b\" and \"c\": take it out first"
        );
        assert_eq!(
            conflict.text(Lang::Fr),
            "l'hôte « h1 » fait partie des pools « a », « b » et « c » : retirez-l'en d'abord"
        );
    }

    #[test]
    fn display_is_the_english_message() {
        let error = AdminError::invalid("port", Reason::OutOfRange { min: 1, max: 65535 });
        assert_eq!(error.to_string(), "port: must be 1-65535");
        assert_eq!(error.message(Lang::Fr), "port : doit être entre 1 et 65535");
        assert_eq!(error.http_status(), 400);
        assert_eq!(error.detail_code(), Some("out_of_range"));
    }
}
