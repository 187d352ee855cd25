//! The oracles: one function per fuzz target, panicking only on a broken invariant.

use bascule_display::{Canvas, CanvasError, Framebuffer, TileKey, decode_png};
use bascule_proto::{
    CACHE_TILE, ClientMessage, DecodeError, MAX_CACHE_TILES, MAX_CLIENT_MESSAGE, MAX_MESSAGE_TEXT,
    MAX_NAME, Rect, ServerMessage, TileCodec, control_state,
};
use bascule_rfb::{Client, Config, Error, Event};

use crate::wire::{FB_HEIGHT, FB_WIDTH, handshake_none};

/// Password configured for the handshake variant, so that VNC Authentication is reachable.
const PASSWORD: &str = "fuzzpass";

/// Largest desktop (in pixels) the canvas oracle resizes to; bigger Hello/Resize messages are
/// decoded and round-tripped but not applied, since the canvas allocates `width * height * 4`
/// bytes by design and a 65535x65535 canvas would only measure the fuzzer's memory limit.
const MAX_CANVAS_PIXELS: usize = 256 * 256;

// ---------------------------------------------------------------------------------------------
// RFB client
// ---------------------------------------------------------------------------------------------

/// Fuzz target `rfb_server_stream`: `data` as bytes from an RFB server, twice.
///
/// 1. [`rfb_after_handshake`]: after a valid 3.8 handshake (security None, 64x48 framebuffer),
///    so that the fuzzer spends its time in the server-message and encoding parsers.
/// 2. [`rfb_from_start`]: from the first byte, with a password configured, so that the version,
///    security, VNC Authentication and ServerInit parsers are fuzzed too.
pub fn rfb_server_stream(data: &[u8]) {
    rfb_after_handshake(data);
    rfb_from_start(data);
}

/// `data` after a valid handshake; see [`rfb_server_stream`].
pub fn rfb_after_handshake(data: &[u8]) {
    let prefix = handshake_none(FB_WIDTH, FB_HEIGHT, "fuzz");
    let outcome = compare_chunkings(Config::default(), Some(&prefix), data);
    assert!(
        matches!(
            outcome.events.first(),
            Some(Event::Connected {
                width: FB_WIDTH,
                height: FB_HEIGHT,
                ..
            })
        ),
        "a valid handshake must produce Connected first, got {:?}",
        outcome.events.first()
    );
}

/// `data` from the first byte of the session, with a password; see [`rfb_server_stream`].
pub fn rfb_from_start(data: &[u8]) {
    let config = Config {
        password: Some(PASSWORD.into()),
        jpeg_quality: Some(7),
        use_qemu_key_events: true,
        ..Config::default()
    };
    let outcome = compare_chunkings(config, None, data);
    if !outcome.transmit.is_empty() {
        // The first thing a client ever sends is its ProtocolVersion.
        let version = outcome.transmit.get(..12).unwrap_or(&outcome.transmit);
        assert!(
            [&b"RFB 003.003\n"[..], b"RFB 003.007\n", b"RFB 003.008\n"].contains(&version),
            "first transmit is not a ProtocolVersion: {version:?}"
        );
    }
}

/// Everything a run produced.
#[derive(Debug)]
struct Outcome {
    events: Vec<Event>,
    transmit: Vec<u8>,
    error: Option<Error>,
}

/// Runs `data` once in a single chunk and once in several chunks (split points derived from the
/// first bytes of `data`), checks the invariants on both, and checks that both runs saw the same
/// events, sent the same bytes and ended with the same error: `Client::handle_input` accepts
/// "bytes in any chunking".
fn compare_chunkings(config: Config, prefix: Option<&[u8]>, data: &[u8]) -> Outcome {
    let whole = run(config.clone(), prefix, &[data]);
    let chunks = split(data);
    let chunked = run(config, prefix, &chunks);
    assert_eq!(
        whole.error,
        chunked.error,
        "the error depends on the chunking {:?}",
        chunk_lens(&chunks)
    );
    assert!(
        whole.events == chunked.events,
        "the events depend on the chunking {:?}: {} events whole, {} chunked",
        chunk_lens(&chunks),
        whole.events.len(),
        chunked.events.len()
    );
    assert!(
        whole.transmit == chunked.transmit,
        "the transmitted bytes depend on the chunking"
    );
    whole
}

fn chunk_lens(chunks: &[&[u8]]) -> Vec<usize> {
    chunks.iter().map(|c| c.len()).collect()
}

