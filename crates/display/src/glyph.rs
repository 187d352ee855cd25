//! Glyphs: cutting text-like regions into small shapes, and the ops of the `Glyphs` message.
//!
//! A region with a background (its most frequent colour covers half of it or more) is cut
//! recursively along background rows and columns (an XY cut) into pieces, each trimmed to its
//! bounding box. Pieces that fit [`GLYPH_MAX_WIDTH`] × [`GLYPH_MAX_HEIGHT`] are glyphs, sent once into the
//! viewer's glyph cache and then drawn by slot; larger pieces (pictures, long lines) are left to
//! the tile codecs. The background itself is one `Fill`.

use bascule_proto::{GLYPH_MAX_HEIGHT, GLYPH_MAX_WIDTH, GLYPH_OPS_MAX, GLYPH_SLOTS, Rect};
use std::io::Write;

/// How deep the XY cut recurses: real text needs 3 or 4 levels, overlapping windows a few more
/// splits.
const MAX_DEPTH: u8 = 16;

/// The widest atlas the gateway builds: beyond it, the glyphs go in a further `Glyphs` message.
pub(crate) const ATLAS_MAX_WIDTH: usize = 4096;

/// The pieces of a region.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pieces {
    /// Pieces that fit a glyph, in reading order (top to bottom, then left to right).
    pub(crate) glyphs: Vec<Rect>,
    /// Larger pieces.
    pub(crate) large: Vec<Rect>,
}

/// A region's pixels as words, with its background word.
struct Region<'a> {
    words: &'a [u32],
    stride: usize,
    background: u32,
}

impl Region<'_> {
    fn ink(&self, x: usize, y: usize) -> bool {
        self.words[y * self.stride + x] != self.background
    }

    fn row_has_ink(&self, y: usize, x0: usize, x1: usize) -> bool {
        self.words[y * self.stride + x0..y * self.stride + x1].iter().any(|&w| w != self.background)
    }

    fn column_has_ink(&self, x: usize, y0: usize, y1: usize) -> bool {
        (y0..y1).any(|y| self.ink(x, y))
    }
}

/// Pieces at least this wide (two letters of a common screen font) are cut into letters when
/// they can be. A wider letter is cut too, always at the same place, which costs one more op.
const LETTER_SPLIT_WIDTH: usize = 14;

/// Whether a piece of `w × h` pixels is a glyph.
fn fits(w: usize, h: usize) -> bool {
    w <= usize::from(GLYPH_MAX_WIDTH) && h <= usize::from(GLYPH_MAX_HEIGHT)
}

