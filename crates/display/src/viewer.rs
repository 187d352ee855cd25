//! One viewer's encoder state: what it has not seen yet, and its in-flight window.

use crate::cache::{BLOCK, SERVER_CACHE_TILES, TileCache, TileKey};
use crate::codec::{self, Look};
use crate::framebuffer::{CursorShape, Framebuffer};
use crate::glyph::{self, ATLAS_MAX_WIDTH, GlyphOp};
use crate::grid::{CELL, DirtyGrid};
use crate::scroll;
use crate::video::{DEFAULT_BITRATE, Motion, Stream, VideoEncoder};
use bascule_proto::{
    CODEC_GLYPHS, CODEC_H264, CODEC_JPEG, CODEC_PNG, GLYPH_SLOTS, Rect, ServerMessage, TileCodec, VIDEO_END, VIDEO_KEY,
};
use std::sync::{Arc, Mutex};

/// The smallest region sent as JPEG: below it the PNG is small anyway.
const MIN_LOSSY_PIXELS: usize = 64 * 64;

/// Copies kept for a viewer before we give up and send pixels: a viewer that is behind should
/// not accumulate an unbounded list.
const MAX_PENDING_COPIES: usize = 32;

/// Host pictures passed through to one viewer, waiting for its next frame, before the viewer
/// is taken out of step (and gets the decoded pixels instead).
const MAX_PASSTHROUGH: usize = 16;

/// The most bytes of a host stream's pictures since its IDR sent to a viewer that joins it
/// later (more, and it waits for the next IDR).
const CATCH_UP_BYTES: usize = 1 << 20;

/// Stream numbers of the host's streams on the viewer: the host's (surface) number with this
/// bit, so that they never meet the viewer's own streams.
const HOST_STREAM: u16 = 0x8000;

