//! Encode benchmark: time and bytes for a full 1280x800 desktop frame and for a typing update.
//!
//! Run with `cargo bench -p bascule-display`. It prints a table (median of many runs); it asserts
//! nothing about speed, that belongs to the numbers it prints.

use bascule_display::{Canvas, Display, Framebuffer, Update};
use bascule_proto::{Rect, ServerMessage};
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

/// Returns (median encode time, bytes, messages) of the frame produced after `prepare`.
fn measure(runs: usize, mut prepare: impl FnMut(&mut Display) -> bascule_display::ViewerId) -> (Duration, usize, usize) {
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
        for payload in &payloads {
            canvas.apply(&ServerMessage::decode(payload).expect("decodes")).expect("draws");
        }
    }
    (median(times), bytes, messages)
}

fn main() {
    let desktop = load_fixture();
    let full_rect = Rect { x: 0, y: 0, width: 1280, height: 800 };
    let set_desktop = |display: &mut Display| {
        display.apply(Update::Pixels { rect: full_rect, rgba: desktop.rgba().to_vec() }).expect("fits");
    };

    let (full_time, full_bytes, full_messages) = measure(30, |display| {
        set_desktop(display);
        display.add_viewer(2)
    });

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
    let (typing_time, typing_bytes, typing_messages) = measure(200, |display| {
        set_desktop(display);
        let viewer = display.add_viewer(2);
        let first = display.take_frame(viewer).expect("first frame");
        display.handle_ack(viewer, first.seq()).expect("ack");
        display.apply(Update::Pixels { rect: Rect { x: 223, y: 615, width: 8, height: 15 }, rgba: glyph.clone() }).expect("glyph");
        display.apply(Update::Fill { rect: Rect { x: 231, y: 615, width: 8, height: 15 }, rgb: [0, 0, 0] }).expect("cursor");
        viewer
    });

    println!();
    println!("| frame (1280x800 desktop fixture)    | encode time (median) | bytes on the wire | messages |");
    println!("|--------------------------------------|----------------------|-------------------|----------|");
    println!("| full desktop, lossless (PNG tiles)   | {:>17.2} ms | {:>17} | {:>8} |", full_time.as_secs_f64() * 1e3, full_bytes, full_messages);
    println!("| typing update (one character)        | {:>17.3} ms | {:>17} | {:>8} |", typing_time.as_secs_f64() * 1e3, typing_bytes, typing_messages);
    println!();
}
