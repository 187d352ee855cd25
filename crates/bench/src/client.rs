//! The headless benchmark client: speaks the viewer protocol as the browser does, draws into a
//! [`Canvas`], acknowledges every `EndFrame` at once, and timestamps every frame.
//!
//! [`FrameTracker`] is the sans-IO part (bytes and instants in, acknowledgements and records
//! out); [`BenchClient`] runs it on a WebSocket in a task of its own.

use crate::echo::{Area, Block, find_cursor_block};
use anyhow::{Context, Result, bail};
use bascule_display::Canvas;
use bascule_proto::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// What the client decodes, as the browser with WebCodecs: PNG, JPEG, glyphs and H.264.
const CODECS: u32 =
    bascule_proto::CODEC_PNG | bascule_proto::CODEC_JPEG | bascule_proto::CODEC_GLYPHS | bascule_proto::CODEC_H264;

/// The colour of xterm's text cursor with its default resources (the foreground, black).
pub const CURSOR_RGB: [u8; 3] = [0, 0, 0];

/// One frame as the client received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    /// Its `EndFrame` sequence number.
    pub seq: u32,
    /// When its `EndFrame` arrived (and was drawn).
    pub at: Instant,
    /// When its first message arrived.
    pub first_at: Instant,
    /// How many drawing messages (tiles, fills, copies) it had.
    pub draws: u32,
    /// Bytes of its WebSocket payloads, `EndFrame` included.
    pub bytes: u64,
    /// The text cursor block found in the probed area after this frame, when a probe was set.
    pub cursor: Option<Block>,
}

impl FrameRecord {
    /// Whether the frame drew anything.
    pub fn changed(&self) -> bool {
        self.draws > 0
    }
}

/// The sans-IO client: decodes server messages, draws them, and records frames.
#[derive(Debug)]
pub struct FrameTracker {
    canvas: Canvas,
    hello: Option<(u16, u16, String)>,
    notices: Vec<(String, String)>,
    frames: Vec<FrameRecord>,
    /// The frame being received: first arrival, drawing messages, bytes.
    current: Option<(Instant, u32, u64)>,
    bytes: u64,
    /// Per kind of message: (messages, bytes).
    by_kind: std::collections::BTreeMap<&'static str, (u64, u64)>,
    probe: Option<Area>,
    closed: Option<String>,
}

impl Default for FrameTracker {
    fn default() -> Self {
        FrameTracker::new()
    }
}

impl FrameTracker {
    /// A tracker before the `ServerHello`.
    pub fn new() -> FrameTracker {
        let mut canvas = Canvas::new(0, 0);
        canvas.announce_codecs(CODECS);
        FrameTracker {
            canvas,
            hello: None,
            notices: Vec::new(),
            frames: Vec::new(),
            current: None,
            bytes: 0,
            by_kind: std::collections::BTreeMap::new(),
            probe: None,
            closed: None,
        }
    }

    /// Handles one binary WebSocket message received at `now`: decodes and draws it. Returns the
    /// acknowledgement to send when it ends a frame.
    pub fn handle(&mut self, bytes: &[u8], now: Instant) -> Result<Option<ClientMessage>> {
        self.bytes += bytes.len() as u64;
        let message =
            ServerMessage::decode(bytes).context("the gateway sent an undecodable message")?;
        self.canvas
            .apply(&message)
            .with_context(|| format!("drawing {}", describe(&message)))?;
        if std::env::var_os("BASCULE_BENCH_TRACE").is_some() {
            eprintln!("trace: {} {} bytes {}", kind_of(&message), bytes.len(), describe(&message).chars().take(80).collect::<String>());
        }
        let entry = self.by_kind.entry(kind_of(&message)).or_default();
        entry.0 += 1;
        entry.1 += bytes.len() as u64;
        let (first_at, draws, frame_bytes) = self.current.get_or_insert((now, 0, 0));
        let first_at = *first_at;
        *frame_bytes += bytes.len() as u64;
        match &message {
            ServerMessage::Hello {
                width,
                height,
                name,
                ..
            } => {
                self.hello = Some((*width, *height, name.clone()));
            }
            ServerMessage::Notice { code, detail, .. } => {
                self.notices.push((code.clone(), detail.clone()))
            }
            ServerMessage::EndFrame { seq } => {
                let (draws, bytes) = (*draws, *frame_bytes);
                self.current = None;
                let cursor = if draws > 0 { self.probe_cursor() } else { None };
                self.frames.push(FrameRecord {
                    seq: *seq,
                    at: now,
                    first_at,
                    draws,
                    bytes,
                    cursor,
                });
                return Ok(Some(ClientMessage::FrameAck { seq: *seq }));
            }
            other if draws_pixels(other) => *draws += 1,
            _ => {}
        }
        Ok(None)
    }