/// One host H.264 picture, decoded into the framebuffer, for the viewers.
#[derive(Debug)]
pub(crate) struct HostPicture {
    pub(crate) stream: u16,
    pub(crate) key: bool,
    pub(crate) rect: Rect,
    /// Where it changed the framebuffer (never empty).
    pub(crate) regions: Vec<Rect>,
    pub(crate) data: Vec<u8>,
}

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
    /// Glyphs drawn from the viewer's glyph cache.
    pub glyph_draws: u64,
    /// Glyphs sent (and kept in the viewer's glyph cache).
    pub glyph_stores: u64,
    /// JPEG tiles sent.
    pub lossy_tiles: u64,
    /// 16-pixel cells the viewer holds lossy now (to be refined).
    pub lossy_cells: usize,
    /// Scrolls found in the damage and sent as a `Copy`.
    pub scrolls: u64,
    /// H.264 video frames planned.
    pub video_frames: u64,
    /// H.264 streams opened.
    pub video_streams: u64,
    /// Host H.264 pictures passed through as they came.
    pub passed_through: u64,
    /// Whether a video stream is open (the caller keeps calling `refine`, which ends it once
    /// it is idle).
    pub video_open: bool,
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
    /// What the viewer decodes (`ClientHello.codecs`).
    codecs: u32,
    /// JPEG quality for photo-like regions; `None`: everything lossless.
    quality: Option<u8>,
    /// What the viewer's canvas holds once the planned frames are drawn (the true pixels where
    /// it holds them lossy): equal to the framebuffer outside the dirty cells, the previous
    /// content inside them. Damage is compared with it, so that only what changed is sent.
    shadow: Framebuffer,
    /// Cells the viewer's canvas (after the planned frames) holds lossy.
    lossy: DirtyGrid,
    /// Cells sent lossy since the last `refine`: still changing, not refined yet.
    lossy_fresh: DirtyGrid,
    /// Cells being refined: the next frame sends them lossless whatever they look like.
    refining: DirtyGrid,
    /// The viewer's glyph cache, when it announced glyphs.
    glyphs: Option<TileCache>,
    glyph_draws: u64,
    glyph_stores: u64,
    lossy_tiles: u64,
    scrolls: u64,
    /// Which blocks change like a video.
    motion: Motion,
    /// The open H.264 stream, when the viewer decodes H.264 and something plays.
    stream: Option<Stream>,
    /// A stream to close in the next frame (`Video` with `VIDEO_END`).
    pending_end: Option<(u16, Rect)>,
    next_stream: u16,
    /// The bit rate new streams aim at.
    video_bitrate: u32,
    video_frames: u64,
    video_streams: u64,
    /// Host streams the viewer has every picture of since their IDR (host numbers).
    host_streams: Vec<u16>,
    /// Host pictures for the next frame, in order.
    passthrough: Vec<ServerMessage>,
    /// Host streams to close on the viewer (it fell out of step).
    host_ends: Vec<(u16, Rect)>,
    /// How many host pictures may wait before the viewer is out of step.
    passthrough_limit: usize,
    /// Host streams the viewer fell behind on: it is too slow to catch up, and waits for the
    /// stream's next IDR (with pixels meanwhile).
    host_behind: Vec<u16>,
    passed_through: u64,
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
            codecs: CODEC_PNG,
            quality: None,
            shadow: Framebuffer::new(width, height),
            lossy: DirtyGrid::new(width, height),
            lossy_fresh: DirtyGrid::new(width, height),
            refining: DirtyGrid::new(width, height),
            glyphs: None,
            glyph_draws: 0,
            glyph_stores: 0,
            lossy_tiles: 0,
            scrolls: 0,
            motion: Motion::new(width, height),
            stream: None,
            pending_end: None,
            next_stream: 1,
            video_bitrate: DEFAULT_BITRATE,
            video_frames: 0,
            video_streams: 0,
            host_streams: Vec::new(),
            passthrough: Vec::new(),
            host_ends: Vec::new(),
            passthrough_limit: MAX_PASSTHROUGH,
            host_behind: Vec::new(),
            passed_through: 0,
        }
    }

    /// A host picture, already in the framebuffer: passed on as it came when the viewer decodes
    /// H.264 and has the stream's earlier pictures (or this is an IDR), else sent as pixels
    /// (and the viewer's decoder for the stream closed).
    ///
    /// A viewer that decodes H.264 but is not in step (it came after the IDR, or fell behind)
    /// catches up when the display still has the stream's pictures since its IDR (`earlier`):
    /// they go first, then this one; the areas they cover are also sent again as pixels, since
    /// the old pictures may have drawn over what the viewer got since.
    pub(crate) fn handle_host_video(&mut self, picture: &HostPicture, earlier: Option<&[HostPicture]>, framebuffer: &Framebuffer) {
        let decodes = self.codecs & CODEC_H264 != 0;
        let known = picture.key || self.host_streams.contains(&picture.stream);
        if decodes
            && !known
            && self.passthrough.is_empty()
            && !self.host_behind.contains(&picture.stream)
            && let Some(earlier) = earlier.filter(|e| {
                e.first().is_some_and(|p| p.key) && e.iter().map(|p| p.data.len()).sum::<usize>() <= CATCH_UP_BYTES
            })
        {
            // The catch-up goes in one frame: the queue may hold it, and MAX_PASSTHROUGH more.
            self.passthrough_limit = earlier.len() + 1 + MAX_PASSTHROUGH;
            for old in earlier {
                self.pass_on(old, framebuffer);
                old.regions.iter().for_each(|r| self.dirty.mark(*r));
            }
            self.pass_on(picture, framebuffer);
            picture.regions.iter().for_each(|r| self.dirty.mark(*r));
            return;
        }
        let in_step = decodes && known && self.passthrough.len() < self.passthrough_limit;
        if !in_step {
            // Too far behind: what waits goes as pixels too, and the viewer's streams are closed
            // (`drop_passthrough`). Otherwise the viewer never had the stream open.
            if self.passthrough.len() >= self.passthrough_limit {
                self.drop_passthrough();
            }
            picture.regions.iter().for_each(|r| self.dirty.mark(*r));
            return;
        }
        self.pass_on(picture, framebuffer);
    }

    /// Queues a host picture for the viewer's next frame, as it came.
    fn pass_on(&mut self, picture: &HostPicture, framebuffer: &Framebuffer) {
        if picture.key {
            self.host_behind.retain(|s| *s != picture.stream);
        }
        if !self.host_streams.contains(&picture.stream) {
            self.host_streams.push(picture.stream);
        }
        self.passthrough.push(ServerMessage::Video {
            stream: HOST_STREAM | picture.stream,
            flags: if picture.key { VIDEO_KEY } else { 0 },
            rect: picture.rect,
            clip: if picture.regions == [picture.rect] { Vec::new() } else { picture.regions.clone() },
            data: picture.data.clone(),
        });
        // The viewer decodes the same bytes as the display did: it holds the framebuffer's
        // pixels (H.264 decoding is exact; only a browser's conversion to RGB may differ by a
        // level or so). The host's loss is in the framebuffer itself, so refining would resend
        // the same picture: pass-through areas are not lossy.
        for region in &picture.regions {
            self.shadow.copy_from(framebuffer, *region);
            self.lossy.clear_covered(*region);
        }
    }

    /// The viewer is too far behind the host's stream: what waits is sent as pixels instead
    /// (it is marked lossy, so all of it is resent), and its streams are closed.
    fn drop_passthrough(&mut self) {
        for message in self.passthrough.drain(..) {
            if let ServerMessage::Video { rect, clip, .. } = message {
                let parts = if clip.is_empty() { vec![rect] } else { clip };
                parts.iter().for_each(|r| self.dirty.mark(*r));
            }
        }
        for stream in self.host_streams.drain(..) {
            self.host_ends.push((stream, Rect { x: 0, y: 0, width: 1, height: 1 }));
            self.host_behind.push(stream);
        }
    }

    /// The bit rate of the next video streams (bits per second, at least 64 kbit/s).
    pub(crate) fn set_video_bitrate(&mut self, bitrate: u32) {
        self.video_bitrate = bitrate.max(64_000);
    }

    /// What the viewer decodes. Glyphs start with an empty cache; a viewer that stops announcing
    /// JPEG gets no more of it (what it holds lossy is still refined).
    pub(crate) fn set_codecs(&mut self, codecs: u32) {
        self.codecs = codecs | CODEC_PNG;
        if codecs & CODEC_GLYPHS == 0 {
            self.glyphs = None;
        } else if self.glyphs.is_none() {
            self.glyphs = Some(TileCache::new(u32::from(GLYPH_SLOTS)));
        }
        if codecs & CODEC_H264 == 0 {
            self.stream = None;
            self.pending_end = None;
            self.drop_passthrough();
            self.host_ends.clear();
        }
    }

    pub(crate) fn set_quality(&mut self, quality: Option<u8>) {
        self.quality = quality.map(|q| q.clamp(1, 100));
    }

    fn jpeg_quality(&self) -> Option<u8> {
        if self.codecs & CODEC_JPEG == 0 { None } else { self.quality }
    }

    /// Marks for a lossless resend in the next frame the cells the viewer holds lossy that were
    /// not sent lossy again since the previous call (what stopped changing), at most
    /// `max_cells` of them (top to bottom: the rest waits for the next call, so that a large
    /// refinement does not hold back fresh updates on a thin link); nothing while the previous
    /// slice waits to be planned. Returns whether it marked any. Called every few hundred milliseconds, a still picture is refined from one period
    /// after its last change, and a playing video is not refined.
    pub(crate) fn refine(&mut self, max_cells: usize, framebuffer: &Framebuffer) -> bool {
        // The refinement period is the video streams' clock: one idle for long enough ends.
        if let Some(stream) = &mut self.stream
            && stream.period()
        {
            // A stream that never sent a picture is not open on the viewer.
            self.pending_end = stream.planned.then_some((stream.id, stream.rect));
            self.stream = None;
        }
        // The previous slice is not planned yet (the viewer's window is full): nothing more,
        // so that refinement never piles up ahead of fresh updates.
        if !self.refining.is_empty() {
            return false;
        }
        let mut settled = self.lossy.clone();
        settled.subtract(&self.lossy_fresh);
        self.lossy_fresh.clear();
        // A cell of one colour goes as a `Fill` of a few bytes: it does not count.
        settled.keep_first_costing(max_cells, |cell| framebuffer.solid_colour(cell).is_none());
        if settled.is_empty() {
            return false;
        }
        self.dirty.union(&settled);
        self.refining.union(&settled);
        true
    }

    pub(crate) fn cached_glyphs(&self) -> Option<Vec<Option<TileKey>>> {
        self.glyphs.as_ref().map(TileCache::entries)
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
        // A lossy source would carry its loss along: send the destination instead. So does a copy
        // after host pictures that wait (it would be drawn before them).
        if self.dirty.intersects(source)
            || self.lossy.intersects(source)
            || self.copies.len() >= MAX_PENDING_COPIES
            || !self.passthrough.is_empty()
        {
            self.dirty.mark(dst);
        } else {
            self.copies.push((src_x, src_y, dst));
            self.dirty.clear_covered(dst);
            self.lossy.clear_covered(dst);
        }
    }

    pub(crate) fn handle_cursor(&mut self) {
        self.cursor_pending = true;
    }

    pub(crate) fn handle_resize(&mut self, width: u16, height: u16) {
        self.dirty = DirtyGrid::new(width, height);
        self.dirty.mark_all();
        self.shadow = Framebuffer::new(width, height);
        self.lossy = DirtyGrid::new(width, height);
        self.lossy_fresh = DirtyGrid::new(width, height);
        self.refining = DirtyGrid::new(width, height);
        self.copies.clear();
        self.resize_pending = Some((width, height));
        // `Resize` closes the viewer's streams.
        self.motion = Motion::new(width, height);
        self.stream = None;
        self.pending_end = None;
        self.host_streams.clear();
        self.passthrough.clear();
        self.host_ends.clear();
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
            glyph_draws: self.glyph_draws,
            glyph_stores: self.glyph_stores,
            lossy_tiles: self.lossy_tiles,
            lossy_cells: self.lossy.count(),
            scrolls: self.scrolls,
            video_frames: self.video_frames,
            video_streams: self.video_streams,
            video_open: self.stream.is_some(),
            passed_through: self.passed_through,
        }
    }

    pub(crate) fn take_frame(&mut self, framebuffer: &Framebuffer, cursor: Option<&CursorShape>) -> Option<FramePlan> {
        let has_work = !self.dirty.is_empty()
            || !self.copies.is_empty()
            || self.cursor_pending
            || self.resize_pending.is_some()
            || self.pending_end.is_some()
            || !self.passthrough.is_empty()
            || !self.host_ends.is_empty();
        if !has_work || self.in_flight() >= u32::from(self.max_in_flight) {
            return None;
        }
        let mut items = Vec::new();
        if let Some((width, height)) = self.resize_pending.take() {
            items.push(PlanItem::Message(ServerMessage::Resize { width, height }));
        }
        for (src_x, src_y, dst) in self.copies.drain(..) {
            let _ = self.shadow.copy(src_x, src_y, dst);
            items.push(PlanItem::Message(ServerMessage::Copy { src_x, src_y, dst }));
        }
        // Host pictures, in the order they came (after the copies that came before them).
        for (stream, rect) in self.host_ends.drain(..) {
            items.push(PlanItem::Message(end_of_stream(HOST_STREAM | stream, rect)));
        }
        self.passed_through += self.passthrough.len() as u64;
        items.extend(self.passthrough.drain(..).map(PlanItem::Message));
        self.passthrough_limit = MAX_PASSTHROUGH;
        if self.codecs & CODEC_H264 != 0 {
            self.plan_video(framebuffer, &mut items);
        } else if let Some((stream, rect)) = self.pending_end.take() {
            items.push(PlanItem::Message(end_of_stream(stream, rect)));
        }
        // Photo-like blocks are never kept while the link takes JPEG: new ones go lossy, those
        // being refined go as PNG tiles (`plan_tile`).
        let skip = Skip { text: self.glyphs.is_some(), photo: self.jpeg_quality().is_some() };
        if let Some(cache) = &mut self.cache
            && !self.dirty.is_empty()
        {
            let (hits, stores) =
                plan_cached_blocks(&mut self.dirty, &mut self.lossy, &mut self.shadow, cache, skip, framebuffer, &mut items);
            self.cache_hits += hits;
            self.cache_stores += stores;
        }
        for rect in self.dirty.take_rects() {
            // Content that scrolled is moved on the viewer's canvas (one `Copy`) first.
            if rect.width >= 64
                && rect.height >= 48
                && !self.lossy.intersects(rect)
                && let Some((src_y, dst)) = scroll::find_scroll(&self.shadow, framebuffer, rect)
            {
                let _ = self.shadow.copy(rect.x, src_y, dst);
                items.push(PlanItem::Message(ServerMessage::Copy { src_x: rect.x, src_y, dst }));
                self.scrolls += 1;
            }
            // Only what differs from what the viewer has is sent (all of it where it holds
            // lossy pixels); lossy pieces mark their cells again.
            let target = if self.lossy.intersects(rect) { Some(rect) } else { framebuffer.changed_bounds(&self.shadow, rect) };
            self.lossy.clear_covered(rect);
            if let Some(target) = target {
                match framebuffer.solid_colour(target) {
                    Some(rgb) => items.push(PlanItem::Message(ServerMessage::Fill { rect: target, rgb })),
                    None => self.plan_rect(framebuffer, target, &mut items),
                }
            }
            self.shadow.copy_from(framebuffer, rect);
        }
        self.refining.clear();
        if std::mem::take(&mut self.cursor_pending) {
            let hidden = CursorShape { hot_x: 0, hot_y: 0, width: 0, height: 0, rgba: Vec::new() };
            items.push(PlanItem::Cursor(cursor.cloned().unwrap_or(hidden)));
        }
        // Damage that left the picture as the viewer has it (a cursor that blinked on and off
        // between two frames) is no frame: nothing but keepalives while nothing changes. The
        // first frame always goes: it tells the viewer the picture is complete.
        if items.is_empty() && self.frames > 0 {
            return None;
        }
        self.sent = self.sent.wrapping_add(1);
        self.frames += 1;
        Some(FramePlan { items, seq: self.sent })
    }
}

