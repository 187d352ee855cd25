//! Sans-IO RFB 3.8 (VNC, RFC 6143) client core.
//!
//! [`Client`] owns no socket, task, clock or thread: the caller feeds it the
//! bytes read from the server with [`Client::handle_input`], writes out what
//! [`Client::poll_transmit`] returns, and drains decoded [`Event`]s with
//! [`Client::poll_event`].
//!
//! Supported: protocol versions 3.3, 3.7 and 3.8 (RFC 6143 §7.1.1), security
//! types None and VNC Authentication (§7.2), the Raw, CopyRect, ZRLE and Tight
//! encodings (§7.7), and the Cursor, DesktopSize, ExtendedDesktopSize,
//! LastRect and QEMU Extended Key Event pseudo-encodings (§7.8 and the
//! community registry).

mod auth;
mod client;
mod error;
mod inflate;
mod msg;
mod reader;
mod tight;
mod zrle;

pub use client::Client;
pub use error::Error;

/// Upper bounds on what a server may make the client buffer or allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted framebuffer width (ServerInit, DesktopSize).
    pub max_width: u16,
    /// Largest accepted framebuffer height (ServerInit, DesktopSize).
    pub max_height: u16,
    /// Largest number of bytes buffered for one incoming message or
    /// rectangle payload.
    pub max_message_bytes: usize,
    /// Largest accepted ServerCutText length (RFC 6143 §7.6.4).
    pub max_cut_text: usize,
    /// Largest accepted desktop name length (RFC 6143 §7.3.2).
    pub max_name: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_width: 8192,
            max_height: 8192,
            max_message_bytes: 64 * 1024 * 1024,
            max_cut_text: 1024 * 1024,
            max_name: 4 * 1024,
        }
    }
}

/// Client configuration.
#[derive(Clone)]
pub struct Config {
    /// VNC Authentication password; only the first 8 bytes are used
    /// (RFC 6143 §7.2.2).
    pub password: Option<String>,
    /// ClientInit shared flag (RFC 6143 §7.3.1).
    pub shared: bool,
    /// `0..=9`: request JPEG with the quality pseudo-encoding `-32 + q`.
    /// `None`: lossless only.
    pub jpeg_quality: Option<u8>,
    /// `0..=9`: compression level pseudo-encoding `-256 + level`.
    pub compress_level: Option<u8>,
    /// Send QEMU extended key events (with the scancode) once the server
    /// has acknowledged the pseudo-encoding.
    pub use_qemu_key_events: bool,
    /// Resource limits.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            password: None,
            shared: true,
            jpeg_quality: None,
            compress_level: Some(6),
            use_qemu_key_events: false,
            limits: Limits::default(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("shared", &self.shared)
            .field("jpeg_quality", &self.jpeg_quality)
            .field("compress_level", &self.compress_level)
            .field("use_qemu_key_events", &self.use_qemu_key_events)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Something the server told the client.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// ServerInit received (RFC 6143 §7.3.2); the session is up.
    Connected {
        /// Framebuffer width.
        width: u16,
        /// Framebuffer height.
        height: u16,
        /// Desktop name.
        name: String,
    },
    /// Decoded pixels, RGBA8888 (A = 255), row-major, `width * height * 4` bytes.
    Pixels {
        /// Left edge.
        x: u16,
        /// Top edge.
        y: u16,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// Pixel data.
        rgba: Vec<u8>,
    },
    /// A rectangle of one colour (Tight fill, or ZRLE solid tiles).
    Fill {
        /// Left edge.
        x: u16,
        /// Top edge.
        y: u16,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The colour.
        rgb: [u8; 3],
    },
    /// CopyRect (RFC 6143 §7.7.2): copy a rectangle of the current framebuffer.
    Copy {
        /// Source left edge.
        src_x: u16,
        /// Source top edge.
        src_y: u16,
        /// Destination left edge.
        x: u16,
        /// Destination top edge.
        y: u16,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
    },
    /// Cursor pseudo-encoding (RFC 6143 §7.8.1) as RGBA, the bitmask as alpha
    /// (0 or 255). `width = height = 0` is allowed.
    Cursor {
        /// Hotspot column.
        hotspot_x: u16,
        /// Hotspot row.
        hotspot_y: u16,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// Pixel data, `width * height * 4` bytes.
        rgba: Vec<u8>,
    },
    /// DesktopSize / ExtendedDesktopSize (RFC 6143 §7.8.2): the framebuffer
    /// now has this size. Emitted only when the size actually changes.
    Resize {
        /// New width.
        width: u16,
        /// New height.
        height: u16,
    },
    /// One FramebufferUpdate message is complete.
    UpdateEnd,
    /// Bell (RFC 6143 §7.6.3).
    Bell,
    /// ServerCutText (RFC 6143 §7.6.4), decoded from Latin-1.
    ServerCutText(String),
}
