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
    pub(crate) auth: Arc<Auth>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) stats: Arc<Stats>,
    /// Decrypted backend passwords, by resource id.
    pub(crate) secrets: Arc<std::collections::HashMap<String, crate::secrets::Secret>>,
    /// Resource icons (MIME type, bytes), by resource id.
    pub(crate) icons: Arc<std::collections::HashMap<String, (&'static str, Vec<u8>)>>,
}