/// Splits `data` at up to three points derived from a hash of its first 8 bytes; short inputs
/// whose hash has the top bit set are fed one byte at a time.
fn split(data: &[u8]) -> Vec<&[u8]> {
    let n = data.len();
    if n < 2 {
        return vec![data];
    }
    let mut h: u32 = 0x811c_9dc5;
    for &b in data.iter().take(8) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    if h & 0x8000_0000 != 0 && n <= 512 {
        return data.chunks(1).collect();
    }
    let mut cuts: Vec<usize> = [h, h >> 10, h >> 20]
        .iter()
        .map(|&v| (v as usize) % n)
        .collect();
    cuts.push(n);
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len());
    let mut start = 0;
    for cut in cuts {
        out.push(&data[start..cut]);
        start = cut;
    }
    out
}

/// Feeds `prefix` then each chunk, draining events and transmits after each call, and checks the
/// per-event and per-call invariants.
fn run(config: Config, prefix: Option<&[u8]>, chunks: &[&[u8]]) -> Outcome {
    let mut client = Client::new(config);
    let mut checker = Checker::default();
    let mut transmit = Vec::new();
    let mut error: Option<Error> = None;
    for chunk in prefix.into_iter().chain(chunks.iter().copied()) {
        let result = client.handle_input(chunk);
        while let Some(event) = client.poll_event() {
            checker.event(&event);
        }
        while let Some(bytes) = client.poll_transmit() {
            assert!(!bytes.is_empty(), "poll_transmit returned an empty buffer");
            transmit.extend_from_slice(&bytes);
        }
        match (&error, result) {
            (None, Ok(())) => {
                assert_eq!(
                    client.size(),
                    checker.size,
                    "Client::size disagrees with the events"
                );
                assert_eq!(
                    client.is_connected(),
                    checker.connected,
                    "is_connected disagrees with the events"
                );
            }
            (None, Err(e)) => {
                assert!(
                    !client.is_connected(),
                    "a dead client reports itself connected"
                );
                error = Some(e);
            }
            (Some(first), Ok(())) => panic!("handle_input succeeded after the error {first:?}"),
            (Some(first), Err(e)) => assert_eq!(first, &e, "a dead client changed its error"),
        }
    }
    if let Some(first) = &error {
        // Dead stays dead, and quiet.
        for more in [&b""[..], b"\0\0\0\x01", b"RFB 003.008\n"] {
            assert_eq!(
                client.handle_input(more).as_ref(),
                Err(first),
                "dead client changed its answer"
            );
        }
        assert_eq!(client.poll_event(), None, "a dead client produced an event");
        assert_eq!(
            client.poll_transmit(),
            None,
            "a dead client produced bytes to send"
        );
    } else if checker.connected {
        check_senders(&mut client, checker.size);
    }
    Outcome {
        events: checker.events,
        transmit,
        error,
    }
}

/// What the events said so far.
#[derive(Default)]
struct Checker {
    events: Vec<Event>,
    connected: bool,
    size: (u16, u16),
}

impl Checker {
    fn inside(&self, what: &str, x: u16, y: u16, width: u16, height: u16) {
        let (fw, fh) = self.size;
        assert!(
            u32::from(x) + u32::from(width) <= u32::from(fw)
                && u32::from(y) + u32::from(height) <= u32::from(fh),
            "{what} {width}x{height}+{x}+{y} outside the {fw}x{fh} framebuffer"
        );
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Connected { width, height, .. } => {
                assert!(
                    !self.connected && self.events.is_empty(),
                    "Connected is not the first event"
                );
                self.connected = true;
                self.size = (*width, *height);
            }
            _ => assert!(self.connected, "{event:?} before Connected"),
        }
        match event {
            Event::Pixels {
                x,
                y,
                width,
                height,
                rgba,
            } => {
                let expected = usize::from(*width) * usize::from(*height) * 4;
                assert_eq!(
                    rgba.len(),
                    expected,
                    "Pixels {width}x{height} with {} bytes",
                    rgba.len()
                );
                assert!(
                    rgba.chunks_exact(4).all(|p| p[3] == 255),
                    "Pixels with alpha != 255"
                );
                self.inside("Pixels", *x, *y, *width, *height);
            }
            Event::Fill {
                x,
                y,
                width,
                height,
                ..
            } => self.inside("Fill", *x, *y, *width, *height),
            Event::Copy {
                src_x,
                src_y,
                x,
                y,
                width,
                height,
            } => {
                self.inside("Copy source", *src_x, *src_y, *width, *height);
                self.inside("Copy destination", *x, *y, *width, *height);
            }
            Event::Cursor {
                width,
                height,
                rgba,
                ..
            } => {
                let expected = usize::from(*width) * usize::from(*height) * 4;
                assert_eq!(
                    rgba.len(),
                    expected,
                    "Cursor {width}x{height} with {} bytes",
                    rgba.len()
                );
                assert!(
                    rgba.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255),
                    "Cursor alpha not 0/255"
                );
            }
            Event::Resize { width, height } => {
                assert_ne!((*width, *height), self.size, "Resize to the current size");
                self.size = (*width, *height);
            }
            _ => {}
        }
        self.events.push(event.clone());
    }
}