impl Viewer {
    /// The video part of a frame: ends a stream that is idle or no longer looks like a video,
    /// opens one where the screen moves like a video, and plans the stream's next picture when
    /// its region changed (taking the region out of the dirty grid, and marking it lossy).
    /// Cells being refined go lossless through the other paths instead.
    fn plan_video(&mut self, framebuffer: &Framebuffer, items: &mut Vec<PlanItem>) {
        if let Some((stream, rect)) = self.pending_end.take() {
            items.push(PlanItem::Message(end_of_stream(stream, rect)));
            // It ended idle: playing again has to show again.
            self.motion.cool(rect, framebuffer);
        }
        let region = self.stream.as_ref().map(|s| s.rect);
        // What changed on screen: refinement is not motion.
        let mut changed = self.dirty.clone();
        changed.subtract(&self.refining);
        let photo = self.motion.observe(&changed, framebuffer, region);
        // A video frame goes when the region changed and no part of it is being refined.
        let changes = |viewer: &Viewer, rect: Rect| viewer.dirty.intersects(rect) && !viewer.refining.intersects(rect);
        if let Some(rect) = region
            && changes(self, rect)
            && self.stream.as_mut().is_some_and(|s| s.changed(photo))
        {
            // Something else took the region's place (a window closed over the video).
            if let Some(old) = self.stream.take().filter(|s| s.planned) {
                items.push(PlanItem::Message(end_of_stream(old.id, rect)));
            }
            self.motion.cool(rect, framebuffer);
        }
        if let Some(found) = self.motion.video_region(framebuffer, &changed)
            && !self.stream.as_ref().is_some_and(|s| s.rect.contains(found))
        {
            if let Some(old) = self.stream.take().filter(|s| s.planned) {
                items.push(PlanItem::Message(end_of_stream(old.id, old.rect)));
            }
            // A stream that cannot start leaves the region to the other paths.
            if let Ok(encoder) = VideoEncoder::new(found.width, found.height, self.video_bitrate) {
                let id = self.next_stream;
                // The viewer's own streams stay below HOST_STREAM.
                self.next_stream = (self.next_stream + 1) % HOST_STREAM;
                self.stream = Some(Stream::new(id, found, Arc::new(Mutex::new(encoder))));
                self.video_streams += 1;
            }
        }
        let Some(rect) = self.stream.as_ref().map(|s| s.rect) else { return };
        if !changes(self, rect) {
            return;
        }
        let Some(stream) = self.stream.as_mut() else { return };
        stream.sent_since_period = true;
        stream.planned = true;
        let item = PlanItem::Video { stream: stream.id, rect, rgba: framebuffer.region(rect), encoder: Arc::clone(&stream.encoder) };
        self.dirty.clear_covered(rect);
        self.lossy.mark(rect);
        self.lossy_fresh.mark(rect);
        self.shadow.copy_from(framebuffer, rect);
        self.video_frames += 1;
        items.push(item);
    }

