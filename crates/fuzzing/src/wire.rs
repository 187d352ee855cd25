//! Builders for the server side of an RFB 3.8 stream (RFC 6143), used for the handshake prefix of
//! the oracles, the seed generator and the unit tests. They write bytes only; no compression.

/// Width of the framebuffer announced by [`handshake_none`] in the oracles.
pub const FB_WIDTH: u16 = 64;
/// Height of the framebuffer announced by [`handshake_none`] in the oracles.
pub const FB_HEIGHT: u16 = 48;

/// Encoding numbers (RFC 6143 §7.7, §7.8 and the IANA registry).
pub mod enc {
    /// Raw.
    pub const RAW: i32 = 0;
    /// CopyRect.
    pub const COPY_RECT: i32 = 1;
    /// Tight.
    pub const TIGHT: i32 = 7;
    /// ZRLE.
    pub const ZRLE: i32 = 16;
    /// Cursor pseudo-encoding.
    pub const CURSOR: i32 = -239;
    /// DesktopSize pseudo-encoding.
    pub const DESKTOP_SIZE: i32 = -223;
    /// LastRect pseudo-encoding.
    pub const LAST_RECT: i32 = -224;
    /// QEMU Extended Key Event pseudo-encoding.
    pub const QEMU_EXTENDED_KEY: i32 = -258;
    /// ExtendedDesktopSize pseudo-encoding.
    pub const EXTENDED_DESKTOP_SIZE: i32 = -308;
}

/// ServerInit (§7.3.2) with a 32 bpp depth 24 pixel format (the client ignores it).
pub fn server_init(width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[32, 24, 1, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
    v.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    v.extend_from_slice(name.as_bytes());
    v
}

/// A complete 3.8 handshake: ProtocolVersion, security types `[None]`, SecurityResult OK,
/// ServerInit.
pub fn handshake_none(width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut v = b"RFB 003.008\n".to_vec();
    v.extend_from_slice(&[1, 1]);
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend(server_init(width, height, name));
    v
}

/// A rectangle header (§7.6.1).
pub fn rect(x: u16, y: u16, width: u16, height: u16, encoding: i32) -> Vec<u8> {
    let mut v = Vec::with_capacity(12);
    for n in [x, y, width, height] {
        v.extend_from_slice(&n.to_be_bytes());
    }
    v.extend_from_slice(&encoding.to_be_bytes());
    v
}

/// A FramebufferUpdate (§7.6.1) made of the given rectangles (header and body each).
pub fn framebuffer_update(rects: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&u16::try_from(rects.len()).unwrap_or(u16::MAX).to_be_bytes());
    for r in rects {
        v.extend_from_slice(r);
    }
    v
}

/// ServerCutText (§7.6.4).
pub fn server_cut_text(latin1: &[u8]) -> Vec<u8> {
    let mut v = vec![3, 0, 0, 0];
    v.extend_from_slice(
        &u32::try_from(latin1.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    v.extend_from_slice(latin1);
    v
}

/// Bell (§7.6.3).
pub fn bell() -> Vec<u8> {
    vec![2]
}

/// SetColourMapEntries (§7.6.2) with `n` black entries.
pub fn colour_map(first: u16, n: u16) -> Vec<u8> {
    let mut v = vec![1, 0];
    v.extend_from_slice(&first.to_be_bytes());
    v.extend_from_slice(&n.to_be_bytes());
    v.extend(std::iter::repeat_n(0u8, usize::from(n) * 6));
    v
}

/// Tight compact length: 1 to 3 bytes, 7 + 7 + 8 bits.
pub fn compact_len(n: usize) -> Vec<u8> {
    let mut v = vec![(n & 0x7f) as u8];
    if n > 0x7f {
        v[0] |= 0x80;
        v.push(((n >> 7) & 0x7f) as u8);
        if n > 0x3fff {
            v[1] |= 0x80;
            v.push(((n >> 14) & 0xff) as u8);
        }
    }
    v
}
