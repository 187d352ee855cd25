//! The Bascule gateway: HTTPS, login (local, LDAP, TOTP), portal, broker, launch tickets, the
//! admin REST API, viewer WebSockets, and the tokio shells that drive VNC and RDP sessions.
//!
//! Architecture invariant: the browser names only a resource id; the broker resolves host, port
//! and backend credentials from the database, and they never leave this process.

#![warn(missing_docs)]

mod api;
mod audit;
pub mod certstore;
mod auth;
pub mod config;
mod console;
mod control;
mod flow;
mod incidents;
pub mod malloc;
mod metrics;
mod pace;
mod report;
mod http;
mod i18n;
mod rdp_backend;
pub use bascule_secrets as secrets;
mod session;
mod state;
pub mod tls;
mod ws;

pub use auth::hash_password;
pub use config::Config;
pub use state::Stats;

use std::net::SocketAddr;
use std::sync::Arc;

/// Records an administrative action taken outside the gateway process (the CLI) in the audit log
/// of `data_dir`.
pub fn audit_admin_action(data_dir: &std::path::Path, action: &str, target: &str, outcome: &str) -> std::io::Result<()> {
    let actor = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "cli".into());
    let log = audit::AuditLog::open(data_dir.join("audit.log"))?;
    log.record(&format!("cli:{actor}"), action, target, None, outcome);
    Ok(())
}

/// Reads a resource icon: PNG or SVG, at most 64 KiB.
fn load_icon(path: &std::path::Path) -> std::io::Result<(&'static str, Vec<u8>)> {
    let mime = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => return Err(std::io::Error::other("an icon must be a .png or .svg file")),
    };
    let bytes = std::fs::read(path)?;
    if bytes.len() > 64 * 1024 {
        return Err(std::io::Error::other("an icon must be at most 64 KiB"));
    }
    Ok((mime, bytes))
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A secret in the configuration cannot be used.
    #[error("resource {resource:?}: {source}")]
    Secret {
        /// The resource.
        resource: String,
        /// The cause.
        source: secrets::SecretError,
    },
    /// The database or the directory could not be opened, or the seed is invalid.
    #[error("control plane: {0}")]
    ControlPlane(String),
    /// The data directory, the certificate or the audit log could not be prepared.
    #[error("cannot prepare {what}: {source}")]
    Prepare {
        /// What.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// A bound, not yet running gateway.
pub struct Gateway {
    listener: std::net::TcpListener,
    tls: tls::TlsMaterial,
    state: state::AppState,
}

/// A running gateway.
pub struct RunningGateway {
    address: SocketAddr,
    handle: axum_server::Handle<SocketAddr>,
    state: state::AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    /// Prepares the data directory and certificate, opens (and migrates) the database, applies
    /// the seed, and binds the listener.
    pub async fn bind(config: Config) -> Result<Gateway, StartError> {
        // Only ring; nothing else installs a provider, so an error here means it is already set.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let prepare = |what: &str| {
            let what = what.to_owned();
            move |source| StartError::Prepare { what, source }
        };
        std::fs::create_dir_all(&config.data_dir).map_err(prepare(&config.data_dir.display().to_string()))?;
        let tls = tls::load_or_generate(&config).map_err(prepare("the TLS certificate"))?;
        let audit = Arc::new(audit::AuditLog::open(config.data_dir.join("audit.log")).map_err(prepare("the audit log"))?);
        let key = Arc::new(
            secrets::SecretKey::load_or_create(&config.data_dir)
                .map_err(|source| StartError::Secret { resource: "-".into(), source })?,
        );
        for resource in &config.resources {
            if let Some(sealed) = &resource.password {
                key.decrypt(sealed).map_err(|source| StartError::Secret { resource: resource.id.clone(), source })?;
            }
        }
        let metrics_token = match &config.metrics.token {
            Some(sealed) => Some(Arc::new(
                key.decrypt(sealed).map_err(|source| StartError::Secret { resource: "metrics.token".into(), source })?,
            )),
            None => None,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|source| StartError::Bind { address: config.listen, source })?;
        listener.set_nonblocking(true).map_err(prepare("the listener"))?;
        let config = Arc::new(config);
        let plane = control::ControlPlane::open(config.clone(), key, audit.clone())
            .await
            .map_err(|e| StartError::ControlPlane(e.to_string()))?;
        metrics::handle();
        let state = state::AppState {
            auth: Arc::new(auth::Auth::new(config.login.clone())),
            config,
            sessions: Arc::new(session::Sessions::default()),
            plane: Arc::new(plane),
            needs_passwords: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            metrics_token,
            audit,
            stats: Arc::new(Stats::default()),
        };
        Ok(Gateway { listener, tls, state })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Path of the certificate in use, and whether this run generated it.
    pub fn certificate(&self) -> (&std::path::Path, bool) {
        (&self.tls.cert_path, self.tls.generated)
    }

    /// Starts serving in the background.
    pub async fn start(self) -> Result<RunningGateway, StartError> {
        let address = self.local_addr().map_err(|source| StartError::Prepare { what: "listener".into(), source })?;
        let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(self.tls.cert_pem.clone(), self.tls.key_pem.clone())
            .await
            .map_err(|source| StartError::Prepare { what: "the TLS configuration".into(), source })?;
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(self.listener, rustls)
            .map_err(|source| StartError::Bind { address, source })?
            .handle(handle.clone());
        let app = http::app(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        self.state.refresh_needs_passwords().await;
        let housekeeping = tokio::spawn(control::housekeeping(self.state.clone()));
        let reports = tokio::spawn(report::schedule(self.state.clone()));
        let task = tokio::spawn(async move {
            let result = server.serve(app).await;
            housekeeping.abort();
            reports.abort();
            result
        });
        Ok(RunningGateway { address, handle, state: self.state, task })
    }
}

impl RunningGateway {
    /// The address it serves on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Gateway-wide counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.state.sessions.count()
    }

    /// Where the audit log is written.
    pub fn audit_path(&self) -> &std::path::Path {
        self.state.audit.path()
    }

    /// Ends every session with a notice, then stops serving.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.state.sessions.end_all("gateway.shutdown");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(2)));
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Waits until the server stops by itself (it only does on error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        (&mut self.task).await.map_err(std::io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_password(data_dir: &std::path::Path, password: &str) -> Config {
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[resource]]\nid = \"desk\"\nname_fr = \"B\"\nname_en = \"D\"\nhost = \"127.0.0.1\"\nport = 5900\npassword = \"{password}\"\n",
            data_dir.display()
        );
        Config::from_toml(&text).expect("valid config")
    }

    #[tokio::test]
    async fn plaintext_backend_passwords_are_refused_and_encrypted_ones_accepted() {
        let dir = std::env::temp_dir().join(format!("bascule-bind-{}", std::process::id()));
        let error = Gateway::bind(config_with_password(&dir, "clear")).await.err().expect("refused");
        let message = error.to_string();
        assert!(message.contains("\"desk\"") && message.contains("bascule secret encrypt"), "{message}");
        let sealed = secrets::SecretKey::load_or_create(&dir).expect("key").encrypt("clear");
        let gateway = Gateway::bind(config_with_password(&dir, &sealed)).await.expect("accepted");
        let settings = gateway.state.plane.store.get_host_settings(&bascule_domain::id::HostId::new("desk")).await;
        let settings = settings.expect("read").expect("seeded host");
        assert!(settings.contains("enc:v1:") && !settings.contains("clear"), "sealed at rest: {settings}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