    /// Plans a rectangle that is not one colour: as glyphs on a background when it looks like
    /// text and the viewer has a glyph cache, else as one tile.
    ///
    /// Damage comes in cell-aligned bands that cut through lines of text, and a letter cut in two
    /// is a new shape every time. So the cut, along the rectangle's own background, looks at the
    /// rectangle grown by `GROW` pixels on each side: lines of text are then whole, and the
    /// pieces that reach into the rectangle are sent whole too (what lies outside it is current
    /// content, so drawing it again is always right).
    fn plan_rect(&mut self, framebuffer: &Framebuffer, rect: Rect, items: &mut Vec<PlanItem>) {
        const GROW: u16 = 32;
        let rgba = framebuffer.region(rect);
        if self.glyphs.is_some() {
            let (width, height) = framebuffer.size();
            let (x, y) = (rect.x.saturating_sub(GROW), rect.y.saturating_sub(GROW));
            let grown = Rect {
                x,
                y,
                width: (rect.x + rect.width).saturating_add(GROW).min(width) - x,
                height: (rect.y + rect.height).saturating_add(GROW).min(height) - y,
            };
            let grown_rgba = framebuffer.region(grown);
            // The background is the surroundings' (a typed letter next to a block cursor is
            // mostly cursor).
            let around = codec::look(&grown_rgba);
            if around.has_background() && !around.is_photo() {
                let region = (grown, grown_rgba.as_slice());
                if self.plan_glyphs(framebuffer, rect, region, around.mode, 0, items) {
                    return;
                }
            }
        }
        self.plan_region(framebuffer, rect, rgba, 0, items);
    }

