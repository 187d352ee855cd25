//! The connection settings of hosts and the display settings of resources, stored as JSON in the
//! store's opaque `settings` columns and read back by the gateway when it connects.
//!
//! Both documents refuse unknown fields and fill missing ones with their defaults, so `{}` (what
//! the store writes for a new row) is a valid document.

use bascule_secrets::{Secret, SecretError, SecretKey, is_encrypted};
use serde::{Deserialize, Serialize};

/// The keyboard layout used when none is given: French (AZERTY), `0x040C`.
pub const DEFAULT_KEYBOARD_LAYOUT: u32 = 0x040C;

/// Which credentials the gateway presents to an RDP host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsMode {
    /// The host's own service account (`username`, `domain`, `password` of the settings).
    #[default]
    Service,
    /// Each user's own portal login, kept in memory by the gateway for the session.
    Passthrough,
}

impl CredentialsMode {
    /// The word stored and accepted (`service`, `passthrough`).
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialsMode::Service => "service",
            CredentialsMode::Passthrough => "passthrough",
        }
    }
}

/// Which RDP security protocol the gateway asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RdpSecurity {
    /// Whatever the host offers among TLS and NLA.
    #[default]
    Negotiate,
    /// TLS only.
    Tls,
    /// Network Level Authentication (CredSSP) only.
    Nla,
}

impl RdpSecurity {
    /// The word stored and accepted (`negotiate`, `tls`, `nla`).
    pub fn as_str(self) -> &'static str {
        match self {
            RdpSecurity::Negotiate => "negotiate",
            RdpSecurity::Tls => "tls",
            RdpSecurity::Nla => "nla",
        }
    }
}

/// How keys reach a VNC host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyboardMode {
    /// The character typed (X11 keysym): works with every VNC server.
    #[default]
    Keysym,
    /// The physical key (QEMU extended key events), for servers that support them.
    Scancode,
}

impl KeyboardMode {
    /// The word stored and accepted (`keysym`, `scancode`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyboardMode::Keysym => "keysym",
            KeyboardMode::Scancode => "scancode",
        }
    }
}

/// Which certificates an RDP host may present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateRule {
    /// The first certificate seen is held for approval (`bascule host approve`), then pinned.
    TrustOnFirstUse,
    /// A certificate chaining to the system's roots, for the host's name.
    System,
    /// Exactly the certificate with this SHA-256 fingerprint.
    Pinned([u8; 32]),
    /// Any certificate: for demos and tests only, allowed only when the gateway is configured
    /// with `allow_insecure_certificates`.
    AcceptAny,
}

impl CertificateRule {
    /// Reads `tofu`, `system`, `accept-any` or `pin:<64 hex digits>` (colons between the bytes
    /// allowed, any case).
    pub fn parse(text: &str) -> Option<CertificateRule> {
        match text {
            "tofu" => Some(CertificateRule::TrustOnFirstUse),
            "system" => Some(CertificateRule::System),
            "accept-any" => Some(CertificateRule::AcceptAny),
            _ => {
                let hex: String = text
                    .strip_prefix("pin:")?
                    .chars()
                    .filter(|&c| c != ':')
                    .collect();
                if hex.len() != 64 || !hex.is_ascii() {
                    return None;
                }
                let mut bytes = [0u8; 32];
                for (index, byte) in bytes.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(index * 2..index * 2 + 2)?, 16).ok()?;
                }
                Some(CertificateRule::Pinned(bytes))
            }
        }
    }

    /// The canonical text: `tofu`, `system`, `accept-any`, or `pin:` and 64 lowercase hex digits.
    pub fn to_text(&self) -> String {
        match self {
            CertificateRule::TrustOnFirstUse => "tofu".into(),
            CertificateRule::System => "system".into(),
            CertificateRule::AcceptAny => "accept-any".into(),
            CertificateRule::Pinned(bytes) => {
                let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
                format!("pin:{hex}")
            }
        }
    }
}

/// How the gateway connects to a host; the JSON document of the host's `settings` column.
///
/// `password` is always sealed (`enc:v1:…`) with the gateway's `secret.key`; open it with
/// [`HostSettings::open_password`]. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostSettings {
    /// `tofu` (default), `system`, `pin:<sha-256 hex>` or `accept-any`; see [`CertificateRule`].
    pub certificate: String,
    /// Service account (default) or the user's own login.
    pub credentials: CredentialsMode,
    /// The service account's user name (RDP).
    pub username: Option<String>,
    /// The service account's domain (RDP), or the domain passed with pass-through logins.
    pub domain: Option<String>,
    /// The service account's password (RDP) or the VNC password, sealed.
    pub password: Option<String>,
    /// The RDP security protocol.
    pub security: RdpSecurity,
    /// How keys reach a VNC host.
    pub keyboard: KeyboardMode,
    /// The Windows keyboard layout id sent to RDP hosts (default `0x040C`, French).
    pub keyboard_layout: u32,
    /// RDP: let the host send H.264 (AVC420), passed on as it came to browsers that decode it
    /// (and decoded on the gateway for the others). Lossy: what the host encodes is never
    /// pixel-exact. Off by default.
    pub h264: bool,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            certificate: "tofu".into(),
            credentials: CredentialsMode::Service,
            username: None,
            domain: None,
            password: None,
            security: RdpSecurity::Negotiate,
            keyboard: KeyboardMode::Keysym,
            keyboard_layout: DEFAULT_KEYBOARD_LAYOUT,
            h264: false,
        }
    }
}

