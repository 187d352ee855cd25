//! Encode benchmark: time and bytes for a full 1280x800 desktop frame, a typing update, and a
//! switch back to a window seen before (screen A, screen B, A again), without and with the client
//! tile cache, for a viewer that decodes PNG only and for one that decodes what the browser does
//! (PNG, JPEG and glyphs).
//!
//! Run with `cargo bench -p bascule-display`. It prints tables (median of many runs); it asserts
//! nothing about speed, that belongs to the numbers it prints. It does check that every measured
//! frame rebuilds the screen on a reference canvas.

use bascule_display::{Canvas, Display, Framebuffer, Update, ViewerId};
use bascule_proto::{CODEC_GLYPHS, CODEC_JPEG, CODEC_PNG, Rect, ServerMessage};

/// What the browser viewer announces.
const BROWSER: u32 = CODEC_PNG | CODEC_JPEG | CODEC_GLYPHS;
use std::time::{Duration, Instant};

const FIXTURE: &[u8] = include_bytes!("desktop-1280x800.png");

fn load_fixture() -> Framebuffer {
    let rect = Rect { x: 0, y: 0, width: 1280, height: 800 };
    let rgba = bascule_display::decode_png(FIXTURE, rect).expect("the fixture is a 1280x800 PNG");
    Framebuffer::from_rgba(1280, 800, rgba).expect("size matches")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Returns (median encode time, bytes, messages) of the frame produced after `prepare`; `offer` is
/// the cache offer that `prepare` made for the viewer, if any.
fn measure(
    runs: usize,
    offer: Option<u32>,
    codecs: u32,
    mut prepare: impl FnMut(&mut Display) -> bascule_display::ViewerId,
) -> (Duration, usize, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut bytes = 0;
    let mut messages = 0;
    for _ in 0..runs {
        let mut display = Display::new(1280, 800);
        let viewer = prepare(&mut display);
        let start = Instant::now();
        let plan = display.take_frame(viewer).expect("a frame is due");
        let payloads = plan.encode();
        times.push(start.elapsed());
        bytes = payloads.iter().map(Vec::len).sum();
        messages = payloads.len();
        // Check that what we measured is right: the canvas rebuilt from it equals the source.
        let mut canvas = Canvas::new(1280, 800);
        let codecs = canvas.announce_codecs(codecs);
        canvas.apply(&ServerMessage::Hello { version: 0, width: 1280, height: 800, codecs, max_in_flight: 2, name: String::new() }).expect("hello");
        if let Some(tiles) = offer {
            canvas.offer_cache(tiles);
            let agreed = ServerMessage::CacheAgreed { tiles: tiles.min(bascule_display::SERVER_CACHE_TILES) };
            canvas.apply(&agreed).expect("agreed");
        }
        for payload in &payloads {
            canvas.apply(&ServerMessage::decode(payload).expect("decodes")).expect("draws");
        }
    }
    (median(times), bytes, messages)
}

/// The tile cache the browser viewer offers (`web/static/viewer/main.js`).
const OFFER: u32 = 2048;

/// The terminal window of the fixture, and its text area (white, below the title bar).
const WINDOW: Rect = Rect { x: 40, y: 40, width: 906, height: 599 };
const TEXT: Rect = Rect { x: 41, y: 60, width: 904, height: 576 };

/// Time, bytes and messages of one frame.
#[derive(Clone, Copy, Default)]
struct Figures {
    time: Duration,
    bytes: usize,
    messages: usize,
}

/// Plans and encodes the next frame of `viewer` (timed), draws it on `canvas`, acknowledges it,
/// and checks that the canvas shows the framebuffer.
fn frame(display: &mut Display, viewer: ViewerId, canvas: &mut Canvas) -> Figures {
    let start = Instant::now();
    let plan = display.take_frame(viewer).expect("a frame is due");
    let seq = plan.seq();
    let payloads = plan.encode();
    let time = start.elapsed();
    for payload in &payloads {
        canvas.apply(&ServerMessage::decode(payload).expect("decodes")).expect("draws");
    }
    display.handle_ack(viewer, seq).expect("ack");
    assert!(canvas.framebuffer() == display.framebuffer(), "the frame rebuilds the screen");
    Figures { time, bytes: payloads.iter().map(Vec::len).sum(), messages: payloads.len() }
}

/// The pixels of `rect` in `framebuffer`.
fn region(framebuffer: &Framebuffer, rect: Rect) -> Vec<u8> {
    let mut out = Vec::new();
    for row in 0..rect.height {
        let start = (usize::from(rect.y + row) * 1280 + usize::from(rect.x)) * 4;
        out.extend_from_slice(&framebuffer.rgba()[start..start + usize::from(rect.width) * 4]);
    }
    out
}

/// Screen A is the fixture; screen B is another terminal in the same window (the text area's
/// lines upside down: new text with the same statistics). The user shows A, switches to B, then
/// back to A: each switch repaints the window. Returns the median figures of the three frames.
fn switch_back(runs: usize, desktop: &Framebuffer, offer: Option<u32>, codecs: u32) -> [Figures; 3] {
    let window_a = region(desktop, WINDOW);
    let window_b = {
        let mut rgba = window_a.clone();
        let row_bytes = usize::from(WINDOW.width) * 4;
        let text_x = usize::from(TEXT.x - WINDOW.x) * 4;
        for row in 0..usize::from(TEXT.height) {
            let to = (usize::from(TEXT.y - WINDOW.y) + row) * row_bytes + text_x;
            let from = (usize::from(TEXT.y - WINDOW.y) + usize::from(TEXT.height) - 1 - row) * row_bytes + text_x;
            rgba[to..to + usize::from(TEXT.width) * 4].copy_from_slice(&window_a[from..from + usize::from(TEXT.width) * 4]);
        }
        rgba
    };
    let mut samples = vec![Vec::new(); 3];
    for _ in 0..runs {
        let mut display = Display::new(1280, 800);
        let full = Rect { x: 0, y: 0, width: 1280, height: 800 };
        display.apply(Update::Pixels { rect: full, rgba: desktop.rgba().to_vec() }).expect("fits");
        let viewer = display.add_viewer(2);
        display.set_codecs(viewer, codecs);
        let mut canvas = Canvas::new(1280, 800);
        let codecs = canvas.announce_codecs(codecs);
        canvas.apply(&ServerMessage::Hello { version: 0, width: 1280, height: 800, codecs, max_in_flight: 2, name: String::new() }).expect("hello");
        if let Some(tiles) = offer {
            canvas.offer_cache(tiles);
            let agreed = display.offer_cache(viewer, tiles).expect("first offer");
            canvas.apply(&ServerMessage::CacheAgreed { tiles: agreed }).expect("agreed");
        }
        samples[0].push(frame(&mut display, viewer, &mut canvas));
        for window in [&window_b, &window_a] {
            display.apply(Update::Pixels { rect: WINDOW, rgba: window.clone() }).expect("fits");
            let figures = frame(&mut display, viewer, &mut canvas);
            samples[if std::ptr::eq(window, &window_b) { 1 } else { 2 }].push(figures);
        }
    }
    let mut out = [Figures::default(); 3];
    for (figures, samples) in out.iter_mut().zip(samples) {
        let last = samples[samples.len() - 1];
        *figures = Figures { time: median(samples.iter().map(|f| f.time).collect()), ..last };
    }
    out
}

fn main() {
    let desktop = load_fixture();
    println!();
    for (label, codecs) in [("PNG only", CODEC_PNG), ("PNG, JPEG and glyphs, as the browser", BROWSER)] {
        table(&desktop, label, codecs);
    }
    video_table();
}

/// Frame `t` of a 640x360 video: a landscape-like picture panning 4 pixels a frame (`zoom`:
/// zooming in 1 % a frame instead, so that every pixel changes in a way motion search cannot
/// follow exactly), with a little sensor noise (deterministic).
fn video_frame(t: usize, width: usize, height: usize, zoom: bool) -> Vec<u8> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ t as u64;
    (0..width * height)
        .flat_map(|i| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let noise = (seed >> 61) as i32 - 3;
            let (x, y) = if zoom {
                let scale = 1.0 / (1.0 + 0.01 * t as f32);
                let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
                (cx + ((i % width) as f32 - cx) * scale, cy + ((i / width) as f32 - cy) * scale)
            } else {
                ((i % width + t * 4) as f32, (i / width) as f32)
            };
            let ridge = 180.0 + 40.0 * (x / 37.0).sin() + 25.0 * (x / 11.0 + y / 29.0).cos();
            let sky = y < ridge;
            let base = if sky {
                [90.0 + y * 0.3, 140.0 + y * 0.2, 220.0 - y * 0.1]
            } else {
                [60.0 + 30.0 * (x / 13.0).sin(), 110.0 + 20.0 * (y / 7.0).cos(), 50.0 + (x + y) % 40.0]
            };
            let px = |v: f32| (v as i32 + noise).clamp(0, 255) as u8;
            [px(base[0]), px(base[1]), px(base[2]), 255]
        })
        .collect()
}

