//! Connection sequence: TCP, X.224, TLS, CredSSP, MCS ... until the active stage.

use std::net::SocketAddr;

use ironrdp_cliprdr::CliprdrClient;
use ironrdp_connector::credssp::CredsspSequence;
use ironrdp_connector::sspi::generator::GeneratorState;
use ironrdp_connector::{
    BitmapConfig, ClientConnector, ClientConnectorState, ConnectionOutcome, ConnectionResult, ConnectorError,
    ConnectorErrorKind, Credentials, DesktopSize, ServerName,
};
use ironrdp_displaycontrol::client::DisplayControlClient;
use ironrdp_dvc::DrdynvcClient;
use ironrdp_pdu::WriteBuf;
use ironrdp_pdu::gcc;
use ironrdp_pdu::nego::SecurityProtocol;
use ironrdp_pdu::rdp::capability_sets::{MajorPlatformType, RailSupportLevel, client_codecs_capabilities};
use ironrdp_pdu::rdp::client_info::{CompressionType, PerformanceFlags, TimezoneInfo};
use ironrdp_tokio::{FramedWrite as _, TokioFramed};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::clipboard::{ClipQueue, TextClipboard};
use crate::error::{RdpError, chain, find_io, is_eof};
use crate::{Egfx, RdpConfig, RdpConnection, ResizeSupport, Security};

pub(crate) type Framed = TokioFramed<TlsStream<TcpStream>>;

pub(crate) struct Connected {
    pub(crate) framed: Framed,
    pub(crate) result: ConnectionResult,
    pub(crate) cert_sha256: [u8; 32],
    pub(crate) security: Security,
    pub(crate) clipboard: Option<ClipQueue>,
    pub(crate) egfx: Egfx,
}

