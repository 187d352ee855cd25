//! The display core: the session's authoritative framebuffer, and one encoder state per viewer.
//!
//! A backend (VNC today, RDP later) turns what its host sends into [`Update`]s.
//! [`Display::apply`] writes each update into the [`Framebuffer`] and records, for every viewer,
//! what that viewer has not seen yet.
//! [`Display::take_frame`] then plans the next frame for one viewer when its in-flight window has
//! room; the plan copies the pixels it needs, so that the caller can encode it
//! ([`FramePlan::encode`]) without holding any lock.
//!
//! Architecture invariant: this crate does no I/O and reads no clock; it knows nothing of RFB,
//! RDP or WebSockets, only of [`bascule_proto`] messages.
//!
//! Architecture invariant: for every viewer, the canvas it will have after the frames already
//! planned equals the framebuffer everywhere outside its dirty cells.
//! A slow viewer only accumulates dirty cells (bounded by the screen size), never a queue.
//!
//! Architecture invariant: for every viewer with a tile cache, the cache it will have after the
//! frames already planned holds in each slot the tile the server's model says
//! ([`Display::cached_tiles`]): the server picks every slot, and never draws from one it has not
//! filled on that connection.

#![warn(missing_docs)]

mod cache;
mod canvas;
mod codec;
mod framebuffer;
mod glyph;
mod grid;
mod scroll;
mod video;
mod viewer;

pub use cache::{SERVER_CACHE_TILES, TileKey};
pub use canvas::{Canvas, CanvasError, decode_jpeg, decode_png};
pub use glyph::GlyphError;
pub use framebuffer::{CursorShape, Framebuffer};
pub use viewer::{AckError, FramePlan, ViewerStats};

use bascule_proto::Rect;
use std::collections::HashMap;

/// One change reported by a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Update {
    /// New pixels, RGBA with A = 255, `rect.width * rect.height * 4` bytes.
    Pixels {
        /// Where.
        rect: Rect,
        /// The pixels.
        rgba: Vec<u8>,
    },
    /// A solid rectangle.
    Fill {
        /// Where.
        rect: Rect,
        /// Colour.
        rgb: [u8; 3],
    },
    /// Content moved from `(src_x, src_y)` to `dst`.
    Copy {
        /// Source left edge.
        src_x: u16,
        /// Source top edge.
        src_y: u16,
        /// Destination.
        dst: Rect,
    },
    /// A new pointer shape.
    Cursor(CursorShape),
    /// H.264 pictures from the host (an RDP host's AVC420), for `rect` on the desktop: the
    /// display decodes them into the framebuffer (only inside `regions`, or all of `rect` when
    /// it is empty) and passes the bytes on to the viewers that decode H.264 and have every
    /// picture of the stream since its last IDR; the others get the decoded pixels.
    Video {
        /// The host's stream (an RDP surface): pictures of one stream depend on each other.
        stream: u16,
        /// Where the picture goes.
        rect: Rect,
        /// The parts of it that changed (inside `rect`); empty: all of it.
        regions: Vec<Rect>,
        /// One access unit, Annex B.
        data: Vec<u8>,
    },
    /// The desktop changed size; its content is undefined until the next updates.
    Resize {
        /// New width.
        width: u16,
        /// New height.
        height: u16,
    },
}

/// Why an update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The rectangle is not inside the framebuffer.
    #[error("rectangle {0:?} is outside the framebuffer")]
    OutOfBounds(Rect),
    /// H.264 from the host that cannot be decoded (the stream's later pictures fail too, until
    /// its next IDR: the area keeps its previous content).
    #[error("host video: {0}")]
    Video(String),
    /// The pixel buffer does not match the rectangle.
    #[error("pixel buffer of {got} bytes for a rectangle that needs {expected}")]
    BadLength {
        /// What the rectangle needs.
        expected: usize,
        /// What was given.
        got: usize,
    },
}

/// The most pictures, and bytes, kept of a host stream since its IDR for viewers that join it.
const HISTORY_PICTURES: usize = 300;
const HISTORY_BYTES: usize = 4 << 20;

/// Identifies a viewer of a [`Display`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ViewerId(u64);

/// A session's display: the framebuffer and its viewers.
#[derive(Debug)]
pub struct Display {
    framebuffer: Framebuffer,
    cursor: Option<CursorShape>,
    viewers: HashMap<ViewerId, viewer::Viewer>,
    next_viewer: u64,
    /// Decoders of the host's H.264 streams ([`Update::Video`]).
    host_video: HashMap<u16, video::VideoDecoder>,
    /// Per host stream, its pictures since its last IDR (`None` once that grew too long), so
    /// that a viewer that comes later can catch up instead of waiting for the next IDR.
    host_history: HashMap<u16, Option<Vec<viewer::HostPicture>>>,
}

