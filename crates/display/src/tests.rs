//! Display tests: a long randomised sequence of damage, and viewers at different speeds.

use super::*;
use bascule_proto::ServerMessage;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u16) -> u16 {
        (self.next() % u64::from(n.max(1))) as u16
    }
    fn rect(&mut self, width: u16, height: u16) -> Rect {
        let x = self.below(width);
        let y = self.below(height);
        let w = 1 + self.below((width - x).min(200));
        let h = 1 + self.below((height - y).min(120));
        Rect { x, y, width: w, height: h }
    }
}

fn random_update(rng: &mut Rng, width: u16, height: u16) -> Update {
    let rect = rng.rect(width, height);
    match rng.below(4) {
        0 => Update::Fill { rect, rgb: [rng.below(256) as u8, rng.below(256) as u8, 7] },
        1 => {
            // Text-like content: a few colours in a pattern.
            let seed = rng.below(1000);
            let rgba = (0..usize::from(rect.width) * usize::from(rect.height))
                .flat_map(|i| {
                    let v = ((i * 7 + usize::from(seed)) % 5) as u8 * 50;
                    [v, 255 - v, v / 2, 255]
                })
                .collect();
            Update::Pixels { rect, rgba }
        }
        2 => {
            let src_x = rng.below(width - rect.width + 1);
            let src_y = rng.below(height - rect.height + 1);
            Update::Copy { src_x, src_y, dst: rect }
        }
        _ => {
            let rgba = (0..usize::from(rect.width) * usize::from(rect.height))
                .flat_map(|_| {
                    let v = rng.next().to_le_bytes();
                    [v[0], v[1], v[2], 255]
                })
                .collect();
            Update::Pixels { rect, rgba }
        }
    }
}

/// Sends one frame to a reference canvas; returns the bytes it took.
fn deliver(display: &mut Display, viewer: ViewerId, canvas: &mut Canvas) -> Option<usize> {
    let plan = display.take_frame(viewer)?;
    let seq = plan.seq();
    let mut bytes = 0;
    for payload in plan.encode() {
        bytes += payload.len();
        canvas.apply(&ServerMessage::decode(&payload).expect("server messages decode")).expect("canvas draws");
    }
    display.handle_ack(viewer, seq).expect("ack of a sent frame");
    Some(bytes)
}

#[test]
fn lossless_stream_rebuilds_the_framebuffer_after_every_frame() {
    let (width, height) = (333, 217);
    let mut rng = Rng(0x5eed);
    let mut display = Display::new(width, height);
    let viewer = display.add_viewer(2);
    let mut canvas = Canvas::new(width, height);
    for step in 0..1500 {
        let updates = 1 + rng.below(4);
        for _ in 0..updates {
            display.apply(random_update(&mut rng, width, height)).expect("update inside");
        }
        deliver(&mut display, viewer, &mut canvas);
        assert!(canvas.framebuffer() == display.framebuffer(), "divergence at step {step}");
    }
}

#[test]
fn a_slow_viewer_gets_coalesced_frames_and_does_not_hold_back_a_fast_one() {
    let (width, height) = (640, 400);
    let mut rng = Rng(42);
    let mut display = Display::new(width, height);
    let fast = display.add_viewer(2);
    let slow = display.add_viewer(2);
    let mut fast_canvas = Canvas::new(width, height);
    let mut slow_canvas = Canvas::new(width, height);
    // The slow viewer takes its first two frames and never acknowledges them.
    let first = display.take_frame(slow).expect("first frame");
    let mut slow_messages = first.encode();
    display.apply(random_update(&mut rng, width, height)).expect("update");
    slow_messages.extend(display.take_frame(slow).expect("second frame").encode());
    let (mut fast_frames, mut changes) = (0, 0);
    for _ in 0..300 {
        let before = display.framebuffer().clone();
        display.apply(random_update(&mut rng, width, height)).expect("update");
        // An update that leaves the picture as it was is no frame.
        changes += usize::from(display.framebuffer() != &before);
        if deliver(&mut display, fast, &mut fast_canvas).is_some() {
            fast_frames += 1;
        }
        assert!(display.take_frame(slow).is_none(), "a full window sends nothing");
        assert!(fast_canvas.framebuffer() == display.framebuffer());
    }
    // (A copy onto identical pixels still travels as a `Copy`: a frame without a change.)
    assert!(fast_frames >= changes, "the fast viewer got a frame for every change: {fast_frames} for {changes}");
    assert!(changes > 250, "{changes} changes");
    // The slow viewer catches up with a single coalesced frame.
    for payload in slow_messages {
        slow_canvas.apply(&ServerMessage::decode(&payload).expect("decode")).expect("draw");
    }
    display.handle_ack(slow, 2).expect("ack");
    deliver(&mut display, slow, &mut slow_canvas).expect("catch-up frame");
    assert!(slow_canvas.framebuffer() == display.framebuffer());
    assert!(display.take_frame(slow).is_none(), "nothing left after one catch-up frame");
    assert_eq!(display.viewer_stats(slow).map(|s| s.frames), Some(3));
}

#[test]
fn copies_travel_as_copies_when_the_source_is_clean() {
    let mut display = Display::new(256, 256);
    let viewer = display.add_viewer(1);
    let mut canvas = Canvas::new(256, 256);
    let rect = Rect { x: 0, y: 0, width: 64, height: 64 };
    let rgba: Vec<u8> = (0..64 * 64).flat_map(|i: u32| [(i % 251) as u8, 3, 9, 255]).collect();
    display.apply(Update::Pixels { rect, rgba }).expect("pixels");
    deliver(&mut display, viewer, &mut canvas);
    display.apply(Update::Copy { src_x: 0, src_y: 0, dst: Rect { x: 128, y: 128, width: 64, height: 64 } }).expect("copy");
    let plan = display.take_frame(viewer).expect("frame");
    let payloads = plan.encode();
    let messages: Vec<ServerMessage> = payloads.iter().map(|p| ServerMessage::decode(p).expect("decode")).collect();
    assert!(matches!(messages[0], ServerMessage::Copy { .. }));
    assert_eq!(messages.len(), 2, "a copy and the end of frame, no pixels: {messages:?}");
    for message in &messages {
        canvas.apply(message).expect("draw");
    }
    assert!(canvas.framebuffer() == display.framebuffer());
}

#[test]
fn resize_and_cursor_reach_new_and_old_viewers() {
    let mut display = Display::new(100, 100);
    let old = display.add_viewer(2);
    let shape = CursorShape { hot_x: 1, hot_y: 2, width: 2, height: 2, rgba: vec![255; 16] };
    display.apply(Update::Cursor(shape.clone())).expect("cursor");
    display.apply(Update::Resize { width: 200, height: 50 }).expect("resize");
    let messages: Vec<ServerMessage> = display
        .take_frame(old)
        .expect("frame")
        .encode()
        .iter()
        .map(|p| ServerMessage::decode(p).expect("decode"))
        .collect();
    assert_eq!(messages[0], ServerMessage::Resize { width: 200, height: 50 });
    assert!(messages.iter().any(|m| matches!(m, ServerMessage::Cursor { width: 2, .. })));
    let new = display.add_viewer(2);
    let mut canvas = Canvas::new(200, 50);
    deliver(&mut display, new, &mut canvas).expect("first frame");
    assert!(canvas.framebuffer() == display.framebuffer());
    // The same shape again is no change: no frame for it.
    display.handle_ack(old, 1).expect("ack");
    display.apply(Update::Cursor(shape)).expect("cursor");
    assert!(display.take_frame(old).is_none() && display.take_frame(new).is_none());
}

#[test]
fn hostile_updates_and_acks_are_refused() {
    let mut display = Display::new(100, 100);
    let viewer = display.add_viewer(2);
    let outside = Rect { x: 90, y: 90, width: 20, height: 5 };
    assert_eq!(display.apply(Update::Fill { rect: outside, rgb: [0; 3] }), Err(UpdateError::OutOfBounds(outside)));
    let short = Update::Pixels { rect: Rect { x: 0, y: 0, width: 2, height: 2 }, rgba: vec![0; 3] };
    assert!(matches!(display.apply(short), Err(UpdateError::BadLength { .. })));
    assert_eq!(display.handle_ack(viewer, 5), Err(AckError::NotSent { acked: 5, sent: 0 }));
}

// ---------------------------------------------------------------------------------------------
// Client tile cache
// ---------------------------------------------------------------------------------------------

fn is_cache_message(message: &ServerMessage) -> bool {
    matches!(message, ServerMessage::CacheAgreed { .. } | ServerMessage::CacheStore { .. } | ServerMessage::CacheDraw { .. })
}

/// A viewer of the simulated desktop, with its reference canvas.
struct Client {
    id: ViewerId,
    canvas: Canvas,
    bytes: usize,
    messages: Vec<ServerMessage>,
}