/// Runs of `true` in `0..n` of `has`, as (start, end) offsets from `base`.
fn runs(base: usize, n: usize, mut has: impl FnMut(usize) -> bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for i in 0..n {
        match (has(base + i), start) {
            (true, None) => start = Some(base + i),
            (false, Some(s)) => {
                out.push((s, base + i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, base + n));
    }
    out
}

/// Cuts `words` (a `width`-wide region, row-major) into pieces that are not `background`.
/// Rectangles are relative to the region.
pub(crate) fn cut(words: &[u32], width: usize, background: u32) -> Pieces {
    let height = words.len().checked_div(width).unwrap_or(0);
    let region = Region { words, stride: width, background };
    let mut pieces = Pieces::default();
    cut_box(&region, (0, width, 0, height), 0, &mut pieces);
    pieces
}

fn cut_box(region: &Region<'_>, (x0, x1, y0, y1): (usize, usize, usize, usize), depth: u8, out: &mut Pieces) {
    for (ry0, ry1) in runs(y0, y1 - y0, |y| region.row_has_ink(y, x0, x1)) {
        for (cx0, cx1) in runs(x0, x1 - x0, |x| region.column_has_ink(x, ry0, ry1)) {
            // Trim the rows of this column run.
            let rows = runs(ry0, ry1 - ry0, |y| region.row_has_ink(y, cx0, cx1));
            let (ty0, ty1) = match (rows.first(), rows.last()) {
                (Some(first), Some(last)) => (first.0, last.1),
                _ => continue,
            };
            let piece = (cx0, cx1, ty0, ty1);
            let (w, h) = (cx1 - cx0, ty1 - ty0);
            // Letters of a word often touch (anti-aliasing): a piece wider than tall is cut
            // between them, so that a glyph is a letter, the same in every word and as it is
            // typed.
            let fits = fits(w, h);
            let letters = fits && w >= LETTER_SPLIT_WIDTH;
            let whole_box = piece == (x0, x1, y0, y1);
            // A frame (a window's border and title bar) joins everything inside it: peel it off
            // and cut what it holds.
            if !fits
                && whole_box
                && depth < MAX_DEPTH
                && let Some(inner) = peel(region, piece, out)
            {
                cut_box(region, inner, depth + 1, out);
                continue;
            }
            // Overlapping windows join too, and letters of a word often touch (anti-aliasing):
            // split along the emptiest line (between two lines of text, two letters) and cut
            // each half, so that a glyph is a letter, the same in every word and as it is typed.
            if (!fits || letters)
                && whole_box
                && depth < MAX_DEPTH
                && let Some((first, second)) = weak_split(region, piece)
            {
                cut_box(region, first, depth + 1, out);
                cut_box(region, second, depth + 1, out);
                continue;
            }
            if (fits && !letters) || whole_box || depth >= MAX_DEPTH {
                // INVARIANT: inside a region of u16 sides.
                let rect = Rect { x: cx0 as u16, y: ty0 as u16, width: w as u16, height: h as u16 };
                if fits { out.glyphs.push(rect) } else { out.large.push(rect) }
            } else {
                cut_box(region, piece, depth + 1, out);
            }
        }
    }
}

/// Takes the frame off a box: its leading and trailing rows that are inked across 90 % of the
/// box or more (title bar, top and bottom borders), then likewise its leading and trailing
/// columns (side borders). The strips become pieces; returns the box inside them, or `None` when
/// the box has no such frame.
fn peel(region: &Region<'_>, (x0, x1, y0, y1): (usize, usize, usize, usize), out: &mut Pieces) -> Option<(usize, usize, usize, usize)> {
    let full = |inked: usize, of: usize| of >= 4 && inked * 10 >= of * 9;
    let row_full = |y: usize| full((x0..x1).filter(|&x| region.ink(x, y)).count(), x1 - x0);
    let top = (y0..y1).take_while(|&y| row_full(y)).count();
    let bottom = if top == y1 - y0 { 0 } else { (y0..y1).rev().take_while(|&y| row_full(y)).count() };
    let (iy0, iy1) = (y0 + top, y1 - bottom);
    let column_full = |x: usize| full((iy0..iy1).filter(|&y| region.ink(x, y)).count(), iy1 - iy0);
    let left = (x0..x1).take_while(|&x| column_full(x)).count();
    let right = if left == x1 - x0 { 0 } else { (x0..x1).rev().take_while(|&x| column_full(x)).count() };
    let (ix0, ix1) = (x0 + left, x1 - right);
    // No frame, or nothing but frame (a solid bar, a picture): not a frame around something.
    if top + bottom + left + right == 0 || ix0 >= ix1 || iy0 >= iy1 {
        return None;
    }
    let mut push = |(px0, px1, py0, py1): (usize, usize, usize, usize)| {
        if px1 > px0 && py1 > py0 {
            let (w, h) = (px1 - px0, py1 - py0);
            // INVARIANT: inside a region of u16 sides.
            let rect = Rect { x: px0 as u16, y: py0 as u16, width: w as u16, height: h as u16 };
            if fits(w, h) { out.glyphs.push(rect) } else { out.large.push(rect) }
        }
    };
    push((x0, x1, y0, iy0));
    push((x0, x1, iy1, y1));
    push((x0, ix0, iy0, iy1));
    push((ix1, x1, iy0, iy1));
    Some((ix0, ix1, iy0, iy1))
}

/// Splits a box that no background row or column crosses, along the row or column of its middle
/// half with the least ink, when that line is mostly background; `None` for a dense box (a
/// picture) or one too small to matter.
fn weak_split(region: &Region<'_>, (x0, x1, y0, y1): (usize, usize, usize, usize)) -> Option<(Bbox, Bbox)> {
    let (w, h) = (x1 - x0, y1 - y0);
    let tall = h >= 2 * usize::from(GLYPH_MAX_HEIGHT);
    // Wide: beyond a glyph, or a run of letters.
    let wide = w >= LETTER_SPLIT_WIDTH;
    if !wide && !tall {
        return None;
    }
    let mut best: Option<(f64, bool, usize)> = None; // (ink fraction, is a row, where)
    if tall {
        for y in y0 + h / 4..y1 - h / 4 {
            let ink = (x0..x1).filter(|&x| region.ink(x, y)).count() as f64 / w as f64;
            if best.is_none_or(|(b, _, _)| ink < b) {
                best = Some((ink, true, y));
            }
        }
    }
    if wide {
        for x in x0 + w / 4..x1 - w / 4 {
            let ink = (y0..y1).filter(|&y| region.ink(x, y)).count() as f64 / h as f64;
            if best.is_none_or(|(b, _, _)| ink < b) {
                best = Some((ink, false, x));
            }
        }
    }
    // A large box splits only along a mostly empty line (a picture has none); a run of letters
    // along its emptiest column, however little room there is between them.
    let most = if w >= 2 * usize::from(GLYPH_MAX_WIDTH) || tall { 0.5 } else { 0.99 };
    match best? {
        (ink, _, _) if ink > most => None,
        (_, true, y) => Some(((x0, x1, y0, y), (x0, x1, y, y1))),
        (_, false, x) => Some(((x0, x, y0, y1), (x, x1, y0, y1))),
    }
}

/// A box in a region: (first column, end column, first row, end row).
type Bbox = (usize, usize, usize, usize);

/// One record of the ops of a `Glyphs` message, with absolute coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlyphOp {
    /// Draw the glyph kept in `slot` at (`x`, `y`).
    Draw { slot: u16, x: u16, y: u16 },
    /// Keep the next `width × height` rectangle of the atlas in `slot`, and draw it at (`x`, `y`).
    Store { slot: u16, x: u16, y: u16, width: u8, height: u8 },
}

/// Writes ops as the protocol's records (relative positions), raw DEFLATE.
pub(crate) fn write_ops(ops: &[GlyphOp]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(ops.len() * 8);
    let (mut px, mut py) = (0u16, 0u16);
    for op in ops {
        let (slot, x, y, store) = match *op {
            GlyphOp::Draw { slot, x, y } => (slot, x, y, None),
            GlyphOp::Store { slot, x, y, width, height } => (slot | 0x8000, x, y, Some((width, height))),
        };
        raw.extend_from_slice(&slot.to_le_bytes());
        raw.extend_from_slice(&x.wrapping_sub(px).to_le_bytes());
        raw.extend_from_slice(&y.wrapping_sub(py).to_le_bytes());
        if let Some((w, h)) = store {
            raw.extend_from_slice(&[w, h]);
        }
        (px, py) = (x, y);
    }
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    // INVARIANT: writing into a Vec cannot fail.
    let _ = encoder.write_all(&raw);
    encoder.finish().unwrap_or_default()
}

/// Why the ops of a `Glyphs` message were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GlyphError {
    /// The ops do not inflate, or inflate to more than the limit.
    #[error("glyph ops do not inflate within {GLYPH_OPS_MAX} bytes")]
    Inflate,
    /// The ops end inside a record.
    #[error("glyph ops end inside a record")]
    Truncated,
    /// A slot at or above [`GLYPH_SLOTS`].
    #[error("glyph slot {0} is out of range")]
    Slot(u16),
    /// A stored glyph of side 0, wider than [`GLYPH_MAX_WIDTH`] or taller than [`GLYPH_MAX_HEIGHT`].
    #[error("stored glyph of {0}x{1} pixels")]
    Size(u8, u8),
}