    /// Offers a tile cache of `tiles` tiles, as the browser does right after its hello: returns
    /// the `CacheOffer` to send.
    pub fn offer_cache(&mut self, tiles: u32) -> ClientMessage {
        self.canvas.offer_cache(tiles)
    }

    /// The tile cache's counters so far: `(slots agreed, CacheStore drawn, CacheDraw drawn)`;
    /// `None` before a `CacheAgreed`.
    pub fn cache_counters(&self) -> Option<(u32, u64, u64)> {
        let slots = self.canvas.cached_tiles()?.len();
        let slots = u32::try_from(slots).unwrap_or(u32::MAX);
        Some((slots, self.canvas.cache_stores(), self.canvas.cache_hits()))
    }

    /// Glyphs so far: (stored, drawn in all, stored included).
    pub fn glyph_counters(&self) -> (u64, u64) {
        (self.canvas.glyph_stores(), self.canvas.glyph_draws())
    }

    /// Messages and bytes so far per kind of message ("tile/png", "glyphs", "cache/store", …).
    pub fn bytes_by_kind(&self) -> Vec<(&'static str, u64, u64)> {
        self.by_kind.iter().map(|(k, (n, b))| (*k, *n, *b)).collect()
    }

    /// Looks for the text cursor in `area` after every frame that draws (`None`: stop looking).
    pub fn set_probe(&mut self, area: Option<Area>) {
        self.probe = area;
    }

    /// The text cursor block in the probed area of the canvas as it is now.
    pub fn probe_cursor(&self) -> Option<Block> {
        let area = self.probe?;
        let (width, _) = self.canvas.framebuffer().size();
        find_cursor_block(
            self.canvas.framebuffer().rgba(),
            usize::from(width),
            area,
            CURSOR_RGB,
        )
    }

    /// `(width, height, name)` of the `ServerHello`, once received.
    pub fn hello(&self) -> Option<&(u16, u16, String)> {
        self.hello.as_ref()
    }

    /// Every frame so far, in order.
    pub fn frames(&self) -> &[FrameRecord] {
        &self.frames
    }

    /// `(code, detail)` of every notice, in order.
    pub fn notices(&self) -> &[(String, String)] {
        &self.notices
    }

    /// Payload bytes of every message received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the last message received was an `EndFrame` (the canvas shows a whole frame).
    pub fn between_frames(&self) -> bool {
        self.current.is_none()
    }

    /// The canvas as `(width, height, rgba)`.
    pub fn picture(&self) -> (u32, u32, &[u8]) {
        let (width, height) = self.canvas.framebuffer().size();
        (
            u32::from(width),
            u32::from(height),
            self.canvas.framebuffer().rgba(),
        )
    }

    /// Why the connection ended, once it has.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    fn set_closed(&mut self, why: String) {
        self.closed.get_or_insert(why);
    }
}

/// Whether a message changes the canvas's pixels.
fn draws_pixels(message: &ServerMessage) -> bool {
    matches!(
        message,
        ServerMessage::Tile { .. }
            | ServerMessage::Fill { .. }
            | ServerMessage::Copy { .. }
            | ServerMessage::CacheStore { .. }
            | ServerMessage::CacheDraw { .. }
            | ServerMessage::Glyphs { .. }
            | ServerMessage::Video { .. }
            | ServerMessage::Resize { .. }
    )
}

/// A short name for the kind of a message, for the byte breakdown.
fn kind_of(message: &ServerMessage) -> &'static str {
    match message {
        ServerMessage::Tile { codec: bascule_proto::TileCodec::Jpeg, .. } => "tile/jpeg",
        ServerMessage::Tile { .. } => "tile/png",
        ServerMessage::Fill { .. } => "fill",
        ServerMessage::Copy { .. } => "copy",
        ServerMessage::CacheStore { .. } => "cache/store",
        ServerMessage::CacheDraw { .. } => "cache/draw",
        ServerMessage::Glyphs { .. } => "glyphs",
        ServerMessage::Video { .. } => "video",
        ServerMessage::Cursor { .. } => "cursor",
        ServerMessage::EndFrame { .. } => "end-frame",
        _ => "other",
    }
}

fn describe(message: &ServerMessage) -> String {
    match message {
        ServerMessage::Tile { rect, .. } => format!("tile {rect:?}"),
        ServerMessage::Fill { rect, .. } => format!("fill {rect:?}"),
        ServerMessage::Copy { src_x, src_y, dst } => format!("copy ({src_x}, {src_y}) to {dst:?}"),
        other => format!("{other:?}"),
    }
}

