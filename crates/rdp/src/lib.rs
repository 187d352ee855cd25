//! RDP client engine for the Bascule gateway.
//!
//! The gateway is the RDP client: [`connect`] runs TCP, X.224 negotiation, the TLS upgrade
//! (rustls with the ring provider), CredSSP/NTLM when NLA is negotiated, MCS and capability
//! exchange until the active stage. [`RdpConnection::run`] then drives IronRDP's `ActiveStage`:
//! decoded pixels leave as RGBA [`RdpEvent::Pixels`], input arrives as [`RdpInput`].

mod clipboard;
mod connect;
mod egfx;
mod error;
mod input;
mod probe;
mod session;
mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use crate::connect::connect;
pub use crate::error::RdpError;
pub use crate::probe::fetch_certificate_sha256;

/// How to protect the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Offer TLS and NLA (CredSSP); the server picks.
    #[default]
    Negotiate,
    /// TLS only (the server shows its own logon, or uses the autologon credentials).
    Tls,
    /// NLA (CredSSP over TLS) only.
    Nla,
}

/// How the server's TLS certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificatePolicy {
    /// Accept only a server whose leaf certificate SHA-256 matches.
    Pinned([u8; 32]),
    /// Verify against the system roots (webpki-roots; name = host).
    System,
    /// Accept anything (the demo only).
    AcceptAny,
}

/// Whether and how the EGFX graphics pipeline (MS-RDPEGFX, the dynamic channel
/// "Microsoft::Windows::RDS::Graphics") is negotiated. Without it, hosts send legacy bitmap
/// updates (RemoteFX, planar, RLE...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Egfx {
    /// Not offered: `support_dyn_vc_gfx_protocol = false`, no EGFX channel.
    Off,
    /// Offered without any AVC (H.264) capability: hosts use planar, ClearCodec,
    /// RemoteFX progressive or uncompressed, which IronRDP decodes and composites into the
    /// framebuffer like the legacy updates ([`RdpEvent::Pixels`]).
    #[default]
    On,
    /// As `On`, but the capability set also allows AVC420 (H.264 4:2:0; never AVC444). The
    /// H.264 payloads are **not decoded** on the gateway: each one leaves as an
    /// [`RdpEvent::Avc420`] for the browser (WebCodecs). The gateway's framebuffer does not
    /// contain those pixels.
    Avc420PassThrough,
}

/// Everything [`connect`] needs.
#[derive(Clone)]
pub struct RdpConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub domain: Option<String>,
    pub security: Security,
    pub certificate: CertificatePolicy,
    /// Requested desktop size (the server may choose another one; see [`RdpConnection::size`]).
    pub width: u16,
    pub height: u16,
    /// Published application: program run instead of the desktop (xrdp honours it).
    pub alternate_shell: Option<String>,
    pub working_dir: Option<String>,
    /// Keyboard layout id, e.g. 0x040C French, 0x0409 US.
    pub keyboard_layout: u32,
    /// Open the clipboard channel (cliprdr), text only.
    pub clipboard: bool,
    /// Bound for the whole of [`connect`].
    pub connect_timeout: Duration,
    /// EGFX graphics pipeline (default [`Egfx::On`]).
    pub egfx: Egfx,
}

impl std::fmt::Debug for RdpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("domain", &self.domain)
            .field("security", &self.security)
            .field("certificate", &self.certificate)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("alternate_shell", &self.alternate_shell)
            .field("working_dir", &self.working_dir)
            .field("keyboard_layout", &format_args!("{:#06x}", self.keyboard_layout))
            .field("clipboard", &self.clipboard)
            .field("connect_timeout", &self.connect_timeout)
            .field("egfx", &self.egfx)
            .finish()
    }
}

impl RdpConfig {
    /// A configuration with sensible defaults (1024x768, Negotiate, AcceptAny, US keyboard,
    /// clipboard on, 15 s timeout, EGFX on without AVC).
    pub fn new(host: impl Into<String>, port: u16, username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port,
            username: username.into(),
            password: password.into(),
            domain: None,
            security: Security::Negotiate,
            certificate: CertificatePolicy::AcceptAny,
            width: 1024,
            height: 768,
            alternate_shell: None,
            working_dir: None,
            keyboard_layout: 0x0409,
            clipboard: true,
            connect_timeout: Duration::from_secs(15),
            egfx: Egfx::default(),
        }
    }
}