/// Reads the ops of a `Glyphs` message (for the reference canvas and the fuzzers).
pub(crate) fn read_ops(deflated: &[u8]) -> Result<Vec<GlyphOp>, GlyphError> {
    use std::io::Read;
    let mut raw = Vec::new();
    let decoder = flate2::read::DeflateDecoder::new(deflated);
    // One byte over the limit tells "too large" from "exactly the limit".
    decoder.take(GLYPH_OPS_MAX as u64 + 1).read_to_end(&mut raw).map_err(|_| GlyphError::Inflate)?;
    if raw.len() > GLYPH_OPS_MAX {
        return Err(GlyphError::Inflate);
    }
    let mut ops = Vec::new();
    let (mut x, mut y) = (0u16, 0u16);
    let mut rest = raw.as_slice();
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    while !rest.is_empty() {
        if rest.len() < 6 {
            return Err(GlyphError::Truncated);
        }
        let tagged = u16_at(rest, 0);
        x = x.wrapping_add(u16_at(rest, 2));
        y = y.wrapping_add(u16_at(rest, 4));
        let slot = tagged & 0x7fff;
        if slot >= GLYPH_SLOTS {
            return Err(GlyphError::Slot(slot));
        }
        if tagged & 0x8000 == 0 {
            ops.push(GlyphOp::Draw { slot, x, y });
            rest = &rest[6..];
        } else {
            if rest.len() < 8 {
                return Err(GlyphError::Truncated);
            }
            let (width, height) = (rest[6], rest[7]);
            if !(1..=GLYPH_MAX_WIDTH).contains(&width) || !(1..=GLYPH_MAX_HEIGHT).contains(&height) {
                return Err(GlyphError::Size(width, height));
            }
            ops.push(GlyphOp::Store { slot, x, y, width, height });
            rest = &rest[8..];
        }
    }
    Ok(ops)
}