impl Client {
    /// Attaches a viewer; `offer` is its CacheOffer (none: a viewer that never sends one).
    fn attach(display: &mut Display, max_in_flight: u8, offer: Option<u32>) -> Client {
        Client::attach_with(display, max_in_flight, offer, bascule_proto::CODEC_PNG)
    }

    /// Attaches a viewer that announces `codecs`, as ws.rs does with the ClientHello's.
    fn attach_with(display: &mut Display, max_in_flight: u8, offer: Option<u32>, codecs: u32) -> Client {
        let id = display.add_viewer(max_in_flight);
        display.set_codecs(id, codecs);
        let (width, height) = display.framebuffer().size();
        let mut canvas = Canvas::new(width, height);
        let codecs = canvas.announce_codecs(codecs);
        let hello = ServerMessage::Hello { version: 0, width, height, codecs, max_in_flight, name: String::new() };
        canvas.apply(&hello).expect("hello");
        if let Some(tiles) = offer {
            canvas.offer_cache(tiles);
            // What ws.rs does: the agreement goes out before the viewer's next frame.
            let agreed = display.offer_cache(id, tiles).expect("a first offer is answered");
            canvas.apply(&ServerMessage::CacheAgreed { tiles: agreed }).expect("the agreement is within the offer");
        }
        Client { id, canvas, bytes: 0, messages: Vec::new() }
    }

    fn draw(&mut self, payloads: Vec<Vec<u8>>) {
        for payload in payloads {
            self.bytes += payload.len();
            let message = ServerMessage::decode(&payload).expect("server messages decode");
            self.canvas.apply(&message).unwrap_or_else(|e| panic!("canvas refuses {message:?}: {e}"));
            self.messages.push(message);
        }
    }

    /// Plans, draws and acknowledges one frame, if one is due.
    fn deliver(&mut self, display: &mut Display) -> bool {
        let Some(plan) = display.take_frame(self.id) else { return false };
        let seq = plan.seq();
        self.draw(plan.encode());
        display.handle_ack(self.id, seq).expect("ack of a sent frame");
        true
    }

    /// The client shows the framebuffer and keeps exactly the tiles the server thinks it keeps.
    fn check(&self, display: &Display, step: usize) {
        assert!(self.canvas.framebuffer() == display.framebuffer(), "viewer {:?}: canvas differs at step {step}", self.id);
        self.check_cache(display, step);
    }

    fn check_cache(&self, display: &Display, step: usize) {
        assert_eq!(self.canvas.cached_tiles(), display.cached_tiles(self.id), "viewer {:?}: caches differ at step {step}", self.id);
        let glyphs = display.cached_glyphs(self.id).unwrap_or_default();
        assert!(self.canvas.cached_glyphs() == glyphs, "viewer {:?}: glyph caches differ at step {step}", self.id);
    }
}

/// A glyph of a small fixed font: `ink` where a hash of (glyph, x, y) says so, else white.
fn glyph(index: u8, ink: [u8; 3]) -> Vec<u8> {
    (0..8u32 * 15)
        .flat_map(|i| {
            let h = (u32::from(index) * 0x9e37 + i * 0x85eb).wrapping_mul(0x2545_f491) >> 24;
            let on = i % 8 != 7 && i / 8 > 1 && h % 10 < 3;
            if on { [ink[0], ink[1], ink[2], 255] } else { [255, 255, 255, 255] }
        })
        .collect()
}

/// `rgba` (of `width` pixels a row) with `part` of `width × height` at (`x`, `y`) written into it.
fn blit(rgba: &mut [u8], width: u16, x: u16, y: u16, part_width: u16, part: &[u8]) {
    for (row, line) in part.chunks_exact(usize::from(part_width) * 4).enumerate() {
        let start = ((usize::from(y) + row) * usize::from(width) + usize::from(x)) * 4;
        rgba[start..start + line.len()].copy_from_slice(line);
    }
}

/// The pixels of `rect` in `framebuffer`.
fn pixels_of(framebuffer: &Framebuffer, rect: Rect) -> Vec<u8> {
    let width = usize::from(framebuffer.size().0);
    let mut out = Vec::new();
    for row in 0..usize::from(rect.height) {
        let start = ((usize::from(rect.y) + row) * width + usize::from(rect.x)) * 4;
        out.extend_from_slice(&framebuffer.rgba()[start..start + usize::from(rect.width) * 4]);
    }
    out
}

/// A window of text: a title bar of its own colour, then lines of glyphs on white.
fn text_window(rng: &mut Rng, width: u16, height: u16, title: [u8; 3]) -> Vec<u8> {
    let mut rgba: Vec<u8> = (0..usize::from(width) * usize::from(height)).flat_map(|_| [255, 255, 255, 255]).collect();
    let bar: Vec<u8> = (0..usize::from(width) * 18).flat_map(|_| [title[0], title[1], title[2], 255]).collect();
    blit(&mut rgba, width, 0, 0, width, &bar);
    let mut y = 20;
    while y + 15 <= height {
        let length = rng.below(width / 8);
        for column in 0..length {
            let index = rng.below(40) as u8;
            if index < 32 {
                blit(&mut rgba, width, 2 + column * 8, y, 8, &glyph(index, [0, 0, 0]));
            }
        }
        y += 15;
    }
    rgba
}

/// A desktop with a solid background and, at an unaligned place, one of several text windows
/// (each keeps its content while hidden): the user types, the text scrolls (a `Copy`), apps
/// redraw parts of their window, and the user switches between windows (whose content then comes
/// back as it was).
struct Desktop {
    window: Rect,
    contents: Vec<Vec<u8>>,
    active: usize,
    cursor: (u16, u16),
}

impl Desktop {
    const BACKGROUND: [u8; 3] = [30, 80, 140];

    fn new(rng: &mut Rng, display: &mut Display, window: Rect, windows: usize) -> Desktop {
        let (width, height) = display.framebuffer().size();
        display.apply(Update::Fill { rect: Rect { x: 0, y: 0, width, height }, rgb: Desktop::BACKGROUND }).expect("fill");
        let contents = (0..windows)
            .map(|i| text_window(rng, window.width, window.height, [60 + i as u8 * 40, 90, 200 - i as u8 * 30]))
            .collect::<Vec<_>>();
        display.apply(Update::Pixels { rect: window, rgba: contents[0].clone() }).expect("window");
        Desktop { window, contents, active: 0, cursor: (2, 20) }
    }

    /// One user action, applied; `bands` splits a window switch into that many updates.
    fn act(&mut self, rng: &mut Rng, display: &mut Display, bands: u16) {
        for update in self.action(rng, display.framebuffer(), bands) {
            display.apply(update).expect("updates are inside");
        }
    }

    /// The updates of one user action; `bands` splits a window switch into that many updates.
    fn action(&mut self, rng: &mut Rng, framebuffer: &Framebuffer, bands: u16) -> Vec<Update> {
        let w = self.window;
        let mut updates = Vec::new();
        match rng.below(10) {
            // Typing: a glyph, and the text cursor one place further.
            0..=3 => {
                let (cx, cy) = self.cursor;
                let index = rng.below(32) as u8;
                updates.push(Update::Pixels { rect: Rect { x: w.x + cx, y: w.y + cy, width: 8, height: 15 }, rgba: glyph(index, [0, 0, 0]) });
                self.cursor.0 += 8;
                if self.cursor.0 + 16 > w.width {
                    self.cursor = (2, self.cursor.1 + 15);
                }
                if self.cursor.1 + 15 > w.height {
                    updates.extend(self.scroll());
                    self.cursor.1 -= 15;
                }
                let (cx, cy) = self.cursor;
                updates.push(Update::Fill { rect: Rect { x: w.x + cx, y: w.y + cy, width: 8, height: 15 }, rgb: [0, 0, 0] });
            }
            // The text scrolls by a line.
            4 => updates.extend(self.scroll()),
            // An app redraws a text-like part of its window.
            5 => {
                let x = rng.below(w.width - 40);
                let y = 18 + rng.below(w.height - 58);
                let (width, height) = (8 * (1 + rng.below((w.width - x) / 8)), 15 * (1 + rng.below((w.height - y) / 15)));
                let mut rgba = vec![255; usize::from(width) * usize::from(height) * 4];
                for row in 0..height / 15 {
                    for column in 0..width / 8 {
                        blit(&mut rgba, width, column * 8, row * 15, 8, &glyph(rng.below(32) as u8, [0, 0, 120]));
                    }
                }
                updates.push(Update::Pixels { rect: Rect { x: w.x + x, y: w.y + y, width, height }, rgba });
            }
            // A selection highlight.
            6 => {
                let rect = Rect { x: w.x + rng.below(w.width - 100), y: w.y + 20 + rng.below(w.height - 60), width: 90, height: 30 };
                updates.push(Update::Fill { rect, rgb: [180, 200, 255] });
            }
            // Switch to another window (its content comes back as it was).
            _ => {
                self.contents[self.active] = pixels_of(framebuffer, w);
                self.active = (self.active + 1 + usize::from(rng.below(self.contents.len() as u16 - 1))) % self.contents.len();
                let content = &self.contents[self.active];
                let band = w.height.div_ceil(bands);
                let mut y = 0;
                while y < w.height {
                    let height = band.min(w.height - y);
                    let start = usize::from(y) * usize::from(w.width) * 4;
                    let rgba = content[start..start + usize::from(height) * usize::from(w.width) * 4].to_vec();
                    updates.push(Update::Pixels { rect: Rect { x: w.x, y: w.y + y, width: w.width, height }, rgba });
                    y += height;
                }
                self.cursor = (2, 20 + 15 * rng.below((w.height - 35) / 15));
            }
        }
        updates
    }

