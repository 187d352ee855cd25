//! Error type of the RFB client.

/// Why the RFB session failed. After any error the [`crate::Client`] is dead.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// SecurityResult reported failure (RFC 6143 §7.1.3).
    #[error("authentication failed: {reason}")]
    AuthenticationFailed {
        /// Reason sent by the server (empty before 3.8).
        reason: String,
    },
    /// The server requires VNC Authentication but no password is configured.
    #[error("server requires a password but none is configured")]
    PasswordRequired,
    /// None of the offered security types is supported (RFC 6143 §7.1.2).
    #[error("no supported security type (offered {offered:?})")]
    NoSupportedSecurity {
        /// Security types offered by the server.
        offered: Vec<u8>,
    },
    /// The server refused the connection (security type 0, RFC 6143 §7.1.2).
    #[error("server refused the connection: {reason}")]
    ServerRefused {
        /// Reason sent by the server.
        reason: String,
    },
    /// The server's ProtocolVersion is not supported (RFC 6143 §7.1.1).
    #[error("unsupported protocol version {0:?}")]
    UnsupportedVersion(String),
    /// The server sent something malformed.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Something exceeds the configured [`crate::Limits`].
    #[error("{what} too large: {size} exceeds limit {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A zlib stream was corrupt, too short or too long.
    #[error("decompression failed: {0}")]
    Decompress(String),
    /// A Tight JPEG rectangle could not be decoded.
    #[error("jpeg decoding failed: {0}")]
    Jpeg(String),
}

impl Error {
    /// Stable machine-readable code: `auth_failed`, `protocol_error`,
    /// `too_large`, `refused` or `unsupported`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::AuthenticationFailed { .. } | Error::PasswordRequired => "auth_failed",
            Error::NoSupportedSecurity { .. } | Error::UnsupportedVersion(_) => "unsupported",
            Error::ServerRefused { .. } => "refused",
            Error::TooLarge { .. } => "too_large",
            Error::Protocol(_) | Error::Decompress(_) | Error::Jpeg(_) => "protocol_error",
        }
    }

    pub(crate) fn proto(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }

    pub(crate) fn too_large(what: &'static str, size: u64, limit: u64) -> Error {
        Error::TooLarge { what, size, limit }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(Error::PasswordRequired.code(), "auth_failed");
        assert_eq!(Error::proto("x").code(), "protocol_error");
        assert_eq!(Error::Decompress("x".into()).code(), "protocol_error");
        assert_eq!(Error::too_large("x", 2, 1).code(), "too_large");
        assert_eq!(Error::ServerRefused { reason: String::new() }.code(), "refused");
        assert_eq!(Error::UnsupportedVersion("x".into()).code(), "unsupported");
        assert_eq!(Error::too_large("name", 2, 1).to_string(), "name too large: 2 exceeds limit 1");
    }
}
