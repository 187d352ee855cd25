//! Pixel codecs of the display path: what a region looks like, and its PNG or JPEG bytes.

/// What a region looks like, from one pass over its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Look {
    /// Distinct colours, counted up to [`Look::MANY`] (then it stays at `MANY`).
    pub(crate) colours: usize,
    /// The most frequent colour among the first [`Look::MANY`] distinct ones, and its count.
    pub(crate) mode: [u8; 3],
    pub(crate) mode_count: usize,
    pub(crate) pixels: usize,
}

impl Look {
    /// More distinct colours than a palette holds.
    pub(crate) const MANY: usize = 257;

    /// The most frequent colour covers at least a quarter of the region: a background, as
    /// behind text or around windows.
    pub(crate) fn has_background(&self) -> bool {
        self.mode_count * 4 >= self.pixels
    }

    /// Photo-like: more colours than a palette, and no dominant background.
    pub(crate) fn is_photo(&self) -> bool {
        self.colours >= Look::MANY && !self.has_background()
    }
}

/// An open-addressing map from colour to palette index, for up to 256 colours.
struct ColourTable {
    keys: [u32; 1024],
    values: [u16; 1024],
    colours: Vec<u32>,
    counts: Vec<usize>,
}

const EMPTY: u32 = u32::MAX; // never an opaque colour once alpha is forced to 0xff

impl ColourTable {
    fn new() -> ColourTable {
        ColourTable { keys: [EMPTY; 1024], values: [0; 1024], colours: Vec::new(), counts: Vec::new() }
    }

    /// The index of `colour`, adding it when there is room; `None` once 256 colours are known and
    /// this is a new one.
    fn index(&mut self, colour: u32) -> Option<u8> {
        let mut slot = (colour.wrapping_mul(0x9e37_79b1) >> 22) as usize;
        loop {
            if self.keys[slot] == colour {
                let index = self.values[slot];
                self.counts[usize::from(index)] += 1;
                // INVARIANT: at most 256 entries, so an index fits a u8.
                return Some(index as u8);
            }
            if self.keys[slot] == EMPTY {
                if self.colours.len() == 256 {
                    return None;
                }
                let index = self.colours.len() as u16;
                self.keys[slot] = colour;
                self.values[slot] = index;
                self.colours.push(colour);
                self.counts.push(1);
                return Some(index as u8);
            }
            slot = (slot + 1) & 1023;
        }
    }
}

fn word(pixel: &[u8]) -> u32 {
    // Alpha forced opaque: the framebuffer is opaque, and EMPTY stays free.
    u32::from_le_bytes([pixel[0], pixel[1], pixel[2], 0])
}

fn rgb_of(word: u32) -> [u8; 3] {
    let [r, g, b, _] = word.to_le_bytes();
    [r, g, b]
}

/// Looks at RGBA pixels.
pub(crate) fn look(rgba: &[u8]) -> Look {
    let mut table = ColourTable::new();
    let mut overflow = false;
    let mut last = EMPTY;
    let mut run = 0usize;
    let flush = |table: &mut ColourTable, colour: u32, run: usize, overflow: &mut bool| {
        if run == 0 {
            return;
        }
        match table.index(colour) {
            Some(index) => table.counts[usize::from(index)] += run - 1,
            None => *overflow = true,
        }
    };
    for pixel in rgba.chunks_exact(4) {
        let colour = word(pixel);
        if colour == last {
            run += 1;
        } else {
            flush(&mut table, last, run, &mut overflow);
            last = colour;
            run = 1;
        }
    }
    flush(&mut table, last, run, &mut overflow);
    let (mode_index, mode_count) =
        table.counts.iter().copied().enumerate().max_by_key(|&(_, count)| count).unwrap_or((0, 0));
    Look {
        colours: if overflow { Look::MANY } else { table.colours.len() },
        mode: table.colours.get(mode_index).map_or([0; 3], |&c| rgb_of(c)),
        mode_count,
        pixels: rgba.len() / 4,
    }
}

/// The palette of RGBA pixels and their indices, when they have at most 256 colours.
fn palettize(rgba: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut table = ColourTable::new();
    let mut indices = Vec::with_capacity(rgba.len() / 4);
    for pixel in rgba.chunks_exact(4) {
        indices.push(table.index(word(pixel))?);
    }
    let palette = table.colours.iter().flat_map(|&c| rgb_of(c)).collect();
    Some((palette, indices))
}

/// Packs one row of palette indices at `depth` bits per pixel (1, 2, 4 or 8), MSB first.
fn pack_row(indices: &[u8], depth: u8, out: &mut Vec<u8>) {
    if depth == 8 {
        out.extend_from_slice(indices);
        return;
    }
    let per_byte = 8 / usize::from(depth);
    for chunk in indices.chunks(per_byte) {
        let mut byte = 0u8;
        for (i, &index) in chunk.iter().enumerate() {
            byte |= index << (8 - depth * (i as u8 + 1));
        }
        out.push(byte);
    }
}

