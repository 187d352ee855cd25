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
    let mut fast_frames = 0;
    for _ in 0..300 {
        display.apply(random_update(&mut rng, width, height)).expect("update");
        if deliver(&mut display, fast, &mut fast_canvas).is_some() {
            fast_frames += 1;
        }
        assert!(display.take_frame(slow).is_none(), "a full window sends nothing");
        assert!(fast_canvas.framebuffer() == display.framebuffer());
    }
    assert_eq!(fast_frames, 300, "the fast viewer got every frame");
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
    display.apply(Update::Cursor(shape)).expect("cursor");
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
