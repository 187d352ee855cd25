//! The Bascule display wire protocol, version 0: message types and their binary codec.
//!
//! This crate is the single source of truth for the bytes that travel between the gateway and the
//! browser viewer; `docs/protocol.md` describes the same format for humans.
//! It does no I/O: it turns messages into bytes and bytes into messages.
//!
//! Architecture invariant: decoding never panics and never allocates more than the input size,
//! whatever the bytes; every parser of untrusted bytes here is fuzzed (`bascule-fuzzing`).

#![warn(missing_docs)]

/// The protocol version this crate speaks.
pub const VERSION: u16 = 0;

/// The largest client message the gateway accepts, in bytes.
pub const MAX_CLIENT_MESSAGE: usize = 256 * 1024;

/// Codec bit for PNG tiles in the `codecs` masks of the hellos (required).
pub const CODEC_PNG: u32 = 1;

/// Codec bit for JPEG tiles ([`TileCodec::Jpeg`], lossy, refined to exact later).
pub const CODEC_JPEG: u32 = 1 << 1;

/// Codec bit for the glyph cache ([`ServerMessage::Glyphs`]).
pub const CODEC_GLYPHS: u32 = 1 << 2;

/// Codec bit for H.264 video ([`ServerMessage::Video`], lossy, refined to exact later).
pub const CODEC_H264: u32 = 1 << 3;

/// [`ServerMessage::Video`] flag: the data starts a new coded video sequence (SPS, PPS, IDR)
/// for the stream, which the viewer opens (or resets).
pub const VIDEO_KEY: u8 = 1;

/// [`ServerMessage::Video`] flag: the stream ends after this message (whose data may be empty).
pub const VIDEO_END: u8 = 1 << 1;

/// The most video streams a viewer has open at once.
pub const VIDEO_MAX_STREAMS: usize = 4;

/// The number of glyph slots of a viewer that announced [`CODEC_GLYPHS`].
pub const GLYPH_SLOTS: u16 = 4096;

/// The widest glyph, in pixels (a short word of a text): with [`GLYPH_MAX_HEIGHT`], a glyph slot
/// holds at most 64 × 32 RGBA (8 KiB).
pub const GLYPH_MAX_WIDTH: u8 = 64;

/// The tallest glyph, in pixels (a line of text).
pub const GLYPH_MAX_HEIGHT: u8 = 32;

/// The most bytes the ops of one [`ServerMessage::Glyphs`] may inflate to.
pub const GLYPH_OPS_MAX: usize = 1 << 20;

/// The longest text of a [`ServerMessage::Message`], in characters (Unicode scalar values).
pub const MAX_MESSAGE_TEXT: usize = 2000;

/// The longest person name (`from`, `shadow_of`) of the helpdesk messages, in characters.
pub const MAX_NAME: usize = 128;

/// The largest side, in pixels, of a tile kept in the client tile cache
/// ([`ServerMessage::CacheStore`]); a stored tile is 1 to 64 pixels on each side, so a slot never
/// holds more than 64 × 64 RGBA pixels (16 KiB).
pub const CACHE_TILE: u16 = 64;

/// The most tiles a client tile cache may have: a [`ClientMessage::CacheOffer`] or
/// [`ServerMessage::CacheAgreed`] above it, or a slot number at or above it, is refused by the
/// decoders (65,536 tiles of 64 × 64 are 1 GiB of RGBA; the gateway agrees to far fewer).
pub const MAX_CACHE_TILES: u32 = 1 << 16;

/// The `state` values of [`ServerMessage::ControlState`].
pub mod control_state {
    /// The request waits for the session owner's answer.
    pub const PENDING: u8 = 0;
    /// The owner accepted: the helpdesk's input is accepted.
    pub const GRANTED: u8 = 1;
    /// The owner refused.
    pub const REFUSED: u8 = 2;
    /// Control is over: the owner took it back, the helpdesk gave it back, or the shadow left.
    pub const ENDED: u8 = 3;
}

/// The codec byte of a [`ServerMessage::Tile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TileCodec {
    /// A PNG image with no colour profile, decoded natively by the browser.
    Png,
    /// A baseline JPEG image with no colour profile: lossy, never kept in the tile cache.
    Jpeg,
}

impl TileCodec {
    fn to_byte(self) -> u8 {
        match self {
            TileCodec::Png => 1,
            TileCodec::Jpeg => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<TileCodec> {
        match byte {
            1 => Some(TileCodec::Png),
            2 => Some(TileCodec::Jpeg),
            _ => None,
        }
    }
}

/// The severity of a [`ServerMessage::Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    /// Informational.
    Info,
    /// Something the user may want to know.
    Warning,
    /// The session cannot go on.
    Error,
}

/// A rectangle in desktop pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rect {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl Rect {
    /// Whether `other` lies wholly inside this rectangle.
    pub fn contains(&self, other: Rect) -> bool {
        let end = |start: u16, len: u16| u32::from(start) + u32::from(len);
        other.x >= self.x
            && other.y >= self.y
            && end(other.x, other.width) <= end(self.x, self.width)
            && end(other.y, other.height) <= end(self.y, self.height)
    }
}

