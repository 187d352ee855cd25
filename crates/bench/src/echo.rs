//! Keystroke-echo latency: which frame first showed each typed character.
//!
//! The typed text goes into `cat` in the desktop's xterm, whose focused text cursor is a solid
//! block in the foreground colour (black). After each frame the client looks for that block in
//! the xterm's area of its canvas ([`find_cursor_block`]); the block's cell, counted from where it
//! stood before the first key, says how many characters the frame shows ([`EchoModel`]), however
//! the gateway coalesced them. A keystroke's latency runs from its injection (`xdotool` returned)
//! to the arrival of the first frame that shows it ([`echo_latencies`]).
//!
//! Everything here is pure: pixels and instants in, numbers out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The narrowest and shortest solid block taken for a text cursor, in pixels. Glyph stems are
/// at most 2 or 3 pixels wide; a monospace cell at any readable size is wider and taller.
const MIN_BLOCK_WIDTH: usize = 4;
const MIN_BLOCK_HEIGHT: usize = 8;
/// A cursor cell is taller than wide and not absurdly so.
const MAX_BLOCK_ASPECT: usize = 4;

/// A solid rectangle found in a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// An area of a picture, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

/// Finds the topmost, then leftmost, solid block of colour `rgb` inside `area` of an RGBA picture
/// `width` pixels wide: at least [`MIN_BLOCK_WIDTH`] × [`MIN_BLOCK_HEIGHT`] pixels, taller than wide.
/// `None` when there is none (or the area is outside the picture).
pub fn find_cursor_block(rgba: &[u8], width: usize, area: Area, rgb: [u8; 3]) -> Option<Block> {
    if width == 0 {
        return None;
    }
    let height = rgba.len() / 4 / width;
    let x_end = (area.x + area.width).min(width);
    let y_end = (area.y + area.height).min(height);
    if area.x >= x_end || area.y >= y_end {
        return None;
    }
    let columns = x_end - area.x;
    let is_ink = |x: usize, y: usize| {
        let i = (y * width + x) * 4;
        rgba[i..i + 3] == rgb
    };
    // down[x]: how many pixels of the colour start at (x, y) and go down, computed bottom-up.
    let rows = y_end - area.y;
    let mut down = vec![vec![0usize; columns]; rows];
    for row in (0..rows).rev() {
        for column in 0..columns {
            if is_ink(area.x + column, area.y + row) {
                down[row][column] = 1 + down.get(row + 1).map_or(0, |below| below[column]);
            }
        }
    }
    for (row, runs) in down.iter().enumerate() {
        let mut column = 0;
        while column < columns {
            if runs[column] < MIN_BLOCK_HEIGHT {
                column += 1;
                continue;
            }
            let start = column;
            while column < columns && runs[column] >= MIN_BLOCK_HEIGHT {
                column += 1;
            }
            let block_width = column - start;
            // The block's height is the shortest column of the run.
            let block_height = runs[start..column].iter().copied().min().unwrap_or(0);
            if block_width >= MIN_BLOCK_WIDTH
                && block_height >= block_width
                && block_height <= block_width * MAX_BLOCK_ASPECT
            {
                return Some(Block {
                    x: area.x + start,
                    y: area.y + row,
                    width: block_width,
                    height: block_height,
                });
            }
        }
    }
    None
}

/// Where the text cursor stands after each prefix of the typed text, as (row, column) cells
/// counted from where it stood before the first key.
#[derive(Debug, Clone)]
pub struct EchoModel {
    /// `cells[k]` is the cell after `k` characters.
    cells: Vec<(usize, usize)>,
    /// The inverse: how many characters a cell means.
    count_of: HashMap<(usize, usize), usize>,
}

