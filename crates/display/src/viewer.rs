//! One viewer's encoder state: what it has not seen yet, and its in-flight window.

use crate::cache::{BLOCK, SERVER_CACHE_TILES, TileCache, TileKey};
use crate::framebuffer::{CursorShape, Framebuffer};
use crate::grid::{CELL, DirtyGrid};
use bascule_proto::{Rect, ServerMessage, TileCodec};

/// Copies kept for a viewer before we give up and send pixels: a viewer that is behind should
/// not accumulate an unbounded list.
const MAX_PENDING_COPIES: usize = 32;

/// Why an acknowledgement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The viewer acknowledged a frame that was never sent.
    #[error("acknowledged frame {acked} but only {sent} were sent")]
    NotSent {
        /// The acknowledged sequence number.
        acked: u32,
        /// The last sent sequence number.
        sent: u32,
    },
    /// No such viewer.
    #[error("unknown viewer")]
    UnknownViewer,
}

/// Counters of one viewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewerStats {
    /// Frames planned.
    pub frames: u64,
    /// Frames acknowledged.
    pub acked: u32,
    /// Frames in flight.
    pub in_flight: u32,
    /// Blocks sent as `CacheDraw` (drawn from the client's tile cache).
    pub cache_hits: u64,
    /// Blocks sent as `CacheStore` (new tiles for the client's tile cache).
    pub cache_stores: u64,
}

#[derive(Debug)]
pub(crate) struct Viewer {
    dirty: DirtyGrid,
    copies: Vec<(u16, u16, Rect)>,
    cursor_pending: bool,
    resize_pending: Option<(u16, u16)>,
    sent: u32,
    acked: u32,
    max_in_flight: u8,
    frames: u64,
    /// The viewer made its cache offer (only the first one counts).
    cache_offered: bool,
    /// The client tile cache, once agreed with more than 0 tiles.
    cache: Option<TileCache>,
    cache_hits: u64,
    cache_stores: u64,
}

impl Viewer {
    pub(crate) fn new(width: u16, height: u16, max_in_flight: u8, has_cursor: bool) -> Viewer {
        let mut dirty = DirtyGrid::new(width, height);
        dirty.mark_all();
        Viewer {
            dirty,
            copies: Vec::new(),
            cursor_pending: has_cursor,
            resize_pending: None,
            sent: 0,
            acked: 0,
            max_in_flight: max_in_flight.max(1),
            frames: 0,
            cache_offered: false,
            cache: None,
            cache_hits: 0,
            cache_stores: 0,
        }
    }

    /// The viewer offers a tile cache of `tiles` tiles: returns how many both ends use (to be sent
    /// as `CacheAgreed` before the next frame), or `None` for a second offer, which changes nothing.
    pub(crate) fn offer_cache(&mut self, tiles: u32) -> Option<u32> {
        if std::mem::replace(&mut self.cache_offered, true) {
            return None;
        }
        let agreed = tiles.min(SERVER_CACHE_TILES);
        if agreed > 0 {
            self.cache = Some(TileCache::new(agreed));
        }
        Some(agreed)
    }

    pub(crate) fn cached_tiles(&self) -> Option<Vec<Option<TileKey>>> {
        match &self.cache {
            Some(cache) => Some(cache.entries()),
            // Agreed on 0 tiles: a cache with no slot.
            None if self.cache_offered => Some(Vec::new()),
            None => None,
        }
    }

    pub(crate) fn handle_damage(&mut self, rect: Rect) {
        self.dirty.mark(rect);
    }

    /// A copy can travel as a copy only if the viewer's (future) canvas is right at the source.
    pub(crate) fn handle_copy(&mut self, src_x: u16, src_y: u16, dst: Rect) {
        let source = Rect { x: src_x, y: src_y, ..dst };
        if self.dirty.intersects(source) || self.copies.len() >= MAX_PENDING_COPIES {
            self.dirty.mark(dst);
        } else {
            self.copies.push((src_x, src_y, dst));
            self.dirty.clear_covered(dst);
        }
    }

