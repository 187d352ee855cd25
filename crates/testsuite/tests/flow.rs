//! Flow control per viewer, through the link emulator (`bascule-linkemu`): two viewers of one
//! session on very different links, and a viewer that stops acknowledging frames.
//!
//! The desktop is a real x11vnc desktop whose xterm prints lines as fast as it can scroll; the
//! emulated link is the thin branch-office link of the benchmark, made thinner.

use crate::support::gateway::{Resource, TestGateway, User, assert_viewer_shows_desktop, start_gateway};
use crate::support::http::login;
use crate::support::{focus_xterm, keysyms, start_desktop};
use anyhow::{Result, ensure};
use bascule_desktop::{Desktop, VncServer};
use bascule_linkemu::{LinkParams, Relay};
use std::time::Duration;

const USER: &str = "agent";
const PASSWORD: &str = "correct horse battery";
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// Lines the xterm prints, a few milliseconds apart: a few seconds of continuous damage.
const BUSY_COMMAND: &str = "for i in $(seq 1 300); do echo line $i $RANDOM $RANDOM $RANDOM; sleep 0.01; done\n";

async fn desktop_and_gateway(extra: &str) -> Result<(Desktop, TestGateway)> {
    let desktop = start_desktop(VncServer::X11vnc, None);
    let gateway = start_gateway(&[User::new(USER, PASSWORD, &["desk"])], &[Resource::new("desk", desktop.vnc_addr(), None)], extra).await?;
    Ok((desktop, gateway))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_viewer_gets_coalesced_frames_and_does_not_slow_a_fast_one() -> Result<()> {
    let (desktop, gateway) = desktop_and_gateway("").await?;
    // 64 kbit/s with a 300 ms round trip, each way.
    let thin = LinkParams::from_rtt(64, 300);
    let relay = Relay::start("127.0.0.1:0".parse()?, gateway.addr, thin, thin).await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut fast = portal.open_viewer("desk").await?;
    fast.wait_hello(HELLO_TIMEOUT).await?;
    fast.settle(1).await?;
    let mut slow = portal.open_viewer_via("desk", relay.local_addr()).await?;
    slow.wait_hello(HELLO_TIMEOUT).await?;
    slow.settle(1).await?;
    assert_eq!(gateway.running.session_count(), 1, "both viewers watch the same session");

    focus_xterm(&desktop)?;
    fast.type_keysyms(&keysyms(BUSY_COMMAND)).await?;
    let (fast_before, slow_before, fast_bytes, slow_bytes) = (fast.frames, slow.frames, fast.bytes_received, relay.stats().bytes_down);
    // Both read side by side while the xterm scrolls.
    let (f, s) = tokio::join!(fast.pump(Duration::from_secs(5)), slow.pump(Duration::from_secs(5)));
    f?;
    s?;
    let (fast_frames, slow_frames) = (fast.frames - fast_before, slow.frames - slow_before);
    let (fast_bytes, slow_bytes) = (fast.bytes_received - fast_bytes, relay.stats().bytes_down - slow_bytes);
    eprintln!("5 s of scrolling: fast viewer {fast_frames} frames, {fast_bytes} bytes; slow viewer {slow_frames} frames, {slow_bytes} bytes on the link");
    ensure!(slow_frames >= 1, "the slow viewer still gets frames");
    // The slow viewer gets fewer, coalesced frames; the fast one is not held to its pace.
    ensure!(fast_frames >= 3 * slow_frames, "fast {fast_frames} frames, slow {slow_frames}");
    ensure!(slow_bytes * 2 < fast_bytes, "the slow link carried {slow_bytes} bytes, the fast one {fast_bytes}");
    // No queue builds up for the slow viewer: once the xterm is quiet, both show exactly the
    // desktop (a backlog of every intermediate frame would take the slow link minutes).
    assert_viewer_shows_desktop(&mut fast, &desktop, 0).await?;
    assert_viewer_shows_desktop(&mut slow, &desktop, 0).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_that_stops_acknowledging_is_held_to_its_window_then_dropped_with_a_reason() -> Result<()> {
    let (desktop, gateway) = desktop_and_gateway("[sessions]\nack_timeout_secs = 6\n").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut live = portal.open_viewer("desk").await?;
    live.wait_hello(HELLO_TIMEOUT).await?;
    live.settle(1).await?;
    let mut stalled = portal.open_viewer("desk").await?;
    stalled.acks = false;
    stalled.wait_hello(HELLO_TIMEOUT).await?;

    // The desktop keeps changing; the stalled viewer receives at most its window of frames
    // (max_in_flight = 2), whatever happens: nothing queues up for it in the gateway.
    focus_xterm(&desktop)?;
    live.type_keysyms(&keysyms(BUSY_COMMAND)).await?;
    let (l, s) = tokio::join!(live.pump(Duration::from_secs(2)), stalled.pump(Duration::from_secs(2)));
    l?;
    s?;
    ensure!(stalled.frames <= 2, "a viewer that acknowledges nothing got {} frames", stalled.frames);
    let live_frames = live.frames;
    ensure!(live_frames > 10, "the other viewer goes on: {live_frames} frames");
    ensure!(stalled.closed.is_none(), "not dropped before the timeout");

    // Then it is dropped, with a reason the viewer can show.
    let (code, reason) = stalled.wait_closed(Duration::from_secs(10)).await?;
    assert_eq!((code, reason.as_str()), (1008, "viewer.timeout"));
    ensure!(
        stalled.notices.iter().any(|(code, detail)| code == "viewer.timeout" && detail.contains("no frame acknowledged for 6 s")),
        "notice before the close: {:?}",
        stalled.notices
    );
    // The session and its other viewer are untouched.
    assert_eq!(gateway.running.session_count(), 1);
    assert_viewer_shows_desktop(&mut live, &desktop, 0).await?;
    Ok(())
}
