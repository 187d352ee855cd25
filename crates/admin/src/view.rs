//! What a client gets back: plain serialisable views of the domain objects.
//!
//! **Invariant:** no view carries a password, a password hash nor a TOTP secret; they say
//! `password_set` or `totp_enrolled` instead.

use serde::{Deserialize, Serialize};

use crate::settings::{CredentialsMode, Icon, KeyboardMode, RdpSecurity};

/// A host's last health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthView {
    /// `unknown`, `healthy` or `unhealthy`.
    pub state: String,
    /// Since when it is unhealthy (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// What failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A session host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// Stable id.
    pub id: String,
    /// Name in the console.
    pub name: String,
    /// `rdp` or `vnc`.
    pub protocol: String,
    /// DNS name or IP address.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// The most live sessions.
    pub max_sessions: u32,
    /// Relative capacity in weighted pools.
    pub weight: u32,
    /// Whether new sessions avoid it.
    pub draining: bool,
    /// The last health check.
    pub health: HealthView,
    /// `tofu`, `system`, `pin:<hex>` or `accept-any`.
    pub certificate: String,
    /// `service` or `passthrough`.
    pub credentials: CredentialsMode,
    /// Service account user name.
    pub username: Option<String>,
    /// Service account domain.
    pub domain: Option<String>,
    /// Whether a backend password is stored (sealed); the password itself is never shown.
    pub password_set: bool,
    /// RDP security protocol.
    pub security: RdpSecurity,
    /// VNC keyboard mode.
    pub keyboard: KeyboardMode,
    /// Windows keyboard layout id.
    pub keyboard_layout: u32,
    /// H.264 from the host passed through to browsers (RDP).
    pub h264: bool,
    /// Live sessions on it now.
    pub live_sessions: u32,
    /// The pools it belongs to.
    pub pools: Vec<String>,
}

/// A pool of hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolView {
    /// Stable id.
    pub id: String,
    /// Name in the console.
    pub name: String,
    /// Member hosts, in order.
    pub hosts: Vec<String>,
    /// `fewest_sessions` or `weighted`.
    pub balancing: String,
    /// The protocol of its hosts, `null` while it has none.
    pub protocol: Option<String>,
    /// The resources it serves.
    pub resources: Vec<String>,
}

/// A published resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceView {
    /// Stable id.
    pub id: String,
    /// `desktop` or `application`.
    pub kind: String,
    /// The program of an application.
    pub program: Option<String>,
    /// Name in French.
    pub name_fr: String,
    /// Name in English.
    pub name_en: String,
    /// The pool serving it.
    pub pool: String,
    /// Its icon.
    pub icon: Option<Icon>,
    /// The working directory of an application.
    pub working_dir: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Stable id (the login for accounts created here).
    pub id: String,
    /// What the person types to log in.
    pub login: String,
    /// Name in the portal.
    pub display_name: String,
    /// `user`, `helpdesk`, `admin`.
    pub roles: Vec<String>,
    /// Group ids.
    pub groups: Vec<String>,
    /// Whether the account may log in.
    pub enabled: bool,
    /// `local` or `directory`.
    pub source: String,
    /// Whether a local password is set.
    pub password_set: bool,
    /// Whether a second factor (TOTP) is enrolled and confirmed.
    pub totp_enrolled: bool,
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    /// Stable id.
    pub id: String,
    /// Name in the console.
    pub name: String,
    /// Members' logins.
    pub members: Vec<String>,
}

/// An entitlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntitlementView {
    /// The user's login, for a user entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The group id, for a group entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The resource.
    pub resource: String,
}

/// A group-level or resource-level policy; `null` fields are not set at this level.
/// `max_bandwidth_kbps` and `idle_timeout_secs`: 0 means unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// `group` or `resource`.
    pub scope: String,
    /// The group or resource id.
    pub id: String,
    /// Clipboard from the browser to the host.
    pub clipboard_in: Option<bool>,
    /// Clipboard from the host to the browser.
    pub clipboard_out: Option<bool>,
    /// File transfer.
    pub file_transfer: Option<bool>,
    /// Bandwidth cap in kbit/s (0 = unlimited).
    pub max_bandwidth_kbps: Option<u32>,
    /// Idle timeout in seconds (0 = never).
    pub idle_timeout_secs: Option<u32>,
    /// Seconds a disconnected session is kept.
    pub disconnected_keep_secs: Option<u32>,
    /// Windows like `mon-fri 07:00-19:00` (empty = never).
    pub allowed_hours: Option<Vec<String>>,
}

/// One value of the effective policy and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained<T> {
    /// The value in force.
    pub value: T,
    /// `default`, `resource`, `group:<id>` or `groups:<id>,<id>` (allowed hours merged from
    /// several groups).
    pub source: String,
}

/// The policy in force for one user on one resource, each value with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectivePolicyView {
    /// The user's login.
    pub user: String,
    /// The resource.
    pub resource: String,
    /// Whether the user may open the resource at all (directly or through a group).
    pub entitled: bool,
    /// Clipboard from the browser to the host.
    pub clipboard_in: Explained<bool>,
    /// Clipboard from the host to the browser.
    pub clipboard_out: Explained<bool>,
    /// File transfer.
    pub file_transfer: Explained<bool>,
    /// Bandwidth cap in kbit/s (0 = unlimited).
    pub max_bandwidth_kbps: Explained<u32>,
    /// Idle timeout in seconds (0 = never).
    pub idle_timeout_secs: Explained<u32>,
    /// Seconds a disconnected session is kept.
    pub disconnected_keep_secs: Explained<u32>,
    /// Allowed-hours windows.
    pub allowed_hours: Explained<Vec<String>>,
}

/// The licence pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenceView {
    /// Live sessions allowed at once.
    pub capacity: u32,
    /// Live sessions now.
    pub in_use: u32,
    /// `capacity - in_use`, 0 when over.
    pub available: u32,
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// The user's login (its id if the account is gone).
    pub user: String,
    /// The resource.
    pub resource: String,
    /// The host.
    pub host: String,
    /// `starting`, `active` or `disconnected`.
    pub state: String,
    /// When it started (Unix seconds).
    pub started_at: i64,
    /// Since when it is disconnected (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnected_since: Option<i64>,
}