/// Output of a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdpEvent {
    /// Damaged pixels, RGBA (A=255), row-major; rect always inside the current size.
    Pixels { x: u16, y: u16, width: u16, height: u16, rgba: Vec<u8> },
    /// Server pointer shape, RGBA (straight alpha). `width == height == 0`: hidden.
    Cursor { hot_x: u16, hot_y: u16, width: u16, height: u16, rgba: Vec<u8> },
    /// Back to the system default pointer.
    DefaultCursor,
    /// The desktop size changed (deactivation-reactivation or display-control resize).
    /// All later `Pixels` refer to the new size; the whole screen is resent by the server.
    Resize { width: u16, height: u16 },
    /// Text copied on the remote side.
    ClipboardText(String),
    /// Whether [`RdpInput::Resize`] will be honoured (display control channel ready).
    /// Sent when this becomes known; see also [`ResizeSupport`].
    ResizeSupported(bool),
    /// One batch of graphics updates is complete.
    FrameEnd,
    /// The host confirmed EGFX capabilities (sent once, the first time): `version` is the
    /// confirmed capability version (e.g. 0x80105 for 8.1, 0xa0701 for 10.7; 0 when IronRDP did
    /// not know it), `avc420` whether H.264 4:2:0 may now arrive as [`RdpEvent::Avc420`].
    GraphicsPipeline { version: u32, avc420: bool },
    /// One EGFX AVC420 update ([`Egfx::Avc420PassThrough`] only), **not decoded**: the
    /// `RDPGFX_WIRE_TO_SURFACE_PDU_1` with codec AVC420, as the host sent it.
    ///
    /// - `data`: the H.264 bitstream of the `RFX_AVC420_BITMAP_STREAM`, byte for byte (the
    ///   specification says Annex B; IronRDP notes that some hosts send AVC length prefixes,
    ///   see `ironrdp_egfx::pdu::is_avc_format`).
    /// - `surface_id`, and `output_origin`: where that surface is mapped on the desktop
    ///   (`MapSurfaceToOutput`), `None` when it is not mapped to the output.
    /// - `surface_x`, `surface_y`, `width`, `height`: the destination rectangle, in surface
    ///   coordinates.
    /// - `regions`: the metablock's `regionRects` as sent, `(left, top, right, bottom)` with
    ///   exclusive right/bottom, in surface coordinates: only these parts of the decoded
    ///   picture are to be painted. Empty: paint the whole destination rectangle.
    /// - `quality`: per region `(qp, progressive, quality_level)`.
    /// - `frame_id`: the EGFX frame (`StartFrame`/`EndFrame`) it belongs to.
    ///
    /// The gateway framebuffer (and so [`RdpEvent::Pixels`]) does **not** contain these pixels.
    /// Pixels for damage collected before it in the same batch are sent before it.
    Avc420 {
        frame_id: Option<u32>,
        surface_id: u16,
        output_origin: Option<(u32, u32)>,
        surface_x: u16,
        surface_y: u16,
        width: u16,
        height: u16,
        regions: Vec<(u16, u16, u16, u16)>,
        quality: Vec<(u8, bool, u8)>,
        data: Vec<u8>,
    },
}

/// Input for a running session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdpInput {
    /// `scancode`: PC/XT set 1, 0xE0xx for extended keys (0xE1xx for Pause).
    /// If `scancode == 0` and `unicode` is `Some`, a Unicode keyboard event is sent instead.
    Key { down: bool, scancode: u16, unicode: Option<char> },
    /// RFB-style button mask: bit0 left, bit1 middle, bit2 right, bit3 wheel up, bit4 wheel down,
    /// bit5 wheel left, bit6 wheel right (each event with a wheel bit set = one notch).
    Pointer { x: u16, y: u16, buttons: u8 },
    /// Local clipboard text, offered to the server.
    Clipboard(String),
    /// Ask the server for a new desktop size (display control channel). Ignored when the
    /// server does not support it (see [`ResizeSupport::can_resize`]).
    Resize { width: u16, height: u16 },
}

/// Why [`RdpConnection::run`] ended normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The server ended the session (disconnect, logoff, ...), with its reason.
    ServerDisconnect(String),
    /// The input channel was closed by the caller (or the event receiver was dropped).
    InputClosed,
}

/// Shared flag telling whether dynamic resize is possible; it becomes true once the
/// server opened the display control channel and sent its capabilities.
#[derive(Debug, Clone, Default)]
pub struct ResizeSupport(Arc<AtomicBool>);

impl ResizeSupport {
    pub fn can_resize(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, value: bool) {
        self.0.store(value, Ordering::Relaxed);
    }
}

/// An RDP connection in its active stage.
pub struct RdpConnection {
    inner: connect::Connected,
    resize_support: ResizeSupport,
}

impl std::fmt::Debug for RdpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdpConnection")
            .field("size", &self.size())
            .field("can_resize", &self.can_resize())
            .finish_non_exhaustive()
    }
}

impl RdpConnection {
    /// Desktop size chosen by the server.
    pub fn size(&self) -> (u16, u16) {
        (self.inner.result.desktop_size.width, self.inner.result.desktop_size.height)
    }

    /// SHA-256 of the server's leaf TLS certificate (DER).
    pub fn server_certificate_sha256(&self) -> [u8; 32] {
        self.inner.cert_sha256
    }

    /// The security protocol the server selected ("TLS" or "NLA").
    pub fn negotiated_security(&self) -> Security {
        self.inner.security
    }

    /// Whether [`RdpInput::Resize`] is honoured right now. Right after [`connect`] this is
    /// false: the display control channel opens during the session. Keep a
    /// [`RdpConnection::resize_support`] handle to ask later.
    pub fn can_resize(&self) -> bool {
        self.resize_support.can_resize()
    }

    /// A handle that keeps answering [`ResizeSupport::can_resize`] while [`RdpConnection::run`] runs.
    pub fn resize_support(&self) -> ResizeSupport {
        self.resize_support.clone()
    }

    /// Runs the session until it ends: decoded output goes to `events`, input comes from `input`.
    /// Returns `Ok(EndReason)` for a normal end (server disconnect/logoff, input channel closed) or `Err`.
    pub async fn run(
        self,
        events: tokio::sync::mpsc::Sender<RdpEvent>,
        input: tokio::sync::mpsc::Receiver<RdpInput>,
    ) -> Result<EndReason, RdpError> {
        session::run(self.inner, self.resize_support, events, input).await
    }
}

/// Lower-case hex of a byte string (used for certificate fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