    /// Plans `rgba` at `rect`: cut along its most frequent colour when that colour covers a
    /// quarter of it at least (text on a page, windows on a desktop), each large piece planned
    /// again the same way with its own background (a window's text), up to `MAX_NESTING`
    /// levels; else one tile.
    fn plan_region(&mut self, framebuffer: &Framebuffer, rect: Rect, rgba: Vec<u8>, depth: u8, items: &mut Vec<PlanItem>) {
        let look = codec::look(&rgba);
        if self.glyphs.is_some()
            && depth < MAX_NESTING
            && look.has_background()
            && self.plan_glyphs(framebuffer, rect, (rect, &rgba), look.mode, depth, items)
        {
            return;
        }
        self.plan_tile(rect, rgba, look, items);
    }

    /// One tile: JPEG when photo-like and the viewer takes lossy tiles now, else PNG.
    fn plan_tile(&mut self, rect: Rect, rgba: Vec<u8>, look: Look, items: &mut Vec<PlanItem>) {
        let pixels = usize::from(rect.width) * usize::from(rect.height);
        match self.jpeg_quality() {
            Some(quality) if pixels >= MIN_LOSSY_PIXELS && look.is_photo() && !self.refining.intersects(rect) => {
                self.lossy.mark(rect);
                self.lossy_fresh.mark(rect);
                self.lossy_tiles += 1;
                items.push(PlanItem::Jpeg { rect, rgba, quality });
            }
            _ => items.push(PlanItem::Pixels { rect, rgba }),
        }
    }