/// A video playing in a 640x360 window of a 1280x800 desktop (panning, then zooming), 100
/// frames after the first 20:
/// per frame, the encode time and bytes, and how far the viewer's picture is from the truth,
/// as H.264 (two bit rates), as JPEG (the quality of a 512 kbit/s link) and as lossless PNG.
fn video_table() {
    const FRAMES: usize = 100;
    const WARM_UP: usize = 20;
    let rect = Rect { x: 320, y: 160, width: 640, height: 360 };
    println!("A video in a 640x360 window of a 1280x800 desktop: {FRAMES} frames after {WARM_UP} of warm-up (median encode time per frame, mean bytes per frame, kbit/s at 25 frames/s, mean absolute error per channel of the last frame).");
    println!();
    println!("| video   | viewer                                   | encode (median) | bytes/frame | kbit/s at 25 fps | error |");
    println!("|---------|------------------------------------------|-----------------|-------------|------------------|-------|");
    let cases: [(&str, u32, Option<u8>, u32); 4] = [
        ("H.264 at 1 Mbit/s", BROWSER | bascule_proto::CODEC_H264, Some(65), 1_000_000),
        ("H.264 at 300 kbit/s (512 kbit/s link)", BROWSER | bascule_proto::CODEC_H264, Some(50), 300_000),
        ("JPEG quality 50 (512 kbit/s link)", BROWSER, Some(50), 0),
        ("PNG (lossless)", BROWSER, None, 0),
    ];
    for ((name, codecs, quality, bitrate), zoom) in [false, true].into_iter().flat_map(|zoom| cases.map(|case| (case, zoom))) {
        let mut display = Display::new(1280, 800);
        display.apply(Update::Fill { rect: Rect { x: 0, y: 0, width: 1280, height: 800 }, rgb: [236, 236, 236] }).expect("fits");
        let viewer = display.add_viewer(2);
        display.set_codecs(viewer, codecs);
        display.set_quality(viewer, quality);
        if bitrate > 0 {
            display.set_video_bitrate(viewer, bitrate);
        }
        let mut canvas = Canvas::new(1280, 800);
        let announced = canvas.announce_codecs(codecs);
        canvas.apply(&ServerMessage::Hello { version: 0, width: 1280, height: 800, codecs: announced, max_in_flight: 2, name: String::new() }).expect("hello");
        let (mut times, mut bytes) = (Vec::new(), 0usize);
        for t in 0..WARM_UP + FRAMES {
            let rgba = video_frame(t, 640, 360, zoom);
            display.apply(Update::Pixels { rect, rgba }).expect("fits");
            let start = Instant::now();
            let plan = display.take_frame(viewer).expect("a frame is due");
            let seq = plan.seq();
            let payloads = plan.encode();
            if t >= WARM_UP {
                times.push(start.elapsed());
                bytes += payloads.iter().map(Vec::len).sum::<usize>();
            }
            for payload in &payloads {
                canvas.apply(&ServerMessage::decode(payload).expect("decodes")).expect("draws");
            }
            display.handle_ack(viewer, seq).expect("ack");
        }
        let (shown, truth) = (region(canvas.framebuffer(), rect), region(display.framebuffer(), rect));
        let error = shown.iter().zip(&truth).map(|(a, b)| f64::from(a.abs_diff(*b))).sum::<f64>() / shown.len() as f64;
        let per_frame = bytes / FRAMES;
        println!(
            "| {:<7} | {name:<40} | {:>12.2} ms | {per_frame:>11} | {:>16.0} | {error:>5.2} |",
            if zoom { "zooming" } else { "panning" },
            median(times).as_secs_f64() * 1e3,
            per_frame as f64 * 8.0 * 25.0 / 1000.0
        );
        if codecs & bascule_proto::CODEC_H264 != 0 {
            let stats = display.viewer_stats(viewer).expect("viewer");
            assert!(stats.video_frames >= FRAMES as u64, "the video went as H.264: {stats:?}");
        }
    }
    println!();
}

