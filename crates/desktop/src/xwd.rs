//! Decoder for the X Window Dump format written by `xwd` (version 7, ZPixmap, true colour).
//!
//! Layout: a header of 25 CARD32 fields (`header_size` bytes in all, the window name follows the
//! fields), then `ncolors` colormap entries of 12 bytes, then `bytes_per_line * height` bytes of
//! pixels. `xwd` writes the header and colormap most significant byte first; the pixels use the
//! byte order named by the header's `byte_order` field (0 = LSBFirst, 1 = MSBFirst).

const HEADER_FIELDS: usize = 25;
const FILE_VERSION: u32 = 7;
const ZPIXMAP: u32 = 2;
const TRUE_COLOR: u32 = 4;
const DIRECT_COLOR: u32 = 5;
const COLOR_ENTRY_SIZE: u64 = 12;

/// Decodes an XWD dump into `(width, height, rgba)` with alpha 255.
pub(crate) fn decode(data: &[u8]) -> Result<(u32, u32, Vec<u8>), String> {
    if data.len() < HEADER_FIELDS * 4 {
        return Err(format!("XWD data too short for a header ({} bytes)", data.len()));
    }
    let field_be = |i: usize| u32::from_be_bytes([data[i * 4], data[i * 4 + 1], data[i * 4 + 2], data[i * 4 + 3]]);
    // The header is big-endian in practice; accept a little-endian one too, told apart by the version.
    let big_endian_header = if field_be(1) == FILE_VERSION {
        true
    } else if field_be(1).swap_bytes() == FILE_VERSION {
        false
    } else {
        return Err(format!("not an XWD version 7 file (version field {:#x})", field_be(1)));
    };
    let h = |i: usize| if big_endian_header { field_be(i) } else { field_be(i).swap_bytes() };

    let header_size = u64::from(h(0));
    let (format, depth, width, height) = (h(2), h(3), h(4), h(5));
    let (byte_order, bits_per_pixel, bytes_per_line, visual_class) = (h(7), h(11), h(12), h(13));
    let masks = [h(14), h(15), h(16)];
    let ncolors = u64::from(h(19));

    if format != ZPIXMAP {
        return Err(format!("unsupported XWD pixmap format {format} (only ZPixmap)"));
    }
    if visual_class != TRUE_COLOR && visual_class != DIRECT_COLOR {
        return Err(format!("unsupported visual class {visual_class} (only TrueColor/DirectColor)"));
    }
    if !matches!(bits_per_pixel, 16 | 24 | 32) {
        return Err(format!("unsupported {bits_per_pixel} bits per pixel (depth {depth})"));
    }
    if masks.contains(&0) {
        return Err(format!("XWD colour masks missing: {masks:08x?}"));
    }
    if byte_order > 1 {
        return Err(format!("bad XWD byte order {byte_order}"));
    }
    let bpp = (bits_per_pixel / 8) as usize;
    let too_big = || format!("XWD image size overflows ({width}x{height})");
    let row_min = (width as usize).checked_mul(bpp).ok_or_else(too_big)?;
    if (bytes_per_line as usize) < row_min {
        return Err(format!("XWD bytes_per_line {bytes_per_line} < {row_min} for width {width}"));
    }
    let offset = header_size + ncolors * COLOR_ENTRY_SIZE;
    let pixel_bytes = u64::from(bytes_per_line) * u64::from(height);
    if (data.len() as u64) < offset + pixel_bytes {
        return Err(format!(
            "XWD data truncated: {} bytes, need {} (header {header_size}, {ncolors} colours, {pixel_bytes} pixel bytes)",
            data.len(),
            offset + pixel_bytes
        ));
    }
    let pixels = &data[offset as usize..(offset + pixel_bytes) as usize];
    let out_len = (width as usize)
        .checked_mul(height as usize)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(too_big)?;
    let mut rgba = Vec::with_capacity(out_len);
    let shifts = masks.map(Channel::new);
    for row in pixels.chunks_exact(bytes_per_line as usize) {
        for px in row[..row_min].chunks_exact(bpp) {
            let value = if byte_order == 0 {
                px.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
            } else {
                px.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b))
            };
            rgba.extend_from_slice(&[shifts[0].get(value), shifts[1].get(value), shifts[2].get(value), 255]);
        }
    }
    Ok((width, height, rgba))
}

/// One colour channel: where its bits are in a pixel value and how to scale them to 8 bits.
#[derive(Clone, Copy)]
struct Channel {
    mask: u32,
    shift: u32,
    max: u32,
}