    /// Covers `target` as a background `Fill`, then glyphs (drawn from the cache or stored),
    /// then the larger pieces (planned again, one level deeper). The pieces come from cutting
    /// `region` (which holds `target`; its pixels are given), and those that reach into
    /// `target` are sent. Returns false (and plans nothing) when the cut gives too many pieces
    /// for the area (noise, dithering): one tile is then cheaper.
    fn plan_glyphs(
        &mut self,
        framebuffer: &Framebuffer,
        target: Rect,
        (region, rgba): (Rect, &[u8]),
        background: [u8; 3],
        depth: u8,
        items: &mut Vec<PlanItem>,
    ) -> bool {
        let width = usize::from(region.width);
        let words: Vec<u32> = rgba.chunks_exact(4).map(|p| u32::from_le_bytes([p[0], p[1], p[2], p[3]])).collect();
        let background_word = u32::from_le_bytes([background[0], background[1], background[2], 255]);
        let pieces = glyph::cut(&words, width, background_word);
        let area = width * usize::from(region.height);
        if pieces.glyphs.len() + pieces.large.len() > (area / 48).max(16) {
            return false;
        }
        let Some(cache) = self.glyphs.as_mut() else { return false };
        items.push(PlanItem::Message(ServerMessage::Fill { rect: target, rgb: background }));
        let absolute = |piece: &Rect| Rect { x: region.x + piece.x, y: region.y + piece.y, ..*piece };
        let mut batch = GlyphBatch::default();
        for piece in pieces.glyphs.iter().filter(|p| intersection(absolute(p), target).is_some()) {
            let whole = absolute(piece);
            let pixels = crop(rgba, width, *piece);
            let key = TileKey::of(whole.width, whole.height, &pixels);
            let (x, y) = (whole.x, whole.y);
            // INVARIANT: the cache has GLYPH_SLOTS (< 32768) slots, and glyph sides fit a u8.
            if let Some(slot) = cache.hit(&key) {
                batch.ops.push(GlyphOp::Draw { slot: slot as u16, x, y });
                self.glyph_draws += 1;
            } else {
                if batch.atlas_width + usize::from(whole.width) > ATLAS_MAX_WIDTH {
                    items.push(PlanItem::Glyphs(std::mem::take(&mut batch)));
                }
                let slot = cache.store(key) as u16;
                batch.ops.push(GlyphOp::Store { slot, x, y, width: whole.width as u8, height: whole.height as u8 });
                batch.atlas_width += usize::from(whole.width);
                batch.atlas_height = batch.atlas_height.max(usize::from(whole.height));
                batch.glyphs.push((whole, pixels));
                self.glyph_stores += 1;
            }
        }
        if !batch.ops.is_empty() {
            items.push(PlanItem::Glyphs(batch));
        }
        // A large piece is only needed where it covers the target: the rest of it is already
        // right on the viewer's canvas (a blinking cursor inside a picture resends the cursor,
        // not the picture).
        for piece in &pieces.large {
            if let Some(part) = intersection(absolute(piece), target) {
                let relative = Rect { x: part.x - region.x, y: part.y - region.y, ..part };
                let pixels = crop(rgba, width, relative);
                self.plan_region(framebuffer, part, pixels, depth + 1, items);
            }
        }
        true
    }
}

