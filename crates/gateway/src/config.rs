//! The gateway's configuration: a TOML file, with environment overrides.
//!
//! This file says how the node runs (listener, data directory, database, directory, second
//! factor, timings). Users, hosts, pools, resources, entitlements and policies live in the
//! database and are managed with the REST API or the CLI; `[[user]]` and `[[resource]]` entries
//! here are a *seed*, written into the database at each start (handy for a demo or a test).
//! The browser only ever names a resource by its `id`; host, port and credentials stay server-side.

pub use bascule_admin::{CertificateRule, CredentialsMode, KeyboardMode, RdpSecurity};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the gateway needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTPS listener.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the certificate, the key and the audit log live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// TLS certificate and key (PEM). When absent, a self-signed pair is generated in `data_dir`.
    #[serde(default)]
    pub tls: Option<TlsFiles>,
    /// Session behaviour.
    #[serde(default)]
    pub sessions: SessionSettings,
    /// Login protection.
    #[serde(default)]
    pub login: LoginSettings,
    /// Allows `certificate = "accept-any"` on RDP resources. Only the demo sets it: a production
    /// gateway never silently accepts an unknown host certificate.
    #[serde(default)]
    pub allow_insecure_certificates: bool,
    /// The control-plane database: `sqlite://PATH` or `postgres://USER@HOST/DB`. Default: the
    /// SQLite file `data_dir/bascule.db`.
    #[serde(default)]
    pub database: Option<String>,
    /// The site: time zone and licences.
    #[serde(default)]
    pub site: SiteSettings,
    /// The second factor.
    #[serde(default)]
    pub mfa: MfaSettings,
    /// An LDAP / Active Directory to authenticate users who have no local password.
    #[serde(default)]
    pub directory: Option<DirectorySettings>,
    /// Host health checks.
    #[serde(default)]
    pub health: HealthSettings,
    /// Who may read `/metrics`.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// The daily report.
    #[serde(default)]
    pub report: ReportSettings,
    /// Seed: local accounts written into the database at start.
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    /// Seed: each becomes a host, a pool and a resource of the same id in the database at start.
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
}

/// Paths of a PEM certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// Session behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Frames a viewer may leave unacknowledged.
    pub max_in_flight: u8,
    /// How long a session with no viewer keeps its backend connection, in seconds.
    pub reconnect_window_secs: u64,
    /// A viewer that acknowledges nothing for this long is closed, in seconds.
    pub ack_timeout_secs: u64,
    /// Time allowed to reach a host and finish the protocol handshake, in seconds.
    pub connect_timeout_secs: u64,
    /// With nothing to send for this long, a viewer gets a WebSocket ping (keeps proxies and
    /// NATs from closing an idle connection), in seconds.
    pub keepalive_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            max_in_flight: 2,
            reconnect_window_secs: 300,
            ack_timeout_secs: 30,
            connect_timeout_secs: 15,
            keepalive_secs: 25,
        }
    }
}

/// The site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteSettings {
    /// IANA time zone of the site, for allowed hours (default `Europe/Paris`).
    pub timezone: String,
    /// Concurrent licences. When set, written to the database at each start; when absent, the
    /// database's value is kept (1,200 on a new database).
    pub licences: Option<u32>,
    /// How often licence usage is sampled, in seconds.
    pub licence_sample_secs: u64,
    /// How often disconnected sessions past their policy's keep time are ended, in seconds.
    pub housekeeping_secs: u64,
}

impl Default for SiteSettings {
    fn default() -> Self {
        SiteSettings { timezone: "Europe/Paris".into(), licences: None, licence_sample_secs: 60, housekeeping_secs: 10 }
    }
}

/// Whether users must give a TOTP code after their password.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TotpMode {
    /// Every user enrols on first login, then gives a code at each login.
    #[default]
    Required,
    /// No second factor (demo only).
    Off,
}