/// A message from the gateway to the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The session is open.
    Hello {
        /// Protocol version.
        version: u16,
        /// Desktop width.
        width: u16,
        /// Desktop height.
        height: u16,
        /// Codecs the server may use.
        codecs: u32,
        /// How many frames may be unacknowledged at once.
        max_in_flight: u8,
        /// The resource's display name.
        name: String,
    },
    /// An encoded image to draw at `rect`.
    Tile {
        /// Where to draw it.
        rect: Rect,
        /// How `data` is encoded.
        codec: TileCodec,
        /// The encoded image.
        data: Vec<u8>,
    },
    /// A solid rectangle.
    Fill {
        /// Where.
        rect: Rect,
        /// Opaque colour.
        rgb: [u8; 3],
    },
    /// Copy a rectangle of the canvas.
    Copy {
        /// Source left edge.
        src_x: u16,
        /// Source top edge.
        src_y: u16,
        /// Destination (its size is the copied size).
        dst: Rect,
    },
    /// A new pointer shape; `width == height == 0` hides the remote cursor.
    Cursor {
        /// Hotspot x.
        hot_x: u16,
        /// Hotspot y.
        hot_y: u16,
        /// Width.
        width: u16,
        /// Height.
        height: u16,
        /// PNG (RGBA).
        png: Vec<u8>,
    },
    /// The desktop changed size.
    Resize {
        /// New width.
        width: u16,
        /// New height.
        height: u16,
    },
    /// End of frame `seq`.
    EndFrame {
        /// Frame sequence number.
        seq: u32,
    },
    /// A session message for the user, translated by the viewer from `code`.
    Notice {
        /// Severity.
        level: NoticeLevel,
        /// Stable key, such as `session.ended`.
        code: String,
        /// Technical cause, for the helpdesk.
        detail: String,
    },
    /// The remote clipboard text.
    Clipboard {
        /// The text.
        text: String,
    },
    /// A message from the helpdesk, shown to the user until dismissed.
    Message {
        /// Who sent it (at most [`MAX_NAME`] characters).
        from: String,
        /// The text (at most [`MAX_MESSAGE_TEXT`] characters).
        text: String,
    },
    /// `from` asks to take control of the session; sent to the session owner's viewers.
    ControlRequest {
        /// The request, answered with [`ClientMessage::ControlReply`].
        id: u32,
        /// Who asks (at most [`MAX_NAME`] characters).
        from: String,
    },
    /// Where control request `id` stands; sent to the owner's and the shadow's viewers.
    ControlState {
        /// The request.
        id: u32,
        /// One of the [`control_state`] values; decoding refuses any other.
        state: u8,
    },
    /// This viewer is a shadow of another user's session; sent right after `Hello`, only to shadows.
    ViewMode {
        /// Input from this viewer is dropped (until control is granted).
        read_only: bool,
        /// The session owner's name (at most [`MAX_NAME`] characters).
        shadow_of: String,
    },
    /// The answer to [`ClientMessage::CacheOffer`]: the client keeps slots `0..tiles` (0: no cache).
    /// Sent at most once per connection, before any `CacheStore` or `CacheDraw`.
    CacheAgreed {
        /// Number of slots, at most the offer (and at most [`MAX_CACHE_TILES`]).
        tiles: u32,
    },
    /// A tile to draw at `rect` (as [`ServerMessage::Tile`]) and to keep in cache slot `slot`,
    /// replacing whatever the slot held.
    CacheStore {
        /// The slot, below the agreed number of tiles.
        slot: u32,
        /// Where to draw it; 1 to [`CACHE_TILE`] pixels on each side.
        rect: Rect,
        /// How `data` is encoded.
        codec: TileCodec,
        /// The encoded image.
        data: Vec<u8>,
    },
    /// Draw the tile kept in cache slot `slot` with its top-left corner at (`x`, `y`).
    CacheDraw {
        /// A slot filled by an earlier `CacheStore` of this connection.
        slot: u32,
        /// Left edge.
        x: u16,
        /// Top edge.
        y: u16,
    },
    /// Glyph cache draws and stores (`docs/protocol.md`, "Glyph cache"). This crate carries the
    /// two parts as bytes; `bascule_display` writes and reads the ops.
    Glyphs {
        /// A PNG of the new glyphs side by side, or nothing.
        atlas: Vec<u8>,
        /// The records, raw DEFLATE.
        ops: Vec<u8>,
    },
    /// One H.264 access unit of video stream `stream` (`docs/protocol.md`, "Video"): the
    /// decoded picture's top-left `rect.width × rect.height` pixels are drawn at `rect`, only
    /// inside `clip` when it is not empty.
    Video {
        /// The stream (a decoder on the viewer).
        stream: u16,
        /// [`VIDEO_KEY`], [`VIDEO_END`].
        flags: u8,
        /// Where the picture goes.
        rect: Rect,
        /// Where it is drawn (inside `rect`); empty: all of `rect`. At most 255.
        clip: Vec<Rect>,
        /// Annex B byte stream; empty only with [`VIDEO_END`].
        data: Vec<u8>,
    },
}

/// A message from the viewer to the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// The first message of a connection.
    Hello {
        /// Protocol version.
        version: u16,
        /// Available width.
        width: u16,
        /// Available height.
        height: u16,
        /// Codecs the browser decodes.
        codecs: u32,
    },
    /// Frames up to `seq` are drawn.
    FrameAck {
        /// Frame sequence number.
        seq: u32,
    },
    /// A key event.
    Key {
        /// Pressed (true) or released.
        down: bool,
        /// X11 keysym of the produced character or key.
        keysym: u32,
        /// PC/XT set-1 scancode, `0xE0xx` for extended keys, 0 when unknown.
        scancode: u16,
    },
    /// Pointer position and buttons.
    Pointer {
        /// X in desktop pixels.
        x: u16,
        /// Y in desktop pixels.
        y: u16,
        /// Button mask (RFB convention).
        buttons: u8,
    },
    /// Ask the remote desktop for another size.
    ResizeRequest {
        /// Wanted width.
        width: u16,
        /// Wanted height.
        height: u16,
    },
    /// Local clipboard text.
    Clipboard {
        /// The text.
        text: String,
    },
    /// The session owner's answer to [`ServerMessage::ControlRequest`] `id`.
    ControlReply {
        /// The request.
        id: u32,
        /// Accepted (true) or refused.
        granted: bool,
    },
    /// A shadow viewer asks the session owner for control (empty payload).
    ControlRequest,
    /// The owner takes control back, or the shadow gives it back (or cancels its request).
    ControlRelease {
        /// The request.
        id: u32,
    },
    /// The client can keep up to `tiles` decoded tiles for [`ServerMessage::CacheStore`] and
    /// [`ServerMessage::CacheDraw`]; sent right after `Hello`, answered by `CacheAgreed`.
    CacheOffer {
        /// The most tiles the client is willing to keep (at most [`MAX_CACHE_TILES`]).
        tiles: u32,
    },
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is empty.
    #[error("empty message")]
    Empty,
    /// The type byte is not a known message.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The message ends before its fields do.
    #[error("truncated message of type {0:#04x}")]
    Truncated(u8),
    /// Bytes are left after the last field.
    #[error("trailing bytes after message of type {0:#04x}")]
    Trailing(u8),
    /// A text field is not UTF-8.
    #[error("invalid utf-8 text")]
    InvalidUtf8,
    /// A field has a value outside its range.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// The message is larger than [`MAX_CLIENT_MESSAGE`].
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// A bounded text field has more characters than allowed.
    #[error("{field} is longer than {max} characters")]
    TextTooLong {
        /// The field.
        field: &'static str,
        /// Its limit, in characters.
        max: usize,
    },
}

