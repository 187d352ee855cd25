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

/// Codec bit for PNG tiles in the `codecs` masks of the hellos.
pub const CODEC_PNG: u32 = 1;

/// The codec byte of a [`ServerMessage::Tile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TileCodec {
    /// A PNG image with no colour profile, decoded natively by the browser.
    Png,
}

impl TileCodec {
    fn to_byte(self) -> u8 {
        match self {
            TileCodec::Png => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<TileCodec> {
        match byte {
            1 => Some(TileCodec::Png),
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
}

impl DecodeError {
    /// The WebSocket close code that goes with this error.
    pub fn close_code(&self) -> u16 {
        match self {
            DecodeError::TooLarge(_) => 1009,
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
            0x83 => {
                let down = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidValue("key down flag")),
                };
                ClientMessage::Key { down, keysym: r.u32()?, scancode: r.u16()? }
            }
            0x84 => ClientMessage::Pointer { x: r.u16()?, y: r.u16()?, buttons: r.u8()? },
            0x85 => ClientMessage::ResizeRequest { width: r.u16()?, height: r.u16()? },
            0x86 => ClientMessage::Clipboard { text: r.rest_str()? },
            other => return Err(DecodeError::UnknownType(other)),
        };
        r.finish(message)
    }
}

#[cfg(test)]
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
    fn long_notice_text_is_cut_on_a_char_boundary() {
        let detail = "é".repeat(40_000);
        let bytes = ServerMessage::Notice { level: NoticeLevel::Info, code: "x".into(), detail }.encode();
        let ServerMessage::Notice { detail, .. } = ServerMessage::decode(&bytes).unwrap() else { panic!() };
        assert!(detail.len() <= usize::from(u16::MAX));
        assert!(detail.chars().all(|c| c == 'é'));
    }
}
