//! A reference client: rebuilds a canvas from server messages, as the browser does.
//!
//! Used by the tests, the integration suite and (later) the headless benchmark client, so that
//! "what the viewer shows" can be compared with the framebuffer or the X server, pixel for pixel.

use crate::cache::TileKey;
use crate::framebuffer::Framebuffer;
use crate::glyph::{GlyphOp, atlas_layout, read_ops};
use crate::video::VideoDecoder;
use bascule_proto::{
    CODEC_GLYPHS, CODEC_H264, CODEC_JPEG, CODEC_PNG, ClientMessage, GLYPH_SLOTS, Rect, ServerMessage, TileCodec, VIDEO_END,
    VIDEO_KEY, VIDEO_MAX_STREAMS,
};
use std::collections::HashMap;

/// Why a server message could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanvasError {
    /// A rectangle is outside the canvas.
    #[error("rectangle {0:?} is outside the canvas")]
    OutOfBounds(Rect),
    /// A tile could not be decoded.
    #[error("tile does not decode: {0}")]
    Tile(String),
    /// A tile cache message breaks the cache rules (no agreement, slot out of range or empty...).
    #[error("tile cache: {0}")]
    Cache(&'static str),
    /// A `Glyphs` message breaks the glyph cache rules.
    #[error("glyphs: {0}")]
    Glyphs(String),
    /// A `Video` message breaks the video rules, or does not decode.
    #[error("video: {0}")]
    Video(String),
}

/// A tile kept in a slot of the client tile cache, with the key of its pixels (computed once,
/// when it is stored).
#[derive(Debug, Clone)]
struct CachedTile {
    key: TileKey,
    rgba: Vec<u8>,
}

/// The viewer-side canvas, and its tile cache (as the browser keeps it).
#[derive(Debug)]
pub struct Canvas {
    framebuffer: Framebuffer,
    last_frame: Option<u32>,
    /// The `CacheOffer` made on this connection.
    cache_offer: Option<u32>,
    /// The slots agreed by `CacheAgreed`, each with the tile its last `CacheStore` put there.
    cache: Option<Vec<Option<CachedTile>>>,
    cache_hits: u64,
    cache_stores: u64,
    /// The codecs this client announces in its hello.
    codecs: u32,
    /// The glyph slots of this connection (when it announced glyphs).
    glyphs: Vec<Option<CachedTile>>,
    glyph_draws: u64,
    glyph_stores: u64,
    /// The open video streams and their decoders.
    videos: HashMap<u16, VideoDecoder>,
    video_frames: u64,
}

impl Canvas {
    /// An empty (black) canvas, with no tile cache.
    pub fn new(width: u16, height: u16) -> Canvas {
        Canvas {
            framebuffer: Framebuffer::new(width, height),
            last_frame: None,
            cache_offer: None,
            cache: None,
            cache_hits: 0,
            cache_stores: 0,
            codecs: CODEC_PNG,
            glyphs: Vec::new(),
            glyph_draws: 0,
            glyph_stores: 0,
            videos: HashMap::new(),
            video_frames: 0,
        }
    }

    /// Video pictures drawn so far.
    pub fn video_frames(&self) -> u64 {
        self.video_frames
    }

    /// Sets the codecs this client announces (the `codecs` of its hello; PNG is always on), as
    /// the browser announces `CODEC_PNG | CODEC_JPEG | CODEC_GLYPHS`. Returns the mask to send.
    pub fn announce_codecs(&mut self, codecs: u32) -> u32 {
        self.codecs = codecs | CODEC_PNG;
        self.codecs
    }

    /// What the glyph cache holds: per slot, the key of its glyph (`None`: never filled); empty
    /// when glyphs were not announced. For tests: compare with `Display::cached_glyphs`.
    pub fn cached_glyphs(&self) -> Vec<Option<TileKey>> {
        self.glyphs.iter().map(|g| g.as_ref().map(|g| g.key)).collect()
    }

    /// Glyphs drawn so far (stored or drawn from a slot).
    pub fn glyph_draws(&self) -> u64 {
        self.glyph_draws
    }

    /// Glyphs stored so far (sent with their pixels).
    pub fn glyph_stores(&self) -> u64 {
        self.glyph_stores
    }

    /// Offers a tile cache of up to `tiles` tiles, as the browser does right after its hello:
    /// returns the `CacheOffer` to send. A later `CacheAgreed` may accept up to `tiles`.
    pub fn offer_cache(&mut self, tiles: u32) -> ClientMessage {
        self.cache_offer = Some(tiles);
        ClientMessage::CacheOffer { tiles }
    }

