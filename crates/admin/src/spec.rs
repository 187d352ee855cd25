//! What a client sends: one `…Spec` per kind of object, read from JSON (unknown fields refused,
//! missing ones defaulted) or built by the CLI, then checked field by field.
//!
//! The checks here need nothing but the spec; those that need the database (does the pool
//! exist? does the host already have a password?) are in [`crate::service`].
//! Numbers are `i64` so that an out-of-range value gets a clear `must be 1-65535` rather than a
//! parser's complaint.

use bascule_domain::access::Role;
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId};
use bascule_domain::inventory::{Balancing, Host, Pool, Protocol, ResourceKind};
use bascule_domain::policy::{Limit, Policy};
use bascule_domain::time::AllowedHours;
use base64::Engine;
use serde::Deserialize;

use crate::error::{AdminError, Reason};
use crate::hours::parse_window;
use crate::settings::{
    CertificateRule, CredentialsMode, DEFAULT_KEYBOARD_LAYOUT, HostSettings, Icon, KeyboardMode,
    RdpSecurity,
};

/// The longest name or display name.
pub const MAX_NAME: usize = 128;
/// The shortest user password.
pub const MIN_PASSWORD: usize = 12;
/// The longest password (user or backend).
pub const MAX_PASSWORD: usize = 1024;
/// The largest icon, decoded.
pub const MAX_ICON_BYTES: usize = 64 * 1024;
/// The longest backend user name or domain.
const MAX_ACCOUNT: usize = 256;
/// The longest program path or working directory.
const MAX_PATH: usize = 1024;
/// The most sessions a host may carry.
const MAX_SESSIONS: i64 = 10_000;
/// The largest host weight.
const MAX_WEIGHT: i64 = 1_000;
/// The largest licence capacity.
const MAX_CAPACITY: i64 = 1_000_000;
/// The largest bandwidth cap, in kbit/s.
const MAX_BANDWIDTH: i64 = 10_000_000;
/// The smallest bandwidth cap, in kbit/s.
const MIN_BANDWIDTH: i64 = 64;
/// The longest timeout, in seconds (30 days).
const MAX_SECONDS: i64 = 30 * 24 * 3600;
/// The shortest idle timeout, in seconds.
const MIN_IDLE: i64 = 60;

fn invalid<T>(field: impl Into<String>, reason: Reason) -> Result<T, AdminError> {
    Err(AdminError::invalid(field, reason))
}

/// Checks an id: 1-64 characters among `A-Z a-z 0-9 _ -`.
pub fn check_id(field: &str, value: &str) -> Result<(), AdminError> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if value.is_empty() {
        return invalid(field, Reason::Required);
    }
    if !ok {
        return invalid(
            field,
            Reason::BadId {
                value: shorten(value),
            },
        );
    }
    Ok(())
}

/// Checks a login: 1-64 characters among `A-Z a-z 0-9 . _ @ -`.
pub fn check_login(field: &str, value: &str) -> Result<(), AdminError> {
    if value.is_empty() {
        return invalid(field, Reason::Required);
    }
    let ok = value.len() <= 64
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'@' | b'-'));
    if !ok {
        return invalid(
            field,
            Reason::BadLogin {
                value: shorten(value),
            },
        );
    }
    Ok(())
}

/// A value quoted back in a message, cut to 80 characters.
fn shorten(value: &str) -> String {
    if value.chars().count() <= 80 {
        value.to_string()
    } else {
        let cut: String = value.chars().take(79).collect();
        format!("{cut}…")
    }
}

/// Checks a free text: at most `max` characters, no control character.
fn check_text(field: &str, value: &str, max: usize) -> Result<(), AdminError> {
    if value.chars().count() > max {
        return invalid(field, Reason::TooLong { max });
    }
    if value.chars().any(char::is_control) {
        return invalid(field, Reason::ControlCharacters);
    }
    Ok(())
}

/// A name: trimmed, `default` if empty, then checked.
fn name_or(field: &str, value: &str, default: &str) -> Result<String, AdminError> {
    let value = value.trim();
    let value = if value.is_empty() { default } else { value };
    check_text(field, value, MAX_NAME)?;
    Ok(value.to_string())
}

