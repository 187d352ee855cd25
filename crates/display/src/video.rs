//! H.264 for video-like regions: which part of the screen moves like a video (with hysteresis),
//! one encoder per viewer stream, and the reference decoder of [`crate::Canvas`].
//!
//! A region becomes video when photo-like 64 × 64 blocks change in most of the frames planned
//! for a viewer ([`Motion`]); it stays video while it keeps changing with photo-like content,
//! and ends after some idle refinement periods, or after a few frames that change it with
//! something else (a window closed over it, text typed there). The region is aligned on
//! 16-pixel cells (H.264 macroblocks), so it is cut out of the dirty grid exactly.

use crate::codec;
use crate::framebuffer::Framebuffer;
use crate::grid::{CELL, DirtyGrid};
use bascule_proto::Rect;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, QpRange, RateControlMode,
    SpsPpsStrategy, UsageType,
};
use openh264::formats::{RgbaSliceU8, YUVBuffer};

/// Side of the motion blocks, in pixels.
pub(crate) const BLOCK: u16 = 64;
/// Heat added to a block each planned frame it changes in, and its cap.
const HEAT_STEP: u8 = 2;
const HEAT_MAX: u8 = 40;
/// Heat at which a photo-like block counts as video: it changed in six frames more than it
/// stayed still.
const HEAT_VIDEO: u8 = 12;
/// The fewest video blocks (64 × 64) for a stream: a small animation is cheaper as JPEG.
const MIN_VIDEO_BLOCKS: usize = 4;
/// Refinement periods (250 ms in the gateway) without a video frame that end a stream.
const IDLE_PERIODS: u8 = 8;
/// Frames in a row that change the region without photo-like content that end a stream.
const NOT_VIDEO_FRAMES: u8 = 3;

/// The link the encoder aims at when the gateway gave none: 2 Mbit/s.
pub(crate) const DEFAULT_BITRATE: u32 = 2_000_000;

/// Per-block change history of one viewer.
#[derive(Debug)]
pub(crate) struct Motion {
    columns: usize,
    heat: Vec<u8>,
    /// Whether the block looked like a photo when it last changed.
    photo: Vec<bool>,
}

impl Motion {
    pub(crate) fn new(width: u16, height: u16) -> Motion {
        let columns = usize::from(width).div_ceil(usize::from(BLOCK));
        let rows = usize::from(height).div_ceil(usize::from(BLOCK));
        Motion { columns, heat: vec![0; columns * rows], photo: vec![false; columns * rows] }
    }

    fn block_rect(&self, index: usize, framebuffer: &Framebuffer) -> Rect {
        let (width, height) = framebuffer.size();
        // INVARIANT: blocks start inside the u16 screen.
        let x = ((index % self.columns) * usize::from(BLOCK)) as u16;
        let y = ((index / self.columns) * usize::from(BLOCK)) as u16;
        Rect { x, y, width: BLOCK.min(width - x), height: BLOCK.min(height - y) }
    }

    /// Records one planned frame: which blocks have dirty cells now. Returns whether any dirty
    /// block inside `region` looks like a photo.
    pub(crate) fn observe(&mut self, dirty: &DirtyGrid, framebuffer: &Framebuffer, region: Option<Rect>) -> bool {
        let per = usize::from(BLOCK / CELL);
        let mut photo_in_region = false;
        for index in 0..self.heat.len() {
            let (column, row) = (index % self.columns, index / self.columns);
            let (dirty_cells, _) = dirty.block_dirt(column, row, per);
            if dirty_cells == 0 {
                self.heat[index] = self.heat[index].saturating_sub(1);
                continue;
            }
            self.heat[index] = self.heat[index].saturating_add(HEAT_STEP).min(HEAT_MAX);
            // Looking costs a pass over the block: only for blocks that may become video.
            let rect = self.block_rect(index, framebuffer);
            let inside = region.is_some_and(|r| r.contains(rect));
            if self.heat[index] >= HEAT_VIDEO / 2 || inside {
                self.photo[index] = codec::look(&framebuffer.region(rect)).is_photo();
                if !self.photo[index] {
                    self.heat[index] = 0;
                }
                photo_in_region |= inside && self.photo[index];
            }
        }
        photo_in_region
    }

