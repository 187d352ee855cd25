//! `bascule backup` and `bascule restore`: the control plane's database as one JSON document.
//!
//! The document is the store's [`bascule_store::Backup`], wrapped with the secret key when asked:
//! encrypted values (host passwords, TOTP seeds) are useless without the `secret.key` they were
//! sealed with, so a restore on a new machine needs the key, in the backup or copied by hand.

use anyhow::{Context, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// The file format: the store's backup, and optionally the key.
#[derive(Serialize, Deserialize)]
struct BackupFile {
    /// The store's tables.
    database: serde_json::Value,
    /// `secret.key`, base64, when `--with-key` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
}

const KEY_FILE: &str = "secret.key";

pub(crate) async fn backup(config: &bascule_gateway::Config, output: &Path, with_key: bool) -> anyhow::Result<()> {
    let store = bascule_store::Store::connect(&config.database_url()).await.context("opening the database")?;
    store.migrate().await.context("bringing the database schema up to date")?;
    eprintln!("[1/2] reading the database ({:?})…", store.backend());
    let dump = store.export().await.context("reading the database")?;
    let database = serde_json::from_str(&dump.to_json()?).context("encoding the backup")?;
    let secret_key = if with_key {
        let path = config.data_dir.join(KEY_FILE);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    } else {
        None
    };
    let text = serde_json::to_string_pretty(&BackupFile { database, secret_key })?;
    eprintln!("[2/2] writing {}…", output.display());
    if output == Path::new("-") {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        bascule_gateway::secrets::write_private(output, text.as_bytes())
            .with_context(|| format!("writing {}", output.display()))?;
    }
    store.close().await;
    eprintln!(
        "backup written ({} bytes){}",
        text.len(),
        if with_key {
            ", with the secret key: protect this file like the key itself"
        } else {
            "; keep a copy of secret.key too, or encrypted secrets cannot be restored"
        }
    );
    Ok(())
}

pub(crate) async fn restore(config: &bascule_gateway::Config, input: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let file: BackupFile = serde_json::from_str(&text).context("this file is not a Bascule backup")?;
    let dump = bascule_store::Backup::from_json(&file.database.to_string())?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("creating {}", config.data_dir.display()))?;
    if let Some(encoded) = &file.secret_key {
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).context("the backup's secret key is damaged")?;
        let path = config.data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(existing) if existing == bytes => {}
            Ok(_) => bail!(
                "{} holds another key than the backup's: move it away first (secrets sealed with it would be lost)",
                path.display()
            ),
            Err(_) => {
                bascule_gateway::secrets::write_private(&path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("secret key restored to {}", path.display());
            }
        }
    }
    let store = bascule_store::Store::connect(&config.database_url()).await.context("opening the database")?;
    store.migrate().await.context("preparing the database schema")?;
    eprintln!("[1/1] restoring into {:?}…", store.backend());
    store.import(&dump).await.context("restoring the backup")?;
    store.close().await;
    eprintln!("restored.");
    Ok(())
}