/// The second factor.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaSettings {
    /// Required (default) or off.
    pub totp: TotpMode,
    /// The name authenticator apps show next to the account.
    pub issuer: String,
}

impl Default for MfaSettings {
    fn default() -> Self {
        MfaSettings { totp: TotpMode::Required, issuer: "Bascule".into() }
    }
}

/// An LDAP / Active Directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade `ldap://` with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of the CA (or self-signed certificate) to trust; default: the public roots.
    #[serde(default)]
    pub ca_certificate: Option<PathBuf>,
    /// Service account for searches; absent: anonymous searches.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Its password, encrypted (`bascule secret encrypt`).
    #[serde(default)]
    pub bind_password: Option<String>,
    /// Where users are searched.
    pub base_dn: String,
    /// `uid` (OpenLDAP, default) or `sAMAccountName` (Active Directory).
    #[serde(default = "default_login_attribute")]
    pub login_attribute: String,
    /// Extra filter, e.g. `(objectClass=person)`.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// Find groups with a search under this base instead of `memberOf`.
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// The group search filter; `{dn}` and `{login}` are replaced. Default `(member={dn})`.
    #[serde(default)]
    pub group_filter: Option<String>,
    /// Bound on each directory operation, in seconds.
    #[serde(default = "default_directory_timeout")]
    pub timeout_secs: u64,
    /// Members of this directory group get the admin role.
    #[serde(default)]
    pub admin_group: Option<String>,
    /// Members of this directory group get the helpdesk role.
    #[serde(default)]
    pub helpdesk_group: Option<String>,
}

fn default_login_attribute() -> String {
    "uid".into()
}

fn default_directory_timeout() -> u64 {
    5
}

/// Host health checks (TCP connect and protocol banner).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthSettings {
    /// Whether hosts are checked at all (on by default; off, every host counts as healthy
    /// unless an admin marks it otherwise).
    pub enabled: bool,
    /// Seconds between two checks of a host.
    pub interval_secs: u64,
    /// Bound on one check, in seconds.
    pub timeout_secs: u64,
    /// Consecutive failed checks before a host is marked unhealthy.
    pub failures: u32,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings { enabled: true, interval_secs: 10, timeout_secs: 3, failures: 2 }
    }
}

/// The daily report: when it runs, and where it is mailed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// A cron expression in the site's time zone (default `0 17 * * *`: 17:00 every day).
    pub schedule: String,
    /// Mail the report when set.
    pub smtp: Option<SmtpConfig>,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { schedule: bascule_report::DEFAULT_SCHEDULE.into(), smtp: None }
    }
}

/// The SMTP server the daily report is mailed through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Server name.
    pub host: String,
    /// Port (587 with STARTTLS, 465 with TLS).
    pub port: u16,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub security: bascule_report::SmtpSecurity,
    /// Login, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password, encrypted (`bascule secret encrypt`).
    #[serde(default)]
    pub password: Option<String>,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// `fr` (default) or `en`.
    #[serde(default = "default_report_lang")]
    pub lang: String,
}

fn default_report_lang() -> String {
    "fr".into()
}

/// Who may read the Prometheus `/metrics` route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// A bearer token (`Authorization: Bearer …`), encrypted with `bascule secret encrypt`.
    pub token: Option<String>,
    /// Client addresses allowed without a token (default: loopback only).
    pub allow: Vec<ipnet::IpNet>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        let loopback = |text: &str| text.parse::<ipnet::IpNet>().ok();
        MetricsSettings { token: None, allow: ["127.0.0.0/8", "::1/128"].into_iter().filter_map(loopback).collect() }
    }
}

/// Login protection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Consecutive failures that lock an account.
    pub max_failures: u32,
    /// How long a locked account stays locked, in seconds.
    pub lockout_secs: u64,
    /// Failures allowed from one address per window before it is throttled.
    pub max_failures_per_address: u32,
    /// The window for the per-address count, in seconds.
    pub address_window_secs: u64,
    /// How long a portal session lives without activity, in seconds.
    pub session_idle_secs: u64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            max_failures: 5,
            lockout_secs: 900,
            max_failures_per_address: 20,
            address_window_secs: 600,
            session_idle_secs: 8 * 3600,
        }
    }
}