    /// The region that moves like a video: the bounding box of the hot photo-like blocks, when
    /// there are enough of them, grown to the cells that change now within one block around it
    /// (the edges of a video that does not sit on the block grid), in whole cells.
    pub(crate) fn video_region(&self, framebuffer: &Framebuffer, changed: &DirtyGrid) -> Option<Rect> {
        let hot: Vec<usize> = (0..self.heat.len()).filter(|&i| self.heat[i] >= HEAT_VIDEO && self.photo[i]).collect();
        if hot.len() < MIN_VIDEO_BLOCKS {
            return None;
        }
        let rects = hot.iter().map(|&i| self.block_rect(i, framebuffer));
        let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0u16, 0u16);
        for r in rects {
            x0 = x0.min(r.x);
            y0 = y0.min(r.y);
            x1 = x1.max(r.x + r.width);
            y1 = y1.max(r.y + r.height);
        }
        // Whole cells only (a partial cell at the screen's edge stays with the other paths).
        let width = (x1 - x0) / CELL * CELL;
        let height = (y1 - y0) / CELL * CELL;
        if width < 2 * BLOCK || height < BLOCK {
            return None;
        }
        let hot = Rect { x: x0, y: y0, width, height };
        let (screen_width, screen_height) = framebuffer.size();
        let (gx, gy) = (x0.saturating_sub(BLOCK), y0.saturating_sub(BLOCK));
        let ring = Rect {
            x: gx,
            y: gy,
            width: (x0 + width).saturating_add(BLOCK).min(screen_width) - gx,
            height: (y0 + height).saturating_add(BLOCK).min(screen_height) - gy,
        };
        Some(match changed.bounds_within(ring) {
            Some(now) => union(hot, now),
            None => hot,
        })
    }

    /// Forgets the history of the blocks of `rect` (a stream ended there for good reasons).
    pub(crate) fn cool(&mut self, rect: Rect, framebuffer: &Framebuffer) {
        for index in 0..self.heat.len() {
            if rect.contains(self.block_rect(index, framebuffer)) {
                self.heat[index] = 0;
            }
        }
    }
}

/// The smallest rectangle holding both.
fn union(a: Rect, b: Rect) -> Rect {
    let x = a.x.min(b.x);
    let y = a.y.min(b.y);
    let right = (a.x + a.width).max(b.x + b.width);
    let bottom = (a.y + a.height).max(b.y + b.height);
    Rect { x, y, width: right - x, height: bottom - y }
}

/// One viewer's open video stream.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: u16,
    pub(crate) rect: Rect,
    pub(crate) encoder: std::sync::Arc<std::sync::Mutex<VideoEncoder>>,
    /// Refinement periods since the last video frame.
    pub(crate) idle: u8,
    /// Frames in a row that changed the region without photo-like content.
    pub(crate) not_video: u8,
    /// A video frame was planned since the last refinement period.
    pub(crate) sent_since_period: bool,
    /// A picture of the stream was planned: the viewer may have it open, and gets an END.
    pub(crate) planned: bool,
}

impl Stream {
    pub(crate) fn new(id: u16, rect: Rect, encoder: std::sync::Arc<std::sync::Mutex<VideoEncoder>>) -> Stream {
        Stream { id, rect, encoder, idle: 0, not_video: 0, sent_since_period: false, planned: false }
    }

    /// A refinement period passed: returns whether the stream has been idle long enough to end.
    pub(crate) fn period(&mut self) -> bool {
        if std::mem::take(&mut self.sent_since_period) {
            self.idle = 0;
        } else {
            self.idle = self.idle.saturating_add(1);
        }
        self.idle >= IDLE_PERIODS
    }

    /// A frame changed the region; `photo` whether it is still photo-like. Returns whether the
    /// region stopped looking like a video.
    pub(crate) fn changed(&mut self, photo: bool) -> bool {
        self.not_video = if photo { 0 } else { self.not_video + 1 };
        self.not_video >= NOT_VIDEO_FRAMES
    }
}

/// Whether an Annex B access unit holds an IDR slice (NAL type 5): it starts a coded sequence
/// that a new decoder can take.
pub(crate) fn is_idr(data: &[u8]) -> bool {
    data.windows(4).any(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 5)
}

/// Why the encoder or the reference decoder failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("H.264: {0}")]
pub(crate) struct VideoError(pub(crate) String);

/// An openh264 encoder for one stream, in screen-content mode.
pub(crate) struct VideoEncoder {
    encoder: Encoder,
    width: u16,
    height: u16,
    /// The next frame must be an IDR (the first one, or after a failure: the viewer may not
    /// have the stream open).
    needs_key: bool,
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoEncoder").field("width", &self.width).field("height", &self.height).finish()
    }
}