/// The client-to-server messages of a connected client are well formed.
fn check_senders(client: &mut Client, (width, height): (u16, u16)) {
    client.request_update(true);
    let mut expected = vec![3, 1, 0, 0, 0, 0];
    expected.extend_from_slice(&width.to_be_bytes());
    expected.extend_from_slice(&height.to_be_bytes());
    assert_eq!(
        client.poll_transmit(),
        Some(expected),
        "FramebufferUpdateRequest"
    );

    client.send_pointer(u16::MAX, u16::MAX, 1);
    let sent = client.poll_transmit().unwrap_or_default();
    assert_eq!(sent.len(), 6, "PointerEvent length");
    let (px, py) = (
        u16::from_be_bytes([sent[2], sent[3]]),
        u16::from_be_bytes([sent[4], sent[5]]),
    );
    assert_eq!(
        (px, py),
        (width.saturating_sub(1), height.saturating_sub(1)),
        "pointer not clamped"
    );

    client.send_key(true, 0x61, 0x1e);
    let sent = client.poll_transmit().unwrap_or_default();
    assert!(
        matches!(sent.first(), Some(4 | 255)),
        "key event type {:?}",
        sent.first()
    );

    client.send_cut_text("é€");
    assert_eq!(
        client.poll_transmit(),
        Some(vec![6, 0, 0, 0, 0, 0, 0, 2, 0xe9, b'?']),
        "ClientCutText"
    );
    assert_eq!(client.poll_event(), None, "sending produced an event");
}

// ---------------------------------------------------------------------------------------------
// Display protocol
// ---------------------------------------------------------------------------------------------

/// Fuzz target `client_message`: what a browser sends to the gateway.
///
/// Decoding never panics; oversized input is refused; a decoded message re-encodes to exactly
/// the input bytes (the format has no slack) and decodes again to the same value. Then the
/// value-first round trips of the helpdesk and cache messages ([`helpdesk_client_round_trip`],
/// [`cache_client_round_trip`]) run on fields taken from `data`.
pub fn client_message(data: &[u8]) {
    client_message_bytes(data);
    helpdesk_client_round_trip(data);
    cache_client_round_trip(data);
}

fn client_message_bytes(data: &[u8]) {
    let decoded = ClientMessage::decode(data);
    if data.len() > MAX_CLIENT_MESSAGE {
        assert_eq!(
            decoded,
            Err(DecodeError::TooLarge(data.len())),
            "oversized message accepted"
        );
    }
    match decoded {
        Ok(message) => {
            if let ClientMessage::CacheOffer { tiles } = message {
                assert!(tiles <= MAX_CACHE_TILES, "CacheOffer of {tiles} tiles accepted");
            }
            let bytes = message.encode();
            assert_eq!(bytes, data, "{message:?} does not re-encode to its input");
            assert_eq!(
                ClientMessage::decode(&bytes),
                Ok(message),
                "round trip changed the message"
            );
        }
        Err(e) => check_error(&e),
    }
}

/// Fuzz target `server_message`: what the gateway sends to the viewer.
///
/// Same round trip as [`client_message`], and a decoded message respects the protocol's bounds
/// (helpdesk texts, control states, cache slots and tile sizes); then the message is drawn on a
/// small [`Canvas`] that must not panic, and whose pixels must show the message when it draws
/// successfully (the helpdesk messages leave it unchanged); the cache messages are drawn on a
/// canvas without a cache (refused, unchanged) and on one with a cache (the slots must hold what
/// was stored). Then the value-first round trips of the helpdesk and cache messages
/// ([`helpdesk_server_round_trip`], [`cache_server_round_trip`]) run on fields taken from `data`.
pub fn server_message(data: &[u8]) {
    server_message_bytes(data);
    helpdesk_server_round_trip(data);
    cache_server_round_trip(data);
}