/// Where each stored glyph of a message sits in its atlas: left to right, top-aligned.
pub(crate) fn atlas_layout(ops: &[GlyphOp]) -> (usize, usize) {
    ops.iter().fold((0, 0), |(w, h), op| match *op {
        GlyphOp::Store { width, height, .. } => (w + usize::from(width), h.max(usize::from(height))),
        GlyphOp::Draw { .. } => (w, h),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A region from a picture: '.' is background, anything else ink.
    fn region(rows: &[&str]) -> (Vec<u32>, usize) {
        let width = rows[0].len();
        (rows.iter().flat_map(|r| r.bytes().map(|b| if b == b'.' { 0 } else { u32::from(b) })).collect(), width)
    }

    fn rect(x: u16, y: u16, width: u16, height: u16) -> Rect {
        Rect { x, y, width, height }
    }

    #[test]
    fn letters_on_lines_become_trimmed_glyphs() {
        let (words, width) = region(&[
            "..........",
            ".ab..c....",
            ".ab..c..d.",
            "..........",
            "...e......",
            "..ee......",
        ]);
        let pieces = cut(&words, width, 0);
        assert_eq!(pieces.glyphs, vec![rect(1, 1, 2, 2), rect(5, 1, 1, 2), rect(8, 2, 1, 1), rect(2, 4, 2, 2)]);
        assert!(pieces.large.is_empty());
    }

    #[test]
    fn a_border_across_text_does_not_merge_the_letters() {
        // A vertical line at x = 0 makes every row inked; the cut must still separate the letters.
        let mut rows = vec![String::from("|.........")];
        for i in 0..40 {
            rows.push(if i % 3 == 0 { "|.........".into() } else { "|..a..b...".into() });
        }
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        let (words, width) = region(&rows);
        let pieces = cut(&words, width, 0);
        assert_eq!(pieces.large, vec![rect(0, 0, 1, 41)]);
        assert_eq!(pieces.glyphs.len(), 2 * 13);
        assert!(pieces.glyphs.contains(&rect(3, 2, 1, 2)));
    }

    #[test]
    fn a_window_frame_is_peeled_off_its_text() {
        // A window wider than a glyph: title bar (2 rows), borders, and three letters inside.
        let title = "T".repeat(80);
        let empty = format!("|{}|", ".".repeat(78));
        let letters = format!("|.a..b{}|", ".".repeat(73));
        let letter = format!("|.c{}|", ".".repeat(76));
        let bottom = "|".repeat(80);
        let rows = [title.as_str(), title.as_str(), empty.as_str(), letters.as_str(), empty.as_str(), letter.as_str(), empty.as_str(), bottom.as_str()];
        let (words, width) = region(&rows);
        let pieces = cut(&words, width, 0);
        // Strips: the title bar, the bottom border, the two sides; then the letters.
        assert_eq!(pieces.large, vec![rect(0, 0, 80, 2), rect(0, 7, 80, 1)]);
        assert_eq!(pieces.glyphs, vec![rect(0, 2, 1, 5), rect(79, 2, 1, 5), rect(2, 3, 1, 1), rect(5, 3, 1, 1), rect(2, 5, 1, 1)]);
    }

    #[test]
    fn a_picture_is_one_large_piece() {
        let words: Vec<u32> = (0..100 * 50).map(|i| i as u32 + 1).collect();
        let pieces = cut(&words, 100, 0);
        assert_eq!(pieces.large, vec![rect(0, 0, 100, 50)]);
        assert!(pieces.glyphs.is_empty());
    }

    #[test]
    fn ops_round_trip_and_match_the_document() {
        let ops = vec![
            GlyphOp::Store { slot: 3, x: 100, y: 40, width: 5, height: 9 },
            GlyphOp::Draw { slot: 3, x: 109, y: 40 },
            GlyphOp::Draw { slot: 7, x: 91, y: 57 },
        ];
        let deflated = write_ops(&ops);
        assert_eq!(read_ops(&deflated).unwrap(), ops);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::DeflateDecoder::new(deflated.as_slice()), &mut raw).unwrap();
        assert_eq!(
            raw,
            [0x03, 0x80, 0x64, 0, 0x28, 0, 5, 9, 0x03, 0, 9, 0, 0, 0, 0x07, 0, 0xee, 0xff, 0x11, 0]
        );
        assert_eq!(atlas_layout(&ops), (5, 9));
    }

    #[test]
    fn hostile_ops_are_refused() {
        let deflate = |raw: &[u8]| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
            e.write_all(raw).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(read_ops(&[0xff, 0xff, 0xff]), Err(GlyphError::Inflate));
        assert_eq!(read_ops(&deflate(&[1, 0, 0, 0, 0])), Err(GlyphError::Truncated));
        assert_eq!(read_ops(&deflate(&[1, 0x80, 0, 0, 0, 0, 1])), Err(GlyphError::Truncated));
        assert_eq!(read_ops(&deflate(&[0x00, 0x10, 0, 0, 0, 0])), Err(GlyphError::Slot(4096)));
        assert_eq!(read_ops(&deflate(&[1, 0x80, 0, 0, 0, 0, 65, 1])), Err(GlyphError::Size(65, 1)));
        assert_eq!(read_ops(&deflate(&[1, 0x80, 0, 0, 0, 0, 64, 33])), Err(GlyphError::Size(64, 33)));
        assert!(read_ops(&deflate(&[1, 0x80, 0, 0, 0, 0, 64, 32])).is_ok());
        assert_eq!(read_ops(&deflate(&[1, 0x80, 0, 0, 0, 0, 1, 0])), Err(GlyphError::Size(1, 0)));
        // A bomb: 2 MiB of zeros (valid draw records) is refused at the limit.
        assert_eq!(read_ops(&deflate(&vec![0; 2 << 20])), Err(GlyphError::Inflate));
        assert_eq!(read_ops(&deflate(&[])), Ok(vec![]));
    }
}
