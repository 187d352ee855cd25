use crate::UpdateError;
use bascule_proto::Rect;

/// An RGBA framebuffer (A is always 255).
#[derive(Clone, PartialEq, Eq)]
pub struct Framebuffer {
    width: u16,
    height: u16,
    rgba: Vec<u8>,
}

impl std::fmt::Debug for Framebuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framebuffer").field("width", &self.width).field("height", &self.height).finish()
    }
}

/// A pointer shape, RGBA with straight alpha.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorShape {
    /// Hotspot x.
    pub hot_x: u16,
    /// Hotspot y.
    pub hot_y: u16,
    /// Width; 0 hides the cursor.
    pub width: u16,
    /// Height; 0 hides the cursor.
    pub height: u16,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

impl Framebuffer {
    /// A black framebuffer.
    pub fn new(width: u16, height: u16) -> Framebuffer {
        let mut rgba = vec![0; usize::from(width) * usize::from(height) * 4];
        rgba.chunks_exact_mut(4).for_each(|p| p[3] = 255);
        Framebuffer { width, height, rgba }
    }

    /// A framebuffer with the given content.
    pub fn from_rgba(width: u16, height: u16, rgba: Vec<u8>) -> Result<Framebuffer, UpdateError> {
        let expected = usize::from(width) * usize::from(height) * 4;
        if rgba.len() != expected {
            return Err(UpdateError::BadLength { expected, got: rgba.len() });
        }
        Ok(Framebuffer { width, height, rgba })
    }

    /// Width and height.
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// All pixels, row-major RGBA.
    pub fn rgba(&self) -> &[u8] {
        &self.rgba
    }

    pub(crate) fn check(&self, rect: Rect) -> Result<(), UpdateError> {
        let inside = u32::from(rect.x) + u32::from(rect.width) <= u32::from(self.width)
            && u32::from(rect.y) + u32::from(rect.height) <= u32::from(self.height);
        if inside { Ok(()) } else { Err(UpdateError::OutOfBounds(rect)) }
    }

    fn row_range(&self, x: u16, y: u16, width: u16) -> std::ops::Range<usize> {
        let start = (usize::from(y) * usize::from(self.width) + usize::from(x)) * 4;
        start..start + usize::from(width) * 4
    }

    pub(crate) fn put(&mut self, rect: Rect, rgba: &[u8]) -> Result<(), UpdateError> {
        self.check(rect)?;
        let expected = usize::from(rect.width) * usize::from(rect.height) * 4;
        if rgba.len() != expected {
            return Err(UpdateError::BadLength { expected, got: rgba.len() });
        }
        if rect.width == 0 {
            return Ok(());
        }
        for (row, source) in rgba.chunks_exact(usize::from(rect.width) * 4).enumerate() {
            let range = self.row_range(rect.x, rect.y + row as u16, rect.width);
            self.rgba[range].copy_from_slice(source);
        }
        Ok(())
    }

    pub(crate) fn fill(&mut self, rect: Rect, rgb: [u8; 3]) -> Result<(), UpdateError> {
        self.check(rect)?;
        let pixel = [rgb[0], rgb[1], rgb[2], 255];
        for row in 0..rect.height {
            let range = self.row_range(rect.x, rect.y + row, rect.width);
            self.rgba[range].chunks_exact_mut(4).for_each(|p| p.copy_from_slice(&pixel));
        }
        Ok(())
    }

    pub(crate) fn copy(&mut self, src_x: u16, src_y: u16, dst: Rect) -> Result<(), UpdateError> {
        self.check(dst)?;
        self.check(Rect { x: src_x, y: src_y, ..dst })?;
        let rows: Vec<u16> =
            if src_y < dst.y { (0..dst.height).rev().collect() } else { (0..dst.height).collect() };
        for row in rows {
            let from = self.row_range(src_x, src_y + row, dst.width);
            let to = self.row_range(dst.x, dst.y + row, dst.width);
            self.rgba.copy_within(from, to.start);
        }
        Ok(())
    }

    /// The pixels of `rect`, row-major RGBA. The caller has checked that `rect` is inside.
    pub(crate) fn region(&self, rect: Rect) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::from(rect.width) * usize::from(rect.height) * 4);
        for row in 0..rect.height {
            out.extend_from_slice(&self.rgba[self.row_range(rect.x, rect.y + row, rect.width)]);
        }
        out
    }

    /// The pixels of one row of `width` pixels from (`x`, `y`); the caller has checked bounds.
    pub(crate) fn row(&self, x: u16, y: u16, width: u16) -> &[u8] {
        &self.rgba[self.row_range(x, y, width)]
    }

    /// Copies `rect` of `other` (a framebuffer of the same size) into this one.
    pub(crate) fn copy_from(&mut self, other: &Framebuffer, rect: Rect) {
        if self.size() != other.size() || self.check(rect).is_err() {
            return;
        }
        for row in 0..rect.height {
            let range = self.row_range(rect.x, rect.y + row, rect.width);
            self.rgba[range.clone()].copy_from_slice(&other.rgba[range]);
        }
    }

    /// The smallest rectangle inside `rect` that holds every pixel where this framebuffer and
    /// `other` (of the same size) differ; `None` when they agree on all of `rect`.
    pub(crate) fn changed_bounds(&self, other: &Framebuffer, rect: Rect) -> Option<Rect> {
        if self.size() != other.size() || self.check(rect).is_err() {
            return Some(rect);
        }
        let row_differs = |y: u16| {
            let range = self.row_range(rect.x, y, rect.width);
            self.rgba[range.clone()] != other.rgba[range]
        };
        let top = (rect.y..rect.y + rect.height).find(|&y| row_differs(y))?;
        let bottom = (rect.y..rect.y + rect.height).rev().find(|&y| row_differs(y)).unwrap_or(top);
        let column_differs = |x: u16| {
            (top..=bottom).any(|y| {
                let range = self.row_range(x, y, 1);
                self.rgba[range.clone()] != other.rgba[range]
            })
        };
        let left = (rect.x..rect.x + rect.width).find(|&x| column_differs(x)).unwrap_or(rect.x);
        let right = (rect.x..rect.x + rect.width).rev().find(|&x| column_differs(x)).unwrap_or(left);
        Some(Rect { x: left, y: top, width: right - left + 1, height: bottom - top + 1 })
    }

    /// Returns the colour if every pixel of `rect` has the same one.
    pub(crate) fn solid_colour(&self, rect: Rect) -> Option<[u8; 3]> {
        let first = self.row_range(rect.x, rect.y, 1);
        let pixel: [u8; 4] = self.rgba.get(first)?.try_into().ok()?;
        for row in 0..rect.height {
            let range = self.row_range(rect.x, rect.y + row, rect.width);
            if !self.rgba[range].chunks_exact(4).all(|p| p == pixel) {
                return None;
            }
        }
        Some([pixel[0], pixel[1], pixel[2]])
    }
}