impl DecodeError {
    /// The WebSocket close code that goes with this error.
    pub fn close_code(&self) -> u16 {
        match self {
            DecodeError::TooLarge(_) | DecodeError::TextTooLong { .. } => 1009,
            _ => 1007,
        }
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn new(kind: u8, capacity: usize) -> Writer {
        let mut bytes = Vec::with_capacity(capacity + 1);
        bytes.push(kind);
        Writer(bytes)
    }
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }
    fn u16(&mut self, value: u16) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn u32(&mut self, value: u32) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn rect(&mut self, rect: Rect) -> &mut Self {
        self.u16(rect.x).u16(rect.y).u16(rect.width).u16(rect.height)
    }
    /// A string with a u16 length prefix; longer strings are cut at a character boundary.
    fn short_str(&mut self, text: &str) -> &mut Self {
        let mut end = text.len().min(usize::from(u16::MAX));
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let len = u16::try_from(end).unwrap_or(u16::MAX);
        self.u16(len);
        self.0.extend_from_slice(&text.as_bytes()[..end]);
        self
    }
    /// A short string of at most `max_chars` characters; longer ones are cut.
    fn bounded_str(&mut self, text: &str, max_chars: usize) -> &mut Self {
        let end = text.char_indices().nth(max_chars).map_or(text.len(), |(index, _)| index);
        self.short_str(&text[..end])
    }
    fn flag(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }
    fn rest(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

struct Reader<'a> {
    kind: u8,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated(self.kind));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn rect(&mut self) -> Result<Rect, DecodeError> {
        Ok(Rect { x: self.u16()?, y: self.u16()?, width: self.u16()?, height: self.u16()? })
    }
    fn short_str(&mut self) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }
    /// A short string that must have at most `max_chars` characters.
    fn bounded_str(&mut self, field: &'static str, max_chars: usize) -> Result<String, DecodeError> {
        let text = self.short_str()?;
        if text.chars().nth(max_chars).is_some() {
            return Err(DecodeError::TextTooLong { field, max: max_chars });
        }
        Ok(text)
    }
    /// A boolean byte: 0 or 1, anything else is refused.
    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(field)),
        }
    }
    /// A number of cache tiles: at most [`MAX_CACHE_TILES`].
    fn cache_tiles(&mut self) -> Result<u32, DecodeError> {
        let tiles = self.u32()?;
        if tiles > MAX_CACHE_TILES {
            return Err(DecodeError::InvalidValue("number of cache tiles"));
        }
        Ok(tiles)
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
    fn rest_str(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.rest().to_vec()).map_err(|_| DecodeError::InvalidUtf8)
    }
    fn finish<T>(self, value: T) -> Result<T, DecodeError> {
        if self.bytes.is_empty() { Ok(value) } else { Err(DecodeError::Trailing(self.kind)) }
    }
}

/// A cache slot number: below [`MAX_CACHE_TILES`].
fn check_slot(slot: u32) -> Result<u32, DecodeError> {
    if slot < MAX_CACHE_TILES { Ok(slot) } else { Err(DecodeError::InvalidValue("cache slot")) }
}

fn split(bytes: &[u8]) -> Result<Reader<'_>, DecodeError> {
    let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
    Ok(Reader { kind, bytes: rest })
}

