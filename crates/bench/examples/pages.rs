//! Development probe: what a `less` page down costs through the display engine, frame by frame,
//! on a real xterm (screenshots fed as full-screen damage). `cargo run --release -p bascule-bench --example pages`
#![allow(clippy::unwrap_used, missing_docs)]

use bascule_display::{Canvas, Display, Update};
use bascule_proto::{CODEC_GLYPHS, CODEC_JPEG, CODEC_PNG, Rect, ServerMessage};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let desktop = bascule_desktop::Desktop::start(bascule_desktop::DesktopOptions::default())?;
    let dir = std::env::temp_dir().join("pages-probe");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("doc.txt"), bascule_bench::content::document(600))?;
    desktop.run_in_xterm(&format!("cd {} && clear && less doc.txt", dir.display()))?;
    std::thread::sleep(Duration::from_secs(2));
    let mut display = Display::new(1280, 800);
    let id = display.add_viewer(1);
    let codecs = CODEC_PNG | CODEC_JPEG | CODEC_GLYPHS;
    display.set_codecs(id, codecs);
    let mut canvas = Canvas::new(1280, 800);
    canvas.announce_codecs(codecs);
    canvas.apply(&ServerMessage::Hello { version: 0, width: 1280, height: 800, codecs, max_in_flight: 1, name: String::new() })?;
    for page in 0..5 {
        let (w, h, rgba) = desktop.screenshot_rgba()?;
        display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: w as u16, height: h as u16 }, rgba })?;
        let started = std::time::Instant::now();
        let plan = display.take_frame(id).unwrap();
        let seq = plan.seq();
        let payloads = plan.encode();
        let took = started.elapsed();
        let mut kinds: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for payload in &payloads {
            let message = ServerMessage::decode(payload)?;
            canvas.apply(&message)?;
            let kind = format!("{:?}", message).split([' ', '{', '(']).next().unwrap().to_owned();
            let e = kinds.entry(kind).or_default();
            e.0 += 1;
            e.1 += payload.len();
        }
        display.handle_ack(id, seq)?;
        assert!(canvas.framebuffer() == display.framebuffer());
        let total: usize = kinds.values().map(|v| v.1).sum();
        println!("page {page}: {total} bytes in {took:?}: {kinds:?} {:?}", display.viewer_stats(id).unwrap());
        Command::new("xdotool").env("DISPLAY", desktop.display()).args(["key", "Next"]).status()?;
        std::thread::sleep(Duration::from_millis(700));
    }
    // Typing: one character per frame, into `cat`.
    Command::new("xdotool").env("DISPLAY", desktop.display()).args(["key", "q"]).status()?;
    desktop.run_in_xterm("clear && cat > /dev/null")?;
    std::thread::sleep(Duration::from_millis(700));
    for c in "Summary project account, stock figures.".chars() {
        let key = if c == ' ' { "space".to_owned() } else if c == ',' { "comma".to_owned() } else if c == '.' { "period".to_owned() } else { c.to_string() };
        Command::new("xdotool").env("DISPLAY", desktop.display()).args(["key", &key]).status()?;
        std::thread::sleep(Duration::from_millis(150));
        let (w, h, rgba) = desktop.screenshot_rgba()?;
        display.apply(Update::Pixels { rect: Rect { x: 0, y: 0, width: w as u16, height: h as u16 }, rgba })?;
        let plan = display.take_frame(id).unwrap();
        let seq = plan.seq();
        let mut line = String::new();
        for payload in plan.encode() {
            let message = ServerMessage::decode(&payload)?;
            canvas.apply(&message)?;
            if let ServerMessage::Glyphs { atlas, .. } = &message {
                line += &format!(" glyphs {}B (atlas {}B)", payload.len(), atlas.len());
            } else if let ServerMessage::Fill { rect, .. } | ServerMessage::Tile { rect, .. } = &message {
                line += &format!(" {}:{}x{}@{},{} {}B", if matches!(message, ServerMessage::Fill { .. }) { "fill" } else { "tile" }, rect.width, rect.height, rect.x, rect.y, payload.len());
            }
        }
        display.handle_ack(id, seq)?;
        let st = display.viewer_stats(id).unwrap();
        println!("key {c:?}:{line} stores {} draws {}", st.glyph_stores, st.glyph_draws);
    }
    desktop.stop();
    Ok(())
}