/// An optional text: `None` if absent or blank, else checked.
fn optional_text(
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Result<Option<String>, AdminError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => {
            check_text(field, text, max)?;
            Ok(Some(text.to_string()))
        }
    }
}

fn range(
    field: &str,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, AdminError> {
    let value = value.unwrap_or(default);
    if !(min..=max).contains(&value) {
        return invalid(field, Reason::OutOfRange { min, max });
    }
    Ok(value)
}

/// A word among `allowed`, or `default` if absent or empty.
fn one_of<'a>(
    field: &str,
    value: Option<&'a str>,
    default: &'a str,
    allowed: &'static [&'static str],
) -> Result<&'a str, AdminError> {
    let value = value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .unwrap_or(default);
    if value.is_empty() {
        return invalid(field, Reason::Required);
    }
    if allowed.contains(&value) {
        Ok(value)
    } else {
        invalid(
            field,
            Reason::NotOneOf {
                value: shorten(value),
                allowed,
            },
        )
    }
}

fn check_password(field: &str, password: &str, min: usize) -> Result<(), AdminError> {
    let length = password.chars().count();
    if length < min {
        return invalid(field, Reason::TooShort { min });
    }
    if length > MAX_PASSWORD {
        return invalid(field, Reason::TooLong { max: MAX_PASSWORD });
    }
    Ok(())
}

/// Whether `address` is an IP address or a DNS name (labels of letters, digits and inner
/// hyphens, dot-separated, at most 253 characters).
fn is_address(address: &str) -> bool {
    if address.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let address = address.strip_suffix('.').unwrap_or(address);
    !address.is_empty()
        && address.len() <= 253
        && address.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The protocol's name in messages.
pub(crate) fn protocol_label(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Vnc => "VNC",
        _ => "RDP",
    }
}

/// The protocol's word in JSON (`rdp`, `vnc`).
pub(crate) fn protocol_word(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Vnc => "vnc",
        _ => "rdp",
    }
}

/// What a spec says of a password: keep the stored one, remove it, or set a new one.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum PasswordChange {
    Keep,
    Clear,
    Set(String),
}

/// A session host, as sent by a client.
///
/// `password` is the backend password in plaintext; the service seals it before storing it.
/// Absent (or `null`) keeps the stored password, `""` removes it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSpec {
    /// Stable id (1-64 of `A-Z a-z 0-9 _ -`).
    pub id: String,
    /// Name in the console; the id if empty.
    pub name: String,
    /// `rdp` or `vnc`.
    pub protocol: String,
    /// DNS name or IP address.
    pub address: String,
    /// TCP port, 1-65535; 3389 for RDP and 5900 for VNC if absent.
    pub port: Option<i64>,
    /// The most live sessions, 1-10000; 1 if absent.
    pub max_sessions: Option<i64>,
    /// Relative capacity for weighted pools, 0-1000; 1 if absent.
    pub weight: Option<i64>,
    /// Whether new sessions avoid the host.
    pub draining: bool,
    /// `tofu` (default), `system`, `pin:<sha-256 hex>` or `accept-any` (RDP).
    pub certificate: Option<String>,
    /// `service` (default) or `passthrough` (RDP).
    pub credentials: Option<String>,
    /// Service account user name (RDP, required with service credentials).
    pub username: Option<String>,
    /// Service account domain (RDP).
    pub domain: Option<String>,
    /// Service account password (RDP, required with service credentials) or VNC password,
    /// plaintext.
    pub password: Option<String>,
    /// `negotiate` (default), `tls` or `nla` (RDP).
    pub security: Option<String>,
    /// `keysym` (default) or `scancode` (VNC).
    pub keyboard: Option<String>,
    /// Windows keyboard layout id (RDP), default `0x040C` (French).
    pub keyboard_layout: Option<i64>,
    /// H.264 (AVC420) from the host, passed through to browsers (RDP), default off.
    #[serde(default)]
    pub h264: Option<bool>,
}