fn server_message_bytes(data: &[u8]) {
    let message = match ServerMessage::decode(data) {
        Ok(message) => message,
        Err(e) => return check_error(&e),
    };
    let bytes = message.encode();
    assert_eq!(bytes, data, "{message:?} does not re-encode to its input");
    assert_eq!(
        ServerMessage::decode(&bytes).as_ref(),
        Ok(&message),
        "round trip changed the message"
    );
    check_bounds(&message);
    apply_to_canvas(&message);
}

/// What a decoded helpdesk message must respect.
fn check_bounds(message: &ServerMessage) {
    let chars = |text: &str| text.chars().count();
    match message {
        ServerMessage::Message { from, text } => {
            assert!(
                chars(from) <= MAX_NAME,
                "Message sender of {} chars",
                chars(from)
            );
            assert!(
                chars(text) <= MAX_MESSAGE_TEXT,
                "Message text of {} chars",
                chars(text)
            );
        }
        ServerMessage::ControlRequest { from, .. } => {
            assert!(
                chars(from) <= MAX_NAME,
                "ControlRequest sender of {} chars",
                chars(from)
            );
        }
        ServerMessage::ControlState { state, .. } => {
            assert!(*state <= control_state::ENDED, "ControlState state {state}");
        }
        ServerMessage::ViewMode { shadow_of, .. } => {
            assert!(
                chars(shadow_of) <= MAX_NAME,
                "ViewMode name of {} chars",
                chars(shadow_of)
            );
        }
        ServerMessage::CacheAgreed { tiles } => {
            assert!(*tiles <= MAX_CACHE_TILES, "CacheAgreed of {tiles} tiles");
        }
        ServerMessage::CacheStore { slot, rect, .. } => {
            assert!(*slot < MAX_CACHE_TILES, "CacheStore slot {slot}");
            assert!(
                (1..=CACHE_TILE).contains(&rect.width) && (1..=CACHE_TILE).contains(&rect.height),
                "CacheStore tile of {}x{}",
                rect.width,
                rect.height
            );
        }
        ServerMessage::CacheDraw { slot, .. } => {
            assert!(*slot < MAX_CACHE_TILES, "CacheDraw slot {slot}");
        }
        _ => {}
    }
}

/// Message fields derived from fuzz bytes: an id, a byte for flags and states, and two texts of
/// lengths chosen by the input, from 0 to well past their limits.
struct Fields {
    id: u32,
    byte: u8,
    name: String,
    text: String,
}

impl Fields {
    fn new(data: &[u8]) -> Fields {
        let at = |i: usize| data.get(i).copied().unwrap_or(0);
        let lossy = String::from_utf8_lossy(data.get(8..).unwrap_or_default());
        let name_len = usize::from(at(5));
        let text_len = usize::from(u16::from_le_bytes([at(6), at(7)])) % (2 * MAX_MESSAGE_TEXT);
        Fields {
            id: u32::from_le_bytes([at(0), at(1), at(2), at(3)]),
            byte: at(4),
            name: lossy.chars().cycle().take(name_len).collect(),
            text: lossy.chars().rev().cycle().take(text_len).collect(),
        }
    }
}

/// `text` cut to `max` characters, as the encoder does.
fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// Value-first round trip of the server helpdesk messages: `decode(encode(m))` gives `m` back,
/// with its texts cut to their limits; an invalid control state is refused by the decoder.
pub fn helpdesk_server_round_trip(data: &[u8]) {
    let f = Fields::new(data);
    let state = f.byte % 8;
    let cases = [
        (
            ServerMessage::Message {
                from: f.name.clone(),
                text: f.text.clone(),
            },
            Ok(ServerMessage::Message {
                from: cut(&f.name, MAX_NAME),
                text: cut(&f.text, MAX_MESSAGE_TEXT),
            }),
        ),
        (
            ServerMessage::ControlRequest {
                id: f.id,
                from: f.text.clone(),
            },
            Ok(ServerMessage::ControlRequest {
                id: f.id,
                from: cut(&f.text, MAX_NAME),
            }),
        ),
        (
            ServerMessage::ControlState { id: f.id, state },
            if state <= control_state::ENDED {
                Ok(ServerMessage::ControlState { id: f.id, state })
            } else {
                Err(DecodeError::InvalidValue("control state"))
            },
        ),
        (
            ServerMessage::ViewMode {
                read_only: f.byte & 1 == 1,
                shadow_of: f.name.clone(),
            },
            Ok(ServerMessage::ViewMode {
                read_only: f.byte & 1 == 1,
                shadow_of: cut(&f.name, MAX_NAME),
            }),
        ),
    ];
    for (message, expected) in cases {
        let bytes = message.encode();
        assert_eq!(
            ServerMessage::decode(&bytes),
            expected,
            "{message:?} does not come back"
        );
        if expected.is_ok() {
            // What decodes is a fixed point: the bytes-first oracle holds on it too.
            server_message_bytes(&bytes);
        }
    }
}