    pub(crate) fn handle_cursor(&mut self) {
        self.cursor_pending = true;
    }

    pub(crate) fn handle_resize(&mut self, width: u16, height: u16) {
        self.dirty = DirtyGrid::new(width, height);
        self.dirty.mark_all();
        self.copies.clear();
        self.resize_pending = Some((width, height));
    }

    pub(crate) fn handle_ack(&mut self, seq: u32) -> Result<(), AckError> {
        if seq > self.sent {
            return Err(AckError::NotSent { acked: seq, sent: self.sent });
        }
        self.acked = self.acked.max(seq);
        Ok(())
    }

    fn in_flight(&self) -> u32 {
        self.sent - self.acked
    }

    pub(crate) fn stats(&self) -> ViewerStats {
        ViewerStats {
            frames: self.frames,
            acked: self.acked,
            in_flight: self.in_flight(),
            cache_hits: self.cache_hits,
            cache_stores: self.cache_stores,
        }
    }

    pub(crate) fn take_frame(&mut self, framebuffer: &Framebuffer, cursor: Option<&CursorShape>) -> Option<FramePlan> {
        let has_work =
            !self.dirty.is_empty() || !self.copies.is_empty() || self.cursor_pending || self.resize_pending.is_some();
        if !has_work || self.in_flight() >= u32::from(self.max_in_flight) {
            return None;
        }
        let mut items = Vec::new();
        if let Some((width, height)) = self.resize_pending.take() {
            items.push(PlanItem::Message(ServerMessage::Resize { width, height }));
        }
        for (src_x, src_y, dst) in self.copies.drain(..) {
            items.push(PlanItem::Message(ServerMessage::Copy { src_x, src_y, dst }));
        }
        if let Some(cache) = &mut self.cache
            && !self.dirty.is_empty()
        {
            let (hits, stores) = plan_cached_blocks(&mut self.dirty, cache, framebuffer, &mut items);
            self.cache_hits += hits;
            self.cache_stores += stores;
        }
        for rect in self.dirty.take_rects() {
            match framebuffer.solid_colour(rect) {
                Some(rgb) => items.push(PlanItem::Message(ServerMessage::Fill { rect, rgb })),
                None => items.push(PlanItem::Pixels { rect, rgba: framebuffer.region(rect) }),
            }
        }
        if std::mem::take(&mut self.cursor_pending) {
            let hidden = CursorShape { hot_x: 0, hot_y: 0, width: 0, height: 0, rgba: Vec::new() };
            items.push(PlanItem::Cursor(cursor.cloned().unwrap_or(hidden)));
        }
        self.sent = self.sent.wrapping_add(1);
        self.frames += 1;
        Some(FramePlan { items, seq: self.sent })
    }
}