impl std::fmt::Debug for HostSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSpec")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("credentials", &self.credentials)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A host spec that passed the checks that need no database.
pub(crate) struct ValidHost {
    pub(crate) host: Host,
    /// Without the password: see `password`.
    pub(crate) settings: HostSettings,
    pub(crate) password: PasswordChange,
}

impl HostSpec {
    pub(crate) fn validate(
        &self,
        allow_insecure_certificates: bool,
    ) -> Result<ValidHost, AdminError> {
        check_id("id", &self.id)?;
        let name = name_or("name", &self.name, &self.id)?;
        let protocol = match one_of("protocol", Some(&self.protocol), "", &["rdp", "vnc"])? {
            "vnc" => Protocol::Vnc,
            _ => Protocol::Rdp,
        };
        let rdp = protocol == Protocol::Rdp;
        let address = self.address.trim();
        if address.is_empty() {
            return invalid("address", Reason::Required);
        }
        if !is_address(address) {
            return invalid(
                "address",
                Reason::BadAddress {
                    value: shorten(address),
                },
            );
        }
        let default_port = if rdp { 3389 } else { 5900 };
        let port = range("port", self.port, default_port, 1, 65535)?;
        let max_sessions = range("max_sessions", self.max_sessions, 1, 1, MAX_SESSIONS)?;
        let weight = range("weight", self.weight, 1, 0, MAX_WEIGHT)?;

        let certificate_text = self
            .certificate
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .unwrap_or("tofu");
        let Some(rule) = CertificateRule::parse(certificate_text) else {
            return invalid(
                "certificate",
                Reason::NotOneOf {
                    value: shorten(certificate_text),
                    allowed: &["tofu", "system", "pin:<sha-256 hex>", "accept-any"],
                },
            );
        };
        if !rdp && rule != CertificateRule::TrustOnFirstUse {
            return invalid("certificate", Reason::RdpOnly);
        }
        if rule == CertificateRule::AcceptAny && !allow_insecure_certificates {
            return invalid("certificate", Reason::InsecureCertificate);
        }
        let credentials = match one_of(
            "credentials",
            self.credentials.as_deref(),
            "service",
            &["service", "passthrough"],
        )? {
            "passthrough" => CredentialsMode::Passthrough,
            _ => CredentialsMode::Service,
        };
        let username = optional_text("username", &self.username, MAX_ACCOUNT)?;
        let domain = optional_text("domain", &self.domain, MAX_ACCOUNT)?;
        let password = match self.password.as_deref() {
            None => PasswordChange::Keep,
            Some("") => PasswordChange::Clear,
            Some(password) => {
                check_password("password", password, 1)?;
                PasswordChange::Set(password.to_string())
            }
        };
        if !rdp {
            if credentials != CredentialsMode::Service {
                return invalid("credentials", Reason::VncPasswordOnly);
            }
            if username.is_some() {
                return invalid("username", Reason::VncPasswordOnly);
            }
            if domain.is_some() {
                return invalid("domain", Reason::VncPasswordOnly);
            }
        } else if credentials == CredentialsMode::Passthrough {
            if username.is_some() {
                return invalid("username", Reason::PassthroughTakesNoCredentials);
            }
            if matches!(password, PasswordChange::Set(_)) {
                return invalid("password", Reason::PassthroughTakesNoCredentials);
            }
        } else if username.is_none() {
            return invalid("username", Reason::ServiceCredentialsNeeded);
        }
        let security = match one_of(
            "security",
            self.security.as_deref(),
            "negotiate",
            &["negotiate", "tls", "nla"],
        )? {
            "tls" => RdpSecurity::Tls,
            "nla" => RdpSecurity::Nla,
            _ => RdpSecurity::Negotiate,
        };
        if !rdp && security != RdpSecurity::Negotiate {
            return invalid("security", Reason::RdpOnly);
        }
        let keyboard = match one_of(
            "keyboard",
            self.keyboard.as_deref(),
            "keysym",
            &["keysym", "scancode"],
        )? {
            "scancode" => KeyboardMode::Scancode,
            _ => KeyboardMode::Keysym,
        };
        if rdp && keyboard != KeyboardMode::Keysym {
            return invalid("keyboard", Reason::ScancodeVncOnly);
        }
        let keyboard_layout = range(
            "keyboard_layout",
            self.keyboard_layout,
            i64::from(DEFAULT_KEYBOARD_LAYOUT),
            1,
            i64::from(u32::MAX),
        )?;
        if !rdp && keyboard_layout != i64::from(DEFAULT_KEYBOARD_LAYOUT) {
            return invalid("keyboard_layout", Reason::RdpOnly);
        }
        let h264 = self.h264.unwrap_or(false);
        if !rdp && h264 {
            return invalid("h264", Reason::RdpOnly);
        }

        // The ranges above make these conversions exact.
        let mut host = Host::new(
            HostId::new(self.id.clone()),
            name,
            protocol,
            address,
            u16::try_from(port).unwrap_or(default_port as u16),
            u32::try_from(max_sessions).unwrap_or(1),
        );
        host.weight = u32::try_from(weight).unwrap_or(1);
        host.draining = self.draining;
        let settings = HostSettings {
            certificate: rule.to_text(),
            credentials,
            username,
            domain,
            password: None,
            security,
            keyboard,
            keyboard_layout: u32::try_from(keyboard_layout).unwrap_or(DEFAULT_KEYBOARD_LAYOUT),
            h264,
        };
        Ok(ValidHost {
            host,
            settings,
            password,
        })
    }
}