/// One table: every frame without and with the tile cache, for a viewer that decodes `codecs`.
fn table(desktop: &Framebuffer, label: &str, codecs: u32) {
    let full_rect = Rect { x: 0, y: 0, width: 1280, height: 800 };
    let set_desktop = |display: &mut Display| {
        display.apply(Update::Pixels { rect: full_rect, rgba: desktop.rgba().to_vec() }).expect("fits");
    };
    let attach = |display: &mut Display, offer: Option<u32>| {
        let viewer = display.add_viewer(2);
        display.set_codecs(viewer, codecs);
        if let Some(tiles) = offer {
            display.offer_cache(viewer, tiles);
        }
        viewer
    };
    let full = |offer: Option<u32>| {
        measure(30, offer, codecs, |display| {
            set_desktop(display);
            attach(display, offer)
        })
    };
    let (full_time, full_bytes, full_messages) = full(None);
    let (full_cached_time, full_cached_bytes, full_cached_messages) = full(Some(OFFER));

    // A typed character: a 7x15 glyph cell appears after the prompt, and the text cursor moves
    // one cell right (two small damage rectangles, as an X server reports them).
    let glyph_source = Rect { x: 43, y: 66, width: 8, height: 15 };
    let glyph: Vec<u8> = {
        let mut out = Vec::new();
        for row in 0..glyph_source.height {
            let start = ((usize::from(glyph_source.y + row)) * 1280 + usize::from(glyph_source.x)) * 4;
            out.extend_from_slice(&desktop.rgba()[start..start + usize::from(glyph_source.width) * 4]);
        }
        out
    };
    let typing = |offer: Option<u32>| {
        measure(200, offer, codecs, |display| {
            set_desktop(display);
            let viewer = attach(display, offer);
            let first = display.take_frame(viewer).expect("first frame");
            display.handle_ack(viewer, first.seq()).expect("ack");
            display.apply(Update::Pixels { rect: Rect { x: 223, y: 615, width: 8, height: 15 }, rgba: glyph.clone() }).expect("glyph");
            display.apply(Update::Fill { rect: Rect { x: 231, y: 615, width: 8, height: 15 }, rgb: [0, 0, 0] }).expect("cursor");
            viewer
        })
    };
    let (typing_time, typing_bytes, typing_messages) = typing(None);
    let (typing_cached_time, typing_cached_bytes, typing_cached_messages) = typing(Some(OFFER));
    let plain = switch_back(20, desktop, None, codecs);
    let cached = switch_back(20, desktop, Some(OFFER), codecs);

    println!("Viewer decoding {label}; tile cache of {OFFER} tiles when offered.");
    println!();
    println!("| frame (1280x800 desktop fixture)                   | encode time (median) | bytes on the wire | messages |");
    println!("|---------------------------------------------------|----------------------|-------------------|----------|");
    let row = |name: &str, time: Duration, bytes: usize, messages: usize| {
        println!("| {name:<49} | {:>17.3} ms | {bytes:>17} | {messages:>8} |", time.as_secs_f64() * 1e3);
    };
    row("full desktop, no cache", full_time, full_bytes, full_messages);
    row("full desktop, cache", full_cached_time, full_cached_bytes, full_cached_messages);
    row("typing update, no cache", typing_time, typing_bytes, typing_messages);
    row("typing update, cache", typing_cached_time, typing_cached_bytes, typing_cached_messages);
    for (i, name) in ["switch 1: screen A, first frame", "switch 2: to screen B, new window", "switch 3: back to A, seen before"].into_iter().enumerate() {
        row(&format!("{name}, no cache"), plain[i].time, plain[i].bytes, plain[i].messages);
        row(&format!("{name}, cache"), cached[i].time, cached[i].bytes, cached[i].messages);
    }
    println!();
}
