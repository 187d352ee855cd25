//! Connects, runs a session for a while and reports what happened; writes the final
//! framebuffer as a binary PPM.
//!
//! `cargo run -p bascule-rdp --example rdp_probe -- HOST PORT USER PASS [SECONDS] [SHELL]`
//! Environment: PROBE_SECURITY=tls|nla|negotiate, PROBE_EGFX=off|on|avc420, PROBE_PPM=/tmp/probe.ppm,
//! PROBE_CLIP=text.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bascule_rdp::{RdpConfig, RdpEvent, RdpInput, Security, connect};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: rdp_probe HOST PORT USER PASS [SECONDS] [SHELL]");
        std::process::exit(2);
    }
    let mut cfg = RdpConfig::new(&args[1], args[2].parse().unwrap(), &args[3], &args[4]);
    let seconds: u64 = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(5);
    cfg.alternate_shell = args.get(6).cloned();
    cfg.security = match std::env::var("PROBE_SECURITY").as_deref() {
        Ok("tls") => Security::Tls,
        Ok("nla") => Security::Nla,
        _ => Security::Negotiate,
    };
    cfg.egfx = match std::env::var("PROBE_EGFX").as_deref() {
        Ok("off") => bascule_rdp::Egfx::Off,
        Ok("avc420") => bascule_rdp::Egfx::Avc420PassThrough,
        _ => bascule_rdp::Egfx::On,
    };
    let t0 = Instant::now();
    let conn = match connect(cfg).await {
        Ok(c) => c,
        Err(e) => {
            println!("connect failed: code={} {e}", e.code());
            std::process::exit(1);
        }
    };
    let (mut w, mut h) = conn.size();
    println!(
        "connected in {:.0} ms: {w}x{h}, {:?}, cert sha256 {}",
        t0.elapsed().as_secs_f64() * 1000.0,
        conn.negotiated_security(),
        bascule_rdp::hex(&conn.server_certificate_sha256())
    );
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(1024);
    let (in_tx, in_rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(conn.run(ev_tx, in_rx));
    if let Ok(text) = std::env::var("PROBE_CLIP") {
        in_tx.send(RdpInput::Clipboard(text)).await.unwrap();
    }
    if let Ok(size) = std::env::var("PROBE_RESIZE") {
        let (rw, rh) = size.split_once('x').unwrap();
        let (rw, rh): (u16, u16) = (rw.parse().unwrap(), rh.parse().unwrap());
        let in_tx = in_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            println!("sending resize {rw}x{rh}");
            let _ = in_tx.send(RdpInput::Resize { width: rw, height: rh }).await;
        });
    }
    let mut fb = vec![0u8; usize::from(w) * usize::from(h) * 4];
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut first_frame = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let ev = match tokio::time::timeout_at(deadline, ev_rx.recv()).await {
            Ok(Some(ev)) => ev,
            _ => break,
        };
        let name = match &ev {
            RdpEvent::Pixels { x, y, width, height, rgba } => {
                for row in 0..usize::from(*height) {
                    let d = ((usize::from(*y) + row) * usize::from(w) + usize::from(*x)) * 4;
                    let s = row * usize::from(*width) * 4;
                    let n = usize::from(*width) * 4;
                    fb[d..d + n].copy_from_slice(&rgba[s..s + n]);
                }
                "pixels"
            }
            RdpEvent::Cursor { width, height, .. } => {
                println!("cursor {width}x{height}");
                "cursor"
            }
            RdpEvent::DefaultCursor => "default_cursor",
            RdpEvent::Resize { width, height } => {
                println!("resize {width}x{height}");
                (w, h) = (*width, *height);
                fb = vec![0u8; usize::from(w) * usize::from(h) * 4];
                "resize"
            }
            RdpEvent::ClipboardText(t) => {
                println!("clipboard text from server: {t:?}");
                "clipboard"
            }
            RdpEvent::ResizeSupported(b) => {
                println!("resize supported: {b}");
                "resize_supported"
            }
            RdpEvent::FrameEnd => {
                first_frame.get_or_insert(t0.elapsed());
                "frame_end"
            }
            RdpEvent::GraphicsPipeline { version, avc420 } => {
                println!("EGFX active: caps version {version:#x}, avc420 {avc420}");
                "egfx"
            }
            RdpEvent::Avc420 { surface_id, width, height, data, .. } => {
                println!("AVC420 surface {surface_id} {width}x{height}: {} bytes (not decoded)", data.len());
                "avc420"
            }
        };
        *counts.entry(name).or_default() += 1;
    }
    println!("first frame after {first_frame:?}; events: {counts:?}");
    drop(in_tx);
    drop(ev_rx);
    match tokio::time::timeout(Duration::from_secs(5), task).await {
        Ok(Ok(r)) => println!("run ended: {r:?}"),
        other => println!("run did not end cleanly: {other:?}"),
    }
    let path = std::env::var("PROBE_PPM").unwrap_or_else(|_| "/tmp/rdp_probe.ppm".into());
    let mut ppm = format!("P6\n{w} {h}\n255\n").into_bytes();
    for px in fb.chunks_exact(4) {
        ppm.extend_from_slice(&px[..3]);
    }
    std::fs::write(&path, ppm).unwrap();
    println!("wrote {path}");
}
