//! The shared state handed to every handler: cheap to clone, all handles.

use crate::audit::AuditLog;
use crate::auth::Auth;
use crate::config::Config;
use crate::session::Sessions;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Gateway-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    /// Bytes sent to browsers over viewer WebSockets.
    pub bytes_to_clients: AtomicU64,
}

#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) auth: Arc<Auth<crate::control::Ticket>>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) stats: Arc<Stats>,
    /// The database, the broker and the directory.
    pub(crate) plane: Arc<crate::control::ControlPlane>,
    /// Whether some host passes the user's own password through (then the portal session keeps
    /// it in memory); refreshed by the housekeeping task.
    pub(crate) needs_passwords: Arc<std::sync::atomic::AtomicBool>,
    /// The `/metrics` bearer token, decrypted.
    pub(crate) metrics_token: Option<Arc<crate::secrets::Secret>>,
}

impl AppState {
    /// Re-reads whether the portal must keep login passwords for pass-through hosts.
    pub(crate) async fn refresh_needs_passwords(&self) {
        let needed = self.plane.needs_login_passwords().await;
        self.needs_passwords.store(needed, std::sync::atomic::Ordering::Relaxed);
    }
}