/// Value-first round trip of the client helpdesk messages.
pub fn helpdesk_client_round_trip(data: &[u8]) {
    let f = Fields::new(data);
    let cases = [
        ClientMessage::ControlReply {
            id: f.id,
            granted: f.byte & 1 == 1,
        },
        ClientMessage::ControlRequest,
        ClientMessage::ControlRelease { id: f.id },
    ];
    for message in cases {
        let bytes = message.encode();
        assert_eq!(
            ClientMessage::decode(&bytes).as_ref(),
            Ok(&message),
            "{message:?} does not come back"
        );
        client_message_bytes(&bytes);
    }
}

/// Value-first round trip of the server cache messages, with a count, slot, position, tile size
/// and data taken from `data`: what the decoder's bounds allow comes back unchanged, the rest is
/// refused with the matching error.
pub fn cache_server_round_trip(data: &[u8]) {
    let f = Fields::new(data);
    let at = |i: usize| data.get(i).copied().unwrap_or(0);
    // Numbers around the bounds as well as anywhere: the id as is, or near MAX_CACHE_TILES.
    let number = if f.byte & 0x80 == 0 {
        f.id
    } else {
        MAX_CACHE_TILES.wrapping_add(f.id % 5).wrapping_sub(2)
    };
    let (width, height) = (u16::from(at(5)) % 80, u16::from(at(6)) % 80);
    let rect = Rect {
        x: u16::from_le_bytes([at(7), at(8)]),
        y: u16::from_le_bytes([at(9), at(10)]),
        width,
        height,
    };
    let slot_ok = number < MAX_CACHE_TILES;
    let size_ok = (1..=CACHE_TILE).contains(&width) && (1..=CACHE_TILE).contains(&height);
    let cases = [
        (
            ServerMessage::CacheAgreed { tiles: number },
            if number <= MAX_CACHE_TILES {
                Ok(())
            } else {
                Err(DecodeError::InvalidValue("number of cache tiles"))
            },
        ),
        (
            ServerMessage::CacheDraw {
                slot: number,
                x: rect.x,
                y: rect.y,
            },
            if slot_ok {
                Ok(())
            } else {
                Err(DecodeError::InvalidValue("cache slot"))
            },
        ),
        (
            ServerMessage::CacheStore {
                slot: number,
                rect,
                codec: TileCodec::Png,
                data: f.text.as_bytes().to_vec(),
            },
            match (slot_ok, size_ok) {
                (true, true) => Ok(()),
                (false, _) => Err(DecodeError::InvalidValue("cache slot")),
                (true, false) => Err(DecodeError::InvalidValue("cached tile size")),
            },
        ),
    ];
    for (message, expected) in cases {
        let bytes = message.encode();
        let decoded = ServerMessage::decode(&bytes);
        match expected {
            Ok(()) => {
                assert_eq!(decoded.as_ref(), Ok(&message), "{message:?} does not come back");
                server_message_bytes(&bytes);
            }
            Err(error) => assert_eq!(decoded, Err(error), "{message:?} is not refused"),
        }
    }
}

/// Value-first round trip of [`ClientMessage::CacheOffer`].
pub fn cache_client_round_trip(data: &[u8]) {
    let f = Fields::new(data);
    for tiles in [f.id, MAX_CACHE_TILES.wrapping_add(f.id % 5).wrapping_sub(2)] {
        let message = ClientMessage::CacheOffer { tiles };
        let bytes = message.encode();
        if tiles <= MAX_CACHE_TILES {
            assert_eq!(ClientMessage::decode(&bytes).as_ref(), Ok(&message));
            client_message_bytes(&bytes);
        } else {
            assert_eq!(
                ClientMessage::decode(&bytes),
                Err(DecodeError::InvalidValue("number of cache tiles"))
            );
        }
    }
}