impl std::fmt::Debug for HostSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSettings")
            .field("certificate", &self.certificate)
            .field("credentials", &self.credentials)
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("password", &self.password.as_ref().map(|_| "<sealed>"))
            .field("security", &self.security)
            .field("keyboard", &self.keyboard)
            .field(
                "keyboard_layout",
                &format_args!("{:#06x}", self.keyboard_layout),
            )
            .field("h264", &self.h264)
            .finish()
    }
}

impl HostSettings {
    /// The certificate rule, or `None` if `certificate` is not one (the administration service
    /// never stores such a value).
    pub fn parse_certificate(&self) -> Option<CertificateRule> {
        CertificateRule::parse(&self.certificate)
    }

    /// Reads the stored document; `{}` gives the defaults.
    pub fn from_json(text: &str) -> Result<HostSettings, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The document to store.
    pub fn to_json(&self) -> String {
        // INVARIANT: a struct of strings, numbers and unit enums always serialises.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The plaintext password, if one is set.
    ///
    /// [`SecretError::Plaintext`] if the stored value is not sealed (edited by hand), and
    /// [`SecretError::Undecryptable`] if it was sealed with another key.
    pub fn open_password(&self, key: &SecretKey) -> Result<Option<Secret>, SecretError> {
        match &self.password {
            None => Ok(None),
            Some(sealed) if is_encrypted(sealed) => key.decrypt(sealed).map(Some),
            Some(_) => Err(SecretError::Plaintext),
        }
    }
}

/// A resource's icon for the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Icon {
    /// `image/png` or `image/svg+xml`.
    pub mime: String,
    /// The image, standard base64 (with padding).
    pub data: String,
}

/// How the portal shows a resource and where an application starts; the JSON document of the
/// resource's `settings` column.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceSettings {
    /// The icon, at most 64 KiB once decoded.
    pub icon: Option<Icon>,
    /// The working directory of an application (RDP).
    pub working_dir: Option<String>,
}

impl ResourceSettings {
    /// Reads the stored document; `{}` gives the defaults.
    pub fn from_json(text: &str) -> Result<ResourceSettings, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The document to store.
    pub fn to_json(&self) -> String {
        // INVARIANT: strings and options always serialise.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn certificate_rules() {
        assert_eq!(
            CertificateRule::parse("tofu"),
            Some(CertificateRule::TrustOnFirstUse)
        );
        assert_eq!(
            CertificateRule::parse("system"),
            Some(CertificateRule::System)
        );
        assert_eq!(
            CertificateRule::parse("accept-any"),
            Some(CertificateRule::AcceptAny)
        );
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let Some(CertificateRule::Pinned(bytes)) = CertificateRule::parse(&format!("pin:{hex}"))
        else {
            panic!("a pin")
        };
        assert_eq!(bytes[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(bytes[31], 0xff);
        let colons: Vec<String> = bytes.iter().map(|byte| format!("{byte:02X}")).collect();
        assert_eq!(
            CertificateRule::parse(&format!("pin:{}", colons.join(":"))),
            Some(CertificateRule::Pinned(bytes))
        );
        assert_eq!(
            CertificateRule::Pinned(bytes).to_text(),
            format!("pin:{}", hex.to_lowercase())
        );
        for bad in ["pin:zz", "pin:", "PIN:00", "pin:0011", "Tofu", "", "pin:é0"] {
            assert_eq!(CertificateRule::parse(bad), None, "{bad}");
        }
        let odd = format!("pin:{}", "é".repeat(32));
        assert_eq!(CertificateRule::parse(&odd), None);
    }

    #[test]
    fn documents_default_and_refuse_unknown_fields() {
        let settings = HostSettings::from_json("{}").unwrap();
        assert_eq!(settings, HostSettings::default());
        assert_eq!(settings.keyboard_layout, 0x040C);
        assert_eq!(
            settings.parse_certificate(),
            Some(CertificateRule::TrustOnFirstUse)
        );
        let json = HostSettings {
            credentials: CredentialsMode::Passthrough,
            security: RdpSecurity::Nla,
            ..HostSettings::default()
        }
        .to_json();
        assert!(json.contains("\"credentials\":\"passthrough\""), "{json}");
        assert!(json.contains("\"security\":\"nla\""), "{json}");
        assert!(HostSettings::from_json("{\"colour\":1}").is_err());
        assert_eq!(
            ResourceSettings::from_json("{}").unwrap(),
            ResourceSettings::default()
        );
        assert!(ResourceSettings::from_json("{\"icon\":{\"mime\":\"x\"}}").is_err());
        let debug = format!(
            "{:?}",
            HostSettings {
                password: Some("enc:v1:abc".into()),
                ..HostSettings::default()
            }
        );
        assert!(!debug.contains("abc"), "{debug}");
    }
}