    /// The text scrolls up by a line: a copy, and the line that appears.
    fn scroll(&self) -> [Update; 2] {
        let w = self.window;
        let text = Rect { x: w.x, y: w.y + 20, width: w.width, height: w.height - 20 };
        let dst = Rect { height: text.height - 15, ..text };
        let exposed = Rect { y: text.y + text.height - 15, height: 15, ..text };
        [Update::Copy { src_x: text.x, src_y: text.y + 15, dst }, Update::Fill { rect: exposed, rgb: [255, 255, 255] }]
    }
}

#[test]
fn cached_viewers_rebuild_the_framebuffer_and_the_caches_agree_after_every_frame() {
    // An odd size, so that the blocks of the right and bottom edges are smaller than 64 x 64.
    let (width, height) = (517, 331);
    let mut rng = Rng(0xcac4e);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 37, y: 21, width: 421, height: 270 }, 3);
    let mut plain = Client::attach(&mut display, 2, None);
    let mut tiny = Client::attach(&mut display, 2, Some(8));
    let mut roomy = Client::attach(&mut display, 2, Some(2048));
    for step in 0..250 {
        // Now and then a window comes in bands, with frames in between: blocks are then sent
        // while partly changed.
        let (bands, frames_between) = if rng.below(4) == 0 { (3, rng.below(2) == 0) } else { (1, false) };
        for _ in 0..1 + rng.below(3) {
            for update in desktop.action(&mut rng, display.framebuffer(), bands) {
                display.apply(update).expect("updates are inside");
                if frames_between {
                    for client in [&mut plain, &mut tiny, &mut roomy] {
                        client.deliver(&mut display);
                        client.check(&display, step);
                    }
                }
            }
        }
        for client in [&mut plain, &mut tiny, &mut roomy] {
            client.deliver(&mut display);
            client.check(&display, step);
        }
    }
    assert!(!plain.messages.iter().any(is_cache_message), "no offer, no cache message");
    // The cache was used, evicted a lot when tiny, and saved bytes when roomy.
    let stats = |c: &Client| display.viewer_stats(c.id).expect("viewer");
    let (tiny_stats, roomy_stats) = (stats(&tiny), stats(&roomy));
    assert_eq!((tiny_stats.cache_hits, tiny_stats.cache_stores), (tiny.canvas.cache_hits(), tiny.canvas.cache_stores()));
    assert_eq!((roomy_stats.cache_hits, roomy_stats.cache_stores), (roomy.canvas.cache_hits(), roomy.canvas.cache_stores()));
    assert!(tiny_stats.cache_stores > 50 * 8, "the tiny cache evicted many times: {tiny_stats:?}");
    assert!(roomy_stats.cache_hits > 500, "window switches hit the cache: {roomy_stats:?}");
    assert!(roomy_stats.cache_hits > roomy_stats.cache_stores, "{roomy_stats:?}");
    // This desktop redraws large areas with new text all the time, and both viewers send only
    // the pixels that differ from what they have; a tenth of the bytes at least is saved all
    // the same (the switch-back benchmark shows the case the cache is for).
    assert!(roomy.bytes * 10 < plain.bytes * 9, "cache {} bytes, none {} bytes", roomy.bytes, plain.bytes);
}

#[test]
fn pipelined_frames_keep_the_caches_in_step_through_evictions() {
    // The viewer plans a frame while the previous one is still on its way: the server's model
    // runs ahead of the client by the frames in flight, and the two agree whenever none is.
    let (width, height) = (333, 217);
    let mut rng = Rng(0x0b5e);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 5, y: 3, width: 300, height: 200 }, 4);
    let mut client = Client::attach(&mut display, 3, Some(5));
    let mut in_flight: std::collections::VecDeque<FramePlan> = std::collections::VecDeque::new();
    for step in 0..600 {
        let bands = 1 + rng.below(3);
        desktop.act(&mut rng, &mut display, bands);
        if let Some(plan) = display.take_frame(client.id) {
            in_flight.push_back(plan);
        }
        // Deliver the oldest frame when the window is full, and sometimes all of them.
        let drain = rng.below(5) == 0;
        while in_flight.len() >= 3 || (drain && !in_flight.is_empty()) {
            let plan = in_flight.pop_front().expect("a frame");
            let seq = plan.seq();
            client.draw(plan.encode());
            display.handle_ack(client.id, seq).expect("ack");
        }
        if in_flight.is_empty() {
            client.check_cache(&display, step);
        }
    }
    for plan in in_flight.drain(..) {
        let seq = plan.seq();
        client.draw(plan.encode());
        display.handle_ack(client.id, seq).expect("ack");
    }
    while client.deliver(&mut display) {}
    client.check(&display, 600);
    assert!(display.viewer_stats(client.id).expect("viewer").cache_stores > 100);
}

#[test]
fn switching_back_to_a_window_seen_before_costs_almost_nothing() {
    let (width, height) = (640, 400);
    let mut rng = Rng(7);
    let mut display = Display::new(width, height);
    let full = Rect { x: 0, y: 0, width, height };
    let screen_a = text_window(&mut rng, width, height, [200, 40, 40]);
    let screen_b = text_window(&mut rng, width, height, [40, 200, 40]);
    display.apply(Update::Pixels { rect: full, rgba: screen_a.clone() }).expect("A");
    let mut client = Client::attach(&mut display, 2, Some(2048));
    let mut frame_bytes = Vec::new();
    for screen in [None, Some(screen_b), Some(screen_a)] {
        if let Some(rgba) = screen {
            display.apply(Update::Pixels { rect: full, rgba }).expect("switch");
        }
        let before = client.bytes;
        let before_messages = client.messages.len();
        assert!(client.deliver(&mut display));
        client.check(&display, frame_bytes.len());
        frame_bytes.push((client.bytes - before, client.messages[before_messages..].to_vec()));
    }
    let (first, _) = &frame_bytes[0];
    let (back, messages) = &frame_bytes[2];
    // Back on A: only draws from the cache and fills, no image data.
    assert!(messages.iter().all(|m| matches!(m, ServerMessage::CacheDraw { .. } | ServerMessage::Fill { .. } | ServerMessage::EndFrame { .. })), "{messages:?}");
    assert!(back * 20 < *first, "switching back took {back} bytes, the first frame {first}");
}

#[test]
fn an_offer_of_no_tile_is_the_same_as_no_offer() {
    let mut rng = Rng(3);
    let mut display = Display::new(300, 200);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 9, y: 9, width: 250, height: 150 }, 2);
    let mut plain = Client::attach(&mut display, 2, None);
    let mut none = Client::attach(&mut display, 2, Some(0));
    for step in 0..60 {
        desktop.act(&mut rng, &mut display, 1);
        plain.deliver(&mut display);
        none.deliver(&mut display);
        plain.check(&display, step);
        none.check(&display, step);
    }
    assert!(!plain.messages.iter().chain(&none.messages).any(is_cache_message));
    assert_eq!(plain.messages, none.messages);
    assert_eq!(none.canvas.cached_tiles(), Some(vec![]));
}

#[test]
fn small_changes_cost_the_same_with_a_cache() {
    // A typed character changes part of one block: that is not worth a new 64 x 64 tile.
    let (width, height) = (640, 400);
    let mut rng = Rng(11);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 10, y: 10, width: 600, height: 380 }, 2);
    let mut plain = Client::attach(&mut display, 2, None);
    let mut cached = Client::attach(&mut display, 2, Some(64));
    plain.deliver(&mut display);
    cached.deliver(&mut display);
    desktop.cursor = (100, 95);
    for step in 0..20 {
        let (plain_before, cached_before) = (plain.bytes, cached.bytes);
        // Typing only (the action 0 of Desktop::act).
        let (cx, cy) = desktop.cursor;
        let w = desktop.window;
        display.apply(Update::Pixels { rect: Rect { x: w.x + cx, y: w.y + cy, width: 8, height: 15 }, rgba: glyph(step as u8, [0, 0, 0]) }).expect("glyph");
        desktop.cursor.0 += 8;
        plain.deliver(&mut display);
        cached.deliver(&mut display);
        plain.check(&display, step);
        cached.check(&display, step);
        assert_eq!(plain.bytes - plain_before, cached.bytes - cached_before, "step {step}");
    }
}

