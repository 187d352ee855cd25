//! A grid of dirty cells, and its conversion to a few merged rectangles.

use bascule_proto::Rect;

/// The side of a cell in pixels. Small enough that a typed character costs one or two cells,
/// large enough that a full screen is only a few thousand cells.
pub(crate) const CELL: u16 = 16;

#[derive(Debug, Clone)]
pub(crate) struct DirtyGrid {
    width: u16,
    height: u16,
    columns: usize,
    rows: usize,
    cells: Vec<bool>,
    count: usize,
}

impl DirtyGrid {
    pub(crate) fn new(width: u16, height: u16) -> DirtyGrid {
        let columns = usize::from(width).div_ceil(usize::from(CELL));
        let rows = usize::from(height).div_ceil(usize::from(CELL));
        DirtyGrid { width, height, columns, rows, cells: vec![false; columns * rows], count: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Dirty cells.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Marks every cell that `other` (a grid of the same size) has marked.
    pub(crate) fn union(&mut self, other: &DirtyGrid) {
        for (cell, &theirs) in self.cells.iter_mut().zip(&other.cells) {
            if theirs && !*cell {
                *cell = true;
                self.count += 1;
            }
        }
    }

    /// Cleans every cell that `other` (a grid of the same size) has marked.
    pub(crate) fn subtract(&mut self, other: &DirtyGrid) {
        for (cell, &theirs) in self.cells.iter_mut().zip(&other.cells) {
            if theirs && *cell {
                *cell = false;
                self.count -= 1;
            }
        }
    }

    /// Keeps the first dirty cells (row by row) until `n` of those that `costs` (given the
    /// cell's rectangle) says cost something are kept, and cleans the others; the free ones on
    /// the way are kept too.
    pub(crate) fn keep_first_costing(&mut self, n: usize, costs: impl Fn(Rect) -> bool) {
        let cell = usize::from(CELL);
        let (mut kept, mut paid) = (0, 0);
        for index in 0..self.cells.len() {
            if !self.cells[index] {
                continue;
            }
            let (x, y) = ((index % self.columns) * cell, (index / self.columns) * cell);
            // INVARIANT: cells start inside the u16 screen.
            let rect = Rect {
                x: x as u16,
                y: y as u16,
                width: (usize::from(self.width) - x).min(cell) as u16,
                height: (usize::from(self.height) - y).min(cell) as u16,
            };
            let keep = paid < n && {
                paid += usize::from(costs(rect));
                true
            };
            if keep {
                kept += 1;
            } else {
                self.cells[index] = false;
            }
        }
        self.count = kept;
    }

    /// Cleans every cell.
    pub(crate) fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = false);
        self.count = 0;
    }

