//! Misbehaving peers: fake VNC servers that break the protocol, and viewers that send garbage.
//! Each time, the bad session or viewer must end with the documented notice or close code, and
//! everything else must go on.

use crate::support::fake_vnc::{
    FakeVnc, drain, handshake_none, next_update_request, raw_rect, rect_header, ticker, update_header,
};
use crate::support::gateway::{Resource, User, assert_viewer_shows_desktop, start_gateway};
use crate::support::http::{Portal, healthz, login};
use crate::support::viewer::ViewerClient;
use crate::support::{EchoCommand, focus_xterm, keysyms, proc_status_kib, start_desktop};
use anyhow::{Context, Result, bail};
use bascule_desktop::VncServer;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const USER: &str = "agent";
const PASSWORD: &str = "hostile-tests-pw";
const WAIT: Duration = Duration::from_secs(20);

async fn open(portal: &Portal, resource: &str) -> Result<ViewerClient> {
    portal.open_viewer(resource).await.with_context(|| format!("opening a viewer of {resource}"))
}

/// Full frame, then a FramebufferUpdate cut in the middle of its pixels, then the connection
/// closes.
async fn dies_mid_update(mut stream: TcpStream) -> Result<()> {
    handshake_none(&mut stream, 64, 48, "dies mid-update").await?;
    let (mut reader, mut writer) = stream.into_split();
    next_update_request(&mut reader).await?.context("no first update request")?;
    let mut frame = update_header(1);
    frame.extend(raw_rect(0, 0, 64, 48, [10, 120, 250]));
    writer.write_all(&frame).await?;
    // Wait for the next (incremental) request, so that the viewer is attached and drawn.
    next_update_request(&mut reader).await?.context("no second update request")?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut cut = update_header(2);
    cut.extend(raw_rect(0, 0, 64, 48, [250, 250, 0]));
    cut.truncate(cut.len() / 2);
    writer.write_all(&cut).await?;
    writer.shutdown().await?;
    drop(writer);
    drop(reader);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closing_mid_update_ends_only_its_session() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, None);
    let bad = FakeVnc::start("dies-mid-update", dies_mid_update).await?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["desk", "broken"])],
        &[Resource::new("desk", desktop.vnc_addr(), None), Resource::new("broken", bad.addr, None)],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;

    let mut healthy = open(&portal, "desk").await?;
    healthy.wait_hello(WAIT).await?;
    healthy.settle(1).await?;

    let mut broken = open(&portal, "broken").await?;
    assert_eq!(broken.wait_hello(WAIT).await?.0, 64);
    broken.settle(1).await?;
    let (w, h, picture) = broken.picture();
    assert_eq!((w, h), (64, 48));
    assert!(picture.chunks_exact(4).all(|p| p == [10, 120, 250, 255]), "the complete frame was drawn");
    let (code, detail) = broken.wait_notice(WAIT).await?;
    assert!(
        code == "session.ended" || code == "session.protocol_error",
        "notice {code:?} ({detail}) for a host that closed mid-update"
    );
    let (close_code, reason) = broken.wait_closed(WAIT).await?;
    assert_eq!(close_code, 1000, "the viewer of an ended session is closed normally ({reason})");

    // The healthy session lives on: input still reaches its desktop and frames still arrive.
    focus_xterm(&desktop)?;
    let echo = EchoCommand::new("STILL_HERE");
    let frames = healthy.frames;
    healthy.type_keysyms(&keysyms(&echo.command)).await?;
    echo.check().await?;
    assert_viewer_shows_desktop(&mut healthy, &desktop, frames + 1).await?;
    assert!(healthy.frames > frames, "the healthy viewer received new frames");
    assert_eq!(gateway.running.session_count(), 1, "only the broken session is gone");
    assert_eq!(bad.connections(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_server_init_size_is_too_large() -> Result<()> {
    let huge = FakeVnc::start("65535x65535", |mut stream: TcpStream| async move {
        handshake_none(&mut stream, 65535, 65535, "huge").await?;
        drain(stream.into_split().0).await;
        Ok(())
    })
    .await?;
    let gateway =
        start_gateway(&[User::new(USER, PASSWORD, &["huge"])], &[Resource::new("huge", huge.addr, None)], "").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = open(&portal, "huge").await?;
    let (code, detail) = viewer.wait_notice(WAIT).await?;
    assert_eq!(code, "session.too_large", "detail: {detail}");
    viewer.wait_closed(WAIT).await?;
    assert!(viewer.hello.is_none(), "no ServerHello for a refused desktop");
    assert_eq!(huge.connections(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zlib_bomb_is_a_protocol_error_and_memory_stays_bounded() -> Result<()> {
    const NAME: &str = "hostile::zlib_bomb_is_a_protocol_error_and_memory_stays_bounded";
    if !crate::support::is_isolated_run(NAME) {
        return crate::support::run_isolated_test(NAME);
    }
    // 256 MiB of zeros behind a 16x16 ZRLE rectangle (a raw tile needs 1 + 768 bytes).
    let bomb = tokio::task::block_in_place(|| -> Result<Vec<u8>> {
        use std::io::Write;
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            encoder.write_all(&zeros)?;
        }
        Ok(encoder.finish()?)
    })?;
    assert!(bomb.len() < 1 << 20, "the bomb is small on the wire ({} bytes)", bomb.len());
    let bomb = Arc::new(bomb);
    let server = FakeVnc::start("zlib-bomb", move |mut stream: TcpStream| {
        let bomb = bomb.clone();
        async move {
            handshake_none(&mut stream, 64, 64, "bomb").await?;
            let (mut reader, mut writer) = stream.into_split();
            next_update_request(&mut reader).await?.context("no update request")?;
            let mut update = update_header(1);
            update.extend(rect_header(0, 0, 16, 16, 16));
            update.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
            update.extend_from_slice(&bomb);
            writer.write_all(&update).await?;
            drain(reader).await;
            Ok(())
        }
    })
    .await?;
    let gateway =
        start_gateway(&[User::new(USER, PASSWORD, &["bomb"])], &[Resource::new("bomb", server.addr, None)], "").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;

    let rss_before = proc_status_kib("VmRSS")?;
    let peak_before = proc_status_kib("VmHWM")?;
    let mut viewer = open(&portal, "bomb").await?;
    let (code, detail) = viewer.wait_notice(WAIT).await?;
    let rss_after = proc_status_kib("VmRSS")?;
    let peak_after = proc_status_kib("VmHWM")?;
    eprintln!("zlib bomb: VmRSS {rss_before} -> {rss_after} KiB, VmHWM {peak_before} -> {peak_after} KiB; {detail}");
    assert_eq!(code, "session.protocol_error", "detail: {detail}");
    viewer.wait_closed(WAIT).await?;
    const LIMIT_KIB: u64 = 64 * 1024;
    assert!(rss_after.saturating_sub(rss_before) < LIMIT_KIB, "VmRSS grew by {} KiB", rss_after - rss_before);
    assert!(peak_after.saturating_sub(peak_before) < LIMIT_KIB, "VmHWM grew by {} KiB", peak_after - peak_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_auth_with_a_wrong_resource_password_is_auth_failed() -> Result<()> {
    let answered = Arc::new(AtomicBool::new(false));
    let seen = answered.clone();
    let server = FakeVnc::start("vnc-auth", move |mut stream: TcpStream| {
        let seen = seen.clone();
        async move {
            stream.write_all(b"RFB 003.008\n").await?;
            let mut version = [0u8; 12];
            stream.read_exact(&mut version).await?;
            stream.write_all(&[1, 2]).await?; // VncAuth only
            let chosen = stream.read_u8().await?;
            if chosen != 2 {
                bail!("client chose security type {chosen}");
            }
            let challenge: [u8; 16] = rand::random();
            stream.write_all(&challenge).await?;
            let mut response = [0u8; 16];
            stream.read_exact(&mut response).await?;
            seen.store(true, Ordering::SeqCst);
            let reason = b"Authentication failure";
            stream.write_all(&1u32.to_be_bytes()).await?;
            stream.write_all(&(reason.len() as u32).to_be_bytes()).await?;
            stream.write_all(reason).await?;
            Ok(())
        }
    })
    .await?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["locked"])],
        &[Resource::new("locked", server.addr, Some("not-the-one"))],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = open(&portal, "locked").await?;
    let (code, detail) = viewer.wait_notice(WAIT).await?;
    assert_eq!(code, "session.auth_failed", "detail: {detail}");
    assert!(answered.load(Ordering::SeqCst), "the gateway answered the VncAuth challenge");
    assert!(!detail.contains("not-the-one"), "the notice must not leak the resource password: {detail}");
    let (close_code, _) = viewer.wait_closed(WAIT).await?;
    assert_eq!(close_code, 1000);
    Ok(())
}

/// Sends `bad` on the viewer of one session; that viewer is closed with `expected_code`, while
/// the viewer of another session keeps receiving frames and the gateway stays healthy.
///
/// `may_reset`: the gateway cannot read the rest of a message beyond its socket limit, so
/// closing leaves unread input and TCP may reset the connection before the close frame is read;
/// then only "the connection ended" can be checked.
async fn malformed_viewer_message(bad: Message, expected_code: u16, may_reset: bool) -> Result<()> {
    let victim_host = FakeVnc::start("ticker-a", ticker).await?;
    let other_host = FakeVnc::start("ticker-b", ticker).await?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["victim", "other"])],
        &[Resource::new("victim", victim_host.addr, None), Resource::new("other", other_host.addr, None)],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut other = open(&portal, "other").await?;
    other.wait_hello(WAIT).await?;
    other.wait_frames(2, WAIT).await?;
    let mut victim = open(&portal, "victim").await?;
    victim.wait_hello(WAIT).await?;
    victim.wait_frames(2, WAIT).await?;

    victim.send_raw(bad).await?;
    let (code, reason) = victim.wait_closed(WAIT).await?;
    if may_reset && code == 1006 {
        eprintln!("close frame lost to a TCP reset ({reason}); notices {:?}", victim.notices);
    } else {
        assert_eq!(code, expected_code, "close code (reason {reason:?}, notices {:?})", victim.notices);
        assert!(!reason.is_empty(), "the close frame carries a reason");
        assert!(
            victim.notices.iter().any(|(c, _)| c == "viewer.bad_message"),
            "a viewer.bad_message notice precedes the close: {:?}",
            victim.notices
        );
    }

    // The other session's viewer keeps receiving frames, drawn consistently.
    other.wait_frames(3, WAIT).await?;
    let (w, h, _) = other.picture();
    assert_eq!((w, h), (96, 64));
    let health = healthz(gateway.addr).await?;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"), "/healthz after a malformed message");
    assert_eq!(gateway.running.session_count(), 2, "the victim's session outlives its bad viewer");

    // The victim's session itself is fine: a new viewer gets its picture.
    let mut again = open(&portal, "victim").await?;
    again.wait_hello(WAIT).await?;
    again.wait_frames(1, WAIT).await?;
    assert_eq!(victim_host.connections(), 1, "the backend connection was kept");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_type_closes_with_1007() -> Result<()> {
    malformed_viewer_message(Message::Binary(vec![0x7f, 1, 2, 3].into()), 1007, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_closes_with_1009() -> Result<()> {
    let mut huge = vec![0x86u8];
    huge.resize(bascule_proto::MAX_CLIENT_MESSAGE + 40 * 1024, b'x');
    malformed_viewer_message(Message::Binary(huge.into()), 1009, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_message_closes_with_1003() -> Result<()> {
    malformed_viewer_message(Message::Text("hello".into()), 1003, false).await
}

/// Beyond the socket's own limit (4 x 256 KiB) the gateway never sees the message; it used to
/// drop the connection silently, it now sends the notice and 1009 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_beyond_the_socket_limit_closes_with_1009() -> Result<()> {
    let mut huge = vec![0x86u8];
    huge.resize(2 * 1024 * 1024, b'x');
    malformed_viewer_message(Message::Binary(huge.into()), 1009, true).await
}
