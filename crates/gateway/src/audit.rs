//! The audit log: one JSON line per login, launch, session end and refusal.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;

/// Appends audit records to `audit.log` in the data directory.
#[derive(Debug)]
pub(crate) struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl AuditLog {
    pub(crate) fn open(path: PathBuf) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(AuditLog { path, file: Mutex::new(Some(file)) })
    }

    /// Where the log is.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Records who did what, from where, and the outcome.
    pub(crate) fn record(&self, actor: &str, action: &str, target: &str, address: Option<IpAddr>, outcome: &str) {
        let when = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = serde_json::json!({
            "time": when,
            "actor": actor,
            "action": action,
            "target": target,
            "address": address.map(|a| a.to_string()),
            "outcome": outcome,
        });
        tracing::info!(target: "audit", %actor, %action, %target, %outcome, "audit");
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = guard.as_mut()
            && let Err(error) = writeln!(file, "{line}") {
                tracing::error!(%error, path = %self.path.display(), "cannot write the audit log");
            }
    }
}