#[test]
fn cache_offers_are_answered_once_and_capped() {
    let mut display = Display::new(100, 100);
    let viewer = display.add_viewer(2);
    assert_eq!(display.offer_cache(viewer, 1_000_000), Some(SERVER_CACHE_TILES));
    assert_eq!(display.offer_cache(viewer, 8), None, "a second offer changes nothing");
    assert_eq!(display.cached_tiles(viewer).map(|t| t.len()), Some(SERVER_CACHE_TILES as usize));
    let small = display.add_viewer(2);
    assert_eq!(display.offer_cache(small, 3), Some(3));
    let none = display.add_viewer(2);
    assert_eq!(display.cached_tiles(none), None, "no offer yet");
    assert_eq!(display.offer_cache(none, 0), Some(0));
    assert_eq!(display.cached_tiles(none), Some(vec![]));
    display.remove_viewer(none);
    assert_eq!(display.offer_cache(none, 3), None, "unknown viewer");
}

#[test]
fn the_cache_outlives_a_resize_and_solid_blocks_are_fills() {
    let mut display = Display::new(128, 64);
    let mut client = Client::attach(&mut display, 2, Some(16));
    let pattern: Vec<u8> = (0..64 * 64u32).flat_map(|i| [(i % 7 * 30) as u8, (i % 13 * 19) as u8, 5, 255]).collect();
    display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: 64, height: 64 }, rgba: pattern.clone() }).expect("pattern");
    client.deliver(&mut display);
    client.check(&display, 0);
    // The right block is solid black: a Fill, never a cached tile.
    assert_eq!(display.viewer_stats(client.id).map(|s| s.cache_stores), Some(1));
    display.apply(Update::Resize { width: 200, height: 100 }).expect("resize");
    display.apply(Update::Pixels { rect: Rect { x: 64, y: 0, width: 64, height: 64 }, rgba: pattern }).expect("pattern again");
    let before = client.messages.len();
    client.deliver(&mut display);
    client.check(&display, 1);
    let messages = &client.messages[before..];
    assert!(messages.iter().any(|m| matches!(m, ServerMessage::CacheDraw { slot: 0, x: 64, y: 0 })), "{messages:?}");
}

#[test]
fn the_canvas_enforces_the_cache_rules() {
    let pixels = [9, 9, 9, 255].repeat(4);
    let png = crate::codec::encode_png(2, 2, &pixels, false);
    let store = |slot| ServerMessage::CacheStore { slot, rect: Rect { x: 1, y: 1, width: 2, height: 2 }, codec: bascule_proto::TileCodec::Png, data: png.clone() };
    let mut canvas = Canvas::new(8, 8);
    let refused = |canvas: &mut Canvas, message: &ServerMessage| {
        let before = (canvas.framebuffer().clone(), canvas.cached_tiles());
        assert!(matches!(canvas.apply(message), Err(CanvasError::Cache(_) | CanvasError::OutOfBounds(_))), "{message:?}");
        assert!(before == (canvas.framebuffer().clone(), canvas.cached_tiles()), "a refused {message:?} changed the canvas");
    };
    // Nothing before an agreement, and no agreement without an offer.
    refused(&mut canvas, &store(0));
    refused(&mut canvas, &ServerMessage::CacheDraw { slot: 0, x: 0, y: 0 });
    refused(&mut canvas, &ServerMessage::CacheAgreed { tiles: 1 });
    assert_eq!(canvas.offer_cache(2), bascule_proto::ClientMessage::CacheOffer { tiles: 2 });
    refused(&mut canvas, &ServerMessage::CacheAgreed { tiles: 3 });
    canvas.apply(&ServerMessage::CacheAgreed { tiles: 2 }).expect("agreed");
    refused(&mut canvas, &ServerMessage::CacheAgreed { tiles: 2 });
    assert_eq!(canvas.cached_tiles(), Some(vec![None, None]));
    // Slots: in range, filled before drawn; draws inside the canvas.
    refused(&mut canvas, &ServerMessage::CacheDraw { slot: 1, x: 0, y: 0 });
    refused(&mut canvas, &store(2));
    canvas.apply(&store(1)).expect("stored");
    assert_eq!(canvas.cached_tiles(), Some(vec![None, Some(TileKey::of(2, 2, &pixels))]));
    canvas.apply(&ServerMessage::CacheDraw { slot: 1, x: 6, y: 6 }).expect("drawn in the corner");
    refused(&mut canvas, &ServerMessage::CacheDraw { slot: 1, x: 7, y: 6 });
    let outside = ServerMessage::CacheStore { slot: 0, rect: Rect { x: 7, y: 7, width: 2, height: 2 }, codec: bascule_proto::TileCodec::Png, data: png.clone() };
    refused(&mut canvas, &outside);
    assert_eq!((canvas.cache_stores(), canvas.cache_hits()), (1, 1));
    // A resize keeps the cache; a new connection (Hello) starts without one.
    canvas.apply(&ServerMessage::Resize { width: 4, height: 4 }).expect("resize");
    canvas.apply(&ServerMessage::CacheDraw { slot: 1, x: 2, y: 2 }).expect("still cached");
    canvas.apply(&ServerMessage::Hello { version: 0, width: 8, height: 8, codecs: 1, max_in_flight: 2, name: String::new() }).expect("hello");
    assert_eq!(canvas.cached_tiles(), None);
    refused(&mut canvas, &ServerMessage::CacheDraw { slot: 1, x: 0, y: 0 });
    canvas.apply(&ServerMessage::CacheAgreed { tiles: 1 }).expect("agreed again, within the same offer");
}

// ---------------------------------------------------------------------------------------------
// Glyphs, JPEG and refinement
// ---------------------------------------------------------------------------------------------

use bascule_proto::{CODEC_GLYPHS, CODEC_JPEG, CODEC_PNG};

const ALL_CODECS: u32 = CODEC_PNG | CODEC_JPEG | CODEC_GLYPHS;

/// A photo-like picture: smooth gradients with per-pixel noise.
fn photo(rng: &mut Rng, width: u16, height: u16) -> Vec<u8> {
    let seed = rng.below(200);
    (0..usize::from(width) * usize::from(height))
        .flat_map(|i| {
            let (x, y) = (i % usize::from(width), i / usize::from(width));
            let noise = (rng.next() % 24) as usize;
            [((x + usize::from(seed)) / 3 + noise) as u8, ((y * 2) / 3 + noise) as u8, ((x + y) / 5 + noise) as u8, 255]
        })
        .collect()
}

#[test]
fn glyph_viewers_rebuild_the_framebuffer_and_every_cache_agrees_after_every_frame() {
    let (width, height) = (517, 331);
    let mut rng = Rng(0x91ef);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 37, y: 21, width: 421, height: 270 }, 3);
    let mut plain = Client::attach(&mut display, 2, None);
    let mut glyphs = Client::attach_with(&mut display, 2, None, CODEC_PNG | CODEC_GLYPHS);
    let mut both = Client::attach_with(&mut display, 2, Some(64), CODEC_PNG | CODEC_GLYPHS);
    for step in 0..300 {
        for _ in 0..1 + rng.below(3) {
            if rng.below(5) == 0 {
                let update = random_update(&mut rng, width, height);
                display.apply(update).expect("update inside");
            } else {
                desktop.act(&mut rng, &mut display, 1);
            }
        }
        for client in [&mut plain, &mut glyphs, &mut both] {
            client.deliver(&mut display);
            client.check(&display, step);
        }
    }
    let stats = display.viewer_stats(glyphs.id).expect("viewer");
    // Random noise and patterns add new shapes all the time; typed text and switched windows
    // are drawn from the cache.
    assert!(stats.glyph_draws > 2 * stats.glyph_stores, "text is drawn from the glyph cache: {stats:?}");
    assert_eq!(stats.glyph_draws + stats.glyph_stores, glyphs.canvas.glyph_draws());
    // (Bytes: random noise dominates this sequence; `a_page_of_text_costs_a_fraction_as_glyphs`
    // and the display bench measure them.)
    assert!(plain.canvas.cached_glyphs().is_empty() && display.cached_glyphs(plain.id).is_none());
}