    /// What the tile cache holds: per agreed slot, the key of its tile (`None`: never filled).
    /// `None` before `CacheAgreed`. For tests: compare with `Display::cached_tiles`.
    pub fn cached_tiles(&self) -> Option<Vec<Option<TileKey>>> {
        let slots = self.cache.as_ref()?;
        Some(slots.iter().map(|t| t.as_ref().map(|t| t.key)).collect())
    }

    /// `CacheDraw` messages drawn so far.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits
    }

    /// `CacheStore` messages drawn (and kept) so far.
    pub fn cache_stores(&self) -> u64 {
        self.cache_stores
    }

    /// The pixels drawn so far.
    pub fn framebuffer(&self) -> &Framebuffer {
        &self.framebuffer
    }

    /// The sequence number of the last `EndFrame` seen.
    pub fn last_frame(&self) -> Option<u32> {
        self.last_frame
    }

    /// Draws one message. Messages that do not draw (notices, clipboard, cursor) are ignored.
    ///
    /// The tile cache follows the protocol's rules: `CacheAgreed` comes once per connection
    /// (`Hello`), after an offer and for no more tiles than offered; `CacheStore` draws its tile and
    /// keeps it in its slot, replacing the slot's tile; `CacheDraw` draws a slot's tile. A message
    /// that breaks a rule (or draws outside the canvas) is refused and changes nothing.
    pub fn apply(&mut self, message: &ServerMessage) -> Result<(), CanvasError> {
        let bounds = |e: crate::UpdateError| match e {
            crate::UpdateError::OutOfBounds(rect) => CanvasError::OutOfBounds(rect),
            other => CanvasError::Tile(other.to_string()),
        };
        match message {
            ServerMessage::Hello { width, height, .. } => {
                // A new connection: its cache starts empty, once agreed again.
                self.framebuffer = Framebuffer::new(*width, *height);
                self.cache = None;
                self.glyphs = if self.codecs & CODEC_GLYPHS != 0 { vec![None; usize::from(GLYPH_SLOTS)] } else { Vec::new() };
                self.videos.clear();
            }
            // The tile cache outlives a resize: its tiles are content, not places. Video
            // streams end.
            ServerMessage::Resize { width, height } => {
                self.framebuffer = Framebuffer::new(*width, *height);
                self.videos.clear();
            }
            ServerMessage::Video { stream, flags, rect, clip, data } => self.draw_video(*stream, *flags, *rect, clip, data)?,
            ServerMessage::CacheAgreed { tiles } => {
                if self.cache.is_some() {
                    return Err(CanvasError::Cache("a second CacheAgreed"));
                }
                match self.cache_offer {
                    None => return Err(CanvasError::Cache("CacheAgreed without a CacheOffer")),
                    Some(offer) if *tiles > offer => return Err(CanvasError::Cache("more tiles agreed than offered")),
                    Some(_) => self.cache = Some(vec![None; *tiles as usize]),
                }
            }
            ServerMessage::CacheStore { slot, rect, codec: TileCodec::Png, data } => {
                let entry = self
                    .cache
                    .as_mut()
                    .ok_or(CanvasError::Cache("CacheStore before CacheAgreed"))?
                    .get_mut(*slot as usize)
                    .ok_or(CanvasError::Cache("CacheStore to a slot beyond the agreed tiles"))?;
                let rgba = decode_png(data, *rect)?;
                self.framebuffer.put(*rect, &rgba).map_err(bounds)?;
                *entry = Some(CachedTile { key: TileKey::of(rect.width, rect.height, &rgba), rgba });
                self.cache_stores += 1;
            }
            ServerMessage::CacheDraw { slot, x, y } => {
                let tile = self
                    .cache
                    .as_ref()
                    .ok_or(CanvasError::Cache("CacheDraw before CacheAgreed"))?
                    .get(*slot as usize)
                    .ok_or(CanvasError::Cache("CacheDraw of a slot beyond the agreed tiles"))?
                    .as_ref()
                    .ok_or(CanvasError::Cache("CacheDraw of an empty slot"))?;
                let rect = Rect { x: *x, y: *y, width: tile.key.width, height: tile.key.height };
                self.framebuffer.put(rect, &tile.rgba).map_err(bounds)?;
                self.cache_hits += 1;
            }
            ServerMessage::Tile { rect, codec: TileCodec::Png, data } => {
                let rgba = decode_png(data, *rect)?;
                self.framebuffer.put(*rect, &rgba).map_err(bounds)?;
            }
            ServerMessage::Tile { rect, codec: TileCodec::Jpeg, data } => {
                if self.codecs & CODEC_JPEG == 0 {
                    return Err(CanvasError::Tile("a JPEG tile, not announced".into()));
                }
                let rgba = decode_jpeg(data, *rect)?;
                self.framebuffer.put(*rect, &rgba).map_err(bounds)?;
            }
            ServerMessage::Glyphs { atlas, ops } => self.draw_glyphs(atlas, ops)?,
            ServerMessage::CacheStore { .. } => return Err(CanvasError::Cache("a lossy tile is never kept")),
            ServerMessage::Fill { rect, rgb } => self.framebuffer.fill(*rect, *rgb).map_err(bounds)?,
            ServerMessage::Copy { src_x, src_y, dst } => self.framebuffer.copy(*src_x, *src_y, *dst).map_err(bounds)?,
            ServerMessage::EndFrame { seq } => self.last_frame = Some(*seq),
            _ => {}
        }
        Ok(())
    }
}