/// A pool of hosts, as sent by a client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSpec {
    /// Stable id.
    pub id: String,
    /// Name in the console; the id if empty.
    pub name: String,
    /// Member host ids, in order; all of one protocol.
    pub hosts: Vec<String>,
    /// `fewest_sessions` (default) or `weighted`.
    pub balancing: Option<String>,
}

impl PoolSpec {
    pub(crate) fn validate(&self) -> Result<Pool, AdminError> {
        check_id("id", &self.id)?;
        let name = name_or("name", &self.name, &self.id)?;
        let mut hosts: Vec<HostId> = Vec::with_capacity(self.hosts.len());
        for (index, host) in self.hosts.iter().enumerate() {
            let field = format!("hosts[{index}]");
            check_id(&field, host)?;
            let host = HostId::new(host.clone());
            if hosts.contains(&host) {
                return invalid(
                    field,
                    Reason::Duplicate {
                        value: host.to_string(),
                    },
                );
            }
            hosts.push(host);
        }
        let balancing = match one_of(
            "balancing",
            self.balancing.as_deref(),
            "fewest_sessions",
            &["fewest_sessions", "weighted"],
        )? {
            "weighted" => Balancing::Weighted,
            _ => Balancing::FewestSessions,
        };
        Ok(Pool::new(
            PoolId::new(self.id.clone()),
            name,
            hosts,
            balancing,
        ))
    }
}

/// A published desktop or application, as sent by a client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceSpec {
    /// Stable id, the one the browser names.
    pub id: String,
    /// `desktop` (default) or `application`.
    pub kind: Option<String>,
    /// The program an application runs (required for applications, RDP pools only).
    pub program: Option<String>,
    /// Name in French (required).
    pub name_fr: String,
    /// Name in English (required).
    pub name_en: String,
    /// The pool whose hosts serve it.
    pub pool: String,
    /// Icon for the portal: PNG or SVG, at most 64 KiB decoded.
    pub icon: Option<Icon>,
    /// Working directory of an application (RDP pools only).
    pub working_dir: Option<String>,
}

pub(crate) struct ValidResource {
    pub(crate) id: ResourceId,
    pub(crate) kind: ResourceKind,
    pub(crate) name_fr: String,
    pub(crate) name_en: String,
    pub(crate) pool: PoolId,
    pub(crate) icon: Option<Icon>,
    pub(crate) working_dir: Option<String>,
}