fn check_error(e: &DecodeError) {
    assert!(!e.to_string().is_empty());
    assert!(
        matches!(e.close_code(), 1007 | 1009),
        "close code {}",
        e.close_code()
    );
}

/// A `Glyphs` message on a canvas that announced glyphs and holds one in slot 0: the ops and
/// the atlas are checked whole before anything is drawn, so a refused message changes neither
/// the pixels nor the glyph slots; an accepted one fills every slot it stores.
pub fn apply_glyphs(message: &ServerMessage) {
    let mut canvas = Canvas::new(FB_WIDTH, FB_HEIGHT);
    let codecs = canvas.announce_codecs(bascule_proto::CODEC_PNG | bascule_proto::CODEC_GLYPHS);
    let hello = ServerMessage::Hello { version: 0, width: FB_WIDTH, height: FB_HEIGHT, codecs, max_in_flight: 2, name: String::new() };
    canvas.apply(&hello).expect("hello");
    let (pixels, slots) = (canvas.framebuffer().clone(), canvas.cached_glyphs());
    match canvas.apply(message) {
        Err(_) => {
            assert!(canvas.framebuffer() == &pixels, "a refused Glyphs changed the canvas");
            assert!(canvas.cached_glyphs() == slots, "a refused Glyphs changed the glyph slots");
        }
        Ok(()) => {
            let filled = |s: &[Option<TileKey>]| s.iter().filter(|k| k.is_some()).count();
            assert!(filled(&canvas.cached_glyphs()) >= filled(&slots), "an accepted Glyphs emptied a slot");
        }
    }
}

/// The canvas of [`apply_video`]: room for a video stream (128 × 64 at least).
pub const VIDEO_CANVAS: (u16, u16) = (256, 128);

/// A `Video` message on a canvas that announced H.264 and has no stream open: a refused message
/// changes no pixel; an accepted one is a KEY (it opened its stream) that drew one picture, or
/// none when its data is empty, or an empty END (which does nothing).
pub fn apply_video(message: &ServerMessage) {
    let (width, height) = VIDEO_CANVAS;
    let mut canvas = Canvas::new(width, height);
    let codecs = canvas.announce_codecs(bascule_proto::CODEC_PNG | bascule_proto::CODEC_H264);
    let hello = ServerMessage::Hello { version: 0, width, height, codecs, max_in_flight: 2, name: String::new() };
    canvas.apply(&hello).expect("hello");
    let pixels = canvas.framebuffer().clone();
    let result = canvas.apply(message);
    let ServerMessage::Video { flags, data, .. } = message else { return };
    match result {
        Err(_) => assert!(canvas.framebuffer() == &pixels, "a refused Video changed the canvas"),
        Ok(()) if flags & bascule_proto::VIDEO_KEY == 0 => {
            // Only an empty END, which closes nothing here, is accepted without KEY.
            assert!(flags & bascule_proto::VIDEO_END != 0 && data.is_empty(), "a Video without KEY accepted with no stream open");
            assert!(canvas.framebuffer() == &pixels && canvas.video_frames() == 0);
        }
        Ok(()) => assert_eq!(canvas.video_frames(), u64::from(!data.is_empty()), "an accepted Video draws its picture"),
    }
}

/// The `Video` messages a viewer that announced H.264 gets while a 256 × 128 picture moves
/// (for the tests and the corpus seeds).
pub fn video_samples() -> Vec<Vec<u8>> {
    use bascule_display::{Display, Update};
    use bascule_proto::{CODEC_H264, CODEC_PNG, Rect, ServerMessage};
    let (w, h) = VIDEO_CANVAS;
    let mut display = Display::new(w, h);
    let viewer = display.add_viewer(1);
    display.set_codecs(viewer, CODEC_PNG | CODEC_H264);
    let mut videos = Vec::new();
    for t in 0..12usize {
        let rgba: Vec<u8> = (0..usize::from(w) * usize::from(h))
            .flat_map(|i| {
                let (x, y) = (i % usize::from(w) + t * 5, i / usize::from(w) + t * 3);
                let n = (i * 7919 + t * 104_729) % 13;
                [((x * 3 + n) % 230) as u8, ((y * 5 + n) % 220) as u8, (((x + y) * 2 + n) % 240) as u8, 255]
            })
            .collect();
        display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: w, height: h }, rgba }).expect("pixels");
        let plan = display.take_frame(viewer).expect("a frame");
        let seq = plan.seq();
        videos.extend(plan.encode().into_iter().filter(|p| matches!(ServerMessage::decode(p), Ok(ServerMessage::Video { .. }))));
        display.handle_ack(viewer, seq).expect("ack");
    }
    videos
}