impl Canvas {
    /// Draws a `Video` message. The rules are checked before anything is decoded; a decoder
    /// failure closes the stream (its later pictures would be wrong) and draws nothing.
    fn draw_video(&mut self, stream: u16, flags: u8, rect: Rect, clip: &[Rect], data: &[u8]) -> Result<(), CanvasError> {
        let error = |text: String| CanvasError::Video(text);
        if self.codecs & CODEC_H264 == 0 {
            return Err(error("H.264 was not announced".into()));
        }
        let (width, height) = self.framebuffer.size();
        if u32::from(rect.x) + u32::from(rect.width) > u32::from(width) || u32::from(rect.y) + u32::from(rect.height) > u32::from(height) {
            return Err(CanvasError::OutOfBounds(rect));
        }
        if clip.iter().any(|part| !rect.contains(*part)) {
            return Err(error(format!("a clip outside {rect:?}")));
        }
        let key = flags & VIDEO_KEY != 0;
        // An empty END for a stream that is not open has nothing to close.
        if !key && data.is_empty() && flags & VIDEO_END != 0 && !self.videos.contains_key(&stream) {
            return Ok(());
        }
        if key {
            if !self.videos.contains_key(&stream) && self.videos.len() >= VIDEO_MAX_STREAMS {
                return Err(error(format!("a {}th open stream", VIDEO_MAX_STREAMS + 1)));
            }
            let decoder = VideoDecoder::new().map_err(|e| error(e.to_string()))?;
            self.videos.insert(stream, decoder);
        } else if !self.videos.contains_key(&stream) {
            return Err(error(format!("stream {stream} is not open")));
        }
        if !data.is_empty() {
            let decoded = match self.videos.get_mut(&stream) {
                Some(decoder) => decoder.decode(data, (width, height)),
                None => return Err(error(format!("stream {stream} is not open"))),
            };
            let ((w, h), picture) = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    self.videos.remove(&stream);
                    return Err(error(e.to_string()));
                }
            };
            if w < rect.width || h < rect.height {
                self.videos.remove(&stream);
                return Err(error(format!("{w}x{h} picture for {rect:?}")));
            }
            let whole = [rect];
            let parts = if clip.is_empty() { &whole[..] } else { clip };
            for part in parts {
                let (dx, dy) = (usize::from(part.x - rect.x), usize::from(part.y - rect.y));
                let mut rgba = Vec::with_capacity(usize::from(part.width) * usize::from(part.height) * 4);
                for row in dy..dy + usize::from(part.height) {
                    let start = (row * usize::from(w) + dx) * 4;
                    rgba.extend_from_slice(&picture[start..start + usize::from(part.width) * 4]);
                }
                self.framebuffer.put(*part, &rgba).map_err(|_| CanvasError::OutOfBounds(*part))?;
            }
            self.video_frames += 1;
        }
        if flags & VIDEO_END != 0 {
            self.videos.remove(&stream);
        }
        Ok(())
    }

    /// Draws a `Glyphs` message: checks every record first, so that a refused message draws
    /// nothing and keeps nothing.
    fn draw_glyphs(&mut self, atlas: &[u8], ops: &[u8]) -> Result<(), CanvasError> {
        if self.glyphs.is_empty() {
            return Err(CanvasError::Glyphs("glyphs were not announced".into()));
        }
        let ops = read_ops(ops).map_err(|e| CanvasError::Glyphs(e.to_string()))?;
        let (atlas_width, atlas_height) = atlas_layout(&ops);
        let atlas_rgba = if atlas_width == 0 {
            Vec::new()
        } else {
            // INVARIANT: checked below against the PNG's own size, which is u32.
            let (w, h) = (u16::try_from(atlas_width), u16::try_from(atlas_height));
            let (Ok(w), Ok(h)) = (w, h) else { return Err(CanvasError::Glyphs("atlas too large".into())) };
            decode_png(atlas, Rect { x: 0, y: 0, width: w, height: h })?
        };
        // Pass 1: every draw hits a filled slot (or one filled earlier in this message), every
        // glyph is inside the canvas.
        let (width, height) = self.framebuffer.size();
        let mut sizes: Vec<Option<(u16, u16)>> = self.glyphs.iter().map(|g| g.as_ref().map(|g| (g.key.width, g.key.height))).collect();
        for op in &ops {
            let (slot, x, y, size) = match *op {
                GlyphOp::Draw { slot, x, y } => {
                    let size = sizes[usize::from(slot)].ok_or_else(|| CanvasError::Glyphs(format!("draw of empty slot {slot}")))?;
                    (slot, x, y, size)
                }
                GlyphOp::Store { slot, x, y, width, height } => (slot, x, y, (u16::from(width), u16::from(height))),
            };
            sizes[usize::from(slot)] = Some(size);
            if u32::from(x) + u32::from(size.0) > u32::from(width) || u32::from(y) + u32::from(size.1) > u32::from(height) {
                return Err(CanvasError::OutOfBounds(Rect { x, y, width: size.0, height: size.1 }));
            }
        }
        // Pass 2: draw and keep.
        let mut atlas_x = 0usize;
        for op in ops {
            match op {
                GlyphOp::Draw { slot, x, y } => {
                    if let Some(glyph) = &self.glyphs[usize::from(slot)] {
                        let rect = Rect { x, y, width: glyph.key.width, height: glyph.key.height };
                        let _ = self.framebuffer.put(rect, &glyph.rgba);
                    }
                }
                GlyphOp::Store { slot, x, y, width, height } => {
                    let (w, h) = (usize::from(width), usize::from(height));
                    let mut rgba = Vec::with_capacity(w * h * 4);
                    for row in 0..h {
                        let start = (row * atlas_width + atlas_x) * 4;
                        rgba.extend_from_slice(&atlas_rgba[start..start + w * 4]);
                    }
                    atlas_x += w;
                    let rect = Rect { x, y, width: u16::from(width), height: u16::from(height) };
                    let _ = self.framebuffer.put(rect, &rgba);
                    self.glyphs[usize::from(slot)] = Some(CachedTile { key: TileKey::of(rect.width, rect.height, &rgba), rgba });
                    self.glyph_stores += 1;
                }
            }
            self.glyph_draws += 1;
        }
        Ok(())
    }
}