impl EchoModel {
    /// The model for `text` typed into a terminal at the start of a line: a newline moves to the
    /// start of the next line, any other character one cell right (no line is longer than the
    /// terminal is wide).
    pub fn new(text: &str) -> EchoModel {
        let mut cells = vec![(0, 0)];
        let (mut row, mut column) = (0, 0);
        for c in text.chars() {
            if c == '\n' {
                row += 1;
                column = 0;
            } else {
                column += 1;
            }
            cells.push((row, column));
        }
        let count_of = cells
            .iter()
            .enumerate()
            .map(|(count, &cell)| (cell, count))
            .collect();
        EchoModel { cells, count_of }
    }

    /// How many keystrokes the text has.
    pub fn keystrokes(&self) -> usize {
        self.cells.len() - 1
    }

    /// How many characters a picture shows whose cursor block is `block`, given the block
    /// `base` found before the first key; `None` when the block is not on a cell the text reaches.
    pub fn shown(&self, base: Block, block: Block) -> Option<usize> {
        if block.width != base.width || block.height != base.height || base.width == 0 {
            return None;
        }
        let column = cell_index(base.x, block.x, base.width)?;
        let row = cell_index(base.y, block.y, base.height)?;
        self.count_of.get(&(row, column)).copied()
    }
}

/// `(position - origin) / size` when it is a whole number of cells at or after the origin.
fn cell_index(origin: usize, position: usize, size: usize) -> Option<usize> {
    let offset = position.checked_sub(origin)?;
    offset.is_multiple_of(size).then_some(offset / size)
}

/// A frame as the latency computation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoFrame {
    /// When its `EndFrame` arrived.
    pub at: Instant,
    /// Whether it drew anything.
    pub changed: bool,
    /// How many typed characters it shows, when its cursor block was found.
    pub shown: Option<usize>,
}

/// How the latencies were attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EchoMethod {
    /// By the cursor block's cell (exact, coalescing-proof).
    CursorCell,
    /// By the first frame with a change after the key (the cursor block was never found).
    FirstChange,
}