impl Display {
    /// A black display of the given size, with no viewer.
    pub fn new(width: u16, height: u16) -> Display {
        Display { framebuffer: Framebuffer::new(width, height), cursor: None, viewers: HashMap::new(), next_viewer: 1, host_video: HashMap::new(), host_history: HashMap::new() }
    }

    /// The authoritative framebuffer.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.framebuffer
    }

    /// Applies one backend update to the framebuffer and to every viewer's pending state.
    pub fn apply(&mut self, update: Update) -> Result<(), UpdateError> {
        match update {
            Update::Pixels { rect, rgba } => {
                self.framebuffer.put(rect, &rgba)?;
                self.viewers.values_mut().for_each(|v| v.handle_damage(rect));
            }
            Update::Fill { rect, rgb } => {
                self.framebuffer.fill(rect, rgb)?;
                self.viewers.values_mut().for_each(|v| v.handle_damage(rect));
            }
            Update::Copy { src_x, src_y, dst } => {
                self.framebuffer.copy(src_x, src_y, dst)?;
                self.viewers.values_mut().for_each(|v| v.handle_copy(src_x, src_y, dst));
            }
            // A backend may send the same shape again (x11vnc does, a while after connecting):
            // that is no change.
            Update::Cursor(shape) if self.cursor.as_ref() == Some(&shape) => {}
            Update::Cursor(shape) => {
                self.cursor = Some(shape);
                self.viewers.values_mut().for_each(|v| v.handle_cursor());
            }
            Update::Video { stream, rect, regions, data } => self.apply_video(stream, rect, regions, data)?,
            Update::Resize { width, height } => {
                self.framebuffer = Framebuffer::new(width, height);
                self.host_video.clear();
                self.host_history.clear();
                self.viewers.values_mut().for_each(|v| v.handle_resize(width, height));
            }
        }
        Ok(())
    }

    /// Decodes a host picture into the framebuffer, then hands it to every viewer.
    fn apply_video(&mut self, stream: u16, rect: Rect, regions: Vec<Rect>, data: Vec<u8>) -> Result<(), UpdateError> {
        self.framebuffer.check(rect)?;
        if let Some(outside) = regions.iter().find(|r| !rect.contains(**r) || r.width == 0 || r.height == 0) {
            return Err(UpdateError::OutOfBounds(*outside));
        }
        let key = video::is_idr(&data);
        if key {
            let decoder = video::VideoDecoder::new().map_err(|e| UpdateError::Video(e.to_string()))?;
            self.host_video.insert(stream, decoder);
        }
        let decoder = self
            .host_video
            .get_mut(&stream)
            .ok_or_else(|| UpdateError::Video(format!("a picture of stream {stream} before its first IDR")))?;
        let ((width, height), picture) = match decoder.decode(&data, self.framebuffer.size()) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.host_video.remove(&stream);
                return Err(UpdateError::Video(e.to_string()));
            }
        };
        if width < rect.width || height < rect.height {
            self.host_video.remove(&stream);
            return Err(UpdateError::Video(format!("{width}x{height} picture for {rect:?}")));
        }
        let parts = if regions.is_empty() { vec![rect] } else { regions };
        for part in &parts {
            let (dx, dy) = (usize::from(part.x - rect.x), usize::from(part.y - rect.y));
            let row_bytes = usize::from(part.width) * 4;
            let mut rgba = Vec::with_capacity(row_bytes * usize::from(part.height));
            for row in dy..dy + usize::from(part.height) {
                let start = (row * usize::from(width) + dx) * 4;
                rgba.extend_from_slice(&picture[start..start + row_bytes]);
            }
            self.framebuffer.put(*part, &rgba)?;
        }
        let picture = viewer::HostPicture { stream, key, rect, regions: parts, data };
        let history = self.host_history.entry(stream).or_insert(None);
        if key {
            *history = Some(Vec::new());
        }
        let earlier = history.as_deref();
        for viewer in self.viewers.values_mut() {
            viewer.handle_host_video(&picture, earlier, &self.framebuffer);
        }
        // A history a newcomer could not afford is dropped: it waits for the next IDR.
        if let Some(pictures) = history {
            let bytes: usize = pictures.iter().map(|p| p.data.len()).sum::<usize>() + picture.data.len();
            if pictures.len() >= HISTORY_PICTURES || bytes > HISTORY_BYTES {
                *history = None;
            } else {
                pictures.push(picture);
            }
        }
        Ok(())
    }

    /// Adds a viewer. Its first frame will carry the whole screen and the cursor.
    pub fn add_viewer(&mut self, max_in_flight: u8) -> ViewerId {
        let id = ViewerId(self.next_viewer);
        self.next_viewer += 1;
        let (width, height) = self.framebuffer.size();
        self.viewers.insert(id, viewer::Viewer::new(width, height, max_in_flight, self.cursor.is_some()));
        id
    }

    /// Forgets a viewer.
    pub fn remove_viewer(&mut self, id: ViewerId) {
        self.viewers.remove(&id);
    }

    /// How many viewers are attached.
    pub fn viewer_count(&self) -> usize {
        self.viewers.len()
    }

    /// Records a frame acknowledgement from a viewer.
    pub fn handle_ack(&mut self, id: ViewerId, seq: u32) -> Result<(), AckError> {
        match self.viewers.get_mut(&id) {
            Some(viewer) => viewer.handle_ack(seq),
            None => Err(AckError::UnknownViewer),
        }
    }

    /// Plans the next frame for a viewer, if it has something to see and room in its window.
    pub fn take_frame(&mut self, id: ViewerId) -> Option<FramePlan> {
        let viewer = self.viewers.get_mut(&id)?;
        viewer.take_frame(&self.framebuffer, self.cursor.as_ref())
    }

    /// Answers a viewer's `CacheOffer` of `tiles` tiles: returns the number of tiles both ends use
    /// (at most [`SERVER_CACHE_TILES`]), which the caller sends as `CacheAgreed` before the
    /// viewer's next frame; from that frame on, the viewer's frames use its tile cache (when the
    /// number is above 0). Returns `None`, and changes nothing, for an unknown viewer or a second
    /// offer: the caller then sends nothing. A viewer that makes no offer never gets a cache
    /// message.
    pub fn offer_cache(&mut self, id: ViewerId, tiles: u32) -> Option<u32> {
        self.viewers.get_mut(&id)?.offer_cache(tiles)
    }

    /// What the server believes a viewer's tile cache holds once the frames planned so far are
    /// drawn: per slot, the key of its tile (`None`: never filled). `None` before an offer (and
    /// for an unknown viewer), no slot after an agreement on 0 tiles.
    /// For tests: compare with [`Canvas::cached_tiles`].
    pub fn cached_tiles(&self, id: ViewerId) -> Option<Vec<Option<TileKey>>> {
        self.viewers.get(&id)?.cached_tiles()
    }

    /// Sets what a viewer decodes (its `ClientHello.codecs`; PNG is always on). Until then a
    /// viewer gets PNG only. With `CODEC_GLYPHS` it gets a glyph cache (empty).
    pub fn set_codecs(&mut self, id: ViewerId, codecs: u32) {
        if let Some(viewer) = self.viewers.get_mut(&id) {
            viewer.set_codecs(codecs);
        }
    }

    /// Sets the JPEG quality (1-100) a viewer gets for photo-like regions, when it decodes JPEG;
    /// `None` (the default) sends everything lossless. The caller adapts it to the viewer's link.
    pub fn set_quality(&mut self, id: ViewerId, quality: Option<u8>) {
        if let Some(viewer) = self.viewers.get_mut(&id) {
            viewer.set_quality(quality);
        }
    }

    /// Sets the bit rate (bits per second) a viewer's next H.264 streams aim at, when it decodes
    /// H.264; the caller adapts it to the viewer's link (2 Mbit/s until then).
    pub fn set_video_bitrate(&mut self, id: ViewerId, bitrate: u32) {
        if let Some(viewer) = self.viewers.get_mut(&id) {
            viewer.set_video_bitrate(bitrate);
        }
    }

    /// Asks for the lossless refinement of what a viewer holds lossy and that stopped changing:
    /// its next frame resends exactly the lossy cells that were not sent lossy again since the
    /// previous call, at most `max_cells` of them (16 × 16 pixels each; cells of one colour, a
    /// few bytes each, do not count; the others wait for the next call); nothing while the
    /// previous slice has not gone out in a frame yet. The caller calls it periodically (every
    /// 250 ms in the gateway, with a budget
    /// from the link's bandwidth) while the viewer holds lossy cells, so a still picture becomes
    /// exact from one period after its last change, and a playing video stays lossy. Returns
    /// whether there was anything to refine.
    pub fn refine(&mut self, id: ViewerId, max_cells: usize) -> bool {
        self.viewers.get_mut(&id).is_some_and(|viewer| viewer.refine(max_cells, &self.framebuffer))
    }

    /// What the server believes a viewer's glyph cache holds once the frames planned so far are
    /// drawn (per slot, the key of its glyph), or `None` without glyphs.
    /// For tests: compare with [`Canvas::cached_glyphs`].
    pub fn cached_glyphs(&self, id: ViewerId) -> Option<Vec<Option<TileKey>>> {
        self.viewers.get(&id)?.cached_glyphs()
    }

    /// Counters of one viewer.
    pub fn viewer_stats(&self, id: ViewerId) -> Option<ViewerStats> {
        self.viewers.get(&id).map(|v| v.stats())
    }
}

#[cfg(test)]
mod tests;