#[test]
fn the_glyph_cache_agrees_through_evictions_and_pipelined_frames() {
    // More distinct glyphs than slots: every slot is reused, with two frames in flight.
    let (width, height) = (640, 480);
    let mut display = Display::new(width, height);
    display.apply(Update::Fill { rect: Rect { x: 0, y: 0, width, height }, rgb: [255, 255, 255] }).expect("fill");
    let mut client = Client::attach_with(&mut display, 2, None, CODEC_PNG | CODEC_GLYPHS);
    let mut in_flight = std::collections::VecDeque::new();
    let mut index = 0u32;
    for step in 0..120 {
        // A line of 70 glyphs, each a distinct 5 x 9 shape (a 45-bit pattern from a counter).
        let y = (step % 40) as u16 * 12;
        let mut rgba = vec![255u8; 640 * 10 * 4];
        for column in 0..70 {
            index += 1;
            let bits = u64::from(index).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            for i in 0..45 {
                if bits >> i & 1 == 1 || i == 0 {
                    let (gx, gy) = (column * 9 + i % 5, i / 5);
                    rgba[(gy * 640 + gx) * 4..(gy * 640 + gx) * 4 + 3].copy_from_slice(&[0, 0, 0]);
                }
            }
        }
        display.apply(Update::Pixels { rect: Rect { x: 0, y, width: 640, height: 10 }, rgba }).expect("line");
        if let Some(plan) = display.take_frame(client.id) {
            in_flight.push_back(plan.seq());
            client.draw(plan.encode());
        }
        if in_flight.len() == 2 || step % 7 == 0 {
            let seq = in_flight.pop_front().expect("a frame");
            display.handle_ack(client.id, seq).expect("ack");
        }
        // The server's model runs ahead by the planned frames, which the client has drawn.
        client.check_cache(&display, step);
        assert!(client.canvas.framebuffer() == display.framebuffer(), "step {step}");
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert!(stats.glyph_stores > u64::from(bascule_proto::GLYPH_SLOTS) + 1000, "{stats:?}");
    assert!(client.canvas.cached_glyphs().iter().all(Option::is_some));
}

#[test]
fn lossy_photos_converge_to_exact_after_refinement() {
    let (width, height) = (400, 300);
    let mut rng = Rng(0x9407);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 10, y: 10, width: 300, height: 200 }, 2);
    let mut lossy = Client::attach_with(&mut display, 2, Some(256), ALL_CODECS);
    display.set_quality(lossy.id, Some(60));
    let mut exact = Client::attach_with(&mut display, 2, Some(256), ALL_CODECS);
    let mut lossy_frames = 0;
    for step in 0..200 {
        match rng.below(6) {
            0 | 1 => {
                let rect = Rect { x: rng.below(200), y: rng.below(150), width: 64 + rng.below(136), height: 64 + rng.below(86) };
                let rgba = photo(&mut rng, rect.width, rect.height);
                display.apply(Update::Pixels { rect, rgba }).expect("photo");
            }
            2 => {
                let update = random_update(&mut rng, width, height);
                display.apply(update).expect("update");
            }
            _ => desktop.act(&mut rng, &mut display, 1),
        }
        for client in [&mut lossy, &mut exact] {
            client.deliver(&mut display);
        }
        // The lossless viewer is exact after every frame; the lossy one wherever it holds no loss.
        exact.check(&display, step);
        lossy.check_cache(&display, step);
        let stats = display.viewer_stats(lossy.id).expect("viewer");
        if stats.lossy_cells > 0 {
            lossy_frames += 1;
        } else {
            assert!(lossy.canvas.framebuffer() == display.framebuffer(), "nothing lossy, yet not exact at step {step}");
        }
        // Now and then the screen goes quiet: refinement makes the lossy viewer exact. The first
        // call after a lossy frame refines nothing (the picture may still be changing); the
        // next one, with nothing sent lossy in between, refines everything.
        if rng.below(8) == 0 {
            let early = display.refine(lossy.id, usize::MAX);
            assert!(!early || lossy.deliver(&mut display), "a refinement frame");
            let had_loss = display.refine(lossy.id, usize::MAX);
            let left = display.viewer_stats(lossy.id).expect("viewer").lossy_cells;
            assert_eq!(had_loss, left > 0);
            assert!(!had_loss || lossy.deliver(&mut display), "a refinement frame");
            lossy.check(&display, step);
            assert_eq!(display.viewer_stats(lossy.id).expect("viewer").lossy_cells, 0);
            assert!(!display.refine(lossy.id, usize::MAX), "nothing left to refine");
        }
    }
    display.refine(lossy.id, usize::MAX);
    display.refine(lossy.id, usize::MAX);
    lossy.deliver(&mut display);
    lossy.check(&display, 200);
    assert!(lossy_frames > 20, "photos went lossy: {lossy_frames}");
    let stats = display.viewer_stats(lossy.id).expect("viewer");
    assert!(stats.lossy_tiles > 20 && display.viewer_stats(exact.id).expect("viewer").lossy_tiles == 0, "{stats:?}");
    assert!(lossy.messages.iter().any(|m| matches!(m, ServerMessage::Tile { codec: bascule_proto::TileCodec::Jpeg, .. })));
    assert!(!exact.messages.iter().any(|m| matches!(m, ServerMessage::Tile { codec: bascule_proto::TileCodec::Jpeg, .. })));
}

#[test]
fn a_copy_from_a_lossy_source_is_sent_as_pixels() {
    let mut rng = Rng(5);
    let mut display = Display::new(256, 256);
    let mut client = Client::attach_with(&mut display, 1, None, ALL_CODECS);
    display.set_quality(client.id, Some(50));
    client.deliver(&mut display);
    let rect = Rect { x: 0, y: 0, width: 128, height: 128 };
    display.apply(Update::Pixels { rect, rgba: photo(&mut rng, 128, 128) }).expect("photo");
    client.deliver(&mut display);
    assert!(display.viewer_stats(client.id).expect("viewer").lossy_cells >= 64);
    // The photo moves: the copy would carry the loss, so its destination is sent again.
    display.apply(Update::Copy { src_x: 0, src_y: 0, dst: Rect { x: 128, y: 128, width: 128, height: 128 } }).expect("copy");
    client.deliver(&mut display);
    assert!(!client.messages.iter().any(|m| matches!(m, ServerMessage::Copy { .. })));
    // Still changing: not refined yet; settled: refined.
    assert!(!display.refine(client.id, usize::MAX));
    assert!(display.refine(client.id, usize::MAX));
    client.deliver(&mut display);
    client.check(&display, 0);
}

#[test]
fn a_page_of_text_costs_a_fraction_as_glyphs() {
    // A page of new text (a `less` page down): PNG only, then glyphs with the cache warm from
    // the page before.
    let (width, height) = (800, 520);
    let mut rng = Rng(0x7e47);
    let page = |rng: &mut Rng| text_window(rng, width, height, [255, 255, 255]);
    let mut bytes = Vec::new();
    for codecs in [CODEC_PNG, CODEC_PNG | CODEC_GLYPHS] {
        let mut display = Display::new(width, height);
        let mut client = Client::attach_with(&mut display, 1, None, codecs);
        client.deliver(&mut display);
        display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width, height }, rgba: page(&mut rng) }).expect("page");
        client.deliver(&mut display);
        let before = client.bytes;
        display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width, height }, rgba: page(&mut rng) }).expect("page");
        client.deliver(&mut display);
        client.check(&display, 0);
        bytes.push(client.bytes - before);
    }
    assert!(bytes[1] * 4 < bytes[0], "a page: {} bytes as glyphs, {} as PNG", bytes[1], bytes[0]);
}

#[test]
fn a_playing_video_stays_lossy_and_a_still_photo_next_to_it_is_refined() {
    let mut rng = Rng(11);
    let mut display = Display::new(512, 256);
    let mut client = Client::attach_with(&mut display, 1, None, ALL_CODECS);
    display.set_quality(client.id, Some(50));
    client.deliver(&mut display);
    let (video, still) = (Rect { x: 0, y: 0, width: 256, height: 256 }, Rect { x: 256, y: 0, width: 256, height: 256 });
    display.apply(Update::Pixels { rect: still, rgba: photo(&mut rng, 256, 256) }).expect("photo");
    for _ in 0..6 {
        // A video frame between every refinement tick.
        display.apply(Update::Pixels { rect: video, rgba: photo(&mut rng, 256, 256) }).expect("video");
        client.deliver(&mut display);
        display.refine(client.id, usize::MAX);
    }
    client.deliver(&mut display);
    // The still half is exact, the video half is not (and is still marked lossy).
    let (canvas, server) = (client.canvas.framebuffer(), display.framebuffer());
    assert_eq!(pixels_of(canvas, still), pixels_of(server, still));
    assert_ne!(pixels_of(canvas, video), pixels_of(server, video));
    assert_eq!(display.viewer_stats(client.id).expect("viewer").lossy_cells, 16 * 16);
    // The video stops: two ticks later it is exact too.
    display.refine(client.id, usize::MAX);
    display.refine(client.id, usize::MAX);
    client.deliver(&mut display);
    client.check(&display, 0);
}

#[test]
fn a_refinement_budget_spreads_the_refinement_over_several_frames() {
    let mut rng = Rng(12);
    let mut display = Display::new(256, 256);
    let mut client = Client::attach_with(&mut display, 1, None, ALL_CODECS);
    display.set_quality(client.id, Some(50));
    client.deliver(&mut display);
    display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: 256, height: 256 }, rgba: photo(&mut rng, 256, 256) }).expect("photo");
    client.deliver(&mut display);
    assert_eq!(display.viewer_stats(client.id).expect("viewer").lossy_cells, 256);
    assert!(!display.refine(client.id, 100), "still fresh");
    let mut frames = 0;
    while display.refine(client.id, 100) {
        // A slice not yet planned holds the next one back.
        assert!(!display.refine(client.id, 100), "one slice at a time");
        client.deliver(&mut display);
        frames += 1;
        let left = display.viewer_stats(client.id).expect("viewer").lossy_cells;
        assert_eq!(left, 256usize.saturating_sub(100 * frames), "100 cells a frame");
    }
    assert_eq!(frames, 3);
    client.check(&display, 0);
}