impl ServerMessage {
    /// Encodes the message as one WebSocket payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ServerMessage::Hello { version, width, height, codecs, max_in_flight, name } => {
                Writer::new(0x01, 12 + name.len())
                    .u16(*version)
                    .u16(*width)
                    .u16(*height)
                    .u32(*codecs)
                    .u8(*max_in_flight)
                    .short_str(name)
                    .finish()
            }
            ServerMessage::Tile { rect, codec, data } => {
                Writer::new(0x02, 9 + data.len()).rect(*rect).u8(codec.to_byte()).rest(data).finish()
            }
            ServerMessage::Fill { rect, rgb } => {
                Writer::new(0x03, 11).rect(*rect).u8(rgb[0]).u8(rgb[1]).u8(rgb[2]).finish()
            }
            ServerMessage::Copy { src_x, src_y, dst } => Writer::new(0x04, 12)
                .u16(*src_x)
                .u16(*src_y)
                .u16(dst.width)
                .u16(dst.height)
                .u16(dst.x)
                .u16(dst.y)
                .finish(),
            ServerMessage::Cursor { hot_x, hot_y, width, height, png } => Writer::new(0x05, 8 + png.len())
                .u16(*hot_x)
                .u16(*hot_y)
                .u16(*width)
                .u16(*height)
                .rest(png)
                .finish(),
            ServerMessage::Resize { width, height } => Writer::new(0x06, 4).u16(*width).u16(*height).finish(),
            ServerMessage::EndFrame { seq } => Writer::new(0x07, 4).u32(*seq).finish(),
            ServerMessage::Notice { level, code, detail } => {
                let level = match level {
                    NoticeLevel::Info => 0,
                    NoticeLevel::Warning => 1,
                    NoticeLevel::Error => 2,
                };
                Writer::new(0x08, 5 + code.len() + detail.len()).u8(level).short_str(code).short_str(detail).finish()
            }
            ServerMessage::Clipboard { text } => Writer::new(0x09, text.len()).rest(text.as_bytes()).finish(),
            ServerMessage::Message { from, text } => Writer::new(0x0a, 4 + from.len() + text.len())
                .bounded_str(from, MAX_NAME)
                .bounded_str(text, MAX_MESSAGE_TEXT)
                .finish(),
            ServerMessage::ControlRequest { id, from } => {
                Writer::new(0x0b, 6 + from.len()).u32(*id).bounded_str(from, MAX_NAME).finish()
            }
            ServerMessage::ControlState { id, state } => Writer::new(0x0c, 5).u32(*id).u8(*state).finish(),
            ServerMessage::ViewMode { read_only, shadow_of } => {
                Writer::new(0x0d, 3 + shadow_of.len()).flag(*read_only).bounded_str(shadow_of, MAX_NAME).finish()
            }
            ServerMessage::CacheAgreed { tiles } => Writer::new(0x0e, 4).u32(*tiles).finish(),
            ServerMessage::CacheStore { slot, rect, codec, data } => Writer::new(0x0f, 13 + data.len())
                .u32(*slot)
                .rect(*rect)
                .u8(codec.to_byte())
                .rest(data)
                .finish(),
            ServerMessage::CacheDraw { slot, x, y } => Writer::new(0x10, 8).u32(*slot).u16(*x).u16(*y).finish(),
            ServerMessage::Glyphs { atlas, ops } => {
                // INVARIANT: an atlas is a PNG of at most 4,096 glyphs of 32 × 32, far below 4 GiB.
                Writer::new(0x11, 4 + atlas.len() + ops.len()).u32(atlas.len() as u32).rest(atlas).rest(ops).finish()
            }
            ServerMessage::Video { stream, flags, rect, clip, data } => {
                let mut w = Writer::new(0x12, 14 + 8 * clip.len() + data.len());
                // INVARIANT: the display core never sends more than 255 clip rectangles.
                w.u16(*stream).u8(*flags).rect(*rect).u8(clip.len().min(255) as u8);
                for r in clip.iter().take(255) {
                    w.rect(*r);
                }
                w.rest(data).finish()
            }
        }
    }

    /// Decodes one WebSocket payload (used by the headless clients and the tests).
    pub fn decode(bytes: &[u8]) -> Result<ServerMessage, DecodeError> {
        let mut r = split(bytes)?;
        let message = match r.kind {
            0x01 => ServerMessage::Hello {
                version: r.u16()?,
                width: r.u16()?,
                height: r.u16()?,
                codecs: r.u32()?,
                max_in_flight: r.u8()?,
                name: r.short_str()?,
            },
            0x02 => {
                let rect = r.rect()?;
                let codec = TileCodec::from_byte(r.u8()?).ok_or(DecodeError::InvalidValue("codec"))?;
                ServerMessage::Tile { rect, codec, data: r.rest().to_vec() }
            }
            0x03 => ServerMessage::Fill { rect: r.rect()?, rgb: [r.u8()?, r.u8()?, r.u8()?] },
            0x04 => {
                let (src_x, src_y, width, height, x, y) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?, r.u16()?, r.u16()?);
                ServerMessage::Copy { src_x, src_y, dst: Rect { x, y, width, height } }
            }
            0x05 => ServerMessage::Cursor {
                hot_x: r.u16()?,
                hot_y: r.u16()?,
                width: r.u16()?,
                height: r.u16()?,
                png: r.rest().to_vec(),
            },
            0x06 => ServerMessage::Resize { width: r.u16()?, height: r.u16()? },
            0x07 => ServerMessage::EndFrame { seq: r.u32()? },
            0x08 => {
                let level = match r.u8()? {
                    0 => NoticeLevel::Info,
                    1 => NoticeLevel::Warning,
                    2 => NoticeLevel::Error,
                    _ => return Err(DecodeError::InvalidValue("notice level")),
                };
                ServerMessage::Notice { level, code: r.short_str()?, detail: r.short_str()? }
            }
            0x09 => ServerMessage::Clipboard { text: r.rest_str()? },
            0x0a => ServerMessage::Message {
                from: r.bounded_str("message sender", MAX_NAME)?,
                text: r.bounded_str("message text", MAX_MESSAGE_TEXT)?,
            },
            0x0b => ServerMessage::ControlRequest { id: r.u32()?, from: r.bounded_str("control requester", MAX_NAME)? },
            0x0c => {
                let id = r.u32()?;
                let state = r.u8()?;
                if state > control_state::ENDED {
                    return Err(DecodeError::InvalidValue("control state"));
                }
                ServerMessage::ControlState { id, state }
            }
            0x0d => ServerMessage::ViewMode {
                read_only: r.flag("read-only flag")?,
                shadow_of: r.bounded_str("shadowed user", MAX_NAME)?,
            },
            0x0e => ServerMessage::CacheAgreed { tiles: r.cache_tiles()? },
            0x0f => {
                let slot = r.u32()?;
                let rect = r.rect()?;
                let codec = r.u8()?;
                let slot = check_slot(slot)?;
                if !(1..=CACHE_TILE).contains(&rect.width) || !(1..=CACHE_TILE).contains(&rect.height) {
                    return Err(DecodeError::InvalidValue("cached tile size"));
                }
                let codec = match TileCodec::from_byte(codec) {
                    Some(TileCodec::Png) => TileCodec::Png,
                    // A lossy tile is never kept: the cache holds exact content only.
                    Some(TileCodec::Jpeg) => return Err(DecodeError::InvalidValue("cached tile codec")),
                    None => return Err(DecodeError::InvalidValue("codec")),
                };
                ServerMessage::CacheStore { slot, rect, codec, data: r.rest().to_vec() }
            }
            0x10 => {
                let (slot, x, y) = (r.u32()?, r.u16()?, r.u16()?);
                ServerMessage::CacheDraw { slot: check_slot(slot)?, x, y }
            }
            0x11 => {
                let atlas_len = r.u32()? as usize;
                let atlas = r.take(atlas_len)?.to_vec();
                ServerMessage::Glyphs { atlas, ops: r.rest().to_vec() }
            }
            0x12 => {
                let (stream, flags, rect) = (r.u16()?, r.u8()?, r.rect()?);
                let count = r.u8()?;
                let mut clip = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    clip.push(r.rect()?);
                }
                let data = r.rest().to_vec();
                if flags & !(VIDEO_KEY | VIDEO_END) != 0 {
                    return Err(DecodeError::InvalidValue("video flags"));
                }
                if rect.width == 0 || rect.height == 0 {
                    return Err(DecodeError::InvalidValue("video rectangle"));
                }
                if clip.iter().any(|c| c.width == 0 || c.height == 0 || !rect.contains(*c)) {
                    return Err(DecodeError::InvalidValue("video clip"));
                }
                if data.is_empty() && flags & VIDEO_END == 0 {
                    return Err(DecodeError::InvalidValue("empty video data"));
                }
                ServerMessage::Video { stream, flags, rect, clip, data }
            }
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish(message)
    }
}