impl VideoEncoder {
    /// An encoder for `width × height` pictures (even sides) at about `bitrate` bits per second.
    pub(crate) fn new(width: u16, height: u16, bitrate: u32) -> Result<VideoEncoder, VideoError> {
        // Screen-content mode does not hold a bit rate by itself: the quantiser's floor does it
        // coarsely (a thin link gets coarser pictures, which the refinement makes exact later).
        let floor = match bitrate {
            b if b < 500_000 => 34,
            b if b < 2_000_000 => 28,
            _ => 22,
        };
        let config = EncoderConfig::new()
            .qp(QpRange::new(floor, 51))
            .usage_type(UsageType::ScreenContentRealTime)
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(30.0))
            .skip_frames(true)
            .adaptive_quantization(false)
            .background_detection(false)
            .complexity(Complexity::Low)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .num_threads(1);
        let api = openh264::OpenH264API::from_source();
        let encoder = Encoder::with_api_config(api, config).map_err(|e| VideoError(e.to_string()))?;
        Ok(VideoEncoder { encoder, width, height, needs_key: true })
    }

    /// Makes the next picture an IDR (as a host does now and then).
    #[cfg(test)]
    pub(crate) fn force_key(&mut self) {
        self.needs_key = true;
    }

    /// Encodes one picture (`width × height` RGBA): returns the access unit (Annex B) and
    /// whether it starts a new coded sequence (IDR with SPS and PPS); `None` when the rate
    /// control skipped the picture (the viewer keeps the previous one, which the refinement
    /// fixes once the video stops).
    pub(crate) fn encode(&mut self, rgba: &[u8]) -> Result<Option<(Vec<u8>, bool)>, VideoError> {
        let size = (usize::from(self.width), usize::from(self.height));
        if rgba.len() != size.0 * size.1 * 4 {
            return Err(VideoError(format!("{} bytes for a {}x{} picture", rgba.len(), size.0, size.1)));
        }
        let yuv = YUVBuffer::from_rgba8_source(RgbaSliceU8::new(rgba, size));
        if self.needs_key {
            self.encoder.force_intra_frame();
        }
        let result = self.encoder.encode(&yuv).map(|stream| (stream.to_vec(), stream.frame_type()));
        match result {
            Ok((data, frame_type)) if !data.is_empty() => {
                let key = frame_type == FrameType::IDR;
                if self.needs_key && !key {
                    return Err(VideoError(format!("asked for an IDR, got {frame_type:?}")));
                }
                self.needs_key = false;
                Ok(Some((data, key)))
            }
            Ok((_, FrameType::Skip)) if !self.needs_key => Ok(None),
            Ok((_, frame_type)) => {
                self.needs_key = true;
                Err(VideoError(format!("no data ({frame_type:?})")))
            }
            Err(e) => {
                self.needs_key = true;
                Err(VideoError(e.to_string()))
            }
        }
    }
}

/// An openh264 decoder for one stream of a [`crate::Canvas`] (or of an RDP host's AVC420).
pub(crate) struct VideoDecoder {
    decoder: openh264::decoder::Decoder,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VideoDecoder")
    }
}

impl VideoDecoder {
    pub(crate) fn new() -> Result<VideoDecoder, VideoError> {
        let api = openh264::OpenH264API::from_source();
        let decoder = openh264::decoder::Decoder::with_api_config(api, openh264::decoder::DecoderConfig::new())
            .map_err(|e| VideoError(e.to_string()))?;
        Ok(VideoDecoder { decoder })
    }

    /// Decodes one access unit: the picture's size and RGBA pixels. A picture larger than
    /// `limit` (plus a macroblock of padding) is refused before it is converted: a hostile
    /// stream cannot make us allocate for a picture the screen cannot show.
    pub(crate) fn decode(&mut self, data: &[u8], limit: (u16, u16)) -> Result<((u16, u16), Vec<u8>), VideoError> {
        use openh264::formats::YUVSource;
        let picture = self
            .decoder
            .decode(data)
            .map_err(|e| VideoError(e.to_string()))?
            .ok_or_else(|| VideoError("the access unit gave no picture".into()))?;
        let (width, height) = picture.dimensions();
        let fits = |size: usize, side: u16| size <= usize::from(side) + 16;
        let (Ok(w), Ok(h), true, true) =
            (u16::try_from(width), u16::try_from(height), fits(width, limit.0), fits(height, limit.1))
        else {
            return Err(VideoError(format!("a {width}x{height} picture, larger than the {}x{} screen", limit.0, limit.1)));
        };
        let mut rgba = vec![0; width * height * 4];
        picture.write_rgba8(&mut rgba);
        Ok(((w, h), rgba))
    }
}