    pub(crate) fn mark_all(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = true);
        self.count = self.cells.len();
    }

    /// The cells that `rect` touches, as (first column, end column, first row, end row).
    fn span(&self, rect: Rect) -> (usize, usize, usize, usize) {
        let cell = usize::from(CELL);
        let x0 = usize::from(rect.x) / cell;
        let y0 = usize::from(rect.y) / cell;
        let x1 = (usize::from(rect.x) + usize::from(rect.width)).div_ceil(cell).min(self.columns);
        let y1 = (usize::from(rect.y) + usize::from(rect.height)).div_ceil(cell).min(self.rows);
        (x0, x1, y0, y1)
    }

    pub(crate) fn mark(&mut self, rect: Rect) {
        if rect.width == 0 || rect.height == 0 {
            return;
        }
        let (x0, x1, y0, y1) = self.span(rect);
        for row in y0..y1 {
            for column in x0..x1 {
                let cell = &mut self.cells[row * self.columns + column];
                if !*cell {
                    *cell = true;
                    self.count += 1;
                }
            }
        }
    }

    pub(crate) fn intersects(&self, rect: Rect) -> bool {
        let (x0, x1, y0, y1) = self.span(rect);
        (y0..y1).any(|row| (x0..x1).any(|column| self.cells[row * self.columns + column]))
    }

    /// The bounding box of the dirty cells that touch `rect`, in whole cells (a partial cell at
    /// the screen's right or bottom edge is left out).
    pub(crate) fn bounds_within(&self, rect: Rect) -> Option<Rect> {
        let (x0, x1, y0, y1) = self.span(rect);
        let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
        for row in y0..y1 {
            for column in x0..x1 {
                if self.cells[row * self.columns + column] {
                    (left, top) = (left.min(column), top.min(row));
                    (right, bottom) = (right.max(column + 1), bottom.max(row + 1));
                }
            }
        }
        let cell = usize::from(CELL);
        // Whole cells only.
        let right = right.min(usize::from(self.width) / cell);
        let bottom = bottom.min(usize::from(self.height) / cell);
        // INVARIANT: cells are inside the u16 screen.
        (left < right && top < bottom).then(|| Rect {
            x: (left * cell) as u16,
            y: (top * cell) as u16,
            width: ((right - left) * cell) as u16,
            height: ((bottom - top) * cell) as u16,
        })
    }

    /// Clears the cells that lie entirely inside `rect`.
    pub(crate) fn clear_covered(&mut self, rect: Rect) {
        let cell = usize::from(CELL);
        let x0 = usize::from(rect.x).div_ceil(cell);
        let y0 = usize::from(rect.y).div_ceil(cell);
        let right = usize::from(rect.x) + usize::from(rect.width);
        let bottom = usize::from(rect.y) + usize::from(rect.height);
        // A cell at the right or bottom edge of the screen is covered when the rect reaches the edge.
        let x1 = if right == usize::from(self.width) { self.columns } else { right / cell };
        let y1 = if bottom == usize::from(self.height) { self.rows } else { bottom / cell };
        for row in y0..y1.min(self.rows) {
            for column in x0..x1.min(self.columns) {
                let cell = &mut self.cells[row * self.columns + column];
                if *cell {
                    *cell = false;
                    self.count -= 1;
                }
            }
        }
    }

    /// The cells of block (`column`, `row`) of `per` × `per` cells, clipped to the grid, as
    /// (first column, end column, first row, end row).
    fn block_span(&self, column: usize, row: usize, per: usize) -> (usize, usize, usize, usize) {
        let (x0, y0) = (column * per, row * per);
        (x0, (x0 + per).min(self.columns), y0, (y0 + per).min(self.rows))
    }

    /// How many cells of block (`column`, `row`) of `per` × `per` cells are dirty, and how many
    /// cells it has (fewer at the right and bottom edges).
    pub(crate) fn block_dirt(&self, column: usize, row: usize, per: usize) -> (usize, usize) {
        let (x0, x1, y0, y1) = self.block_span(column, row, per);
        let dirty = (y0..y1).map(|r| self.cells[r * self.columns + x0..r * self.columns + x1].iter().filter(|&&c| c).count()).sum();
        (dirty, (x1 - x0) * (y1 - y0))
    }

    /// Cleans every cell of block (`column`, `row`) of `per` × `per` cells.
    pub(crate) fn clear_block(&mut self, column: usize, row: usize, per: usize) {
        let (x0, x1, y0, y1) = self.block_span(column, row, per);
        for r in y0..y1 {
            for cell in &mut self.cells[r * self.columns + x0..r * self.columns + x1] {
                if *cell {
                    *cell = false;
                    self.count -= 1;
                }
            }
        }
    }

    /// Takes every dirty cell out of the grid as a list of merged rectangles, clipped to the screen.
    ///
    /// Horizontal runs of dirty cells in a row become rectangles; a rectangle grows downwards while
    /// the next row has a run with exactly the same span.
    pub(crate) fn take_rects(&mut self) -> Vec<Rect> {
        let mut open: Vec<(usize, usize, usize, usize)> = Vec::new(); // (x0, x1, y0, y1) in cells
        let mut done = Vec::new();
        for row in 0..self.rows {
            let mut runs = Vec::new();
            let mut column = 0;
            while column < self.columns {
                if self.cells[row * self.columns + column] {
                    let start = column;
                    while column < self.columns && self.cells[row * self.columns + column] {
                        column += 1;
                    }
                    runs.push((start, column));
                } else {
                    column += 1;
                }
            }
            let mut next_open = Vec::new();
            for rect in open.drain(..) {
                if let Some(i) = runs.iter().position(|&(a, b)| a == rect.0 && b == rect.1) {
                    runs.remove(i);
                    next_open.push((rect.0, rect.1, rect.2, row + 1));
                } else {
                    done.push(rect);
                }
            }
            next_open.extend(runs.into_iter().map(|(a, b)| (a, b, row, row + 1)));
            open = next_open;
        }
        done.extend(open);
        self.cells.iter_mut().for_each(|c| *c = false);
        self.count = 0;
        let cell = usize::from(CELL);
        done.into_iter()
            .map(|(x0, x1, y0, y1)| {
                let x = x0 * cell;
                let y = y0 * cell;
                let right = (x1 * cell).min(usize::from(self.width));
                let bottom = (y1 * cell).min(usize::from(self.height));
                // INVARIANT: every value is bounded by the u16 screen size.
                Rect {
                    x: x as u16,
                    y: y as u16,
                    width: (right - x) as u16,
                    height: (bottom - y) as u16,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_screen_is_one_rect() {
        let mut grid = DirtyGrid::new(1280, 800);
        grid.mark_all();
        assert_eq!(grid.take_rects(), vec![Rect { x: 0, y: 0, width: 1280, height: 800 }]);
        assert!(grid.is_empty());
    }

    #[test]
    fn a_character_is_one_small_rect() {
        let mut grid = DirtyGrid::new(1280, 800);
        grid.mark(Rect { x: 100, y: 40, width: 7, height: 14 });
        assert_eq!(grid.take_rects(), vec![Rect { x: 96, y: 32, width: 16, height: 32 }]);
    }

    #[test]
    fn odd_sizes_are_clipped_and_covered_edges_clear() {
        let mut grid = DirtyGrid::new(100, 50);
        grid.mark_all();
        grid.clear_covered(Rect { x: 0, y: 0, width: 100, height: 50 });
        assert!(grid.is_empty());
        grid.mark(Rect { x: 90, y: 40, width: 10, height: 10 });
        assert_eq!(grid.take_rects(), vec![Rect { x: 80, y: 32, width: 20, height: 18 }]);
    }

    #[test]
    fn blocks_count_and_clear_their_cells() {
        // 100x50: 7x4 cells, so blocks of 4x4 cells are 4x4, 3x4 at the right edge.
        let mut grid = DirtyGrid::new(100, 50);
        assert_eq!(grid.block_dirt(0, 0, 4), (0, 16));
        assert_eq!(grid.block_dirt(1, 0, 4), (0, 12));
        grid.mark(Rect { x: 60, y: 0, width: 8, height: 20 });
        assert_eq!(grid.block_dirt(0, 0, 4), (2, 16));
        assert_eq!(grid.block_dirt(1, 0, 4), (2, 12));
        grid.clear_block(0, 0, 4);
        assert_eq!(grid.block_dirt(0, 0, 4), (0, 16));
        assert!(!grid.is_empty());
        grid.clear_block(1, 0, 4);
        assert!(grid.is_empty());
        grid.mark_all();
        assert_eq!(grid.block_dirt(1, 0, 4), (12, 12));
    }

    #[test]
    fn partial_cover_keeps_cells_dirty() {
        let mut grid = DirtyGrid::new(64, 64);
        grid.mark_all();
        grid.clear_covered(Rect { x: 1, y: 0, width: 40, height: 40 });
        // Only cells fully inside (columns 1, rows 0-1) are cleared.
        assert!(grid.intersects(Rect { x: 0, y: 0, width: 1, height: 1 }));
        assert!(!grid.intersects(Rect { x: 16, y: 0, width: 16, height: 32 }));
    }
}