/// The message that closes a video stream on the viewer.
fn end_of_stream(stream: u16, rect: Rect) -> ServerMessage {
    ServerMessage::Video { stream, flags: VIDEO_END, rect, clip: Vec::new(), data: Vec::new() }
}

/// How many times a large piece is cut again with its own background.
const MAX_NESTING: u8 = 3;

/// The pixels two rectangles share, if any.
fn intersection(a: Rect, b: Rect) -> Option<Rect> {
    let x0 = a.x.max(b.x);
    let y0 = a.y.max(b.y);
    let x1 = (u32::from(a.x) + u32::from(a.width)).min(u32::from(b.x) + u32::from(b.width));
    let y1 = (u32::from(a.y) + u32::from(a.height)).min(u32::from(b.y) + u32::from(b.height));
    // INVARIANT: both are inside the u16 screen.
    (u32::from(x0) < x1 && u32::from(y0) < y1).then(|| Rect { x: x0, y: y0, width: (x1 - u32::from(x0)) as u16, height: (y1 - u32::from(y0)) as u16 })
}

/// The pixels of `piece` (relative to a region `width` pixels wide).
fn crop(rgba: &[u8], width: usize, piece: Rect) -> Vec<u8> {
    let (x, w) = (usize::from(piece.x), usize::from(piece.width));
    let mut out = Vec::with_capacity(w * usize::from(piece.height) * 4);
    for row in usize::from(piece.y)..usize::from(piece.y) + usize::from(piece.height) {
        let start = (row * width + x) * 4;
        out.extend_from_slice(&rgba[start..start + w * 4]);
    }
    out
}

/// The glyph records of one `Glyphs` message, and the pixels of the glyphs it stores.
#[derive(Debug, Default)]
pub(crate) struct GlyphBatch {
    ops: Vec<GlyphOp>,
    /// Each stored glyph (its rectangle, for its size) and its pixels, in atlas order.
    glyphs: Vec<(Rect, Vec<u8>)>,
    atlas_width: usize,
    atlas_height: usize,
}