impl ClientMessage {
    /// Encodes the message as one WebSocket payload.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            ClientMessage::Hello { version, width, height, codecs } => {
                Writer::new(0x81, 10).u16(*version).u16(*width).u16(*height).u32(*codecs).finish()
            }
            ClientMessage::FrameAck { seq } => Writer::new(0x82, 4).u32(*seq).finish(),
            ClientMessage::Key { down, keysym, scancode } => {
                Writer::new(0x83, 7).u8(u8::from(*down)).u32(*keysym).u16(*scancode).finish()
            }
            ClientMessage::Pointer { x, y, buttons } => Writer::new(0x84, 5).u16(*x).u16(*y).u8(*buttons).finish(),
            ClientMessage::ResizeRequest { width, height } => {
                Writer::new(0x85, 4).u16(*width).u16(*height).finish()
            }
            ClientMessage::Clipboard { text } => Writer::new(0x86, text.len()).rest(text.as_bytes()).finish(),
            ClientMessage::ControlReply { id, granted } => Writer::new(0x87, 5).u32(*id).flag(*granted).finish(),
            ClientMessage::ControlRequest => Writer::new(0x88, 0).finish(),
            ClientMessage::ControlRelease { id } => Writer::new(0x89, 4).u32(*id).finish(),
            ClientMessage::CacheOffer { tiles } => Writer::new(0x8a, 4).u32(*tiles).finish(),
        }
    }

    /// Decodes one WebSocket payload from a browser. Rejects anything malformed or oversized.
    pub fn decode(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
        if bytes.len() > MAX_CLIENT_MESSAGE {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let mut r = split(bytes)?;
        let message = match r.kind {
            0x81 => ClientMessage::Hello { version: r.u16()?, width: r.u16()?, height: r.u16()?, codecs: r.u32()? },
            0x82 => ClientMessage::FrameAck { seq: r.u32()? },
            0x83 => ClientMessage::Key { down: r.flag("key down flag")?, keysym: r.u32()?, scancode: r.u16()? },
            0x84 => ClientMessage::Pointer { x: r.u16()?, y: r.u16()?, buttons: r.u8()? },
            0x85 => ClientMessage::ResizeRequest { width: r.u16()?, height: r.u16()? },
            0x86 => ClientMessage::Clipboard { text: r.rest_str()? },
            0x87 => ClientMessage::ControlReply { id: r.u32()?, granted: r.flag("granted flag")? },
            0x88 => ClientMessage::ControlRequest,
            0x89 => ClientMessage::ControlRelease { id: r.u32()? },
            0x8a => ClientMessage::CacheOffer { tiles: r.cache_tiles()? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish(message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn server_samples() -> Vec<ServerMessage> {
        let rect = Rect { x: 1, y: 2, width: 300, height: 400 };
        vec![
            ServerMessage::Hello {
                version: VERSION,
                width: 1280,
                height: 800,
                codecs: CODEC_PNG,
                max_in_flight: 2,
                name: "Bureau de démonstration".into(),
            },
            ServerMessage::Tile { rect, codec: TileCodec::Png, data: vec![1, 2, 3] },
            ServerMessage::Fill { rect, rgb: [9, 8, 7] },
            ServerMessage::Copy { src_x: 5, src_y: 6, dst: rect },
            ServerMessage::Cursor { hot_x: 1, hot_y: 1, width: 0, height: 0, png: vec![] },
            ServerMessage::Resize { width: 1024, height: 768 },
            ServerMessage::EndFrame { seq: u32::MAX },
            ServerMessage::Notice { level: NoticeLevel::Error, code: "session.ended".into(), detail: "é".into() },
            ServerMessage::Clipboard { text: "€uro".into() },
            ServerMessage::Message { from: "Aïcha (assistance)".into(), text: "Je redémarre votre session à 12 h.".into() },
            ServerMessage::Message { from: String::new(), text: String::new() },
            ServerMessage::ControlRequest { id: 0x0102_0304, from: "Zoé".into() },
            ServerMessage::ControlState { id: 7, state: control_state::PENDING },
            ServerMessage::ControlState { id: 7, state: control_state::GRANTED },
            ServerMessage::ControlState { id: 7, state: control_state::REFUSED },
            ServerMessage::ControlState { id: u32::MAX, state: control_state::ENDED },
            ServerMessage::ViewMode { read_only: true, shadow_of: "Jérôme Martin".into() },
            ServerMessage::ViewMode { read_only: false, shadow_of: String::new() },
            ServerMessage::CacheAgreed { tiles: 2048 },
            ServerMessage::CacheAgreed { tiles: 0 },
            ServerMessage::CacheAgreed { tiles: MAX_CACHE_TILES },
            ServerMessage::CacheStore {
                slot: 7,
                rect: Rect { x: 1216, y: 768, width: 64, height: 32 },
                codec: TileCodec::Png,
                data: vec![4, 5, 6],
            },
            ServerMessage::CacheStore { slot: MAX_CACHE_TILES - 1, rect: Rect { x: 0, y: 0, width: 1, height: 1 }, codec: TileCodec::Png, data: vec![] },
            ServerMessage::CacheDraw { slot: 0, x: 64, y: 128 },
            ServerMessage::Tile { rect, codec: TileCodec::Jpeg, data: vec![0xff, 0xd8] },
            ServerMessage::Glyphs { atlas: vec![1, 2, 3], ops: vec![4, 5] },
            ServerMessage::Glyphs { atlas: vec![], ops: vec![] },
            ServerMessage::Video {
                stream: 3,
                flags: VIDEO_KEY,
                rect: Rect { x: 16, y: 32, width: 320, height: 180 },
                clip: vec![Rect { x: 16, y: 32, width: 320, height: 180 }, Rect { x: 20, y: 40, width: 1, height: 1 }],
                data: vec![0, 0, 0, 1, 0x67],
            },
            ServerMessage::Video { stream: u16::MAX, flags: VIDEO_END, rect: Rect { x: 0, y: 0, width: 2, height: 2 }, clip: vec![], data: vec![] },
            ServerMessage::CacheDraw { slot: MAX_CACHE_TILES - 1, x: u16::MAX, y: u16::MAX },
        ]
    }

    fn client_samples() -> Vec<ClientMessage> {
        vec![
            ClientMessage::Hello { version: VERSION, width: 800, height: 600, codecs: CODEC_PNG },
            ClientMessage::FrameAck { seq: 7 },
            ClientMessage::Key { down: true, keysym: 0x20ac, scancode: 0xe01d },
            ClientMessage::Pointer { x: 10, y: 20, buttons: 0b1_0001 },
            ClientMessage::ResizeRequest { width: 1920, height: 1080 },
            ClientMessage::Clipboard { text: "çà".into() },
            ClientMessage::ControlReply { id: 9, granted: true },
            ClientMessage::ControlReply { id: u32::MAX, granted: false },
            ClientMessage::ControlRequest,
            ClientMessage::ControlRelease { id: 0x0a0b_0c0d },
            ClientMessage::CacheOffer { tiles: 2048 },
            ClientMessage::CacheOffer { tiles: 0 },
            ClientMessage::CacheOffer { tiles: MAX_CACHE_TILES },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in server_samples() {
            assert_eq!(ServerMessage::decode(&message.encode()), Ok(message));
        }
        for message in client_samples() {
            assert_eq!(ClientMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn layout_matches_the_document() {
        let bytes = ClientMessage::Key { down: true, keysym: 0xe9, scancode: 0x03 }.encode();
        assert_eq!(bytes, [0x83, 1, 0xe9, 0, 0, 0, 0x03, 0]);
        let bytes = ServerMessage::EndFrame { seq: 0x0102_0304 }.encode();
        assert_eq!(bytes, [0x07, 4, 3, 2, 1]);
    }

    #[test]
    fn video_layout_matches_the_document_and_bad_videos_are_refused() {
        let video = ServerMessage::Video {
            stream: 0x0102,
            flags: VIDEO_KEY,
            rect: Rect { x: 0x0506, y: 0x0708, width: 320, height: 180 },
            clip: vec![Rect { x: 0x0506, y: 0x0708, width: 16, height: 16 }],
            data: vec![0xaa, 0xbb],
        };
        let bytes = video.encode();
        assert_eq!(
            bytes,
            [0x12, 2, 1, 1, 6, 5, 8, 7, 0x40, 1, 0xb4, 0, 1, 6, 5, 8, 7, 0x10, 0, 0x10, 0, 0xaa, 0xbb]
        );
        let with = |index: usize, value: u8| {
            let mut b = bytes.clone();
            b[index] = value;
            ServerMessage::decode(&b)
        };
        assert_eq!(with(3, 4), Err(DecodeError::InvalidValue("video flags")));
        let mut flat = bytes.clone();
        flat[10..12].copy_from_slice(&[0, 0]);
        assert_eq!(ServerMessage::decode(&flat), Err(DecodeError::InvalidValue("video rectangle")));
        assert!(matches!(with(17, 0x11), Ok(ServerMessage::Video { clip, .. }) if clip[0].width == 17));
        assert_eq!(with(13, 5), Err(DecodeError::InvalidValue("video clip")), "clip left of the rectangle");
        assert_eq!(with(17, 0), Err(DecodeError::InvalidValue("video clip")), "empty clip");
        // Empty data only ends a stream.
        assert_eq!(ServerMessage::decode(&bytes[..21]), Err(DecodeError::InvalidValue("empty video data")));
        let mut end = bytes[..21].to_vec();
        end[3] = VIDEO_END;
        assert!(matches!(ServerMessage::decode(&end), Ok(ServerMessage::Video { flags: VIDEO_END, .. })));
        // A clip count beyond what is there.
        assert_eq!(ServerMessage::decode(&bytes[..20]), Err(DecodeError::Truncated(0x12)));
    }

    #[test]
    fn glyphs_and_jpeg_layouts_match_the_document() {
        let bytes = ServerMessage::Glyphs { atlas: vec![0xaa, 0xbb], ops: vec![0xcc] }.encode();
        assert_eq!(bytes, [0x11, 2, 0, 0, 0, 0xaa, 0xbb, 0xcc]);
        // The atlas length is checked against what is there.
        assert_eq!(ServerMessage::decode(&[0x11, 3, 0, 0, 0, 0xaa, 0xbb]), Err(DecodeError::Truncated(0x11)));
        let tile = ServerMessage::Tile { rect: Rect { x: 0, y: 0, width: 1, height: 1 }, codec: TileCodec::Jpeg, data: vec![] };
        assert_eq!(tile.encode()[9], 2);
        // A JPEG is never kept in the tile cache.
        let mut store = ServerMessage::CacheStore { slot: 0, rect: Rect { x: 0, y: 0, width: 1, height: 1 }, codec: TileCodec::Png, data: vec![] }.encode();
        store[13] = 2;
        assert_eq!(ServerMessage::decode(&store), Err(DecodeError::InvalidValue("cached tile codec")));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        for message in client_samples() {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                // Messages whose last field is "the rest" stay valid when cut after the fixed part.
                if let Ok(decoded) = ClientMessage::decode(&bytes[..cut]) {
                    assert!(matches!(decoded, ClientMessage::Clipboard { .. }), "{decoded:?}");
                }
            }
        }
        assert_eq!(ClientMessage::decode(&[0x82, 1, 2]), Err(DecodeError::Truncated(0x82)));
        assert_eq!(ClientMessage::decode(&[]), Err(DecodeError::Empty));
    }

    #[test]
    fn hostile_client_messages_are_refused() {
        assert_eq!(ClientMessage::decode(&[0x01]), Err(DecodeError::UnknownType(0x01)));
        assert_eq!(ClientMessage::decode(&[0x82, 0, 0, 0, 0, 9]), Err(DecodeError::Trailing(0x82)));
        assert_eq!(ClientMessage::decode(&[0x86, 0xff, 0xfe]), Err(DecodeError::InvalidUtf8));
        assert_eq!(
            ClientMessage::decode(&[0x83, 2, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::InvalidValue("key down flag"))
        );
        let huge = vec![0x86; MAX_CLIENT_MESSAGE + 1];
        let error = ClientMessage::decode(&huge).unwrap_err();
        assert_eq!(error.close_code(), 1009);
    }

    #[test]
    fn helpdesk_layouts_match_the_document() {
        let message = ServerMessage::Message { from: "Lé".into(), text: "ok".into() }.encode();
        assert_eq!(message, [0x0a, 3, 0, b'L', 0xc3, 0xa9, 2, 0, b'o', b'k']);
        let request = ServerMessage::ControlRequest { id: 0x0102_0304, from: "A".into() }.encode();
        assert_eq!(request, [0x0b, 4, 3, 2, 1, 1, 0, b'A']);
        let state = ServerMessage::ControlState { id: 5, state: control_state::REFUSED }.encode();
        assert_eq!(state, [0x0c, 5, 0, 0, 0, 2]);
        let view = ServerMessage::ViewMode { read_only: true, shadow_of: "Bo".into() }.encode();
        assert_eq!(view, [0x0d, 1, 2, 0, b'B', b'o']);
        assert_eq!(ClientMessage::ControlReply { id: 0x0102_0304, granted: true }.encode(), [0x87, 4, 3, 2, 1, 1]);
        assert_eq!(ClientMessage::ControlRequest.encode(), [0x88]);
        assert_eq!(ClientMessage::ControlRelease { id: 6 }.encode(), [0x89, 6, 0, 0, 0]);
        assert_eq!(ClientMessage::decode(&[0x88]), Ok(ClientMessage::ControlRequest));
    }

    #[test]
    fn every_truncation_of_a_helpdesk_message_is_refused() {
        let server = server_samples().into_iter().filter(|m| {
            matches!(
                m,
                ServerMessage::Message { .. }
                    | ServerMessage::ControlRequest { .. }
                    | ServerMessage::ControlState { .. }
                    | ServerMessage::ViewMode { .. }
            )
        });
        for message in server {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                let error = ServerMessage::decode(&bytes[..cut]).unwrap_err();
                assert!(matches!(error, DecodeError::Truncated(_) | DecodeError::Empty), "{message:?} cut at {cut}");
            }
        }
        for bytes in [&[0x87, 1, 0, 0, 0][..], &[0x87], &[0x89, 1, 0, 0], &[0x89]] {
            assert_eq!(ClientMessage::decode(bytes), Err(DecodeError::Truncated(bytes[0])));
        }
    }

    #[test]
    fn hostile_helpdesk_messages_are_refused() {
        // Trailing bytes, including a payload after the empty ControlRequest.
        assert_eq!(ClientMessage::decode(&[0x88, b'{', b'}']), Err(DecodeError::Trailing(0x88)));
        assert_eq!(ClientMessage::decode(&[0x89, 1, 0, 0, 0, 0]), Err(DecodeError::Trailing(0x89)));
        assert_eq!(ClientMessage::decode(&[0x87, 1, 0, 0, 0, 1, 0]), Err(DecodeError::Trailing(0x87)));
        assert_eq!(ServerMessage::decode(&[0x0c, 1, 0, 0, 0, 1, 0]), Err(DecodeError::Trailing(0x0c)));
        let mut message = ServerMessage::Message { from: "a".into(), text: "b".into() }.encode();
        message.push(0);
        assert_eq!(ServerMessage::decode(&message), Err(DecodeError::Trailing(0x0a)));
        // Values out of range.
        assert_eq!(ClientMessage::decode(&[0x87, 1, 0, 0, 0, 2]), Err(DecodeError::InvalidValue("granted flag")));
        assert_eq!(ServerMessage::decode(&[0x0c, 1, 0, 0, 0, 4]), Err(DecodeError::InvalidValue("control state")));
        assert_eq!(ServerMessage::decode(&[0x0d, 2, 0, 0]), Err(DecodeError::InvalidValue("read-only flag")));
        assert_eq!(ServerMessage::decode(&[0x0b, 1, 0, 0, 0, 1, 0, 0xff]), Err(DecodeError::InvalidUtf8));
        // Unknown types next to the new ones; a client type is not a server type and back.
        for kind in [0x13, 0x87, 0x88, 0xff] {
            assert_eq!(ServerMessage::decode(&[kind]), Err(DecodeError::UnknownType(kind)));
        }
        for kind in [0x8b, 0x0a, 0x0b, 0x00] {
            assert_eq!(ClientMessage::decode(&[kind]), Err(DecodeError::UnknownType(kind)));
        }
    }

    /// A Message with a `from` of `from_chars` and a text of `text_chars` copies of `c`, as bytes
    /// written by hand (the encoder would cut them).
    fn raw_message(c: char, from_chars: usize, text_chars: usize) -> Vec<u8> {
        let mut bytes = vec![0x0a];
        for n in [from_chars, text_chars] {
            let field = c.to_string().repeat(n);
            bytes.extend_from_slice(&u16::try_from(field.len()).unwrap().to_le_bytes());
            bytes.extend_from_slice(field.as_bytes());
        }
        bytes
    }

    #[test]
    fn helpdesk_texts_are_bounded_in_characters() {
        // At the limits, with multi-byte characters: accepted.
        for c in ['a', 'é', '€', '😀'] {
            let ServerMessage::Message { from, text } = ServerMessage::decode(&raw_message(c, MAX_NAME, MAX_MESSAGE_TEXT)).unwrap()
            else {
                panic!("not a Message")
            };
            assert_eq!((from.chars().count(), text.chars().count()), (MAX_NAME, MAX_MESSAGE_TEXT));
        }
        // One character more: refused, with 1009 (too big).
        let error = ServerMessage::decode(&raw_message('é', MAX_NAME, MAX_MESSAGE_TEXT + 1)).unwrap_err();
        assert_eq!(error, DecodeError::TextTooLong { field: "message text", max: MAX_MESSAGE_TEXT });
        assert_eq!(error.close_code(), 1009);
        let error = ServerMessage::decode(&raw_message('a', MAX_NAME + 1, 0)).unwrap_err();
        assert_eq!(error, DecodeError::TextTooLong { field: "message sender", max: MAX_NAME });
        let mut request = vec![0x0b, 1, 0, 0, 0];
        request.extend_from_slice(&129u16.to_le_bytes());
        request.extend_from_slice(&[b'x'; 129]);
        assert!(matches!(ServerMessage::decode(&request), Err(DecodeError::TextTooLong { .. })));
        let mut view = vec![0x0d, 1];
        view.extend_from_slice(&(129u16 * 2).to_le_bytes());
        view.extend_from_slice("é".repeat(129).as_bytes());
        assert!(matches!(ServerMessage::decode(&view), Err(DecodeError::TextTooLong { .. })));

        // The encoder cuts over-long texts to the limit on a character boundary, so what the
        // gateway sends always decodes.
        let long = ServerMessage::Message { from: "ß".repeat(500), text: "😀".repeat(5000) };
        let ServerMessage::Message { from, text } = ServerMessage::decode(&long.encode()).unwrap() else { panic!() };
        assert_eq!(from, "ß".repeat(MAX_NAME));
        assert_eq!(text, "😀".repeat(MAX_MESSAGE_TEXT));
        let long = ServerMessage::ViewMode { read_only: true, shadow_of: "x".repeat(200) };
        assert_eq!(ServerMessage::decode(&long.encode()), Ok(ServerMessage::ViewMode { read_only: true, shadow_of: "x".repeat(128) }));
        let long = ServerMessage::ControlRequest { id: 1, from: "é".repeat(200) };
        assert_eq!(ServerMessage::decode(&long.encode()), Ok(ServerMessage::ControlRequest { id: 1, from: "é".repeat(128) }));
    }

    #[test]
    fn cache_layouts_match_the_document() {
        assert_eq!(ClientMessage::CacheOffer { tiles: 0xff02 }.encode(), [0x8a, 2, 0xff, 0, 0]);
        assert_eq!(ServerMessage::CacheAgreed { tiles: 2048 }.encode(), [0x0e, 0, 8, 0, 0]);
        let store = ServerMessage::CacheStore {
            slot: 0xff01,
            rect: Rect { x: 0x0506, y: 0x0708, width: 64, height: 32 },
            codec: TileCodec::Png,
            data: vec![0xaa, 0xbb],
        };
        assert_eq!(store.encode(), [0x0f, 1, 0xff, 0, 0, 6, 5, 8, 7, 64, 0, 32, 0, 1, 0xaa, 0xbb]);
        let draw = ServerMessage::CacheDraw { slot: 0xff01, x: 0x0506, y: 0x0708 };
        assert_eq!(draw.encode(), [0x10, 1, 0xff, 0, 0, 6, 5, 8, 7]);
        // What the bytes decode to: the same values.
        for message in [store, draw] {
            assert_eq!(ServerMessage::decode(&message.encode()), Ok(message));
        }
    }

    #[test]
    fn every_truncation_of_a_cache_message_is_refused() {
        for message in [
            ServerMessage::CacheAgreed { tiles: 9 },
            ServerMessage::CacheDraw { slot: 9, x: 1, y: 2 },
            ServerMessage::CacheStore { slot: 9, rect: Rect { x: 1, y: 2, width: 3, height: 4 }, codec: TileCodec::Png, data: vec![1] },
        ] {
            let bytes = message.encode();
            // CacheStore's data is "the rest of the message": only cuts inside the 14-byte fixed part fail.
            let fixed = if matches!(message, ServerMessage::CacheStore { .. }) { 14 } else { bytes.len() };
            for cut in 0..fixed {
                let error = ServerMessage::decode(&bytes[..cut]).unwrap_err();
                assert!(matches!(error, DecodeError::Truncated(_) | DecodeError::Empty), "{message:?} cut at {cut}");
            }
        }
        for cut in 0..5 {
            assert!(ClientMessage::decode(&ClientMessage::CacheOffer { tiles: 1 }.encode()[..cut]).is_err());
        }
    }

    #[test]
    fn hostile_cache_messages_are_refused() {
        // Counts and slots beyond the protocol's bound.
        let over = (MAX_CACHE_TILES + 1).to_le_bytes();
        let at = MAX_CACHE_TILES.to_le_bytes();
        let offer = [&[0x8a][..], &over].concat();
        assert_eq!(ClientMessage::decode(&offer), Err(DecodeError::InvalidValue("number of cache tiles")));
        let offer = [&[0x8a][..], &u32::MAX.to_le_bytes()].concat();
        assert_eq!(ClientMessage::decode(&offer).unwrap_err().close_code(), 1007);
        let agreed = [&[0x0e][..], &over].concat();
        assert_eq!(ServerMessage::decode(&agreed), Err(DecodeError::InvalidValue("number of cache tiles")));
        let draw = [&[0x10][..], &at, &[0, 0, 0, 0]].concat();
        assert_eq!(ServerMessage::decode(&draw), Err(DecodeError::InvalidValue("cache slot")));
        let store = |slot: u32, width: u16, height: u16, codec: u8| {
            let mut bytes = vec![0x0f];
            bytes.extend_from_slice(&slot.to_le_bytes());
            for v in [0, 0, width, height] {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            bytes.push(codec);
            bytes.extend_from_slice(b"png");
            ServerMessage::decode(&bytes)
        };
        assert!(store(0, 64, 64, 1).is_ok());
        assert!(store(0, 1, 1, 1).is_ok());
        assert_eq!(store(MAX_CACHE_TILES, 64, 64, 1), Err(DecodeError::InvalidValue("cache slot")));
        assert_eq!(store(u32::MAX, 64, 64, 1), Err(DecodeError::InvalidValue("cache slot")));
        for (width, height) in [(65, 64), (64, 65), (0, 8), (8, 0), (u16::MAX, u16::MAX)] {
            assert_eq!(store(0, width, height, 1), Err(DecodeError::InvalidValue("cached tile size")), "{width}x{height}");
        }
        assert_eq!(store(0, 8, 8, 2), Err(DecodeError::InvalidValue("cached tile codec")));
        assert_eq!(store(0, 8, 8, 3), Err(DecodeError::InvalidValue("codec")));
        // Trailing bytes after the fixed-size ones.
        assert_eq!(ClientMessage::decode(&[0x8a, 1, 0, 0, 0, 0]), Err(DecodeError::Trailing(0x8a)));
        assert_eq!(ServerMessage::decode(&[0x0e, 1, 0, 0, 0, 0]), Err(DecodeError::Trailing(0x0e)));
        assert_eq!(ServerMessage::decode(&[0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0]), Err(DecodeError::Trailing(0x10)));
        // A client type is not a server type and back.
        assert_eq!(ServerMessage::decode(&[0x8a, 1, 0, 0, 0]), Err(DecodeError::UnknownType(0x8a)));
        assert_eq!(ClientMessage::decode(&[0x0e, 1, 0, 0, 0]), Err(DecodeError::UnknownType(0x0e)));
    }

    #[test]
    fn long_notice_text_is_cut_on_a_char_boundary() {
        let detail = "é".repeat(40_000);
        let bytes = ServerMessage::Notice { level: NoticeLevel::Info, code: "x".into(), detail }.encode();
        let ServerMessage::Notice { detail, .. } = ServerMessage::decode(&bytes).unwrap() else { panic!() };
        assert!(detail.len() <= usize::from(u16::MAX));
        assert!(detail.chars().all(|c| c == 'é'));
    }
}