impl ResourceSpec {
    pub(crate) fn validate(&self) -> Result<ValidResource, AdminError> {
        check_id("id", &self.id)?;
        let application = one_of(
            "kind",
            self.kind.as_deref(),
            "desktop",
            &["desktop", "application"],
        )? == "application";
        let program = optional_text("program", &self.program, MAX_PATH)?;
        let kind = match (application, program) {
            (true, Some(program)) => ResourceKind::Application { program },
            (true, None) => return invalid("program", Reason::Required),
            (false, Some(_)) => return invalid("program", Reason::DesktopTakesNoProgram),
            (false, None) => ResourceKind::Desktop,
        };
        let name_fr = self.name_fr.trim();
        if name_fr.is_empty() {
            return invalid("name_fr", Reason::Required);
        }
        check_text("name_fr", name_fr, MAX_NAME)?;
        let name_en = self.name_en.trim();
        if name_en.is_empty() {
            return invalid("name_en", Reason::Required);
        }
        check_text("name_en", name_en, MAX_NAME)?;
        check_id("pool", &self.pool)?;
        if let Some(icon) = &self.icon {
            check_icon(icon)?;
        }
        let working_dir = optional_text("working_dir", &self.working_dir, MAX_PATH)?;
        Ok(ValidResource {
            id: ResourceId::new(self.id.clone()),
            kind,
            name_fr: name_fr.to_string(),
            name_en: name_en.to_string(),
            pool: PoolId::new(self.pool.clone()),
            icon: self.icon.clone(),
            working_dir,
        })
    }
}

/// Checks an icon: PNG or SVG, base64, at most [`MAX_ICON_BYTES`] decoded, bytes of the
/// declared type.
pub fn check_icon(icon: &Icon) -> Result<(), AdminError> {
    let png = match icon.mime.as_str() {
        "image/png" => true,
        "image/svg+xml" => false,
        other => {
            return invalid(
                "icon.mime",
                Reason::NotOneOf {
                    value: shorten(other),
                    allowed: &["image/png", "image/svg+xml"],
                },
            );
        }
    };
    // Four base64 characters per three bytes: refuse before decoding what is surely too large.
    if icon.data.len() > MAX_ICON_BYTES / 3 * 4 + 8 {
        return invalid(
            "icon.data",
            Reason::IconTooLarge {
                max_kib: MAX_ICON_BYTES / 1024,
            },
        );
    }
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(icon.data.trim()) else {
        return invalid("icon.data", Reason::NotBase64);
    };
    if bytes.len() > MAX_ICON_BYTES {
        return invalid(
            "icon.data",
            Reason::IconTooLarge {
                max_kib: MAX_ICON_BYTES / 1024,
            },
        );
    }
    let matches = if png {
        bytes.starts_with(b"\x89PNG\r\n\x1a\n")
    } else {
        std::str::from_utf8(&bytes).is_ok_and(|text| text.contains("<svg"))
    };
    if !matches {
        let format = if png { "PNG" } else { "SVG" };
        return invalid("icon.data", Reason::IconMismatch { format });
    }
    Ok(())
}

/// A user account, as sent by a client.
///
/// `password` is plaintext; the service stores its argon2id hash. Absent keeps the current
/// password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserSpec {
    /// What the person types to log in (1-64 of `A-Z a-z 0-9 . _ @ -`); in a `PUT`, the URL's.
    pub login: String,
    /// Name shown in the portal; the login if empty.
    pub display_name: String,
    /// A new password (at least 12 characters), local accounts only.
    pub password: Option<String>,
    /// `user`, `helpdesk`, `admin`; `["user"]` if absent.
    pub roles: Vec<String>,
    /// Group ids.
    pub groups: Vec<String>,
    /// Whether the account may log in (default `true`).
    pub enabled: bool,
}

impl Default for UserSpec {
    fn default() -> Self {
        Self {
            login: String::new(),
            display_name: String::new(),
            password: None,
            roles: vec!["user".into()],
            groups: Vec::new(),
            enabled: true,
        }
    }
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpec")
            .field("login", &self.login)
            .field("display_name", &self.display_name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("roles", &self.roles)
            .field("groups", &self.groups)
            .field("enabled", &self.enabled)
            .finish()
    }
}

pub(crate) struct ValidUser {
    pub(crate) login: String,
    pub(crate) display_name: String,
    pub(crate) password: Option<String>,
    pub(crate) roles: Vec<Role>,
    pub(crate) groups: Vec<GroupId>,
    pub(crate) enabled: bool,
}