impl GlyphBatch {
    fn encode(self) -> ServerMessage {
        let atlas = if self.glyphs.is_empty() {
            Vec::new()
        } else {
            // Unused atlas pixels take the first glyph's corner colour, which keeps the palette small.
            let fill: [u8; 4] = self.glyphs[0].1[..4].try_into().unwrap_or([0, 0, 0, 255]);
            let mut rgba: Vec<u8> = fill.repeat(self.atlas_width * self.atlas_height);
            let mut x0 = 0;
            for (rect, pixels) in &self.glyphs {
                let w = usize::from(rect.width);
                for (row, line) in pixels.chunks_exact(w * 4).enumerate() {
                    let start = (row * self.atlas_width + x0) * 4;
                    rgba[start..start + w * 4].copy_from_slice(line);
                }
                x0 += w;
            }
            // INVARIANT: at most ATLAS_MAX_WIDTH × GLYPH_MAX_HEIGHT.
            codec::encode_png(self.atlas_width as u16, self.atlas_height as u16, &rgba, false)
        };
        ServerMessage::Glyphs { atlas, ops: glyph::write_ops(&self.ops) }
    }
}

/// Which blocks the cache pass leaves to the other paths when they are not in the cache.
#[derive(Debug, Clone, Copy)]
struct Skip {
    /// Text-like blocks go as glyphs.
    text: bool,
    /// Photo-like blocks go as JPEG (never kept in the cache).
    photo: bool,
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
    lossy: &mut DirtyGrid,
    shadow: &mut Framebuffer,
    cache: &mut TileCache,
    skip: Skip,
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
            } else if skip.text || skip.photo {
                let look = codec::look(&rgba);
                // What the glyph path takes (a colour covers a quarter of the block: text, a
                // window's frame), and what goes lossy, is not kept: storing blocks would also
                // cut the text around them into odd pieces.
                if (skip.text && look.has_background()) || (skip.photo && look.is_photo()) {
                    continue;
                }
                if dirty_cells < cells && !cache.seen_before(key) {
                    continue;
                }
                items.push(PlanItem::CacheStore { slot: cache.store(key), rect, rgba });
                stores += 1;
            } else if dirty_cells == cells || cache.seen_before(key) {
                items.push(PlanItem::CacheStore { slot: cache.store(key), rect, rgba });
                stores += 1;
            } else {
                continue;
            }
            dirty.clear_block(column, row, per);
            lossy.clear_covered(rect);
            shadow.copy_from(framebuffer, rect);
        }
    }
    (hits, stores)
}

#[derive(Debug)]
enum PlanItem {
    Message(ServerMessage),
    Pixels { rect: Rect, rgba: Vec<u8> },
    Jpeg { rect: Rect, rgba: Vec<u8>, quality: u8 },
    Glyphs(GlyphBatch),
    CacheStore { slot: u32, rect: Rect, rgba: Vec<u8> },
    Cursor(CursorShape),
    /// A picture of a video stream: encoded in plan order (the caller encodes a viewer's frames
    /// one after the other), so the stream's encoder sees them in order.
    Video { stream: u16, rect: Rect, rgba: Vec<u8>, encoder: Arc<Mutex<VideoEncoder>> },
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
                PlanItem::Jpeg { rect, rgba, quality } => ServerMessage::Tile {
                    rect,
                    codec: TileCodec::Jpeg,
                    data: codec::encode_jpeg(rect.width, rect.height, &rgba, quality),
                },
                PlanItem::Glyphs(batch) => batch.encode(),
                PlanItem::Video { stream, rect, rgba, encoder } => {
                    let encoded = match encoder.lock() {
                        Ok(mut encoder) => encoder.encode(&rgba),
                        Err(_) => Err(crate::video::VideoError("encoder poisoned".into())),
                    };
                    match encoded {
                        // Skipped by the rate control: nothing to send.
                        Ok(None) => continue,
                        Ok(Some((data, key))) => ServerMessage::Video {
                            stream,
                            flags: if key { VIDEO_KEY } else { 0 },
                            rect,
                            clip: Vec::new(),
                            data,
                        },
                        // The exact pixels instead; the encoder starts again with an IDR.
                        Err(_) => ServerMessage::Tile { rect, codec: TileCodec::Png, data: encode_png(rect.width, rect.height, &rgba, false) },
                    }
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

use crate::codec::encode_png;
