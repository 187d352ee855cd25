//! Fetching a host's TLS certificate without logging in, for trust-on-first-use: the gateway
//! records the fingerprint for an admin to approve, and sends no credential to an unknown host.

use crate::error::RdpError;
use crate::CertificatePolicy;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An X.224 Connection Request carrying an RDP Negotiation Request for TLS and CredSSP
/// ([MS-RDPBCGR] 2.2.1.1).
const NEGOTIATION_REQUEST: [u8; 19] =
    [0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00];

/// Connects, negotiates TLS, and returns the SHA-256 of the host's leaf certificate.
/// No credential is sent.
pub async fn fetch_certificate_sha256(host: &str, port: u16, timeout: Duration) -> Result<[u8; 32], RdpError> {
    tokio::time::timeout(timeout, fetch(host, port)).await.map_err(|_| RdpError::Timeout)?
}

async fn fetch(host: &str, port: u16) -> Result<[u8; 32], RdpError> {
    let target = format!("{host}:{port}");
    let mut tcp = TcpStream::connect(&target)
        .await
        .map_err(|source| RdpError::Unreachable { target: target.clone(), source })?;
    tcp.write_all(&NEGOTIATION_REQUEST).await.map_err(RdpError::Io)?;
    // TPKT header, then the rest of the X.224 Connection Confirm.
    let mut header = [0u8; 4];
    tcp.read_exact(&mut header)
        .await
        .map_err(|e| RdpError::Refused(format!("the host closed the connection during negotiation ({e})")))?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if header[0] != 0x03 || !(11..=512).contains(&length) {
        return Err(RdpError::Protocol(format!("not an RDP negotiation answer: {header:02x?}")));
    }
    let mut rest = vec![0u8; length - 4];
    tcp.read_exact(&mut rest).await.map_err(RdpError::Io)?;
    // rest: X.224 length indicator, CC code (0xd0), dst ref(2), src ref(2), class, then the negotiation
    // response: type (2 = response, 3 = failure), flags, length(2), selected protocol (4, LE).
    match rest.get(7) {
        Some(0x02) => {
            let selected = rest.get(11..15).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            if selected == 0 {
                return Err(RdpError::Refused("the host offers only standard RDP security, without TLS".into()));
            }
        }
        Some(0x03) => return Err(RdpError::Refused("the host refused TLS and CredSSP".into())),
        _ => return Err(RdpError::Refused("the host gave no negotiation response (standard RDP security only)".into())),
    }
    let upgraded = crate::tls::upgrade(tcp, host, &CertificatePolicy::AcceptAny).await?;
    Ok(crate::tls::sha256(&upgraded.leaf_der))
}