/// The role's word (`user`, `helpdesk`, `admin`).
pub(crate) fn role_word(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Helpdesk => "helpdesk",
        _ => "admin",
    }
}

impl UserSpec {
    pub(crate) fn validate(&self) -> Result<ValidUser, AdminError> {
        check_login("login", &self.login)?;
        let display_name = name_or("display_name", &self.display_name, &self.login)?;
        if let Some(password) = &self.password {
            check_password("password", password, MIN_PASSWORD)?;
        }
        let mut roles = Vec::new();
        for (index, role) in self.roles.iter().enumerate() {
            let field = format!("roles[{index}]");
            let role = match one_of(&field, Some(role), "", &["user", "helpdesk", "admin"])? {
                "admin" => Role::Admin,
                "helpdesk" => Role::Helpdesk,
                _ => Role::User,
            };
            if roles.contains(&role) {
                return invalid(
                    field,
                    Reason::Duplicate {
                        value: role_word(role).into(),
                    },
                );
            }
            roles.push(role);
        }
        let mut groups: Vec<GroupId> = Vec::new();
        for (index, group) in self.groups.iter().enumerate() {
            let field = format!("groups[{index}]");
            check_id(&field, group)?;
            let group = GroupId::new(group.clone());
            if groups.contains(&group) {
                return invalid(
                    field,
                    Reason::Duplicate {
                        value: group.to_string(),
                    },
                );
            }
            groups.push(group);
        }
        Ok(ValidUser {
            login: self.login.clone(),
            display_name,
            password: self.password.clone(),
            roles,
            groups,
            enabled: self.enabled,
        })
    }
}

/// A new password for a user.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSpec {
    /// The password, plaintext, at least 12 characters.
    pub password: String,
}

impl std::fmt::Debug for PasswordSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordSpec(..)")
    }
}

impl PasswordSpec {
    pub(crate) fn validate(&self) -> Result<(), AdminError> {
        check_password("password", &self.password, MIN_PASSWORD)
    }
}

/// A group of users, as sent by a client.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSpec {
    /// Stable id; in a `PUT`, the URL's.
    pub id: String,
    /// Name in the console; the id if empty.
    pub name: String,
}

impl GroupSpec {
    pub(crate) fn validate(&self) -> Result<(GroupId, String), AdminError> {
        check_id("id", &self.id)?;
        let name = name_or("name", &self.name, &self.id)?;
        Ok((GroupId::new(self.id.clone()), name))
    }
}

/// An entitlement: a user (by login) or a group may open a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitlementSpec {
    /// A user's login (exclusive with `group`).
    pub user: Option<String>,
    /// A group id (exclusive with `user`).
    pub group: Option<String>,
    /// The resource id.
    pub resource: String,
}

/// The subject of a checked entitlement spec.
pub(crate) enum SubjectSpec {
    User(String),
    Group(GroupId),
}

impl EntitlementSpec {
    pub(crate) fn validate(&self) -> Result<(SubjectSpec, ResourceId), AdminError> {
        let user = self.user.as_deref().filter(|user| !user.is_empty());
        let group = self.group.as_deref().filter(|group| !group.is_empty());
        let subject = match (user, group) {
            (Some(user), None) => {
                check_login("user", user)?;
                SubjectSpec::User(user.to_string())
            }
            (None, Some(group)) => {
                check_id("group", group)?;
                SubjectSpec::Group(GroupId::new(group))
            }
            _ => return invalid("user", Reason::SubjectChoice),
        };
        check_id("resource", &self.resource)?;
        Ok((subject, ResourceId::new(self.resource.clone())))
    }
}

/// The settings of a group-level or resource-level policy; absent fields are not set at this
/// level (the merge looks elsewhere).
///
/// `max_bandwidth_kbps` and `idle_timeout_secs`: `0` means unlimited (no cap, no timeout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySpec {
    /// Clipboard from the browser to the host.
    pub clipboard_in: Option<bool>,
    /// Clipboard from the host to the browser.
    pub clipboard_out: Option<bool>,
    /// File transfer.
    pub file_transfer: Option<bool>,
    /// Bandwidth cap in kbit/s: 0 (unlimited) or 64-10000000.
    pub max_bandwidth_kbps: Option<i64>,
    /// Idle seconds before disconnection: 0 (never) or 60-2592000.
    pub idle_timeout_secs: Option<i64>,
    /// Seconds a disconnected session is kept: 0-2592000.
    pub disconnected_keep_secs: Option<i64>,
    /// Windows like `mon-fri 07:00-19:00`; an empty list means never.
    pub allowed_hours: Option<Vec<String>>,
}

