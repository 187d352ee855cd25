//! End to end through the gateway: HTTPS login, launch tickets, the viewer WebSocket with the
//! Rust viewer, against an x11vnc desktop.

use crate::support::gateway::{Resource, TestGateway, User, assert_viewer_shows_desktop, start_gateway};
use crate::support::http::{login, submit_login};
use crate::support::{EchoCommand, focus_xterm, keysyms, start_desktop};
use anyhow::{Result, bail};
use bascule_desktop::{Desktop, VncServer};
use std::net::SocketAddr;
use std::time::Duration;

const USER: &str = "agent";
const PASSWORD: &str = "correct horse battery";
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// An x11vnc desktop with a VNC password, published as `desk` to `agent`.
async fn desktop_and_gateway(extra: &str) -> Result<(Desktop, TestGateway)> {
    let vnc_password = "vncpw123";
    let desktop = start_desktop(VncServer::X11vnc, Some(vnc_password));
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["desk"])],
        &[Resource::new("desk", desktop.vnc_addr(), Some(vnc_password))],
        extra,
    )
    .await?;
    Ok((desktop, gateway))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_canvas_equals_the_desktop() -> Result<()> {
    let (desktop, gateway) = desktop_and_gateway("").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = portal.open_viewer("desk").await?;
    let (width, height, name) = viewer.wait_hello(HELLO_TIMEOUT).await?;
    assert_eq!((width, height), (1280, 800));
    assert_eq!(name, "desk", "the hello carries the resource's display name");
    assert_eq!(viewer.notices.first().map(|n| n.0.as_str()), Some("session.connecting"));
    assert_viewer_shows_desktop(&mut viewer, &desktop, 1).await?;
    assert_eq!(gateway.running.session_count(), 1);
    assert!(gateway.running.stats().bytes_to_clients.load(std::sync::atomic::Ordering::Relaxed) > 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_in_the_viewer_runs_a_command_on_the_desktop() -> Result<()> {
    let (desktop, gateway) = desktop_and_gateway("").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = portal.open_viewer("desk").await?;
    viewer.wait_hello(HELLO_TIMEOUT).await?;
    viewer.settle(1).await?;
    focus_xterm(&desktop)?;
    let echo = EchoCommand::new("VIEWER");
    let frames = viewer.frames;
    viewer.type_keysyms(&keysyms(&echo.command)).await?;
    echo.check().await?;
    // The typed command shows up in the viewer too.
    assert_viewer_shows_desktop(&mut viewer, &desktop, frames + 1).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_and_upgrade_refusals() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, None);
    // `other` is never connected to: nobody may launch it.
    let nowhere: SocketAddr = "127.0.0.1:9".parse()?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["desk"]), User::new("boss", PASSWORD, &["desk", "other"])],
        &[Resource::new("desk", desktop.vnc_addr(), None), Resource::new("other", nowhere, None)],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;

    let refused = portal.launch_raw("other", Some(&portal.csrf)).await?;
    assert_eq!(refused.status, 403, "not entitled: {}", refused.text());
    assert_eq!(refused.json()?["error"], "not_entitled");

    let unknown = portal.launch_raw("no-such-desk", Some(&portal.csrf)).await?;
    assert_eq!(unknown.status, 403, "an unknown resource answers like a forbidden one: {}", unknown.text());
    assert_eq!(unknown.json()?["error"], "not_entitled");

    let no_csrf = portal.launch_raw("desk", None).await?;
    assert_eq!(no_csrf.status, 403, "launch without X-CSRF-Token: {}", no_csrf.text());
    assert_eq!(no_csrf.json()?["error"], "csrf");
    let bad_csrf = portal.launch_raw("desk", Some("not-the-token")).await?;
    assert_eq!(bad_csrf.status, 403, "launch with a wrong X-CSRF-Token: {}", bad_csrf.text());

    // A ticket is single-use: the second upgrade with it is refused over plain HTTP.
    let ticket = portal.launch("desk").await?;
    let first = match portal.open_ws(&ticket).await? {
        Ok(ws) => ws,
        Err(status) => bail!("first use of a fresh ticket refused with HTTP {status}"),
    };
    let mut viewer = crate::support::viewer::ViewerClient::start(first).await?;
    viewer.wait_hello(HELLO_TIMEOUT).await?;
    match portal.open_ws(&ticket).await? {
        Ok(_) => bail!("a replayed ticket was accepted"),
        Err(status) => assert_eq!(status, 403, "replayed ticket"),
    }
    // The first viewer is unaffected by the refused replay.
    viewer.settle(1).await?;

    // A ticket is bound to the portal session that asked for it.
    let other_browser = login(gateway.addr, USER, PASSWORD).await?;
    let stolen = portal.launch("desk").await?;
    match other_browser.open_ws(&stolen).await? {
        Ok(_) => bail!("a ticket was accepted from another portal session"),
        Err(status) => assert_eq!(status, 403, "ticket from another portal session"),
    }
    assert_eq!(gateway.running.session_count(), 1, "refused upgrades start no session");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_then_lockout() -> Result<()> {
    let nowhere: SocketAddr = "127.0.0.1:9".parse()?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["desk"])],
        &[Resource::new("desk", nowhere, None)],
        "[login]\nmax_failures = 3\n",
    )
    .await?;
    let first = submit_login(gateway.addr, USER, "wrong 1").await?;
    assert_eq!(first.status, 401, "first wrong password");
    assert!(first.cookie("bascule_session").is_none(), "no session for a wrong password");
    let second = submit_login(gateway.addr, USER, "wrong 2").await?;
    assert_eq!(second.status, 401, "second wrong password");
    let third = submit_login(gateway.addr, USER, "wrong 3").await?;
    assert_eq!(third.status, 423, "the failure that reaches max_failures locks the account");
    let right = submit_login(gateway.addr, USER, PASSWORD).await?;
    assert_eq!(right.status, 423, "a locked account stays locked even with the right password");
    assert!(right.cookie("bascule_session").is_none(), "no session while locked");
    // Unknown users are refused the same way as wrong passwords.
    let stranger = submit_login(gateway.addr, "nobody", PASSWORD).await?;
    assert_eq!(stranger.status, 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_attaches_to_the_same_live_session() -> Result<()> {
    let (desktop, gateway) = desktop_and_gateway("").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = portal.open_viewer("desk").await?;
    viewer.wait_hello(HELLO_TIMEOUT).await?;
    viewer.settle(1).await?;
    assert_eq!(gateway.running.session_count(), 1);

    // Leave some state on the desktop through this viewer.
    focus_xterm(&desktop)?;
    let echo = EchoCommand::new("BEFORE_RECONNECT");
    viewer.type_keysyms(&keysyms(&echo.command)).await?;
    echo.check().await?;
    viewer.settle(0).await?;
    viewer.close().await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.running.session_count(), 1, "the session outlives its viewer");

    let mut again = portal.open_viewer("desk").await?;
    let (width, height, _) = again.wait_hello(HELLO_TIMEOUT).await?;
    assert_eq!((width, height), (1280, 800));
    assert_eq!(gateway.running.session_count(), 1, "the new viewer attaches to the live session");
    // The new viewer's first frame is built from the session's framebuffer: it already shows
    // the command typed before.
    assert_viewer_shows_desktop(&mut again, &desktop, 1).await?;
    assert_eq!(gateway.running.session_count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_viewer_gets_keepalives_and_nothing_else() -> Result<()> {
    let (_desktop, gateway) = desktop_and_gateway("[sessions]\nkeepalive_secs = 1\n").await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = portal.open_viewer("desk").await?;
    viewer.wait_hello(HELLO_TIMEOUT).await?;
    viewer.settle(1).await?;
    let (frames, bytes) = (viewer.frames, viewer.bytes_received);
    // Nothing changes on the desktop for 3.5 s.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < deadline {
        viewer.recv(deadline.saturating_duration_since(tokio::time::Instant::now())).await?;
    }
    assert!(viewer.pings >= 2, "keepalive pings: {}", viewer.pings);
    assert_eq!(viewer.frames, frames, "no frame while nothing changes");
    assert!(viewer.bytes_received - bytes < 200, "almost nothing sent: {} bytes", viewer.bytes_received - bytes);
    Ok(())
}