/// A running benchmark client: a task reads the WebSocket, feeds the [`FrameTracker`] and sends
/// the acknowledgements; the benchmark reads the tracker meanwhile.
#[derive(Debug)]
pub struct BenchClient {
    tracker: Arc<Mutex<FrameTracker>>,
    task: JoinHandle<()>,
}

impl BenchClient {
    /// Sends the `ClientHello` (version 0, `width` × `height`, PNG), then, as the browser does,
    /// a `CacheOffer` of `cache_tiles` tiles (none when 0), and starts reading.
    pub async fn start<S>(
        mut ws: WebSocketStream<S>,
        width: u16,
        height: u16,
        cache_tiles: u32,
    ) -> Result<BenchClient>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let hello = ClientMessage::Hello {
            version: bascule_proto::VERSION,
            width,
            height,
            codecs: CODECS,
        };
        ws.send(Message::Binary(hello.encode().into()))
            .await
            .context("sending the ClientHello")?;
        let mut tracker = FrameTracker::new();
        if cache_tiles > 0 {
            let offer = tracker.offer_cache(cache_tiles);
            ws.send(Message::Binary(offer.encode().into()))
                .await
                .context("sending the CacheOffer")?;
        }
        let tracker = Arc::new(Mutex::new(tracker));
        let task = tokio::spawn(read_loop(ws, Arc::clone(&tracker)));
        Ok(BenchClient { tracker, task })
    }

    /// The tracker, locked. Keep the guard short: the reading task waits for it.
    pub fn tracker(&self) -> MutexGuard<'_, FrameTracker> {
        // A poisoned lock means the reading task panicked; its data is still what it drew.
        self.tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fails when the connection has ended.
    pub fn check_open(&self) -> Result<()> {
        let tracker = self.tracker();
        if let Some(why) = tracker.closed() {
            bail!(
                "the viewer connection ended: {why} (notices: {:?})",
                tracker.notices()
            );
        }
        Ok(())
    }
}