fn limit(field: &str, value: Option<i64>, min: i64, max: i64) -> Result<Option<Limit>, AdminError> {
    match value {
        None => Ok(None),
        Some(0) => Ok(Some(Limit::Unlimited)),
        Some(value) if (min..=max).contains(&value) => Ok(Some(Limit::AtMost(
            u32::try_from(value).unwrap_or(u32::MAX),
        ))),
        Some(_) => invalid(field, Reason::ZeroOrRange { min, max }),
    }
}

impl PolicySpec {
    pub(crate) fn validate(&self) -> Result<Policy, AdminError> {
        let mut policy = Policy::default();
        policy.clipboard_in = self.clipboard_in;
        policy.clipboard_out = self.clipboard_out;
        policy.file_transfer = self.file_transfer;
        policy.max_bandwidth_kbps = limit(
            "max_bandwidth_kbps",
            self.max_bandwidth_kbps,
            MIN_BANDWIDTH,
            MAX_BANDWIDTH,
        )?;
        policy.idle_timeout_secs = limit(
            "idle_timeout_secs",
            self.idle_timeout_secs,
            MIN_IDLE,
            MAX_SECONDS,
        )?;
        policy.disconnected_keep_secs = match self.disconnected_keep_secs {
            None => None,
            Some(value) => Some(
                u32::try_from(range(
                    "disconnected_keep_secs",
                    Some(value),
                    0,
                    0,
                    MAX_SECONDS,
                )?)
                .unwrap_or(0),
            ),
        };
        policy.allowed_hours = match &self.allowed_hours {
            None => None,
            Some(texts) => {
                let mut windows = Vec::with_capacity(texts.len());
                for (index, text) in texts.iter().enumerate() {
                    match parse_window(text) {
                        Ok(window) => windows.push(window),
                        Err(problem) => {
                            return invalid(
                                format!("allowed_hours[{index}]"),
                                Reason::BadHours {
                                    value: shorten(text),
                                    problem,
                                },
                            );
                        }
                    }
                }
                Some(AllowedHours::new(windows))
            }
        };
        Ok(policy)
    }
}

/// Whether a host takes new sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainSpec {
    /// `true` to drain (keep the sessions, take no new one), `false` to resume.
    pub draining: bool,
}

/// The licence capacity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LicenceSpec {
    /// How many live sessions may exist at once, 0-1000000 (0 refuses every launch).
    pub capacity: Option<i64>,
}

impl LicenceSpec {
    pub(crate) fn validate(&self) -> Result<u32, AdminError> {
        let Some(capacity) = self.capacity else {
            return invalid("capacity", Reason::Required);
        };
        let capacity = range("capacity", Some(capacity), 0, 0, MAX_CAPACITY)?;
        Ok(u32::try_from(capacity).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_and_logins() {
        assert!(check_id("id", "bureau-compta_2").is_ok());
        assert!(check_id("id", &"a".repeat(64)).is_ok());
        assert!(check_id("id", &"a".repeat(65)).is_err());
        assert!(check_id("id", "a b").is_err());
        assert!(check_id("id", "é").is_err());
        assert!(check_login("login", "jean.dupont@finances").is_ok());
        assert!(check_login("login", "jean dupont").is_err());
    }

    #[test]
    fn addresses() {
        for good in [
            "10.0.0.1",
            "::1",
            "rds1.interne.gouv.fr",
            "h",
            "rds-1.",
            "fe80::1",
        ] {
            assert!(is_address(good), "{good}");
        }
        for bad in ["a b", "-rds", "rds-", "a..b", "x_y.fr", "", "[::1]"] {
            assert!(!is_address(bad), "{bad}");
        }
    }
}