/// Connects and runs the connection sequence until the active stage, within `connect_timeout`.
pub async fn connect(config: RdpConfig) -> Result<RdpConnection, RdpError> {
    let timeout = config.connect_timeout;
    match tokio::time::timeout(timeout, connect_inner(config)).await {
        Ok(Ok(inner)) => Ok(RdpConnection {
            inner,
            resize_support: ResizeSupport::default(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(RdpError::Timeout),
    }
}

/// Which step of the sequence an error came from, to classify it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Negotiation,
    Finalization,
}

fn classify(phase: Phase, e: &ConnectorError) -> RdpError {
    let detail = chain(e);
    match e.kind() {
        ConnectorErrorKind::Negotiation(f) => return RdpError::Refused(format!("negotiation failure: {f}")),
        ConnectorErrorKind::AccessDenied => return RdpError::AuthenticationFailed(format!("access denied ({detail})")),
        ConnectorErrorKind::Credssp(err) => return RdpError::AuthenticationFailed(format!("CredSSP: {err}")),
        _ => {}
    }
    let io = find_io(e);
    if is_eof(io) {
        return match phase {
            Phase::Negotiation => RdpError::Refused(format!(
                "server closed the connection during X.224 negotiation (not an RDP server, or it rejected the client): {detail}"
            )),
            Phase::Finalization => RdpError::Refused(format!(
                "server closed the connection during the connection sequence (MCS/capabilities/licensing): {detail}"
            )),
        };
    }
    if io.is_some() && !matches!(io, Some(std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData)) {
        return RdpError::Protocol(format!("I/O failure during the connection sequence: {detail}"));
    }
    match phase {
        Phase::Negotiation => RdpError::Protocol(format!("invalid X.224 negotiation response: {detail}")),
        Phase::Finalization => RdpError::Protocol(format!("connection sequence failed: {detail}")),
    }
}

fn connector_config(config: &RdpConfig) -> Result<ironrdp_connector::Config, RdpError> {
    let (enable_tls, enable_credssp) = match config.security {
        Security::Negotiate => (true, true),
        Security::Tls => (true, false),
        Security::Nla => (false, true),
    };
    let codecs = client_codecs_capabilities(&[])
        .map_err(|e| RdpError::Protocol(format!("codec capabilities: {e}")))?;
    Ok(ironrdp_connector::Config {
        desktop_size: DesktopSize {
            width: config.width.clamp(200, 8192),
            height: config.height.clamp(200, 8192),
        },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        enable_tls,
        enable_credssp,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword {
            username: config.username.clone(),
            password: config.password.clone(),
        },
        domain: config.domain.clone().filter(|d| !d.is_empty()),
        client_build: 0,
        client_name: "bascule".to_owned(),
        keyboard_type: gcc::KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: config.keyboard_layout,
        connection_type: gcc::ConnectionType::Lan,
        ime_file_name: String::new(),
        bitmap: Some(BitmapConfig {
            lossy_compression: true,
            color_depth: 32,
            codecs,
        }),
        dig_product_id: String::new(),
        client_dir: String::new(),
        alternate_shell: config.alternate_shell.clone().unwrap_or_default(),
        work_dir: config.working_dir.clone().unwrap_or_default(),
        remote_application_mode: false,
        rail_support_level: RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        hardware_id: None,
        request_data: None,
        // With credentials, ask for a direct logon (xrdp then skips its login dialog).
        autologon: !config.username.is_empty() && !config.password.is_empty(),
        enable_audio_playback: false,
        enable_audio_capture: false,
        performance_flags: PerformanceFlags::default(),
        license_cache: None,
        timezone_info: TimezoneInfo::default(),
        compression_type: Some(CompressionType::Rdp61),
        enable_server_pointer: true,
        pointer_software_rendering: false,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: config.egfx != Egfx::Off,
    })
}

async fn connect_inner(config: RdpConfig) -> Result<Connected, RdpError> {
    let target = format!("{}:{}", config.host, config.port);
    let tcp = TcpStream::connect((config.host.as_str(), config.port))
        .await
        .map_err(|source| RdpError::Unreachable {
            target: target.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let client_addr = tcp
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));

    let mut connector = ClientConnector::new(connector_config(&config)?, client_addr);
    let drdynvc = DrdynvcClient::new().with_dynamic_channel(DisplayControlClient::new(|_caps| Ok(Vec::new())));
    let drdynvc = match config.egfx {
        Egfx::Off => drdynvc,
        Egfx::On => drdynvc.with_dynamic_channel(crate::egfx::pipeline_client()),
        Egfx::Avc420PassThrough => drdynvc.with_dynamic_channel(crate::egfx::PassThroughChannel::new()),
    };
    connector.attach_static_channel(drdynvc);
    let clipboard = if config.clipboard {
        let queue = ClipQueue::default();
        connector.attach_static_channel(CliprdrClient::new(Box::new(TextClipboard::new(queue.clone()))));
        Some(queue)
    } else {
        None
    };

    // X.224 negotiation.
    let mut framed = TokioFramed::new(tcp);
    negotiate(&mut framed, &mut connector).await?;
    let should_upgrade = ironrdp_tokio::skip_connect_begin(&mut connector);
    let selected = match &connector.state {
        ClientConnectorState::EnhancedSecurityUpgrade { selected_protocol } => *selected_protocol,
        other => {
            return Err(RdpError::Protocol(format!(
                "unexpected connector state after negotiation: {}",
                ironrdp_connector::State::name(other)
            )));
        }
    };
    let security = if selected.intersects(SecurityProtocol::HYBRID | SecurityProtocol::HYBRID_EX) {
        Security::Nla
    } else {
        Security::Tls
    };
    tracing::debug!(?selected, "X.224 negotiation done");

    // TLS upgrade.
    let (tcp, leftover) = framed.into_inner();
    if !leftover.is_empty() {
        return Err(RdpError::Protocol(format!(
            "server sent {} unexpected bytes before the TLS handshake",
            leftover.len()
        )));
    }
    let upgraded_tls = crate::tls::upgrade(tcp, &config.host, &config.certificate).await?;
    let cert_sha256 = crate::tls::sha256(&upgraded_tls.leaf_der);
    let server_public_key = crate::tls::public_key_of(&upgraded_tls.leaf_der)?;
    let upgraded = ironrdp_tokio::mark_as_upgraded(should_upgrade, &mut connector);
    let mut framed: Framed = TokioFramed::new(upgraded_tls.stream);

    // CredSSP (NLA), driven here so that its failures are reported as authentication failures.
    if connector.should_perform_credssp() {
        credssp(&mut connector, &mut framed, selected, &config.host, server_public_key.clone()).await?;
        connector.mark_credssp_as_done();
    }

    let outcome = ironrdp_tokio::connect_finalize(
        upgraded,
        connector,
        &mut framed,
        &mut NoNetwork,
        ServerName::new(config.host.clone()),
        server_public_key,
        None,
    )
    .await
    .map_err(|e| classify(Phase::Finalization, &e))?;

    let result = match outcome {
        ConnectionOutcome::Connected(result) => result,
        ConnectionOutcome::Redirected(_) => {
            return Err(RdpError::Refused(
                "server redirected the connection (load balancing is not supported)".to_owned(),
            ));
        }
        #[allow(unreachable_patterns)]
        _ => return Err(RdpError::Protocol("unknown connection outcome".to_owned())),
    };
    tracing::info!(
        width = result.desktop_size.width,
        height = result.desktop_size.height,
        ?security,
        "RDP connection established"
    );
    Ok(Connected {
        framed,
        result,
        cert_sha256,
        security,
        clipboard,
        egfx: config.egfx,
    })
}

/// During X.224 negotiation only a small TPKT is valid: anything else is rejected at once
/// instead of waiting for more bytes of a frame that will never come.
#[derive(Debug)]
struct NegotiationHint;

impl ironrdp_pdu::PduHint for NegotiationHint {
    fn find_size(&self, bytes: &[u8]) -> ironrdp_pdu::DecodeResult<Option<(bool, usize)>> {
        let Some(&version) = bytes.first() else { return Ok(None) };
        if version != 0x03 {
            return Err(ironrdp_pdu::other_err("X.224 negotiation", "not a TPKT header"));
        }
        if bytes.len() < 4 {
            return Ok(None);
        }
        let length = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if !(11..=1024).contains(&length) {
            return Err(ironrdp_pdu::other_err("X.224 negotiation", "implausible TPKT length"));
        }
        Ok(Some((true, length)))
    }
}

/// Printable preview of unexpected bytes.
fn preview(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(24)];
    let text: String = head
        .iter()
        .map(|b| if b.is_ascii_graphic() || *b == b' ' { char::from(*b) } else { '.' })
        .collect();
    format!("{} bytes starting with {} \"{text}\"", bytes.len(), crate::hex(head))
}

/// X.224 connection request / confirm, up to the security upgrade.
async fn negotiate(framed: &mut TokioFramed<TcpStream>, connector: &mut ClientConnector) -> Result<(), RdpError> {
    use ironrdp_connector::Sequence as _;
    let mut buf = WriteBuf::new();
    while !connector.should_perform_security_upgrade() {
        buf.clear();
        let written = if connector.next_pdu_hint().is_some() {
            let pdu = match framed.read_by_hint(&NegotiationHint).await {
                Ok(pdu) => pdu,
                Err(e) if is_eof(Some(e.kind())) && framed.peek().is_empty() => {
                    return Err(RdpError::Refused(format!(
                        "server closed the connection during X.224 negotiation (not an RDP server, or it rejected the client): {e}"
                    )));
                }
                Err(e) if is_eof(Some(e.kind())) => {
                    return Err(RdpError::Protocol(format!(
                        "server sent a truncated X.224 response ({}) and closed the connection",
                        preview(framed.peek())
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Other => {
                    return Err(RdpError::Protocol(format!(
                        "not an RDP server: unexpected answer to the X.224 connection request ({}): {}",
                        preview(framed.peek()),
                        chain(&e)
                    )));
                }
                Err(e) => return Err(RdpError::Refused(format!("connection failed during X.224 negotiation: {e}"))),
            };
            connector.step(&pdu, framed.last_read_at(), &mut buf)
        } else {
            connector.step_no_input(&mut buf)
        }
        .map_err(|e| classify(Phase::Negotiation, &e))?;
        if let Some(len) = written.size() {
            framed.write_all(&buf[..len]).await.map_err(|e| {
                RdpError::Refused(format!("server closed the connection during X.224 negotiation: {e}"))
            })?;
        }
    }
    Ok(())
}

/// Network client for CredSSP: only Kerberos needs one, and it is not supported.
struct NoNetwork;

impl ironrdp_tokio::NetworkClient for NoNetwork {
    async fn send(
        &mut self,
        _request: &ironrdp_connector::sspi::generator::NetworkRequest,
    ) -> ironrdp_connector::ConnectorResult<Vec<u8>> {
        Err(ironrdp_connector::general_err!("Kerberos (KDC network access) is not supported"))
    }
}

async fn credssp(
    connector: &mut ClientConnector,
    framed: &mut Framed,
    selected: SecurityProtocol,
    host: &str,
    server_public_key: Vec<u8>,
) -> Result<(), RdpError> {
    let auth = |m: String| RdpError::AuthenticationFailed(m);
    let (mut sequence, mut ts_request) = CredsspSequence::init(
        connector.config.credentials.clone(),
        connector.config.domain.as_deref(),
        selected,
        ServerName::new(host.to_owned()),
        server_public_key,
        None,
    )
    .map_err(|e| auth(format!("cannot start CredSSP: {}", chain(&e))))?;

    let mut buf = WriteBuf::new();
    let mut round = 0u32;
    loop {
        round += 1;
        let state = {
            let mut generator = sequence.process_ts_request(ts_request);
            match generator.start() {
                GeneratorState::Completed(state) => state.map_err(|e| auth(format!("NTLM/CredSSP: {e}")))?,
                GeneratorState::Suspended(_) => {
                    return Err(auth(
                        "the server asked for Kerberos (KDC access), which is not supported; use NTLM credentials"
                            .to_owned(),
                    ));
                }
            }
        };
        buf.clear();
        let written = sequence
            .handle_process_result(state, &mut buf)
            .map_err(|e| auth(format!("CredSSP: {}", chain(&e))))?;
        if let Some(len) = written.size() {
            framed
                .write_all(&buf[..len])
                .await
                .map_err(|e| RdpError::Refused(format!("server closed the connection during NLA: {e}")))?;
        }
        let Some(hint) = sequence.next_pdu_hint() else {
            break;
        };
        let pdu = match framed.read_by_hint(hint).await {
            Ok(pdu) => pdu,
            Err(e) if is_eof(Some(e.kind())) && round >= 2 => {
                return Err(auth(
                    "the server closed the connection after receiving the NTLM credentials: wrong user name, password or domain (or the account may not log on)".to_owned(),
                ));
            }
            Err(e) if is_eof(Some(e.kind())) => {
                return Err(RdpError::Refused(format!(
                    "server closed the connection at the start of NLA: {e}"
                )));
            }
            Err(e) => return Err(RdpError::Protocol(format!("invalid CredSSP message: {e}"))),
        };
        match sequence.decode_server_message(&pdu) {
            Ok(Some(next)) => ts_request = next,
            Ok(None) => break,
            Err(e) if matches!(e.kind(), ConnectorErrorKind::AccessDenied) => {
                return Err(auth("the server denied access (early user authorization result)".to_owned()));
            }
            Err(e) => return Err(RdpError::Protocol(format!("invalid CredSSP message: {}", chain(&e)))),
        }
    }
    Ok(())
}
