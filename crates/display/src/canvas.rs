//! A reference client: rebuilds a canvas from server messages, as the browser does.
//!
//! Used by the tests, the integration suite and (later) the headless benchmark client, so that
//! "what the viewer shows" can be compared with the framebuffer or the X server, pixel for pixel.

use crate::framebuffer::Framebuffer;
use bascule_proto::{Rect, ServerMessage, TileCodec};

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
}

/// The viewer-side canvas.
#[derive(Debug, Clone)]
pub struct Canvas {
    framebuffer: Framebuffer,
    last_frame: Option<u32>,
}

impl Canvas {
    /// An empty (black) canvas.
    pub fn new(width: u16, height: u16) -> Canvas {
        Canvas { framebuffer: Framebuffer::new(width, height), last_frame: None }
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
    pub fn apply(&mut self, message: &ServerMessage) -> Result<(), CanvasError> {
        let bounds = |e: crate::UpdateError| match e {
            crate::UpdateError::OutOfBounds(rect) => CanvasError::OutOfBounds(rect),
            other => CanvasError::Tile(other.to_string()),
        };
        match message {
            ServerMessage::Hello { width, height, .. } | ServerMessage::Resize { width, height } => {
                self.framebuffer = Framebuffer::new(*width, *height);
            }
            ServerMessage::Tile { rect, codec: TileCodec::Png, data } => {
                let rgba = decode_png(data, *rect)?;
                self.framebuffer.put(*rect, &rgba).map_err(bounds)?;
            }
            ServerMessage::Fill { rect, rgb } => self.framebuffer.fill(*rect, *rgb).map_err(bounds)?,
            ServerMessage::Copy { src_x, src_y, dst } => self.framebuffer.copy(*src_x, *src_y, *dst).map_err(bounds)?,
            ServerMessage::EndFrame { seq } => self.last_frame = Some(*seq),
            _ => {}
        }
        Ok(())
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