/// Encodes RGBA pixels as PNG.
///
/// Cursors keep their alpha. Opaque pixels with at most 256 colours (text, UI) become an indexed
/// PNG at the smallest bit depth that holds the palette, with no filter; others become RGB with
/// the adaptive filter (photos and gradients compress much better filtered).
///
/// Measured with `cargo bench -p bascule-display` (see the crate's bench for the figures).
pub(crate) fn encode_png(width: u16, height: u16, rgba: &[u8], keep_alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, u32::from(width), u32::from(height));
    encoder.set_compression(png::Compression::Balanced);
    let data: Vec<u8>;
    let bytes: &[u8] = if keep_alpha {
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_filter(png::Filter::NoFilter);
        rgba
    } else if let Some((palette, indices)) = palettize(rgba) {
        let colours = palette.len() / 3;
        let (depth, bits) = match colours {
            0..=2 => (png::BitDepth::One, 1),
            3..=4 => (png::BitDepth::Two, 2),
            5..=16 => (png::BitDepth::Four, 4),
            _ => (png::BitDepth::Eight, 8),
        };
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(depth);
        encoder.set_palette(palette);
        encoder.set_filter(png::Filter::NoFilter);
        let mut packed = Vec::with_capacity(indices.len());
        for row in indices.chunks(usize::from(width).max(1)) {
            pack_row(row, bits, &mut packed);
        }
        data = packed;
        &data
    } else {
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_filter(png::Filter::Adaptive);
        data = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        &data
    };
    // INVARIANT: the size matches the data (checked when the pixels entered the framebuffer), and
    // writing into a Vec cannot fail, so these results are always Ok.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(bytes);
    }
    out
}

/// Encodes opaque RGBA pixels as a baseline JPEG of `quality` (1-100), 4:2:0 below 90.
pub(crate) fn encode_jpeg(width: u16, height: u16, rgba: &[u8], quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    // INVARIANT: sizes are 1..=65535 and match the data; writing into a Vec cannot fail.
    let _ = encoder.encode(rgba, width, height, jpeg_encoder::ColorType::Rgba);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decode(png_bytes: &[u8], width: u16, height: u16) -> (u32, u32, Vec<u8>) {
        let rgba = crate::canvas::decode_png(png_bytes, bascule_proto::Rect { x: 0, y: 0, width, height }).unwrap();
        (u32::from(width), u32::from(height), rgba)
    }

    fn pixels(colours: &[[u8; 3]], n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| {
            let [r, g, b] = colours[(i * 7 + i / 5) % colours.len()];
            [r, g, b, 255]
        })
        .collect()
    }

    #[test]
    fn every_palette_depth_and_rgb_round_trip_exactly() {
        for count in [1, 2, 3, 4, 5, 16, 17, 200, 256, 257, 1000] {
            let colours: Vec<[u8; 3]> = (0..count).map(|i: u32| [(i * 37) as u8, (i * 11 / 3) as u8, (i / 4) as u8]).collect();
            // Odd widths exercise the packing of partial bytes.
            for width in [1u16, 3, 7, 33] {
                let height = 5u16;
                let rgba = pixels(&colours, usize::from(width) * usize::from(height));
                let (w, h, back) = decode(&encode_png(width, height, &rgba, false), width, height);
                assert_eq!((w, h), (u32::from(width), u32::from(height)));
                assert_eq!(back, rgba, "{count} colours, width {width}");
            }
        }
    }

    #[test]
    fn look_finds_the_background_and_counts_colours() {
        let mut rgba = pixels(&[[255, 255, 255]], 100);
        rgba[0..4].copy_from_slice(&[0, 0, 0, 255]);
        let seen = look(&rgba);
        assert_eq!((seen.colours, seen.mode, seen.mode_count, seen.pixels), (2, [255, 255, 255], 99, 100));
        assert!(seen.has_background() && !seen.is_photo());
        let noise: Vec<u8> = (0..4096u32).flat_map(|i| [(i * 97) as u8, (i * 31 / 7) as u8, (i >> 4) as u8, 255]).collect();
        let seen = look(&noise);
        assert_eq!(seen.colours, Look::MANY);
        assert!(seen.is_photo());
    }

    #[test]
    fn jpeg_is_close_not_exact() {
        // A gradient with noise, as in a photo.
        let rgba: Vec<u8> = (0..64 * 64u32)
            .flat_map(|i| {
                let mut h = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                h ^= h >> 29;
                let noise = (h.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 59) as u8;
                [(i % 64 * 3) as u8 + noise, (i / 64 * 3) as u8 + noise, 128 + noise, 255]
            })
            .collect();
        let jpeg = encode_jpeg(64, 64, &rgba, 70);
        let back = crate::canvas::decode_jpeg(&jpeg, bascule_proto::Rect { x: 0, y: 0, width: 64, height: 64 }).unwrap();
        let error: u64 = back.iter().zip(&rgba).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
        assert!(error / (64 * 64 * 4) < 8, "mean error {}", error / (64 * 64 * 4));
        assert!(jpeg.len() < encode_png(64, 64, &rgba, false).len());
    }
}