impl Drop for BenchClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_loop<S>(mut ws: WebSocketStream<S>, tracker: Arc<Mutex<FrameTracker>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let lock = || {
        tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    loop {
        let why = match ws.next().await {
            None => "the connection ended without a close frame".to_owned(),
            Some(Err(error)) => format!("WebSocket error: {error}"),
            Some(Ok(Message::Binary(bytes))) => {
                let handled = lock().handle(&bytes, Instant::now());
                match handled {
                    Ok(None) => continue,
                    Ok(Some(ack)) => match ws.send(Message::Binary(ack.encode().into())).await {
                        Ok(()) => continue,
                        Err(error) => format!("sending an acknowledgement: {error}"),
                    },
                    Err(error) => format!("{error:#}"),
                }
            }
            Some(Ok(Message::Close(frame))) => match frame {
                Some(frame) => format!(
                    "closed by the gateway: {} {}",
                    u16::from(frame.code),
                    frame.reason
                ),
                None => "closed by the gateway".to_owned(),
            },
            Some(Ok(Message::Text(text))) => format!("the gateway sent a text message: {text:?}"),
            Some(Ok(_)) => continue,
        };
        lock().set_closed(why);
        return;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use bascule_proto::{NoticeLevel, Rect, TileCodec};
    use std::time::Duration;

    fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_image_data(&rgb.repeat((width * height) as usize))
            .unwrap();
        writer.finish().unwrap();
        out
    }

    fn pixel(tracker: &FrameTracker, x: usize, y: usize) -> [u8; 4] {
        let (width, _, rgba) = tracker.picture();
        let i = (y * width as usize + x) * 4;
        rgba[i..i + 4].try_into().unwrap()
    }

    /// A scripted gateway: hello, a notice, a first frame (fill + PNG tile), an empty frame, then
    /// a frame with a copy that moves a 4×8 black block (a text cursor).
    #[test]
    fn decodes_a_scripted_stream_and_acknowledges_every_frame() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let rect = |x, y, width, height| Rect {
            x,
            y,
            width,
            height,
        };
        let script = [
            ServerMessage::Hello {
                version: 0,
                width: 32,
                height: 16,
                codecs: bascule_proto::CODEC_PNG | bascule_proto::CODEC_JPEG | bascule_proto::CODEC_GLYPHS,
                max_in_flight: 2,
                name: "desk".into(),
            },
            ServerMessage::Notice {
                level: NoticeLevel::Info,
                code: "session.connecting".into(),
                detail: String::new(),
            },
            ServerMessage::Fill {
                rect: rect(0, 0, 32, 16),
                rgb: [255, 255, 255],
            },
            ServerMessage::Tile {
                rect: rect(2, 4, 4, 8),
                codec: TileCodec::Png,
                data: png(4, 8, [0, 0, 0]),
            },
            ServerMessage::EndFrame { seq: 1 },
            ServerMessage::EndFrame { seq: 2 },
            ServerMessage::Copy {
                src_x: 2,
                src_y: 4,
                dst: rect(10, 4, 4, 8),
            },
            ServerMessage::Fill {
                rect: rect(2, 4, 4, 8),
                rgb: [255, 255, 255],
            },
            ServerMessage::EndFrame { seq: 3 },
            // The tile cache: a red 2×2 tile stored in slot 5, then drawn again by slot.
            ServerMessage::CacheAgreed { tiles: 16 },
            ServerMessage::CacheStore {
                slot: 5,
                rect: rect(28, 0, 2, 2),
                codec: TileCodec::Png,
                data: png(2, 2, [255, 0, 0]),
            },
            ServerMessage::EndFrame { seq: 4 },
            ServerMessage::CacheDraw {
                slot: 5,
                x: 30,
                y: 14,
            },
            ServerMessage::EndFrame { seq: 5 },
        ];
        let mut tracker = FrameTracker::new();
        assert_eq!(
            tracker.offer_cache(64),
            ClientMessage::CacheOffer { tiles: 64 }
        );
        assert_eq!(tracker.cache_counters(), None);
        tracker.set_probe(Some(Area {
            x: 0,
            y: 0,
            width: 32,
            height: 16,
        }));
        let mut acks = Vec::new();
        let mut total = 0;
        for (i, message) in script.iter().enumerate() {
            let bytes = message.encode();
            total += bytes.len() as u64;
            if let Some(ack) = tracker.handle(&bytes, at(10 * i as u64)).unwrap() {
                acks.push(ack);
            }
        }
        assert_eq!(
            acks,
            [1, 2, 3, 4, 5]
                .map(|seq| ClientMessage::FrameAck { seq })
                .to_vec(),
            "one cumulative acknowledgement per EndFrame, in order"
        );
        assert_eq!(tracker.hello(), Some(&(32, 16, "desk".to_owned())));
        assert_eq!(
            tracker.notices(),
            [("session.connecting".to_owned(), String::new())]
        );
        assert_eq!(tracker.bytes(), total);
        assert!(tracker.between_frames());
        let frames = tracker.frames();
        assert_eq!(frames.len(), 5);
        // Frame 1 starts with the hello (its first message) and ends at message 4.
        assert_eq!(
            (
                frames[0].seq,
                frames[0].first_at,
                frames[0].at,
                frames[0].draws
            ),
            (1, at(0), at(40), 2)
        );
        assert_eq!(
            (frames[1].seq, frames[1].draws, frames[1].changed()),
            (2, 0, false)
        );
        assert_eq!(
            frames[1].cursor, None,
            "frames that draw nothing are not probed"
        );
        assert_eq!(
            (frames[2].first_at, frames[2].at, frames[2].draws),
            (at(60), at(80), 2)
        );
        assert_eq!(
            frames[0].cursor,
            Some(Block {
                x: 2,
                y: 4,
                width: 4,
                height: 8
            })
        );
        assert_eq!(
            frames[2].cursor,
            Some(Block {
                x: 10,
                y: 4,
                width: 4,
                height: 8
            })
        );
        assert_eq!(frames.iter().map(|f| f.bytes).sum::<u64>(), total);
        assert_eq!(pixel(&tracker, 3, 5), [255, 255, 255, 255]);
        assert_eq!(pixel(&tracker, 11, 11), [0, 0, 0, 255]);
        // The cache: the agreement draws nothing, the store and the draw do.
        assert_eq!((frames[3].draws, frames[4].draws), (1, 1));
        assert_eq!(tracker.cache_counters(), Some((16, 1, 1)));
        assert_eq!(pixel(&tracker, 29, 1), [255, 0, 0, 255]);
        assert_eq!(pixel(&tracker, 31, 15), [255, 0, 0, 255]);
        assert_eq!(pixel(&tracker, 29, 15), [255, 255, 255, 255]);
    }

    #[test]
    fn refuses_garbage_and_out_of_bounds_drawing() {
        let mut tracker = FrameTracker::new();
        assert!(tracker.handle(&[0xff, 1, 2], Instant::now()).is_err());
        let hello = ServerMessage::Hello {
            version: 0,
            width: 8,
            height: 8,
            codecs: 1,
            max_in_flight: 2,
            name: String::new(),
        };
        tracker.handle(&hello.encode(), Instant::now()).unwrap();
        let outside = ServerMessage::Fill {
            rect: Rect {
                x: 4,
                y: 4,
                width: 8,
                height: 8,
            },
            rgb: [1, 2, 3],
        };
        let error = tracker
            .handle(&outside.encode(), Instant::now())
            .unwrap_err();
        assert!(format!("{error:#}").contains("fill"), "{error:#}");
    }
}
