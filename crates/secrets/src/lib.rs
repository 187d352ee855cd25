#![warn(missing_docs)]
//! Secrets at rest: backend passwords in the configuration are stored encrypted with a key file
//! that the gateway creates on first run (`data_dir/secret.key`, mode 0600).
//!
//! Format: `enc:v1:` followed by URL-safe base64 of a 12-byte nonce and the ChaCha20-Poly1305
//! ciphertext with its tag. `bascule secret encrypt` produces such values.

use base64::Engine;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

const PREFIX: &str = "enc:v1:";
const KEY_FILE: &str = "secret.key";

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The key file could not be read or created.
    #[error("cannot use the key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold a 32-byte key.
    #[error("the key file {0} is not a 32-byte key")]
    BadKey(PathBuf),
    /// The value is not in the `enc:v1:` format, or was made with another key.
    #[error("a secret cannot be decrypted (made with another secret.key, or damaged)")]
    Undecryptable,
    /// A plaintext secret where an encrypted one is required.
    #[error("secrets must be stored encrypted: run `bascule secret encrypt --data-dir DIR` and paste its output")]
    Plaintext,
}

/// A secret value in memory. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Wraps a plaintext value.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The plaintext.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The gateway's secret key.
pub struct SecretKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Loads `data_dir/secret.key`, creating it (0600) on first run.
    pub fn load_or_create(data_dir: &Path) -> Result<SecretKey, SecretError> {
        let path = data_dir.join(KEY_FILE);
        let io = |source| SecretError::KeyFile { path: path.clone(), source };
        if !path.exists() {
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let mut bytes = [0u8; 32];
            SystemRandom::new().fill(&mut bytes).map_err(|_| io(std::io::Error::other("no randomness")))?;
            write_private(&path, &bytes).map_err(io)?;
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &bytes).map_err(|_| SecretError::BadKey(path.clone()))?;
        Ok(SecretKey { key: LessSafeKey::new(unbound) })
    }

    /// Encrypts a value into the `enc:v1:` format.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // INVARIANT: the system RNG does not fail on Linux once booted; a zero nonce would still
        // decrypt correctly, only weaker, and this is never reached in practice.
        let _ = SystemRandom::new().fill(&mut nonce);
        let mut data = plaintext.as_bytes().to_vec();
        let _ = self.key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts an `enc:v1:` value.
    pub fn decrypt(&self, value: &str) -> Result<Secret, SecretError> {
        let encoded = value.strip_prefix(PREFIX).ok_or(SecretError::Plaintext)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SecretError::Undecryptable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Undecryptable)?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain.to_vec()).map(Secret).map_err(|_| SecretError::Undecryptable)
    }
}

/// True when a configuration value is in the encrypted format.
pub fn is_encrypted(value: &str) -> bool {
    value.starts_with(PREFIX)
}

/// Writes a file readable by its owner only (mode 0600), replacing it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = std::env::temp_dir().join(format!("bascule-secret-{}", std::process::id()));
        let key = SecretKey::load_or_create(&dir).expect("key");
        let sealed = key.encrypt("s3cret é");
        assert!(is_encrypted(&sealed));
        assert!(!sealed.contains("s3cret"));
        assert_eq!(key.decrypt(&sealed).expect("opens").expose(), "s3cret é");
        assert_ne!(key.encrypt("s3cret é"), sealed, "a fresh nonce each time");
        assert!(matches!(key.decrypt("s3cret"), Err(SecretError::Plaintext)));
        let mut damaged = sealed.clone();
        damaged.pop();
        damaged.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(matches!(key.decrypt(&damaged), Err(SecretError::Undecryptable)));
        // The same file gives the same key; another directory gives another key.
        assert!(SecretKey::load_or_create(&dir).expect("again").decrypt(&sealed).is_ok());
        let other = SecretKey::load_or_create(&dir.join("other")).expect("other key");
        assert!(matches!(other.decrypt(&sealed), Err(SecretError::Undecryptable)));
        assert_eq!(format!("{:?}", Secret::new("x".into())), "Secret(..)");
        let mode = std::fs::metadata(dir.join(KEY_FILE)).expect("file").permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
