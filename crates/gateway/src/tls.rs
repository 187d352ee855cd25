//! TLS: the configured certificate, or a self-signed one generated on first run.

use crate::config::Config;
use std::path::PathBuf;

/// Where the PEM files are, and whether we made them.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// Certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Private key (PEM).
    pub key_pem: Vec<u8>,
    /// Path of the certificate file.
    pub cert_path: PathBuf,
    /// True when this run generated the pair.
    pub generated: bool,
}

/// Loads the configured pair, or the self-signed pair in the data directory, creating it if needed.
pub fn load_or_generate(config: &Config) -> std::io::Result<TlsMaterial> {
    if let Some(files) = &config.tls {
        return Ok(TlsMaterial {
            cert_pem: std::fs::read(&files.cert)?,
            key_pem: std::fs::read(&files.key)?,
            cert_path: files.cert.clone(),
            generated: false,
        });
    }
    let cert_path = config.data_dir.join("tls-cert.pem");
    let key_path = config.data_dir.join("tls-key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok(TlsMaterial {
            cert_pem: std::fs::read(&cert_path)?,
            key_pem: std::fs::read(&key_path)?,
            cert_path,
            generated: false,
        });
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let listen_ip = config.listen.ip();
    if !listen_ip.is_unspecified() && !listen_ip.is_loopback() {
        names.push(listen_ip.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(&config.data_dir)?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, certified.cert.pem())?;
    Ok(TlsMaterial {
        cert_pem: certified.cert.pem().into_bytes(),
        key_pem: certified.signing_key.serialize_pem().into_bytes(),
        cert_path,
        generated: true,
    })
}

/// Writes a file readable by its owner only.
pub(crate) use bascule_secrets::write_private;