/// A 64x48 canvas with some content, so that copies are visible.
fn test_canvas() -> Canvas {
    let mut canvas = Canvas::new(FB_WIDTH, FB_HEIGHT);
    for i in 0..8u16 {
        let rect = Rect {
            x: i * 8,
            y: i * 6,
            width: 8,
            height: 6,
        };
        let colour = [i as u8 * 30, 255 - i as u8 * 30, 17];
        canvas
            .apply(&ServerMessage::Fill { rect, rgb: colour })
            .expect("the test canvas fill is inside");
    }
    canvas
}

/// The slots of the cache canvas, and what it offered.
const CACHE_SLOTS: u32 = 4;

/// A 3x2 RGB PNG (red, green, blue / yellow, cyan, magenta), kept in slot 1 of the cache canvas.
const CACHED_PNG: [u8; 78] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0x12, 0x16, 0xf1,
    0x4d, 0x00, 0x00, 0x00, 0x15, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xc0,
    0x00, 0xc1, 0xff, 0x81, 0xd4, 0x7f, 0x20, 0xf1, 0x1f, 0x00, 0x4a, 0xc9, 0x08, 0xf8, 0xee, 0x68,
    0x40, 0xb6, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// The test canvas with a cache of [`CACHE_SLOTS`] slots agreed, and `CACHED_PNG` kept in slot 1.
fn cache_canvas() -> Canvas {
    let mut canvas = test_canvas();
    canvas.offer_cache(CACHE_SLOTS);
    canvas
        .apply(&ServerMessage::CacheAgreed { tiles: CACHE_SLOTS })
        .expect("the cache canvas agrees");
    let store = ServerMessage::CacheStore {
        slot: 1,
        rect: Rect {
            x: 10,
            y: 10,
            width: 3,
            height: 2,
        },
        codec: TileCodec::Png,
        data: CACHED_PNG.to_vec(),
    };
    canvas
        .apply(&store)
        .expect("the cache canvas keeps its tile");
    canvas
}

/// Draws a cache message on a canvas without a cache (always refused, no change) and on the
/// cache canvas (what the cache rules say).
fn apply_cache_message(message: &ServerMessage) {
    let mut plain = test_canvas();
    let before = plain.framebuffer().clone();
    assert!(
        matches!(plain.apply(message), Err(CanvasError::Cache(_))),
        "{message:?} accepted without a cache"
    );
    assert!(plain.framebuffer() == &before && plain.cached_tiles().is_none());

    let mut canvas = cache_canvas();
    let before = canvas.framebuffer().clone();
    let slots_before = canvas.cached_tiles().expect("agreed");
    let result = canvas.apply(message);
    let after = canvas.framebuffer().clone();
    let slots_after = canvas.cached_tiles().expect("still agreed");
    if result.is_err() {
        assert!(after == before, "a refused {message:?} changed the canvas");
        assert_eq!(slots_after, slots_before, "a refused {message:?} changed the cache");
    }
    match message {
        ServerMessage::CacheAgreed { tiles } => {
            assert!(result.is_err(), "a second CacheAgreed accepted");
            // On a canvas that offered but has not agreed yet: accepted up to the offer.
            let mut fresh = test_canvas();
            fresh.offer_cache(CACHE_SLOTS);
            let result = fresh.apply(message);
            assert_eq!(result.is_ok(), *tiles <= CACHE_SLOTS, "CacheAgreed {tiles}: {result:?}");
            if result.is_ok() {
                assert_eq!(fresh.cached_tiles(), Some(vec![None; *tiles as usize]));
            }
        }
        ServerMessage::CacheStore {
            slot, rect, data, ..
        } => {
            let decoded = decode_png(data, *rect);
            let expected_ok = *slot < CACHE_SLOTS && decoded.is_ok() && fits(&before, *rect);
            assert_eq!(result.is_ok(), expected_ok, "CacheStore: {result:?}");
            if let Ok(rgba) = decoded
                && result.is_ok()
            {
                assert!(region(&after, *rect) == rgba, "CacheStore {rect:?} not drawn");
                let mut expected = slots_before;
                expected[*slot as usize] = Some(TileKey::of(rect.width, rect.height, &rgba));
                assert_eq!(slots_after, expected, "CacheStore not kept in slot {slot}");
            }
        }
        ServerMessage::CacheDraw { slot, x, y } => {
            let rect = Rect {
                x: *x,
                y: *y,
                width: 3,
                height: 2,
            };
            assert_eq!(
                result.is_ok(),
                *slot == 1 && fits(&before, rect),
                "CacheDraw of slot {slot} at {x},{y}: {result:?}"
            );
            if result.is_ok() {
                let kept = decode_png(&CACHED_PNG, rect).expect("the kept tile decodes");
                assert!(region(&after, rect) == kept, "CacheDraw {rect:?} not drawn");
                assert_eq!(slots_after, slots_before, "CacheDraw changed the cache");
            }
        }
        _ => unreachable!("not a cache message"),
    }
}

