//! `bascule-bench memory`: the gateway's memory per live 1280 × 800 session, measured as the
//! growth of this process's resident set (VmRSS) while sessions are opened, each with a viewer
//! that offers the browser's tile cache and announces glyphs and JPEG.
//!
//! The gateway runs in this process; the viewers are minimal (they acknowledge frames and keep
//! nothing), so what grows is the gateway: per session, the backend connection and its
//! decoders, the authoritative framebuffer, and per viewer the encoder state (the copy of what
//! the viewer shows, dirty and lossy grids, the models of its tile and glyph caches).

use crate::https::Portal;
use anyhow::{Context, Result, bail};
use bascule_desktop::{Desktop, DesktopOptions};
use futures_util::{SinkExt, StreamExt};
use std::path::Path;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The figures of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemoryResult {
    /// Sessions opened.
    pub sessions: usize,
    /// Resident set with the gateway up and no session, bytes.
    pub rss_idle: u64,
    /// After the first session (which also warms up the runtime's lazy state), bytes.
    pub rss_first: u64,
    /// After all of them, with every screen drawn and some work done on the desktop, bytes.
    pub rss_all: u64,
    /// (rss_all - rss_first) / (sessions - 1), bytes.
    pub per_session: u64,
}

/// This process's resident set in bytes, from `/proc/self/status`.
fn rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line")?;
    let kib: u64 = line.split_whitespace().nth(1).context("VmRSS without a value")?.parse()?;
    Ok(kib * 1024)
}

/// A viewer that acknowledges every frame and keeps nothing; ends when the socket does.
fn ack_only<S>(ws: tokio_tungstenite::WebSocketStream<S>, hello: Vec<u8>, offer: Vec<u8>) -> tokio::task::JoinHandle<Result<u64>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let (mut tx, mut rx) = ws.split();
        tx.send(Message::Binary(hello.into())).await?;
        tx.send(Message::Binary(offer.into())).await?;
        let mut frames = 0;
        while let Some(message) = rx.next().await {
            if let Message::Binary(bytes) = message? {
                // EndFrame: type 0x07, u32 seq.
                if bytes.len() == 5 && bytes[0] == 0x07 {
                    let seq = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                    tx.send(Message::Binary(bascule_proto::ClientMessage::FrameAck { seq }.encode().into())).await?;
                    frames += 1;
                }
            }
        }
        Ok(frames)
    })
}

/// Runs the measure: one desktop, a gateway with `sessions` users each entitled to it, one
/// session (and one viewer) per user. Prints progress on stderr.
pub async fn run(sessions: usize, work_dir: &Path) -> Result<MemoryResult> {
    if sessions < 2 {
        bail!("at least 2 sessions are needed (the first one warms up the runtime)");
    }
    eprintln!("[1/4] starting a 1280×800 desktop and a gateway with {sessions} users…");
    let desktop = tokio::task::block_in_place(|| {
        Desktop::start(DesktopOptions { log_dir: work_dir.join("logs"), ..DesktopOptions::default() })
    })
    .context("starting the desktop")?;
    let password = "memory-bench-password";
    let users: Vec<String> = (0..sessions).map(|i| format!("user{i}")).collect();
    let gateway = crate::run::start_gateway_for(&work_dir.join("gateway"), desktop.vnc_addr(), &users, password).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = rss()?;

    let codecs =
        bascule_proto::CODEC_PNG | bascule_proto::CODEC_JPEG | bascule_proto::CODEC_GLYPHS | bascule_proto::CODEC_H264;
    let hello = bascule_proto::ClientMessage::Hello { version: bascule_proto::VERSION, width: 1280, height: 800, codecs }.encode();
    let offer = bascule_proto::ClientMessage::CacheOffer { tiles: 2048 }.encode();
    let mut viewers = Vec::new();
    let mut rss_first = 0;
    eprintln!("[2/4] opening {sessions} sessions…");
    for i in 0..sessions {
        let portal = Portal::login(gateway.address(), &format!("user{i}"), password).await?;
        let ticket = portal.launch("desk").await?;
        let ws = portal.open_ws(gateway.address(), &ticket).await?;
        viewers.push(ack_only(ws, hello.clone(), offer.clone()));
        if i == 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            rss_first = rss()?;
        }
        eprint!("\r      {}/{sessions}", i + 1);
    }
    eprintln!();
    eprintln!("[3/4] some work on the desktop: a listing scrolls in the xterm…");
    tokio::task::block_in_place(|| desktop.run_in_xterm("ls -laR /usr/share/doc | head -3000"))?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    eprintln!("[4/4] measuring…");
    let rss_all = rss()?;
    if gateway.session_count() != sessions {
        bail!("{} live sessions, {sessions} expected", gateway.session_count());
    }
    for viewer in &viewers {
        if viewer.is_finished() {
            bail!("a viewer ended early");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), gateway.shutdown()).await;
    for viewer in viewers {
        viewer.abort();
    }
    tokio::task::block_in_place(|| desktop.stop());
    let per_session = rss_all.saturating_sub(rss_first) / (sessions as u64 - 1);
    Ok(MemoryResult { sessions, rss_idle, rss_first, rss_all, per_session })
}

/// The result as a Markdown table.
pub fn table(result: &MemoryResult) -> String {
    let mb = |b: u64| format!("{:.1} MB", b as f64 / 1e6);
    format!(
        "| | |\n|---|---|\n| sessions (1280×800, one viewer each, tile cache 2048, glyphs, JPEG, H.264) | {} |\n\
         | resident set, gateway up, no session | {} |\n| after the first session | {} |\n\
         | after all sessions and some work | {} |\n| **per session** (all − first) / (sessions − 1) | **{}** |\n",
        result.sessions,
        mb(result.rss_idle),
        mb(result.rss_first),
        mb(result.rss_all),
        mb(result.per_session)
    )
}