/// A local account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: String,
    /// Argon2id PHC string (`bascule hash-password` makes one).
    pub password_hash: String,
    /// Name shown in the portal.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Resource ids this user may open.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Roles: `user` (default), `helpdesk`, `admin`.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// What a resource shows.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A whole desktop.
    #[default]
    Desktop,
    /// One published application (RDP alternate shell).
    Application,
}

/// A published desktop or application.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Stable id, the only thing the browser names.
    pub id: String,
    /// Name in French.
    pub name_fr: String,
    /// Name in English.
    pub name_en: String,
    /// Desktop or application.
    #[serde(default)]
    pub kind: ResourceKind,
    /// A PNG or SVG icon shown in the portal and the viewer (at most 64 KiB).
    #[serde(default)]
    pub icon: Option<PathBuf>,
    /// Backend protocol: `vnc` or `rdp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
    /// Host address (name or IP).
    pub host: String,
    /// Port.
    pub port: u16,
    /// VNC password, if the server asks for one, encrypted (`enc:v1:…`, from
    /// `bascule secret encrypt`). Never sent to a browser.
    #[serde(default)]
    pub password: Option<String>,
    /// Keyboard mode (VNC).
    #[serde(default)]
    pub keyboard: KeyboardMode,
    /// RDP: where the credentials come from.
    #[serde(default)]
    pub credentials: CredentialsMode,
    /// RDP service account name.
    #[serde(default)]
    pub username: Option<String>,
    /// RDP domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// RDP security protocol.
    #[serde(default)]
    pub security: RdpSecurity,
    /// RDP host certificate policy: `tofu` (default: the first certificate seen must be approved
    /// by an admin with `bascule host approve`), `system`, `pin:<sha-256 hex>`, or `accept-any`
    /// (only with `allow_insecure_certificates`).
    #[serde(default = "default_certificate")]
    pub certificate: String,
    /// RDP published application: the program to run instead of the desktop.
    #[serde(default)]
    pub application: Option<String>,
    /// RDP published application: its working directory.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// RDP keyboard layout sent to the host (default French, 0x040C).
    #[serde(default = "default_keyboard_layout")]
    pub keyboard_layout: u32,
    /// RDP: let the host send H.264 (AVC420), passed through to browsers that decode it (lossy;
    /// off by default).
    #[serde(default)]
    pub h264: bool,
    /// Clipboard from the browser to the host.
    #[serde(default = "default_true")]
    pub clipboard_in: bool,
    /// Clipboard from the host to the browser.
    #[serde(default = "default_true")]
    pub clipboard_out: bool,
}

