//! Client-to-server message encoders (RFC 6143 §7.5).

/// Encoding numbers (RFC 6143 §7.7, §7.8 and the IANA registry).
pub(crate) mod enc {
    pub(crate) const RAW: i32 = 0;
    pub(crate) const COPY_RECT: i32 = 1;
    pub(crate) const TIGHT: i32 = 7;
    pub(crate) const ZRLE: i32 = 16;
    pub(crate) const CURSOR: i32 = -239;
    pub(crate) const DESKTOP_SIZE: i32 = -223;
    pub(crate) const LAST_RECT: i32 = -224;
    pub(crate) const EXTENDED_DESKTOP_SIZE: i32 = -308;
    pub(crate) const QEMU_EXTENDED_KEY: i32 = -258;
    pub(crate) const JPEG_QUALITY_0: i32 = -32;
    pub(crate) const COMPRESS_LEVEL_0: i32 = -256;
}

/// SetPixelFormat (§7.5.1): 32 bpp, depth 24, little-endian, true colour,
/// maxima 255, shifts R=0 G=8 B=16, so each pixel is the bytes R, G, B, X.
pub(crate) fn set_pixel_format(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&[32, 24, 0, 1]);
    out.extend_from_slice(&255u16.to_be_bytes());
    out.extend_from_slice(&255u16.to_be_bytes());
    out.extend_from_slice(&255u16.to_be_bytes());
    out.extend_from_slice(&[0, 8, 16, 0, 0, 0]);
}

/// SetEncodings (§7.5.2).
pub(crate) fn set_encodings(out: &mut Vec<u8>, encodings: &[i32]) {
    out.extend_from_slice(&[2, 0]);
    let n = u16::try_from(encodings.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for e in encodings.iter().take(usize::from(n)) {
        out.extend_from_slice(&e.to_be_bytes());
    }
}

/// FramebufferUpdateRequest (§7.5.3).
pub(crate) fn update_request(out: &mut Vec<u8>, incremental: bool, x: u16, y: u16, w: u16, h: u16) {
    out.extend_from_slice(&[3, u8::from(incremental)]);
    for v in [x, y, w, h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// KeyEvent (§7.5.4).
pub(crate) fn key_event(out: &mut Vec<u8>, down: bool, keysym: u32) {
    out.extend_from_slice(&[4, u8::from(down), 0, 0]);
    out.extend_from_slice(&keysym.to_be_bytes());
}

/// QEMU Extended Key Event (client message 255, submessage 0).
pub(crate) fn qemu_key_event(out: &mut Vec<u8>, down: bool, keysym: u32, keycode: u32) {
    out.extend_from_slice(&[255, 0]);
    out.extend_from_slice(&u16::from(down).to_be_bytes());
    out.extend_from_slice(&keysym.to_be_bytes());
    out.extend_from_slice(&keycode.to_be_bytes());
}

/// PointerEvent (§7.5.5).
pub(crate) fn pointer_event(out: &mut Vec<u8>, x: u16, y: u16, buttons: u8) {
    out.extend_from_slice(&[5, buttons]);
    out.extend_from_slice(&x.to_be_bytes());
    out.extend_from_slice(&y.to_be_bytes());
}

/// ClientCutText (§7.5.6), Latin-1 with `?` for anything outside it.
pub(crate) fn client_cut_text(out: &mut Vec<u8>, text: &str) {
    let bytes: Vec<u8> = text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect();
    out.extend_from_slice(&[6, 0, 0, 0]);
    let n = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(&bytes[..n as usize]);
}

/// SetDesktopSize (client message 251) with a single screen.
pub(crate) fn set_desktop_size(out: &mut Vec<u8>, w: u16, h: u16, screen_id: u32, flags: u32) {
    out.extend_from_slice(&[251, 0]);
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&screen_id.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&w.to_be_bytes());
    out.extend_from_slice(&h.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
}

/// QEMU keycode for a PC XT set-1 scancode: `0xE0xx` (extended) becomes
/// `0x80 | xx`, a plain `0x00xx` stays `xx`. Anything else has no QEMU code.
pub(crate) fn qemu_keycode(scancode: u16) -> Option<u32> {
    match scancode >> 8 {
        0x00 if scancode != 0 => Some(u32::from(scancode & 0x7f)),
        0xE0 => Some(0x80 | u32::from(scancode & 0x7f)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keycodes() {
        assert_eq!(qemu_keycode(0x1e), Some(0x1e));
        assert_eq!(qemu_keycode(0xE048), Some(0xC8));
        assert_eq!(qemu_keycode(0xE01D), Some(0x9D));
        assert_eq!(qemu_keycode(0), None);
        assert_eq!(qemu_keycode(0xE11D), None);
    }

    #[test]
    fn pixel_format_bytes() {
        let mut v = Vec::new();
        set_pixel_format(&mut v);
        assert_eq!(v, [0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16, 0, 0, 0]);
    }

    #[test]
    fn cut_text_latin1() {
        let mut v = Vec::new();
        client_cut_text(&mut v, "é€a");
        assert_eq!(v, [6, 0, 0, 0, 0, 0, 0, 3, 0xe9, b'?', b'a']);
    }

    #[test]
    fn desktop_size_bytes() {
        let mut v = Vec::new();
        set_desktop_size(&mut v, 1024, 768, 7, 0);
        assert_eq!(
            v,
            [251, 0, 4, 0, 3, 0, 1, 0, 0, 0, 0, 7, 0, 0, 0, 0, 4, 0, 3, 0, 0, 0, 0, 0]
        );
    }
}