#[test]
fn a_scroll_sent_as_pixels_by_the_backend_travels_as_a_copy() {
    // Backends without CopyRect (x11vnc polling) report a scroll as new pixels everywhere; the
    // viewer gets one Copy and the new lines.
    let (width, height) = (640, 480);
    let mut rng = Rng(0x5c01);
    let page = text_window(&mut rng, width, height, [255, 255, 255]);
    let row_bytes = usize::from(width) * 4;
    for codecs in [CODEC_PNG, ALL_CODECS] {
        let mut display = Display::new(width, height);
        let full = Rect { x: 0, y: 0, width, height };
        display.apply(Update::Pixels { rect: full, rgba: page.clone() }).expect("page");
        let mut client = Client::attach_with(&mut display, 1, None, codecs);
        client.deliver(&mut display);
        let mut without = Client::attach_with(&mut display, 1, None, codecs);
        without.deliver(&mut display);
        // Scroll up by three lines of 15 pixels below the title bar: new text at the bottom.
        let mut scrolled = page.clone();
        let (top, shift) = (20usize, 45usize);
        scrolled.copy_within((top + shift) * row_bytes..usize::from(height) * row_bytes, top * row_bytes);
        let fresh = text_window(&mut rng, width, height, [255, 255, 255]);
        let bottom = usize::from(height) - shift;
        scrolled[bottom * row_bytes..].copy_from_slice(&fresh[bottom * row_bytes..]);
        let before = client.bytes;
        display.apply(Update::Pixels { rect: full, rgba: scrolled }).expect("scrolled");
        client.deliver(&mut display);
        client.check(&display, 0);
        let copies: Vec<_> = client.messages.iter().filter(|m| matches!(m, ServerMessage::Copy { .. })).collect();
        assert_eq!(copies.len(), 1, "one copy: {copies:?}");
        assert_eq!(display.viewer_stats(client.id).expect("viewer").scrolls, 1);
        // The same frame costs far more without the copy: a viewer whose canvas is stale (its
        // shadow says black) cannot use it.
        let scrolled_bytes = client.bytes - before;
        let page_bytes = without.bytes;
        assert!(scrolled_bytes * 3 < page_bytes, "scroll {scrolled_bytes} bytes, a whole page {page_bytes} bytes (codecs {codecs})");
    }
}

#[test]
fn a_small_change_inside_a_picture_resends_the_change_not_the_picture() {
    // A picture on a page, beside text: something small changes inside the picture (a blinking
    // caret, a spinner). Only the change travels, not the picture it sits in.
    let mut rng = Rng(0xb1);
    let (width, height) = (400, 300);
    let mut display = Display::new(width, height);
    display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width, height }, rgba: text_window(&mut rng, width, height, [255, 255, 255]) }).expect("page");
    let picture = Rect { x: 100, y: 60, width: 200, height: 150 };
    display.apply(Update::Pixels { rect: picture, rgba: photo(&mut rng, picture.width, picture.height) }).expect("picture");
    let mut client = Client::attach_with(&mut display, 1, None, ALL_CODECS);
    client.deliver(&mut display);
    let before = client.bytes;
    let spinner: Vec<u8> = (0..6 * 12).flat_map(|i| if (i + i / 6) % 2 == 0 { [0, 0, 0, 255] } else { [250, 250, 250, 255] }).collect();
    // At the picture's corner, so that the cut around it sees the page's background.
    display.apply(Update::Pixels { rect: Rect { x: 100, y: 60, width: 6, height: 12 }, rgba: spinner }).expect("spinner");
    client.deliver(&mut display);
    client.check(&display, 0);
    let bytes = client.bytes - before;
    assert!(bytes < 400, "a 6x12 change inside a picture cost {bytes} bytes");
}

const VIDEO_CODECS: u32 = ALL_CODECS | bascule_proto::CODEC_H264;

/// Frame `t` of a video: a smooth pattern that moves, with a little sensor noise.
fn video_frame(rng: &mut Rng, t: usize, width: u16, height: u16) -> Vec<u8> {
    (0..usize::from(width) * usize::from(height))
        .flat_map(|i| {
            let (x, y) = (i % usize::from(width) + t * 6, i / usize::from(width) + t * 2);
            let noise = (rng.next() % 6) as usize;
            let wave = |v: usize, k: usize| ((v * k / 7) % 200) as u8;
            [wave(x + noise, 3) + 20, wave(y + noise, 5) + 10, wave(x + y, 2) + 30, 255]
        })
        .collect()
}

/// Frame `t` of a video, shown at `rect`.
fn play(display: &mut Display, rng: &mut Rng, rect: Rect, t: usize) {
    display.apply(Update::Pixels { rect, rgba: video_frame(rng, t, rect.width, rect.height) }).expect("video");
}

/// A word typed at (x, y): eight glyphs of the small font, on white.
fn typed(t: usize, x: u16, y: u16) -> Update {
    let mut rgba = vec![255; 64 * 15 * 4];
    for i in 0..8u16 {
        blit(&mut rgba, 64, i * 8, 0, 8, &glyph((t as u8).wrapping_add(i as u8), [0, 0, 0]));
    }
    Update::Pixels { rect: Rect { x, y, width: 64, height: 15 }, rgba }
}

/// The canvas equals the framebuffer everywhere outside `except`.
fn assert_exact_outside(canvas: &Framebuffer, server: &Framebuffer, except: Rect, step: usize) {
    let (width, height) = server.size();
    let whole = Rect { x: 0, y: 0, width, height };
    let (a, b) = (pixels_of(canvas, whole), pixels_of(server, whole));
    for (i, (p, q)) in a.chunks_exact(4).zip(b.chunks_exact(4)).enumerate() {
        let (x, y) = ((i % usize::from(width)) as u16, (i / usize::from(width)) as u16);
        let inside = x >= except.x && x < except.x + except.width && y >= except.y && y < except.y + except.height;
        assert!(inside || p == q, "pixel ({x}, {y}) differs outside {except:?} at step {step}");
    }
}

/// Mean absolute difference of the channels of two equal-sized pictures.
fn mean_error(a: &[u8], b: &[u8]) -> f64 {
    let sum: u64 = a.iter().zip(b).map(|(p, q)| u64::from(p.abs_diff(*q))).sum();
    sum as f64 / a.len() as f64
}