/// Parses `AB:CD:…` or `abcd…` (64 hex digits) as a SHA-256 fingerprint.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Formats a fingerprint as `AB:CD:…`.
pub fn format_fingerprint(fingerprint: &[u8; 32]) -> String {
    fingerprint.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

impl ResourceConfig {
    fn validate(&self, allow_insecure: bool) -> Result<(), ConfigError> {
        let refuse = |why: String| Err(ConfigError::Invalid(format!("resource {:?}: {why}", self.id)));
        match self.protocol.as_str() {
            "vnc" => {
                if self.kind == ResourceKind::Application || self.application.is_some() {
                    return refuse("published applications need protocol = \"rdp\"".into());
                }
                if self.h264 {
                    return refuse("h264 = true needs protocol = \"rdp\"".into());
                }
            }
            "rdp" => {
                let Some(rule) = self.certificate_rule() else {
                    return refuse(format!(
                        "certificate {:?} is not one of tofu, system, pin:<sha-256 hex>, accept-any",
                        self.certificate
                    ));
                };
                if rule == CertificateRule::AcceptAny && !allow_insecure {
                    return refuse(
                        "certificate = \"accept-any\" needs allow_insecure_certificates = true (demo only)".into(),
                    );
                }
                match self.credentials {
                    CredentialsMode::Service if self.username.is_none() || self.password.is_none() => {
                        return refuse("credentials = \"service\" needs username and password".into());
                    }
                    CredentialsMode::Passthrough if self.username.is_some() || self.password.is_some() => {
                        return refuse("credentials = \"passthrough\" takes no username or password".into());
                    }
                    _ => {}
                }
                if self.kind == ResourceKind::Application && self.application.is_none() {
                    return refuse("kind = \"application\" needs application = \"<program>\"".into());
                }
            }
            other => return refuse(format!("protocol {other:?} is not supported (vnc or rdp)")),
        }
        Ok(())
    }

    /// The certificate policy, parsed.
    pub fn certificate_rule(&self) -> Option<CertificateRule> {
        CertificateRule::parse(&self.certificate)
    }
}


fn default_certificate() -> String {
    "tofu".into()
}

fn default_keyboard_layout() -> u32 {
    0x040C
}

fn default_true() -> bool {
    true
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/bascule")
}

fn default_protocol() -> String {
    "vnc".into()
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is invalid.
    #[error("invalid configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// An environment override is invalid.
    #[error("invalid value for {name}: {value}")]
    Env {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// The content is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Parses a TOML document and checks it.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a file, applies `BASCULE_LISTEN` and `BASCULE_DATA_DIR` overrides, and checks it.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config: Config = toml::from_str(&text)?;
        if let Ok(value) = std::env::var("BASCULE_LISTEN") {
            config.listen = value.parse().map_err(|_| ConfigError::Env { name: "BASCULE_LISTEN", value })?;
        }
        if let Ok(value) = std::env::var("BASCULE_DATA_DIR") {
            config.data_dir = PathBuf::from(value);
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut ids = std::collections::HashSet::new();
        for resource in &self.resources {
            let valid_id = !resource.id.is_empty()
                && resource.id.len() <= 64
                && resource.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return Err(ConfigError::Invalid(format!(
                    "resource id {:?} must be 1-64 letters, digits, '-' or '_'",
                    resource.id
                )));
            }
            if !ids.insert(resource.id.as_str()) {
                return Err(ConfigError::Invalid(format!("resource id {:?} is listed twice", resource.id)));
            }
            resource.validate(self.allow_insecure_certificates)?;
        }
        let mut names = std::collections::HashSet::new();
        for user in &self.users {
            if user.name.is_empty() || !names.insert(user.name.as_str()) {
                return Err(ConfigError::Invalid(format!("user name {:?} is empty or listed twice", user.name)));
            }
            if let Some(missing) = user.resources.iter().find(|id| !ids.contains(id.as_str())) {
                return Err(ConfigError::Invalid(format!(
                    "user {:?} is given resource {missing:?}, which is not defined",
                    user.name
                )));
            }
            if argon2::PasswordHash::new(&user.password_hash).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "user {:?}: password_hash is not a PHC string (use `bascule hash-password`)",
                    user.name
                )));
            }
        }
        for user in &self.users {
            if let Some(role) = user.roles.iter().find(|r| !matches!(r.as_str(), "user" | "helpdesk" | "admin")) {
                return Err(ConfigError::Invalid(format!(
                    "user {:?}: role {role:?} is not one of user, helpdesk, admin",
                    user.name
                )));
            }
        }
        if let Some(database) = &self.database
            && !["sqlite:", "postgres:", "postgresql:"].iter().any(|p| database.starts_with(p)) {
                return Err(ConfigError::Invalid(format!(
                    "database {database:?} must start with sqlite:// or postgres://"
                )));
            }
        if self.health.failures == 0 || self.health.interval_secs == 0 || self.health.timeout_secs == 0 {
            return Err(ConfigError::Invalid("health.failures, interval_secs and timeout_secs must be at least 1".into()));
        }
        if self.sessions.max_in_flight == 0 {
            return Err(ConfigError::Invalid("sessions.max_in_flight must be at least 1".into()));
        }
        Ok(())
    }

    /// The database URL: `database`, or the SQLite file `data_dir/bascule.db`.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", self.data_dir.join("bascule.db").display()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn a_full_file_parses() {
        let text = format!(
            r#"
listen = "127.0.0.1:9443"
data_dir = "/tmp/x"
[[user]]
name = "agent"
password_hash = "{HASH}"
resources = ["desk"]
[[resource]]
id = "desk"
name_fr = "Bureau"
name_en = "Desktop"
host = "127.0.0.1"
port = 5901
password = "secret"
keyboard = "scancode"
"#
        );
        let config = Config::from_toml(&text).expect("valid");
        assert_eq!(config.resources[0].keyboard, KeyboardMode::Scancode);
        assert_eq!(config.sessions.max_in_flight, 2);
    }

    #[test]
    fn rdp_resources_are_checked() {
        let base = "[[resource]]\nid = \"rds\"\nname_fr = \"x\"\nname_en = \"x\"\nhost = \"h\"\nport = 3389\nprotocol = \"rdp\"\n";
        let service = format!("{base}username = \"svc\"\npassword = \"enc:v1:x\"\n");
        let config = Config::from_toml(&service).expect("service account");
        assert_eq!(config.resources[0].certificate_rule(), Some(CertificateRule::TrustOnFirstUse));
        assert!(Config::from_toml(base).unwrap_err().to_string().contains("needs username and password"));
        let any = format!("{service}certificate = \"accept-any\"\n");
        assert!(Config::from_toml(&any).unwrap_err().to_string().contains("allow_insecure_certificates"));
        assert!(Config::from_toml(&format!("allow_insecure_certificates = true\n{any}")).is_ok());
        let pin = format!("{service}certificate = \"pin:{}\"\n", "ab".repeat(32));
        assert_eq!(Config::from_toml(&pin).expect("pin").resources[0].certificate_rule(), Some(CertificateRule::Pinned([0xab; 32])));
        let app = format!("{service}kind = \"application\"\n");
        assert!(Config::from_toml(&app).unwrap_err().to_string().contains("application = "));
        let passthrough = format!("{base}credentials = \"passthrough\"\n");
        assert_eq!(Config::from_toml(&passthrough).expect("sso").resources[0].credentials, CredentialsMode::Passthrough);
        assert_eq!(format_fingerprint(&[0xab; 32]).len(), 95);
        // H.264 from the host: RDP only, off unless asked for.
        assert!(!Config::from_toml(&passthrough).expect("sso").resources[0].h264);
        assert!(Config::from_toml(&format!("{passthrough}h264 = true\n")).expect("h264").resources[0].h264);
        let vnc = "[[resource]]\nid = \"v\"\nname_fr = \"x\"\nname_en = \"x\"\nhost = \"h\"\nport = 5900\nh264 = true\n";
        assert!(Config::from_toml(vnc).unwrap_err().to_string().contains("h264 = true needs protocol"));
    }

    #[test]
    fn mistakes_are_named() {
        let unknown = format!("[[user]]\nname = \"a\"\npassword_hash = \"{HASH}\"\nresources = [\"nope\"]\n");
        let error = Config::from_toml(&unknown).unwrap_err().to_string();
        assert!(error.contains("\"nope\""), "{error}");
        let bad_id = "[[resource]]\nid = \"a b\"\nname_fr = \"x\"\nname_en = \"x\"\nhost = \"h\"\nport = 1\n";
        assert!(Config::from_toml(bad_id).unwrap_err().to_string().contains("letters"));
        assert!(Config::from_toml("lisen = 1").is_err());
    }
}
