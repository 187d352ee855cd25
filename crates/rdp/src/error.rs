/// Everything that can go wrong while connecting or running a session.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RdpError {
    /// The TCP connection could not be made (DNS, refused, no route).
    #[error("cannot reach {target}: {source}")]
    Unreachable {
        target: String,
        #[source]
        source: std::io::Error,
    },
    /// `connect_timeout` elapsed.
    #[error("connection timed out (connect_timeout elapsed)")]
    Timeout,
    /// NLA/CredSSP failure or a logon error reported by the server.
    #[error("authentication failed: {0}")]
    AuthenticationFailed(String),
    /// The server certificate does not match the pinned SHA-256 (both in hex).
    #[error("server certificate SHA-256 {got} does not match the pinned {expected}")]
    CertificateMismatch { expected: String, got: String },
    /// The server certificate is not trusted by the system roots.
    #[error("server certificate is not trusted: {0}")]
    CertificateUntrusted(String),
    /// The server refused: negotiation failure, closed the connection, redirected us.
    #[error("server refused the connection: {0}")]
    Refused(String),
    /// The server sent something this client could not understand.
    #[error("RDP protocol error: {0}")]
    Protocol(String),
    /// I/O failure on an established connection.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The connection ended abnormally during the session (server vanished).
    #[error("session ended: {0}")]
    Ended(String),
}

impl RdpError {
    /// Stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RdpError::Unreachable { .. } => "unreachable",
            RdpError::Timeout => "timeout",
            RdpError::AuthenticationFailed(_) => "auth_failed",
            RdpError::CertificateMismatch { .. } => "certificate_mismatch",
            RdpError::CertificateUntrusted(_) => "certificate_untrusted",
            RdpError::Refused(_) => "refused",
            RdpError::Protocol(_) => "protocol_error",
            RdpError::Io(_) => "io_error",
            RdpError::Ended(_) => "ended",
        }
    }
}

/// Renders an error and its whole source chain on one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// Finds an `io::Error` in the source chain.
pub(crate) fn find_io(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

pub(crate) fn is_eof(kind: Option<std::io::ErrorKind>) -> bool {
    matches!(
        kind,
        Some(
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
        )
    )
}