impl Channel {
    fn new(mask: u32) -> Channel {
        let shift = mask.trailing_zeros();
        let max = mask >> shift;
        Channel { mask, shift, max }
    }

    fn get(self, value: u32) -> u8 {
        let v = (value & self.mask) >> self.shift;
        if self.max == 255 {
            v as u8
        } else {
            ((u64::from(v) * 255 + u64::from(self.max) / 2) / u64::from(self.max)) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an XWD file the way `xwd` lays it out.
    fn build(
        big_header: bool,
        byte_order: u32,
        bits_per_pixel: u32,
        masks: [u32; 3],
        width: u32,
        height: u32,
        pixels: &[u32],
    ) -> Vec<u8> {
        let name = b"xwdump\0";
        let ncolors = 3u32;
        let bpp = bits_per_pixel / 8;
        let bytes_per_line = (width * bpp).div_ceil(4) * 4;
        let header = [
            100 + name.len() as u32, 7, 2, 24, width, height, 0, byte_order, 32, byte_order, 32,
            bits_per_pixel, bytes_per_line, 4, masks[0], masks[1], masks[2], 8, 256, ncolors,
            width, height, 0, 0, 0,
        ];
        let mut out = Vec::new();
        for f in header {
            out.extend_from_slice(&if big_header { f.to_be_bytes() } else { f.to_le_bytes() });
        }
        out.extend_from_slice(name);
        out.extend(std::iter::repeat_n(0xAAu8, 12 * ncolors as usize));
        for y in 0..height {
            let mut row = Vec::new();
            for x in 0..width {
                let p = pixels[(y * width + x) as usize];
                let bytes = if byte_order == 0 { p.to_le_bytes() } else { p.to_be_bytes() };
                if byte_order == 0 {
                    row.extend_from_slice(&bytes[..bpp as usize]);
                } else {
                    row.extend_from_slice(&bytes[4 - bpp as usize..]);
                }
            }
            row.resize(bytes_per_line as usize, 0xEE);
            out.extend_from_slice(&row);
        }
        out
    }

    const RGB_MASKS: [u32; 3] = [0xff0000, 0x00ff00, 0x0000ff];

    #[test]
    fn decodes_32bpp_both_byte_orders_and_header_orders() {
        let pixels = [0x00ff0000, 0x0000ff00, 0x000000ff, 0x00123456, 0xff1d4e89, 0x00000000];
        let expected: Vec<u8> = vec![
            255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, //
            0x12, 0x34, 0x56, 255, 0x1d, 0x4e, 0x89, 255, 0, 0, 0, 255,
        ];
        for big_header in [true, false] {
            for byte_order in [0, 1] {
                let data = build(big_header, byte_order, 32, RGB_MASKS, 3, 2, &pixels);
                let (w, h, rgba) = decode(&data).expect("decode");
                assert_eq!((w, h), (3, 2));
                assert_eq!(rgba, expected, "big_header={big_header} byte_order={byte_order}");
            }
        }
    }

    #[test]
    fn honours_masks_bgr_and_24bpp_with_row_padding() {
        let bgr = [0x0000ff, 0x00ff00, 0xff0000];
        let data = build(true, 1, 24, bgr, 1, 3, &[0x0000ff, 0x00ff00, 0x563412]);
        let (_, _, rgba) = decode(&data).expect("decode");
        assert_eq!(rgba, vec![255, 0, 0, 255, 0, 255, 0, 255, 0x12, 0x34, 0x56, 255]);
    }

    #[test]
    fn scales_16bpp_565() {
        let data = build(true, 0, 16, [0xf800, 0x07e0, 0x001f], 2, 1, &[0xffff, 0x8010]);
        let (_, _, rgba) = decode(&data).expect("decode");
        assert_eq!(rgba, vec![255, 255, 255, 255, 132, 0, 132, 255]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(decode(b"short").is_err());
        let mut data = build(true, 0, 32, RGB_MASKS, 2, 2, &[1, 2, 3, 4]);
        data.truncate(data.len() - 1);
        assert!(decode(&data).expect_err("truncated").contains("truncated"));
        let mut data = build(true, 0, 32, RGB_MASKS, 2, 2, &[1, 2, 3, 4]);
        data[4..8].copy_from_slice(&6u32.to_be_bytes());
        assert!(decode(&data).is_err());
        let mut data = build(true, 0, 32, RGB_MASKS, 2, 2, &[1, 2, 3, 4]);
        data[13 * 4..14 * 4].copy_from_slice(&3u32.to_be_bytes()); // PseudoColor
        assert!(decode(&data).expect_err("visual").contains("visual"));
    }
}
