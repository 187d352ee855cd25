//! The sans-IO RFB client against real servers: x11vnc and Xtigervnc desktops started by
//! `bascule-desktop`, and the peers of `scripts/testbed.sh`.

use crate::support::rfb::RfbSession;
use crate::support::{
    EchoCommand, compare_rgba, focus_xterm, keysyms, pointer_position, screenshot, start_desktop, testbed_env,
};
use anyhow::{Context, Result, bail};
use bascule_desktop::VncServer;
use std::net::SocketAddr;

/// Connects with the right password, checks the first full frame against the X server's own
/// pixels, then checks that a wrong password is refused as `auth_failed`.
async fn first_frame_and_wrong_password(server: VncServer) -> Result<()> {
    let password = "s3cret-pw";
    let desktop = start_desktop(server, Some(password));
    let addr = desktop.vnc_addr();

    let mut session = RfbSession::connect(addr, Some(password))
        .await?
        .map_err(|e| anyhow::anyhow!("{server:?} refused the right password: {e} (code {})", e.code()))?;
    // TigerVNC draws the pointer into the framebuffer while the pointer was last moved by
    // someone else than this client (xwd never shows it). A pointer event at the pointer's
    // current position makes this client the last mover without changing anything on screen.
    let (px, py) = pointer_position(&desktop)?;
    session.send_pointer(px, py).await?;
    session.wait_full_frame().await?;
    let (w, h, expected) = screenshot(&desktop)?;
    assert_eq!((w, h), (1280, 800), "the desktop is 1280x800");
    let fb = session.framebuffer();
    let (fw, fh) = fb.size();
    if let Err(error) = compare_rgba(
        &format!("{server:?} first frame vs. xwd"),
        (u32::from(fw), u32::from(fh), fb.rgba()),
        (w, h, &expected),
    ) {
        bail!(error);
    }
    drop(session);

    match RfbSession::connect(addr, Some("wrong-pw")).await? {
        Ok(session) => bail!("{server:?} accepted a wrong password: {session:?}"),
        Err(error) => assert_eq!(error.code(), "auth_failed", "wrong password must be auth_failed, got {error}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11vnc_vncauth_first_frame_equals_screen_and_wrong_password_fails() -> Result<()> {
    first_frame_and_wrong_password(VncServer::X11vnc).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tigervnc_vncauth_first_frame_equals_screen_and_wrong_password_fails() -> Result<()> {
    first_frame_and_wrong_password(VncServer::TigerVnc).await
}

/// One testbed peer: the right password connects and draws a full 1280x800 frame; a wrong one
/// is `auth_failed`. The right password goes first: TigerVNC clears its blacklist mark on a
/// success, so repeated runs never get the peer to blacklist 127.0.0.1.
async fn testbed_peer(addr_key: &str, pass_key: &str) -> Result<()> {
    let env = testbed_env();
    let get = |key: &str| {
        env.get(key)
            .cloned()
            .with_context(|| format!("{key} missing from the testbed env; run scripts/testbed.sh up first"))
    };
    let addr: SocketAddr = get(addr_key)?.parse().with_context(|| format!("{addr_key} is not an address"))?;
    let password = get(pass_key)?;
    let connected = RfbSession::connect(addr, Some(&password))
        .await
        .with_context(|| format!("testbed peer {addr} is not answering; run scripts/testbed.sh up first"))?;
    let mut session = connected.map_err(|e| anyhow::anyhow!("testbed peer {addr} refused {pass_key}: {e}"))?;
    session.wait_full_frame().await?;
    assert_eq!(session.framebuffer().size(), (1280, 800), "testbed desktops are 1280x800");
    drop(session);

    let wrong = format!("{password}-not");
    match RfbSession::connect(addr, Some(&wrong)).await? {
        Ok(session) => bail!("testbed peer {addr} accepted a wrong password: {session:?}"),
        Err(error) => assert_eq!(error.code(), "auth_failed", "wrong password must be auth_failed, got {error}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_x11vnc_right_and_wrong_password() -> Result<()> {
    testbed_peer("TB_X11VNC_ADDR", "TB_X11VNC_PASS").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_tigervnc_right_and_wrong_password() -> Result<()> {
    testbed_peer("TB_TIGER_ADDR", "TB_TIGER_PASS").await
}

/// Keys sent by the RFB client reach the xterm's shell: a command typed through VNC writes a
/// file with a fresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x11vnc_keyboard_input_runs_a_shell_command() -> Result<()> {
    let desktop = start_desktop(VncServer::X11vnc, None);
    let mut session = RfbSession::connect(desktop.vnc_addr(), None)
        .await?
        .map_err(|e| anyhow::anyhow!("x11vnc without a password refused us: {e}"))?;
    session.wait_full_frame().await?;
    focus_xterm(&desktop)?;
    let echo = EchoCommand::new("TOKEN");
    session.type_keysyms(&keysyms(&echo.command)).await?;
    echo.check().await
}