/// Decodes a JPEG tile to RGBA and checks its size against the rectangle.
pub fn decode_jpeg(data: &[u8], rect: Rect) -> Result<Vec<u8>, CanvasError> {
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(data));
    let pixels = decoder.decode().map_err(|e| CanvasError::Tile(e.to_string()))?;
    let info = decoder.info().ok_or_else(|| CanvasError::Tile("JPEG without a frame".into()))?;
    if info.width != rect.width || info.height != rect.height {
        return Err(CanvasError::Tile(format!("{}x{} image for {rect:?}", info.width, info.height)));
    }
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => Ok(pixels.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()),
        jpeg_decoder::PixelFormat::L8 => Ok(pixels.iter().flat_map(|&l| [l, l, l, 255]).collect()),
        other => Err(CanvasError::Tile(format!("unexpected JPEG pixel format {other:?}"))),
    }
}

/// Decodes a PNG tile to RGBA and checks its size against the rectangle.
pub fn decode_png(data: &[u8], rect: Rect) -> Result<Vec<u8>, CanvasError> {
    let error = |e: png::DecodingError| CanvasError::Tile(e.to_string());
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(error)?;
    let info = reader.info();
    if info.width != u32::from(rect.width) || info.height != u32::from(rect.height) {
        return Err(CanvasError::Tile(format!("{}x{} image for {rect:?}", info.width, info.height)));
    }
    let mut buffer = vec![0; reader.output_buffer_size().ok_or_else(|| CanvasError::Tile("image too large".into()))?];
    let frame = reader.next_frame(&mut buffer).map_err(error)?;
    let bytes = &buffer[..frame.buffer_size()];
    match frame.color_type {
        png::ColorType::Rgba => Ok(bytes.to_vec()),
        png::ColorType::Rgb => Ok(bytes.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 255]).collect()),
        other => Err(CanvasError::Tile(format!("unexpected colour type {other:?}"))),
    }
}