#[test]
fn a_playing_video_goes_as_h264_and_becomes_exact_once_it_stops() {
    let mut rng = Rng(0x264);
    let mut display = Display::new(640, 400);
    let mut client = Client::attach_with(&mut display, 2, Some(256), VIDEO_CODECS);
    client.deliver(&mut display);
    let video = Rect { x: 64, y: 64, width: 320, height: 192 };
    for t in 0..40 {
        play(&mut display, &mut rng, video, t);
        // Someone types next to it all along: that stays lossless text.
        display.apply(typed(t, 448, 40 + (t % 4) as u16 * 16)).expect("text");
        assert!(client.deliver(&mut display), "a frame at step {t}");
        if t % 4 == 3 {
            display.refine(client.id, usize::MAX);
        }
        assert_exact_outside(client.canvas.framebuffer(), display.framebuffer(), video, t);
        client.check_cache(&display, t);
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert_eq!(stats.video_streams, 1, "one stream, no flapping: {stats:?}");
    assert!(stats.video_open && stats.video_frames >= 30, "{stats:?}");
    assert_eq!(client.canvas.video_frames(), stats.video_frames);
    let videos: Vec<_> = client.messages.iter().filter_map(|m| match m { ServerMessage::Video { flags, rect, .. } => Some((*flags, *rect)), _ => None }).collect();
    assert_eq!(videos[0].0, bascule_proto::VIDEO_KEY, "the stream starts with an IDR");
    assert!(videos[1..].iter().all(|(flags, _)| *flags == 0), "then only P-frames: {videos:?}");
    // The region found is the video's, on whole blocks of 64 pixels.
    assert!(videos.iter().all(|(_, rect)| *rect == video), "{videos:?}");
    // Lossy, but close: the last picture is within a few levels of the truth.
    let error = mean_error(&pixels_of(client.canvas.framebuffer(), video), &pixels_of(display.framebuffer(), video));
    assert!(error > 0.0 && error < 6.0, "mean error {error}");
    // The video stops: the refinement makes it exact, and the idle stream ends.
    for period in 0..10 {
        display.refine(client.id, usize::MAX);
        client.deliver(&mut display);
        if period >= 2 {
            client.check(&display, 100 + period);
        }
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert!(!stats.video_open && stats.lossy_cells == 0, "{stats:?}");
    assert!(matches!(client.messages.last(), Some(ServerMessage::EndFrame { .. })));
    assert!(client.messages.iter().any(|m| matches!(m, ServerMessage::Video { flags: bascule_proto::VIDEO_END, data, .. } if data.is_empty())));
    // The video plays again: a new stream, which starts with an IDR.
    for t in 40..52 {
        play(&mut display, &mut rng, video, t);
        client.deliver(&mut display);
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert_eq!(stats.video_streams, 2, "{stats:?}");
}

#[test]
fn typing_scrolling_and_a_still_photo_never_open_a_stream() {
    let mut rng = Rng(0x265);
    let mut display = Display::new(640, 400);
    let mut client = Client::attach_with(&mut display, 1, Some(256), VIDEO_CODECS);
    display.apply(Update::Pixels { rect: Rect { x: 300, y: 100, width: 320, height: 240 }, rgba: photo(&mut rng, 320, 240) }).expect("photo");
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 10, y: 10, width: 280, height: 380 }, 2);
    for t in 0..80 {
        if t % 3 == 0 {
            desktop.act(&mut rng, &mut display, 2);
        }
        display.apply(typed(t, 20 + (t % 8) as u16 * 8, 360)).expect("text");
        client.deliver(&mut display);
        client.check(&display, t);
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert_eq!((stats.video_streams, stats.video_frames), (0, 0), "{stats:?}");
}

#[test]
fn a_window_closed_over_a_video_ends_its_stream() {
    let mut rng = Rng(0x266);
    let mut display = Display::new(512, 320);
    let mut client = Client::attach_with(&mut display, 1, None, VIDEO_CODECS);
    let video = Rect { x: 0, y: 64, width: 256, height: 128 };
    for t in 0..20 {
        play(&mut display, &mut rng, video, t);
        client.deliver(&mut display);
    }
    assert!(display.viewer_stats(client.id).expect("viewer").video_open);
    // A text window covers the video, and someone types in it.
    display.apply(Update::Fill { rect: Rect { x: 0, y: 0, width: 512, height: 320 }, rgb: [255, 255, 255] }).expect("window");
    for t in 0..8 {
        display.apply(typed(t, 16 + t as u16 * 8, 96)).expect("text");
        client.deliver(&mut display);
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert!(!stats.video_open, "{stats:?}");
    let frames = stats.video_frames;
    for t in 8..16 {
        display.apply(typed(t, 16, 96)).expect("text");
        client.deliver(&mut display);
    }
    assert_eq!(display.viewer_stats(client.id).expect("viewer").video_frames, frames, "typing is not video");
    display.refine(client.id, usize::MAX);
    display.refine(client.id, usize::MAX);
    client.deliver(&mut display);
    client.check(&display, 0);
}

#[test]
fn a_viewer_without_h264_never_gets_video() {
    let mut rng = Rng(0x267);
    let mut display = Display::new(512, 320);
    let mut client = Client::attach_with(&mut display, 1, None, ALL_CODECS);
    let video = Rect { x: 0, y: 64, width: 256, height: 128 };
    for t in 0..20 {
        play(&mut display, &mut rng, video, t);
        client.deliver(&mut display);
        client.check(&display, t);
    }
    assert!(!client.messages.iter().any(|m| matches!(m, ServerMessage::Video { .. })));
}

#[test]
fn the_canvas_enforces_the_video_rules() {
    use bascule_proto::{CODEC_H264, VIDEO_END, VIDEO_KEY};
    let mut rng = Rng(0x268);
    let rect = Rect { x: 0, y: 0, width: 64, height: 32 };
    let mut encoder = crate::video::VideoEncoder::new(64, 32, 500_000).expect("encoder");
    let mut pictures = Vec::new();
    for t in 0..3 {
        pictures.push(encoder.encode(&video_frame(&mut rng, t, 64, 32)).expect("encoded").expect("not skipped"));
    }
    assert!(pictures[0].1 && !pictures[1].1 && !pictures[2].1, "IDR, then P-frames");
    let video = |stream: u16, flags: u8, rect: Rect, clip: Vec<Rect>, data: &[u8]| ServerMessage::Video { stream, flags, rect, clip, data: data.to_vec() };
    let new_canvas = |codecs: u32| {
        let mut canvas = Canvas::new(128, 64);
        canvas.announce_codecs(codecs);
        canvas
    };
    // Not announced.
    let mut canvas = new_canvas(ALL_CODECS);
    assert!(matches!(canvas.apply(&video(1, VIDEO_KEY, rect, vec![], &pictures[0].0)), Err(CanvasError::Video(_))));
    let mut canvas = new_canvas(CODEC_H264);
    let black = canvas.framebuffer().clone();
    // A P-frame of a stream that is not open; a rectangle outside the canvas; a picture smaller
    // than the rectangle: refused, nothing drawn.
    assert!(matches!(canvas.apply(&video(1, 0, rect, vec![], &pictures[1].0)), Err(CanvasError::Video(_))));
    assert!(matches!(canvas.apply(&video(1, VIDEO_KEY, Rect { x: 100, ..rect }, vec![], &pictures[0].0)), Err(CanvasError::OutOfBounds(_))));
    assert!(matches!(canvas.apply(&video(1, VIDEO_KEY, Rect { width: 80, ..rect }, vec![], &pictures[0].0)), Err(CanvasError::Video(_))));
    assert!(canvas.framebuffer() == &black);
    // Garbage closes the stream.
    assert!(matches!(canvas.apply(&video(2, VIDEO_KEY, rect, vec![], &[0, 0, 0, 1, 0x65, 1, 2, 3])), Err(CanvasError::Video(_))));
    assert!(matches!(canvas.apply(&video(2, 0, rect, vec![], &pictures[1].0)), Err(CanvasError::Video(_))));
    // A real stream, clipped to its left half, at (64, 32).
    let at = Rect { x: 64, y: 32, ..rect };
    let left = Rect { width: 32, ..at };
    canvas.apply(&video(3, VIDEO_KEY, at, vec![left], &pictures[0].0)).expect("key");
    canvas.apply(&video(3, 0, at, vec![left], &pictures[1].0)).expect("delta");
    assert!(pixels_of(canvas.framebuffer(), Rect { x: 96, width: 32, ..at }).iter().all(|&b| b == 0 || b == 255), "right half untouched");
    assert!(pixels_of(canvas.framebuffer(), left).chunks_exact(4).any(|p| p[..3] != [0, 0, 0]));
    assert_eq!(canvas.video_frames(), 2);
    // Four streams at most.
    for stream in 10..13 {
        canvas.apply(&video(stream, VIDEO_KEY, rect, vec![], &pictures[0].0)).expect("another stream");
    }
    assert!(matches!(canvas.apply(&video(13, VIDEO_KEY, rect, vec![], &pictures[0].0)), Err(CanvasError::Video(_))));
    // END closes; then a P-frame is refused; a Resize closes them all.
    canvas.apply(&video(3, VIDEO_END, at, vec![], &[])).expect("end");
    assert!(matches!(canvas.apply(&video(3, 0, at, vec![], &pictures[2].0)), Err(CanvasError::Video(_))));
    // An empty END for a stream that is not open does nothing; with data, it needs its stream.
    canvas.apply(&video(3, VIDEO_END, at, vec![], &[])).expect("an END of a closed stream is no error");
    assert!(matches!(canvas.apply(&video(3, VIDEO_END, at, vec![], &pictures[2].0)), Err(CanvasError::Video(_))));
    canvas.apply(&ServerMessage::Resize { width: 128, height: 64 }).expect("resize");
    assert!(matches!(canvas.apply(&video(10, 0, rect, vec![], &pictures[1].0)), Err(CanvasError::Video(_))));
}

#[test]
fn host_h264_is_passed_through_to_viewers_in_step_and_decoded_for_the_others() {
    use bascule_proto::{VIDEO_END, VIDEO_KEY};
    let mut rng = Rng(0x420);
    let mut display = Display::new(640, 400);
    let mut fast = Client::attach_with(&mut display, 2, None, VIDEO_CODECS);
    let mut png = Client::attach_with(&mut display, 2, None, CODEC_PNG);
    let mut slow = Client::attach_with(&mut display, 1, None, VIDEO_CODECS);
    for client in [&mut fast, &mut png, &mut slow] {
        client.deliver(&mut display);
    }
    // A host that sends AVC420 for (32, 32, 320, 192), sometimes only for a part of it.
    let rect = Rect { x: 32, y: 32, width: 320, height: 192 };
    let part = Rect { x: 96, y: 64, width: 128, height: 64 };
    let mut host = crate::video::VideoEncoder::new(rect.width, rect.height, 1_000_000).expect("encoder");
    let mut late: Option<Client> = None;
    for t in 0..40 {
        // A viewer that comes after the IDR catches up with the pictures since.
        if t == 10 {
            late = Some(Client::attach_with(&mut display, 2, None, VIDEO_CODECS));
        }
        if t == 30 {
            host.force_key();
        }
        let (data, key) = host.encode(&video_frame(&mut rng, t, rect.width, rect.height)).expect("encoded").expect("not skipped");
        assert_eq!(key, t == 0 || t == 30);
        let regions = if t % 3 == 0 { vec![] } else { vec![part, Rect { x: 32, y: 200, width: 320, height: 24 }] };
        display.apply(Update::Video { stream: 0, rect, regions, data }).expect("a host picture");
        // Someone types next to it.
        display.apply(typed(t, 400, 300)).expect("text");
        fast.deliver(&mut display);
        png.deliver(&mut display);
        if !(3..28).contains(&t) {
            slow.deliver(&mut display);
        }
        // The viewer that decodes what the host sent shows exactly what the gateway decoded; so
        // does the one that only gets pixels.
        fast.check(&display, t);
        png.check(&display, t);
        if let Some(late) = late.as_mut() {
            late.deliver(&mut display);
            late.check(&display, t);
        }
    }
    let late = late.expect("attached");
    let late_videos: Vec<u8> = late.messages.iter().filter_map(|m| if let ServerMessage::Video { flags, .. } = m { Some(*flags) } else { None }).collect();
    assert_eq!(late_videos.len(), 40, "the 10 pictures before it came, then every one from the 11th on");
    assert_eq!(late_videos[0], VIDEO_KEY, "the catch-up starts at the IDR");
    slow.deliver(&mut display);
    slow.check(&display, 40);
    let stats = |display: &Display, c: &Client| display.viewer_stats(c.id).expect("viewer");
    assert_eq!(stats(&display, &fast).passed_through, 40, "{:?}", stats(&display, &fast));
    assert_eq!(stats(&display, &png).passed_through, 0);
    assert!(!png.messages.iter().any(|m| matches!(m, ServerMessage::Video { .. })));
    // The slow viewer fell behind: its stream was closed, it got pixels, and the next IDR put it
    // back in step.
    let slow_videos: Vec<(u16, u8)> =
        slow.messages.iter().filter_map(|m| if let ServerMessage::Video { stream, flags, .. } = m { Some((*stream, *flags)) } else { None }).collect();
    assert!(slow_videos.contains(&(0x8000, VIDEO_END)), "{slow_videos:?}");
    assert_eq!(slow_videos.iter().filter(|(_, f)| *f == VIDEO_KEY).count(), 2, "{slow_videos:?}");
    let passed = stats(&display, &slow).passed_through;
    assert!(passed > 10 && passed < 30, "{passed}");
    // Pass-through areas hold the framebuffer's own decoding: nothing to refine.
    assert_eq!(stats(&display, &fast).lossy_cells, 0);
    assert!(!display.refine(fast.id, usize::MAX));
    // Bad host data is refused and changes nothing: a picture before any IDR, garbage.
    let before = display.framebuffer().clone();
    let (data, key) = host.encode(&video_frame(&mut rng, 40, rect.width, rect.height)).expect("encoded").expect("not skipped");
    assert!(!key);
    assert!(matches!(display.apply(Update::Video { stream: 7, rect, regions: vec![], data }), Err(UpdateError::Video(_))));
    let garbage = vec![0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xff];
    assert!(matches!(display.apply(Update::Video { stream: 0, rect, regions: vec![], data: garbage }), Err(UpdateError::Video(_))));
    assert!(matches!(
        display.apply(Update::Video { stream: 0, rect, regions: vec![Rect { x: 0, ..part }], data: vec![] }),
        Err(UpdateError::OutOfBounds(_))
    ));
    assert!(display.framebuffer() == &before);
}

#[test]
fn a_video_off_the_block_grid_goes_whole_as_video() {
    let mut rng = Rng(0x269);
    let mut display = Display::new(640, 480);
    let mut client = Client::attach_with(&mut display, 2, None, VIDEO_CODECS);
    client.deliver(&mut display);
    // Half blocks above and below: the blocks there are mostly background, never "hot".
    let video = Rect { x: 80, y: 96, width: 320, height: 224 };
    for t in 0..30 {
        play(&mut display, &mut rng, video, t);
        client.deliver(&mut display);
    }
    let stats = display.viewer_stats(client.id).expect("viewer");
    assert_eq!(stats.video_streams, 1, "{stats:?}");
    // The last frames carry the video and nothing else.
    let tail = &client.messages[client.messages.len() - 10..];
    assert!(tail.iter().all(|m| matches!(m, ServerMessage::Video { .. } | ServerMessage::EndFrame { .. })), "{tail:?}");
    let covered = tail.iter().find_map(|m| if let ServerMessage::Video { rect, .. } = m { Some(*rect) } else { None }).expect("a picture");
    assert!(covered.contains(video), "{covered:?} holds {video:?}");
}

#[test]
fn cells_of_one_colour_do_not_count_against_the_refinement_budget() {
    let mut rng = Rng(0x26a);
    let mut display = Display::new(512, 320);
    let mut client = Client::attach_with(&mut display, 1, None, VIDEO_CODECS);
    let video = Rect { x: 0, y: 64, width: 256, height: 128 };
    for t in 0..20 {
        play(&mut display, &mut rng, video, t);
        client.deliver(&mut display);
    }
    // The video's window closes: the last picture of the stream shows the desktop behind it,
    // one colour, but lossy.
    display.apply(Update::Fill { rect: video, rgb: [40, 90, 140] }).expect("desktop");
    client.deliver(&mut display);
    assert_eq!(display.viewer_stats(client.id).expect("viewer").lossy_cells, 128);
    // A budget of one costly cell refines all of them at once: they are one colour.
    display.refine(client.id, 1);
    assert!(display.refine(client.id, 1));
    client.deliver(&mut display);
    assert_eq!(display.viewer_stats(client.id).expect("viewer").lossy_cells, 0);
    client.check(&display, 0);
}

/// Random office work with a video playing now and then, for a viewer that decodes H.264 and
/// one that does not: the caches agree after every frame, the video viewer is exact wherever it
/// holds nothing lossy, and both are exact after idle.
#[test]
fn random_work_with_video_converges_for_h264_viewers() {
    let (width, height) = (640, 400);
    let mut rng = Rng(0x26b);
    let mut display = Display::new(width, height);
    let mut desktop = Desktop::new(&mut rng, &mut display, Rect { x: 10, y: 10, width: 300, height: 200 }, 2);
    let mut video_viewer = Client::attach_with(&mut display, 2, Some(256), VIDEO_CODECS);
    let mut plain = Client::attach_with(&mut display, 2, Some(256), ALL_CODECS);
    display.set_quality(plain.id, Some(60));
    let video = Rect { x: 320, y: 96, width: 256, height: 192 };
    let (mut t, mut playing) = (0, false);
    for step in 0..240 {
        if rng.below(25) == 0 {
            playing = !playing;
        }
        if playing {
            play(&mut display, &mut rng, video, t);
            t += 1;
        }
        match rng.below(5) {
            0 => {
                let update = random_update(&mut rng, width, height);
                display.apply(update).expect("update");
            }
            1 => display.apply(typed(step, 20 + rng.below(200), 300 + rng.below(80))).expect("text"),
            _ => desktop.act(&mut rng, &mut display, 1),
        }
        for client in [&mut video_viewer, &mut plain] {
            client.deliver(&mut display);
            client.check_cache(&display, step);
            if display.viewer_stats(client.id).expect("viewer").lossy_cells == 0 {
                client.check(&display, step);
            }
        }
        if step % 4 == 3 {
            display.refine(video_viewer.id, 64);
            display.refine(plain.id, 64);
        }
        if rng.below(30) == 0 {
            // Idle: everything is refined.
            for client in [&mut video_viewer, &mut plain] {
                for _ in 0..3 {
                    display.refine(client.id, usize::MAX);
                    client.deliver(&mut display);
                }
                client.check(&display, step);
            }
        }
    }
    let stats = display.viewer_stats(video_viewer.id).expect("viewer");
    assert!(stats.video_streams >= 1 && stats.video_frames > 20, "{stats:?}");
    assert_eq!(display.viewer_stats(plain.id).expect("viewer").video_frames, 0);
}

#[test]
fn damage_that_changes_nothing_is_no_frame() {
    let mut display = Display::new(128, 64);
    let mut client = Client::attach(&mut display, 2, None);
    client.deliver(&mut display);
    // A cursor blinks on and off between two frames: the same pixels, reported as damage.
    let rect = Rect { x: 8, y: 8, width: 8, height: 16 };
    display.apply(Update::Fill { rect, rgb: [255, 255, 255] }).expect("on");
    display.apply(Update::Fill { rect, rgb: [0, 0, 0] }).expect("off");
    let frames = client.canvas.last_frame();
    assert!(!client.deliver(&mut display), "no frame for no change");
    assert_eq!(client.canvas.last_frame(), frames);
    // The next real change is the next frame.
    display.apply(Update::Fill { rect, rgb: [255, 255, 255] }).expect("on");
    assert!(client.deliver(&mut display));
    assert_eq!(client.canvas.last_frame(), Some(2));
    client.check(&display, 0);
}