fn region(framebuffer: &Framebuffer, rect: Rect) -> Vec<u8> {
    let width = usize::from(framebuffer.size().0);
    let rgba = framebuffer.rgba();
    let mut out = Vec::new();
    for row in 0..usize::from(rect.height) {
        let start = ((usize::from(rect.y) + row) * width + usize::from(rect.x)) * 4;
        out.extend_from_slice(&rgba[start..start + usize::from(rect.width) * 4]);
    }
    out
}

fn fits(framebuffer: &Framebuffer, rect: Rect) -> bool {
    let (width, height) = framebuffer.size();
    u32::from(rect.x) + u32::from(rect.width) <= u32::from(width)
        && u32::from(rect.y) + u32::from(rect.height) <= u32::from(height)
}

fn apply_to_canvas(message: &ServerMessage) {
    if let ServerMessage::Hello { width, height, .. } | ServerMessage::Resize { width, height } =
        message
        && usize::from(*width) * usize::from(*height) > MAX_CANVAS_PIXELS
    {
        return;
    }
    let mut canvas = test_canvas();
    let before = canvas.framebuffer().clone();
    let result = canvas.apply(message);
    let after = canvas.framebuffer();
    match message {
        ServerMessage::Hello { width, height, .. } | ServerMessage::Resize { width, height } => {
            assert_eq!(result, Ok(()), "{message:?}");
            assert_eq!(
                after.size(),
                (*width, *height),
                "canvas size after {message:?}"
            );
        }
        ServerMessage::Fill { rect, rgb } => {
            assert_eq!(
                result.is_ok(),
                fits(&before, *rect),
                "Fill {rect:?}: {result:?}"
            );
            if result.is_ok() {
                let pixel = [rgb[0], rgb[1], rgb[2], 255];
                assert!(
                    region(after, *rect).chunks_exact(4).all(|p| p == pixel),
                    "Fill {rect:?} not drawn"
                );
            }
        }
        ServerMessage::Copy { src_x, src_y, dst } => {
            let src = Rect {
                x: *src_x,
                y: *src_y,
                ..*dst
            };
            assert_eq!(
                result.is_ok(),
                fits(&before, src) && fits(&before, *dst),
                "Copy: {result:?}"
            );
            if result.is_ok() {
                assert!(
                    region(after, *dst) == region(&before, src),
                    "Copy {src:?} -> {dst:?} wrong"
                );
            }
        }
        ServerMessage::Tile { rect, data, .. } => {
            if result.is_ok() {
                let rgba = decode_png(data, *rect).expect("a tile that was drawn decodes");
                assert!(region(after, *rect) == rgba, "Tile {rect:?} not drawn");
            } else {
                assert!(after == &before, "a refused Tile changed the canvas");
            }
        }
        ServerMessage::EndFrame { seq } => {
            assert_eq!(result, Ok(()));
            assert_eq!(canvas.last_frame(), Some(*seq));
        }
        ServerMessage::CacheAgreed { .. }
        | ServerMessage::CacheStore { .. }
        | ServerMessage::CacheDraw { .. } => apply_cache_message(message),
        ServerMessage::Glyphs { .. } => {
            // Not announced: refused, nothing drawn.
            assert!(result.is_err(), "Glyphs to a canvas that did not announce them");
            assert!(after == &before, "a refused Glyphs changed the canvas");
            apply_glyphs(message);
        }
        ServerMessage::Video { .. } => {
            assert!(result.is_err(), "Video to a canvas that did not announce H.264");
            assert!(after == &before, "a refused Video changed the canvas");
            apply_video(message);
        }
        _ => {
            assert_eq!(result, Ok(()), "{message:?}");
            assert!(after == &before, "{message:?} changed the canvas");
        }
    }
}
