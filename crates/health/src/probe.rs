//! The tokio shell: one TCP connection, the banner check, a polite close.

use crate::banner::{BannerCheck, Protocol, check_banner, rdp_connection_request};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// How long a probe waits, at most, for the peer to acknowledge its close (after the decision;
/// not counted in [`ProbeOk::elapsed`]).
const CLOSE_GRACE: Duration = Duration::from_millis(250);
/// At most this many bytes are read while closing; a peer that keeps sending is cut off.
const DRAIN_LIMIT: usize = 64 * 1024;

/// A successful probe: the host answered with a valid banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOk {
    /// What the banner said, e.g. `"RFB 003.008"` or `"RDP, TLS selected"`.
    pub detail: String,
    /// From the start of the probe (name resolution included) to the decision.
    pub elapsed: Duration,
}

/// The step of a probe that a timeout interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Resolving the host name.
    Resolve,
    /// Opening the TCP connection.
    Connect,
    /// Waiting for the VNC banner or the RDP Connection Confirm.
    Banner,
}

impl Phase {
    /// `"resolve"`, `"connect"` or `"banner"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Banner => "banner",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a probe failed. Each message names the host and says what happened in plain English.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// The host name did not resolve to any address.
    #[error("cannot resolve the host name of {address}: {source}")]
    Resolve {
        /// `host:port` as given.
        address: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// No TCP connection could be opened (refused, unreachable…).
    #[error("cannot connect to {address}: {source}")]
    Connect {
        /// `host:port` as given.
        address: String,
        /// The error of the last address tried.
        source: io::Error,
    },
    /// The probe did not finish in time.
    #[error("{}", timeout_message(*.phase, *.protocol, .address, *.after, *.received))]
    Timeout {
        /// The step that was interrupted.
        phase: Phase,
        /// The protocol probed.
        protocol: Protocol,
        /// `host:port` as given.
        address: String,
        /// The probe's timeout.
        after: Duration,
        /// Bytes received from the host before the timeout.
        received: usize,
    },
    /// The host answered, but not with a valid banner of the protocol.
    #[error("{address} answered, but its reply is not a valid {protocol} banner: {reason}")]
    Banner {
        /// The protocol probed.
        protocol: Protocol,
        /// `host:port` as given.
        address: String,
        /// Why the banner is not valid.
        reason: String,
    },
    /// The host closed (or reset) the connection before sending a complete banner.
    #[error("{}", closed_message(*.protocol, .address, *.received, .source.as_ref()))]
    Closed {
        /// The protocol probed.
        protocol: Protocol,
        /// `host:port` as given.
        address: String,
        /// Bytes received before the close.
        received: usize,
        /// The socket error, when the connection was reset rather than closed.
        source: Option<io::Error>,
    },
}

impl ProbeError {
    /// A stable code for logs, metrics and the admin UI: `resolve`, `connect`, `timeout`,
    /// `bad_banner` or `closed`.
    pub fn code(&self) -> &'static str {
        match self {
            ProbeError::Resolve { .. } => "resolve",
            ProbeError::Connect { .. } => "connect",
            ProbeError::Timeout { .. } => "timeout",
            ProbeError::Banner { .. } => "bad_banner",
            ProbeError::Closed { .. } => "closed",
        }
    }
}

fn timeout_message(phase: Phase, protocol: Protocol, address: &str, after: Duration, received: usize) -> String {
    let after = human(after);
    match phase {
        Phase::Resolve => format!("timed out after {after} resolving the host name of {address}"),
        Phase::Connect => format!(
            "timed out after {after} connecting to {address} (no answer: host down, or a firewall drops the packets)"
        ),
        Phase::Banner => {
            let what = match protocol {
                Protocol::Vnc => "the VNC banner (RFB ProtocolVersion)",
                Protocol::Rdp => "the RDP answer (X.224 Connection Confirm)",
            };
            format!(
                "timed out after {after} waiting for {what} from {address}: {received} bytes received; is it {} server?",
                with_article(protocol)
            )
        }
    }
}

