//! The inventory: session hosts, pools of hosts, and the resources published on them.

use crate::id::{HostId, PoolId, ResourceId};
use crate::time::Timestamp;

/// The protocol a host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Remote Desktop Protocol (Windows, xrdp).
    Rdp,
    /// RFB (x11vnc, TigerVNC).
    Vnc,
}

/// What the health checks last said about a host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// Not probed yet (a new host, or the gateway just started). The broker still uses it, so that
    /// a restart does not refuse every launch until the first probe.
    Unknown,
    /// The last probe succeeded.
    Healthy,
    /// The last probes failed; the broker sends no new session there.
    Unhealthy {
        /// When the host was first seen unhealthy.
        since: Timestamp,
        /// What failed, for the console (not translated).
        reason: String,
    },
}

/// A session host: one server or machine that runs desktops or applications.
///
/// Build one with [`Host::new`] and set the other fields; the struct will grow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Host {
    /// Stable id.
    pub id: HostId,
    /// Name shown in the console.
    pub name: String,
    /// How the gateway talks to it.
    pub protocol: Protocol,
    /// DNS name or IP address.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// The most live sessions (starting, active or disconnected) the host may carry.
    pub max_sessions: u32,
    /// A draining host keeps its sessions (reconnections included) but receives no new one,
    /// so that it can be taken down for maintenance once it is empty.
    pub draining: bool,
    /// What the health checks last said.
    pub health: Health,
    /// Relative capacity for [`Balancing::Weighted`]: a host of weight 2 receives twice the
    /// sessions of a host of weight 1. Weight 0 makes the host a last resort.
    pub weight: u32,
}

impl Host {
    /// A host of unknown health, not draining, weight 1, with room for `max_sessions` sessions.
    pub fn new(
        id: HostId,
        name: impl Into<String>,
        protocol: Protocol,
        address: impl Into<String>,
        port: u16,
        max_sessions: u32,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            protocol,
            address: address.into(),
            port,
            max_sessions,
            draining: false,
            health: Health::Unknown,
            weight: 1,
        }
    }

    /// Whether the last health checks failed.
    pub fn is_unhealthy(&self) -> bool {
        matches!(self.health, Health::Unhealthy { .. })
    }
}

/// How the broker chooses among the available hosts of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Balancing {
    /// The host with the fewest live sessions; ties go to the lowest host id.
    #[default]
    FewestSessions,
    /// The host with the lowest ratio of live sessions to [`Host::weight`]; ties go to the
    /// lowest host id. For pools of unequal servers.
    Weighted,
}

/// Interchangeable hosts that serve the same resources.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pool {
    /// Stable id.
    pub id: PoolId,
    /// Name shown in the console.
    pub name: String,
    /// Members of the pool.
    pub hosts: Vec<HostId>,
    /// How new sessions are spread.
    pub balancing: Balancing,
}

impl Pool {
    /// A pool of `hosts`.
    pub fn new(
        id: PoolId,
        name: impl Into<String>,
        hosts: Vec<HostId>,
        balancing: Balancing,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            hosts,
            balancing,
        }
    }
}

/// What a resource opens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceKind {
    /// The whole desktop.
    Desktop,
    /// One published application (RDP `alternate shell`).
    Application {
        /// The program to run, as the host expects it (e.g. `C:\Program Files\…\app.exe`).
        program: String,
    },
}

/// A published desktop or application, as the portal lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resource {
    /// Stable id, the only thing the browser names.
    pub id: ResourceId,
    /// Desktop or application.
    pub kind: ResourceKind,
    /// Name in French.
    pub name_fr: String,
    /// Name in English.
    pub name_en: String,
    /// The pool whose hosts serve it.
    pub pool: PoolId,
}

impl Resource {
    /// A resource served by `pool`.
    pub fn new(
        id: ResourceId,
        kind: ResourceKind,
        name_fr: impl Into<String>,
        name_en: impl Into<String>,
        pool: PoolId,
    ) -> Self {
        Self {
            id,
            kind,
            name_fr: name_fr.into(),
            name_en: name_en.into(),
            pool,
        }
    }
}
