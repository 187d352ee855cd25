//! Host certificates seen under the trust-on-first-use policy: pending until an admin approves
//! them (`bascule host approve`), then pinned.
//!
//! Stored as JSON in `data_dir/host-certificates.json`; the gateway re-reads it at each connection,
//! so an approval takes effect without a restart.

use crate::config::{format_fingerprint, parse_fingerprint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "host-certificates.json";

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing the file failed.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The cause.
        reason: String,
    },
    /// The fingerprint text is not 32 hex bytes.
    #[error("{0:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")]
    BadFingerprint(String),
    /// Nothing pending with that fingerprint for that resource.
    #[error("no pending certificate {fingerprint} for resource {resource:?}: connect once so that the gateway records it, or check the value")]
    NotPending {
        /// The resource.
        resource: String,
        /// The fingerprint.
        fingerprint: String,
    },
}

/// A certificate waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// SHA-256 fingerprint, `AB:CD:…`.
    pub fingerprint: String,
    /// When it was first seen (RFC 3339).
    pub first_seen: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Contents {
    #[serde(default)]
    approved: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pending: BTreeMap<String, Pending>,
}

/// The store of one data directory.
#[derive(Debug, Clone)]
pub struct CertificateStore {
    path: PathBuf,
}

impl CertificateStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &Path) -> CertificateStore {
        CertificateStore { path: data_dir.join(FILE) }
    }

    fn read(&self) -> Result<Contents, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Damaged { path: self.path.clone(), reason: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Contents::default()),
            Err(source) => Err(StoreError::Io { path: self.path.clone(), source }),
        }
    }

    fn write(&self, contents: &Contents) -> Result<(), StoreError> {
        let io = |source| StoreError::Io { path: self.path.clone(), source };
        let text = serde_json::to_string_pretty(contents).map_err(|e| io(std::io::Error::other(e)))?;
        // Write then rename, so that a crash never leaves half a file.
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)
    }

    /// Approved fingerprints of a resource.
    pub fn approved(&self, resource: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        Ok(self.read()?.approved.get(resource).map(|list| list.iter().filter_map(|f| parse_fingerprint(f)).collect()).unwrap_or_default())
    }

    /// Records a certificate seen for a resource, waiting for approval.
    pub fn record_pending(&self, resource: &str, fingerprint: &[u8; 32]) -> Result<(), StoreError> {
        let mut contents = self.read()?;
        let fingerprint = format_fingerprint(fingerprint);
        if contents.pending.get(resource).is_some_and(|p| p.fingerprint == fingerprint) {
            return Ok(());
        }
        let first_seen = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        contents.pending.insert(resource.to_owned(), Pending { fingerprint, first_seen });
        self.write(&contents)
    }

    /// Certificates waiting for approval, by resource.
    pub fn pending(&self) -> Result<BTreeMap<String, Pending>, StoreError> {
        Ok(self.read()?.pending)
    }

    /// Approves the pending certificate of a resource; the fingerprint must match what was seen.
    pub fn approve(&self, resource: &str, fingerprint: &str) -> Result<(), StoreError> {
        let parsed = parse_fingerprint(fingerprint).ok_or_else(|| StoreError::BadFingerprint(fingerprint.to_owned()))?;
        let canonical = format_fingerprint(&parsed);
        let mut contents = self.read()?;
        if contents.pending.get(resource).is_none_or(|p| p.fingerprint != canonical) {
            return Err(StoreError::NotPending { resource: resource.to_owned(), fingerprint: canonical });
        }
        contents.pending.remove(resource);
        let list = contents.approved.entry(resource.to_owned()).or_default();
        if !list.contains(&canonical) {
            list.push(canonical);
        }
        self.write(&contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_approved() {
        let dir = std::env::temp_dir().join(format!("bascule-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let store = CertificateStore::new(&dir);
        assert!(store.approved("rds").expect("empty").is_empty());
        store.record_pending("rds", &[7; 32]).expect("record");
        let wrong = format_fingerprint(&[8; 32]);
        assert!(matches!(store.approve("rds", &wrong), Err(StoreError::NotPending { .. })));
        assert!(matches!(store.approve("rds", "zz"), Err(StoreError::BadFingerprint(_))));
        let right = format_fingerprint(&[7; 32]).replace(':', "").to_lowercase();
        store.approve("rds", &right).expect("approve");
        assert_eq!(store.approved("rds").expect("list"), vec![[7; 32]]);
        assert!(store.pending().expect("pending").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