fn closed_message(protocol: Protocol, address: &str, received: usize, source: Option<&io::Error>) -> String {
    let how = match source {
        Some(error) => format!("the connection failed ({error})"),
        None => "the host closed the connection".to_owned(),
    };
    format!(
        "{how} after {received} bytes, before a complete {protocol} banner from {address}; is it {} server?",
        with_article(protocol)
    )
}

/// `"an RDP"` or `"a VNC"`.
fn with_article(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rdp => "an RDP",
        Protocol::Vnc => "a VNC",
    }
}

/// `850 ms` or `2.5 s`.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// Probes `address:port` (a host name or an IP address) for `protocol` within `timeout`
/// (one deadline for the whole probe): resolves the name, connects to each address in turn,
/// sends [`rdp_connection_request`] when RDP, reads until [`check_banner`] decides, then shuts
/// the connection down politely (FIN, then a short wait for the peer's). Never logs in.
pub async fn probe(protocol: Protocol, address: &str, port: u16, timeout: Duration) -> Result<ProbeOk, ProbeError> {
    let start = Instant::now();
    let deadline = start + timeout;
    let display = if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") };
    let timed_out = |phase: Phase, received: usize| ProbeError::Timeout {
        phase,
        protocol,
        address: display.clone(),
        after: timeout,
        received,
    };

    let addrs: Vec<SocketAddr> = match timeout_at(deadline, tokio::net::lookup_host((address, port))).await {
        Err(_) => return Err(timed_out(Phase::Resolve, 0)),
        Ok(Err(source)) => return Err(ProbeError::Resolve { address: display, source }),
        Ok(Ok(addrs)) => addrs.collect(),
    };
    if addrs.is_empty() {
        return Err(ProbeError::Resolve {
            address: display,
            source: io::Error::new(io::ErrorKind::NotFound, "the name has no address"),
        });
    }

    let mut stream = None;
    let mut last_error = None;
    for addr in &addrs {
        match timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => return Err(timed_out(Phase::Connect, 0)),
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(error)) => last_error = Some(error),
        }
    }
    let Some(mut stream) = stream else {
        let source = last_error.unwrap_or_else(|| io::Error::other("no address to connect to"));
        return Err(ProbeError::Connect { address: display, source });
    };

    let closed = |received: usize, source: Option<io::Error>| ProbeError::Closed {
        protocol,
        address: display.clone(),
        received,
        source,
    };
    if protocol == Protocol::Rdp {
        match timeout_at(deadline, stream.write_all(&rdp_connection_request())).await {
            Err(_) => return Err(timed_out(Phase::Banner, 0)),
            Ok(Err(error)) => return Err(closed(0, Some(error))),
            Ok(Ok(())) => {}
        }
    }

    let mut received = Vec::with_capacity(64);
    let mut chunk = [0u8; 512];
    let decision = loop {
        match timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return Err(timed_out(Phase::Banner, received.len())),
            Ok(Err(error)) => return Err(closed(received.len(), Some(error))),
            Ok(Ok(0)) => return Err(closed(received.len(), None)),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
        match check_banner(protocol, &received) {
            BannerCheck::NeedMore => {}
            BannerCheck::Ok(detail) => break Ok(detail),
            BannerCheck::Bad(reason) => break Err(reason),
        }
    };
    let elapsed = start.elapsed();
    close_politely(stream).await;
    match decision {
        Ok(detail) => Ok(ProbeOk { detail, elapsed }),
        Err(reason) => Err(ProbeError::Banner { protocol, address: display, reason }),
    }
}

/// Sends FIN, then reads (and drops) what the peer still sends until it closes too, for at most
/// [`CLOSE_GRACE`]: closing with unread data would make the kernel send a reset instead.
async fn close_politely(mut stream: TcpStream) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match stream.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<(), io::Error>(())
    })
    .await;
}