/// The latency of each keystroke `k` (injected at `keys[k]`): until the first frame arriving at
/// or after it that shows at least `k + 1` characters. Keystrokes no frame shows are left out
/// and counted in the second value.
///
/// When no frame's cursor block was found, falls back to the first frame with a change arriving
/// at or after each key ([`EchoMethod::FirstChange`]).
pub fn echo_latencies(
    keys: &[Instant],
    frames: &[EchoFrame],
) -> (Vec<Duration>, usize, EchoMethod) {
    let method = if frames.iter().any(|f| f.shown.is_some()) {
        EchoMethod::CursorCell
    } else {
        EchoMethod::FirstChange
    };
    let mut latencies = Vec::with_capacity(keys.len());
    let mut missing = 0;
    for (k, &key) in keys.iter().enumerate() {
        let echo = frames.iter().find(|f| {
            f.at >= key
                && match method {
                    EchoMethod::CursorCell => f.shown.is_some_and(|shown| shown > k),
                    EchoMethod::FirstChange => f.changed,
                }
        });
        match echo {
            Some(frame) => latencies.push(frame.at - key),
            None => missing += 1,
        }
    }
    (latencies, missing, method)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: [u8; 4] = [255, 255, 255, 255];
    const BLACK: [u8; 4] = [0, 0, 0, 255];

    fn picture(width: usize, height: usize) -> Vec<u8> {
        WHITE.repeat(width * height)
    }

    fn paint(
        rgba: &mut [u8],
        width: usize,
        x: usize,
        y: usize,
        w: usize,
        h: usize,
        colour: [u8; 4],
    ) {
        for row in y..y + h {
            for column in x..x + w {
                let i = (row * width + column) * 4;
                rgba[i..i + 4].copy_from_slice(&colour);
            }
        }
    }

    #[test]
    fn finds_the_cursor_block_and_not_glyph_stems() {
        let (width, height) = (120, 60);
        let mut rgba = picture(width, height);
        // Glyph-like ink: a 2-pixel stem 14 tall, a 10-wide bar 2 tall, a grey block.
        paint(&mut rgba, width, 10, 5, 2, 14, BLACK);
        paint(&mut rgba, width, 20, 8, 10, 2, BLACK);
        paint(&mut rgba, width, 40, 5, 7, 15, [40, 40, 40, 255]);
        assert_eq!(
            find_cursor_block(
                &rgba,
                width,
                Area {
                    x: 0,
                    y: 0,
                    width,
                    height
                },
                [0, 0, 0]
            ),
            None
        );
        // The cursor, touching a stem on its left.
        paint(&mut rgba, width, 60, 20, 7, 15, BLACK);
        paint(&mut rgba, width, 58, 22, 2, 10, BLACK);
        let all = Area {
            x: 0,
            y: 0,
            width,
            height,
        };
        let block = Block {
            x: 60,
            y: 20,
            width: 7,
            height: 15,
        };
        assert_eq!(find_cursor_block(&rgba, width, all, [0, 0, 0]), Some(block));
        // Outside the area: not found; an area past the picture's edge is clipped.
        assert_eq!(
            find_cursor_block(
                &rgba,
                width,
                Area {
                    x: 0,
                    y: 0,
                    width: 50,
                    height
                },
                [0, 0, 0]
            ),
            None
        );
        let clipped = Area {
            x: 50,
            y: 10,
            width: 500,
            height: 500,
        };
        assert_eq!(
            find_cursor_block(&rgba, width, clipped, [0, 0, 0]),
            Some(block)
        );
        assert_eq!(
            find_cursor_block(
                &rgba,
                width,
                Area {
                    x: 200,
                    y: 0,
                    width: 5,
                    height: 5
                },
                [0, 0, 0]
            ),
            None
        );
    }

    #[test]
    fn the_model_counts_characters_from_the_cursor_cell() {
        let model = EchoModel::new("ab\ncd\n");
        assert_eq!(model.keystrokes(), 6);
        let base = Block {
            x: 100,
            y: 50,
            width: 7,
            height: 15,
        };
        let at = |column: usize, row: usize| Block {
            x: 100 + 7 * column,
            y: 50 + 15 * row,
            ..base
        };
        assert_eq!(model.shown(base, base), Some(0));
        assert_eq!(model.shown(base, at(1, 0)), Some(1));
        assert_eq!(model.shown(base, at(2, 0)), Some(2));
        assert_eq!(model.shown(base, at(0, 1)), Some(3));
        assert_eq!(model.shown(base, at(2, 1)), Some(5));
        assert_eq!(model.shown(base, at(0, 2)), Some(6));
        // Cells the text never reaches, misaligned or differently sized blocks.
        assert_eq!(model.shown(base, at(3, 0)), None);
        assert_eq!(model.shown(base, Block { x: 103, ..base }), None);
        assert_eq!(model.shown(base, Block { x: 93, ..base }), None);
        assert_eq!(model.shown(base, Block { width: 8, ..base }), None);
    }

    #[test]
    fn latencies_follow_the_cursor_even_when_frames_coalesce() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let keys = [ms(0), ms(125), ms(250), ms(375)];
        let frame = |at: u64, shown: Option<usize>| EchoFrame {
            at: ms(at),
            changed: true,
            shown,
        };
        let frames = [
            frame(90, Some(1)),
            // A frame after key 1 that does not show it yet (an unrelated change).
            frame(130, Some(1)),
            // Keys 1 and 2 arrive together.
            frame(300, Some(3)),
        ];
        let (latencies, missing, method) = echo_latencies(&keys, &frames);
        assert_eq!(method, EchoMethod::CursorCell);
        let expected: Vec<Duration> = [90, 175, 50].map(Duration::from_millis).to_vec();
        assert_eq!(latencies, expected);
        assert_eq!(missing, 1);
        // Without any cursor block: the first change after each key.
        let blind: Vec<EchoFrame> = frames
            .iter()
            .map(|f| EchoFrame { shown: None, ..*f })
            .collect();
        let (latencies, missing, method) = echo_latencies(&keys, &blind);
        assert_eq!(method, EchoMethod::FirstChange);
        assert_eq!(latencies, [90, 5, 50].map(Duration::from_millis).to_vec());
        assert_eq!(missing, 1);
    }
}