/// The cache pass of a frame: every 64 × 64 block with a dirty cell that is not one solid colour
/// is drawn from the client's cache when its content is there (`CacheDraw`, 9 bytes, whatever part
/// of the block is dirty), and sent to be kept (`CacheStore`) when it is wholly dirty, or partly
/// dirty with a content already sent once (the edge of a window that comes back).
/// The blocks it handles leave the dirty grid; the rest (solid blocks, which become `Fill`s, and
/// partly dirty blocks of new content, such as a typed character) take the merged-rectangle path,
/// so that small changes cost what they cost without a cache.
///
/// Returns (hits, stores).
fn plan_cached_blocks(
    dirty: &mut DirtyGrid,
    cache: &mut TileCache,
    framebuffer: &Framebuffer,
    items: &mut Vec<PlanItem>,
) -> (u64, u64) {
    let (width, height) = framebuffer.size();
    let per = usize::from(BLOCK / CELL);
    let (mut hits, mut stores) = (0, 0);
    for row in 0..usize::from(height).div_ceil(usize::from(BLOCK)) {
        for column in 0..usize::from(width).div_ceil(usize::from(BLOCK)) {
            let (dirty_cells, cells) = dirty.block_dirt(column, row, per);
            if dirty_cells == 0 {
                continue;
            }
            // INVARIANT: the block starts inside the u16 screen.
            let (x, y) = ((column * usize::from(BLOCK)) as u16, (row * usize::from(BLOCK)) as u16);
            let rect = Rect { x, y, width: BLOCK.min(width - x), height: BLOCK.min(height - y) };
            if framebuffer.solid_colour(rect).is_some() {
                continue;
            }
            let rgba = framebuffer.region(rect);
            let key = TileKey::of(rect.width, rect.height, &rgba);
            if let Some(slot) = cache.hit(&key) {
                items.push(PlanItem::Message(ServerMessage::CacheDraw { slot, x, y }));
                hits += 1;
            } else if dirty_cells == cells || cache.seen_before(key) {
                items.push(PlanItem::CacheStore { slot: cache.store(key), rect, rgba });
                stores += 1;
            } else {
                continue;
            }
            dirty.clear_block(column, row, per);
        }
    }
    (hits, stores)
}

#[derive(Debug)]
enum PlanItem {
    Message(ServerMessage),
    Pixels { rect: Rect, rgba: Vec<u8> },
    CacheStore { slot: u32, rect: Rect, rgba: Vec<u8> },
    Cursor(CursorShape),
}

/// The next frame for one viewer, with the pixels it needs copied out of the framebuffer.
#[derive(Debug)]
pub struct FramePlan {
    items: Vec<PlanItem>,
    seq: u32,
}

impl FramePlan {
    /// The frame's sequence number.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Encodes the frame: one WebSocket payload per message, ending with `EndFrame`.
    pub fn encode(self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.items.len() + 1);
        for item in self.items {
            let message = match item {
                PlanItem::Message(message) => message,
                PlanItem::Pixels { rect, rgba } => {
                    ServerMessage::Tile { rect, codec: TileCodec::Png, data: encode_png(rect.width, rect.height, &rgba, false) }
                }
                PlanItem::CacheStore { slot, rect, rgba } => ServerMessage::CacheStore {
                    slot,
                    rect,
                    codec: TileCodec::Png,
                    data: encode_png(rect.width, rect.height, &rgba, false),
                },
                PlanItem::Cursor(shape) => ServerMessage::Cursor {
                    hot_x: shape.hot_x,
                    hot_y: shape.hot_y,
                    width: shape.width,
                    height: shape.height,
                    png: if shape.width == 0 || shape.height == 0 {
                        Vec::new()
                    } else {
                        encode_png(shape.width, shape.height, &shape.rgba, true)
                    },
                },
            };
            out.push(message.encode());
        }
        out.push(ServerMessage::EndFrame { seq: self.seq }.encode());
        out
    }
}

/// Encodes RGBA pixels as PNG: RGB when opaque, no filter, balanced deflate.
///
/// Measured on a 1280x800 office desktop (`cargo bench -p bascule-display`): the fastest
/// settings (fdeflate) take about 1 ms but give 270-370 KB, while balanced deflate without a
/// filter gives about 105 KB in about 15 ms. On a thin link the bytes matter more; the display
/// engine work (per-region codecs, tile cache) replaces this later.
pub(crate) fn encode_png(width: u16, height: u16, rgba: &[u8], keep_alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, u32::from(width), u32::from(height));
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Balanced);
    encoder.set_filter(png::Filter::NoFilter);
    let rgb;
    let data = if keep_alpha {
        encoder.set_color(png::ColorType::Rgba);
        rgba
    } else {
        encoder.set_color(png::ColorType::Rgb);
        rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect::<Vec<u8>>();
        &rgb
    };
    // INVARIANT: the size matches the data (checked when the pixels entered the framebuffer), and
    // writing into a Vec cannot fail, so these results are always Ok.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(data);
    }
    out
}
