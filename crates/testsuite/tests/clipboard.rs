//! The clipboard through the gateway, both ways, against real peers: an x11vnc desktop (PRIMARY
//! and CLIPBOARD selections of its X server) and the testbed's xrdp (the X CLIPBOARD of the
//! session's Xorg, bridged to cliprdr by xrdp's chansrv). The selections are read and set with
//! `xclip` on the peer's X display.
//!
//! Each VNC test publishes the same desktop twice, once with the default policy and once with one
//! direction turned off (`clipboard_in = false` or `clipboard_out = false`): the allowed resource
//! shows that the peer did its part in the same time window, the other that the gateway held the
//! text back.

use crate::support::gateway::{Resource, User, start_gateway};
use crate::support::http::{Portal, login};
use crate::support::viewer::{Incoming, ViewerClient};
use crate::support::{random_token, start_desktop, testbed_env, xterm_geometry};
use anyhow::{Context, Result, bail, ensure};
use bascule_desktop::{Desktop, VncServer};
use bascule_proto::{ClientMessage, ServerMessage};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const USER: &str = "agent";
const PASSWORD: &str = "clipboard-tests-pw";
/// Hello and first frames (RDP connection sequences on a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(30);
/// Longest wait for a clipboard text to cross the gateway, either way.
const CLIP_WAIT: Duration = Duration::from_secs(15);
/// How long a refused direction is watched for a leak.
const REFUSED_WATCH: Duration = Duration::from_secs(4);
/// x11vnc waits 8 s after a client connects, once it sees a window manager, before it creates
/// the window that owns selections (45 s without one), and 15 s before it sends the first
/// selection change to clients.
const X11VNC_SELECTION_WAIT: Duration = Duration::from_secs(40);

/// Fails with what to install when `xclip` is missing.
fn require_xclip() {
    let found = std::process::Command::new("xclip")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "xclip is missing: install it with `scripts/testbed.sh install` (or apt-get install xclip)");
}

/// An X display to read and set selections on (`XAUTHORITY` for displays that need a cookie).
#[derive(Debug, Clone)]
struct XDisplay {
    display: String,
    xauthority: Option<String>,
}

impl XDisplay {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("xclip");
        command.args(args).env("DISPLAY", &self.display).kill_on_drop(true);
        if let Some(file) = &self.xauthority {
            command.env("XAUTHORITY", file);
        }
        command
    }

    /// The text of `selection` (`primary` or `clipboard`); empty when nobody owns it or the owner
    /// does not answer within 5 s.
    async fn read(&self, selection: &str) -> String {
        let mut command = self.command(&["-o", "-selection", selection]);
        command.stdin(Stdio::null()).stderr(Stdio::null());
        match tokio::time::timeout(Duration::from_secs(5), command.output()).await {
            Ok(Ok(output)) if output.status.success() => String::from_utf8_lossy(&output.stdout).into_owned(),
            _ => String::new(),
        }
    }

    /// Makes a new `xclip` the owner of `selection`, serving `text` until dropped.
    async fn own(&self, selection: &str, text: &str) -> Result<SelectionOwner> {
        // `-quiet` keeps xclip in the foreground, so that it is our child and dies with the guard.
        let mut command = self.command(&["-quiet", "-i", "-selection", selection]);
        command.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = command.spawn().context("starting xclip -i")?;
        let mut stdin = child.stdin.take().context("xclip stdin")?;
        stdin.write_all(text.as_bytes()).await?;
        drop(stdin);
        // xclip takes the selection once it has read its input; wait until the display says so.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.read(selection).await != text {
            if let Some(status) = child.try_wait()? {
                bail!("xclip -i on {} exited ({status}) without owning {selection}", self.display);
            }
            if Instant::now() > deadline {
                bail!("xclip -i did not take the {selection} selection of {} within 5 s", self.display);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(SelectionOwner { _child: child })
    }
}

/// An `xclip -i` serving a selection; killed when dropped.
struct SelectionOwner {
    _child: tokio::process::Child,
}

/// Reads the viewer until a Clipboard message containing `token` arrives; the error lists every
/// clipboard text received. The `others` are read (and their frames acknowledged) meanwhile, and
/// the clipboard texts they receive are added to `others_texts`.
async fn wait_clipboard(
    viewer: &mut ViewerClient,
    token: &str,
    timeout: Duration,
    others: &mut [&mut ViewerClient],
    others_texts: &mut Vec<String>,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("no Clipboard message with {token:?} within {timeout:?}; clipboard texts received: {received:?} ({viewer:?})");
        }
        match viewer.recv(left.min(Duration::from_millis(250))).await? {
            Some(Incoming::Message(ServerMessage::Clipboard { text })) => {
                if text.contains(token) {
                    return Ok(text);
                }
                received.push(text);
            }
            Some(Incoming::Closed) => bail!("the viewer closed while waiting for {token:?} ({viewer:?})"),
            Some(Incoming::Message(_)) | None => {}
        }
        for other in others.iter_mut() {
            others_texts.extend(clipboard_texts_during(other, Duration::from_millis(20)).await?);
        }
    }
}

/// Reads the viewer for `duration`; returns every clipboard text received.
async fn clipboard_texts_during(viewer: &mut ViewerClient, duration: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + duration;
    let mut received = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(received);
        }
        match viewer.recv(left).await? {
            Some(Incoming::Message(ServerMessage::Clipboard { text })) => received.push(text),
            Some(Incoming::Closed) => bail!("the viewer closed ({viewer:?})"),
            Some(Incoming::Message(_)) | None => {}
        }
    }
}

/// Polls `selection` until it holds `expected`, reading (and acknowledging) the viewers between
/// polls; the error says what the selection held last.
async fn wait_selection(
    x: &XDisplay,
    selection: &str,
    expected: &str,
    viewers: &mut [&mut ViewerClient],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let current = x.read(selection).await;
        if current == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the {selection} selection of {} holds {current:?} after {timeout:?}, expected {expected:?}", x.display);
        }
        for viewer in viewers.iter_mut() {
            viewer.pump(Duration::from_millis(150)).await?;
        }
    }
}

/// Watches both selections for `duration` (reading the viewers meanwhile); fails if either ever
/// holds `token`.
async fn selections_never_hold(
    x: &XDisplay,
    token: &str,
    viewers: &mut [&mut ViewerClient],
    duration: Duration,
) -> Result<()> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        for selection in ["primary", "clipboard"] {
            let current = x.read(selection).await;
            ensure!(!current.contains(token), "the {selection} selection of {} holds {current:?}", x.display);
        }
        for viewer in viewers.iter_mut() {
            viewer.pump(Duration::from_millis(200)).await?;
        }
    }
    Ok(())
}

async fn open(portal: &Portal, resource: &str) -> Result<ViewerClient> {
    let mut viewer = portal.open_viewer(resource).await.with_context(|| format!("opening a viewer of {resource}"))?;
    viewer.wait_hello(WAIT).await.with_context(|| format!("hello of {resource}"))?;
    viewer.settle(1).await.with_context(|| format!("first picture of {resource}"))?;
    Ok(viewer)
}

fn desktop_x(desktop: &Desktop) -> XDisplay {
    XDisplay { display: desktop.display().to_owned(), xauthority: None }
}

/// Runs `xdotool` on the desktop's display.
async fn xdotool(desktop: &Desktop, args: &[&str]) -> Result<()> {
    let output = tokio::process::Command::new("xdotool")
        .args(args)
        .env("DISPLAY", desktop.display())
        .kill_on_drop(true)
        .output()
        .await
        .context("running xdotool")?;
    ensure!(output.status.success(), "xdotool {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

/// Prints `token` alone on the first row of the cleared xterm and double-clicks it, as a user
/// selecting a word: the xterm then owns PRIMARY with the token.
async fn select_word_in_xterm(desktop: &Desktop, token: &str) -> Result<()> {
    tokio::task::block_in_place(|| desktop.run_in_xterm(&format!("clear; echo {token}")))
        .context("typing in the xterm")?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The xterm is 100x30 cells inside a 2-pixel border: aim at the middle of the token's cells.
    let (_, _, width, height) = xterm_geometry(desktop)?;
    let (cell_w, cell_h) = ((width.saturating_sub(4)) / 100, (height.saturating_sub(4)) / 30);
    let x = 2 + cell_w * (token.len() as u16 / 2);
    let y = 2 + cell_h / 2;
    let window = desktop.xterm_window().to_owned();
    xdotool(desktop, &["mousemove", "--window", &window, &x.to_string(), &y.to_string()]).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    xdotool(desktop, &["click", "--repeat", "2", "--delay", "80", "1"]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_clipboard_host_to_browser_and_clipboard_out_false() -> Result<()> {
    require_xclip();
    let desktop = start_desktop(VncServer::X11vnc, None);
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["open", "no-out"])],
        &[
            Resource::new("open", desktop.vnc_addr(), None),
            Resource::new("no-out", desktop.vnc_addr(), None).line("clipboard_out = false"),
        ],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut open_viewer = open(&portal, "open").await?;
    let mut blocked = open(&portal, "no-out").await?;
    assert_eq!(gateway.running.session_count(), 2, "one session per resource");
    let x = desktop_x(&desktop);

    // PRIMARY: a word double-clicked in the xterm. x11vnc sends selection changes to its
    // clients only 15 s after the last one connected; the xterm may not show the token yet at the
    // first double-click on a loaded machine: two tries.
    let primary_token = format!("CLIPTOKEN{}", random_token(12));
    let mut primary_text = None;
    let mut blocked_texts = Vec::new();
    for attempt in 1..=2 {
        select_word_in_xterm(&desktop, &primary_token).await?;
        let others: &mut [&mut ViewerClient] = &mut [&mut blocked];
        match wait_clipboard(&mut open_viewer, &primary_token, X11VNC_SELECTION_WAIT, others, &mut blocked_texts).await {
            Ok(text) => {
                primary_text = Some(text);
                break;
            }
            Err(error) => {
                let primary = x.read("primary").await;
                eprintln!("attempt {attempt}: {error:#}; PRIMARY holds {primary:?}");
            }
        }
    }
    let primary_text = primary_text.context("the double-clicked word never reached the viewer")?;
    assert_eq!(primary_text, primary_token, "the viewer receives exactly the selected word");

    // CLIPBOARD: a program copies a text.
    let clipboard_token = format!("CLIPTOKEN_{}", random_token(12));
    let owner = x.own("clipboard", &clipboard_token).await?;
    let text =
        wait_clipboard(&mut open_viewer, &clipboard_token, CLIP_WAIT, &mut [&mut blocked], &mut blocked_texts).await?;
    assert_eq!(text, clipboard_token, "the viewer receives exactly the copied text");
    drop(owner);

    // The clipboard_out = false viewer got neither, while its session is alive: a command typed
    // on the desktop keeps drawing frames on it.
    let frames = blocked.frames;
    tokio::task::block_in_place(|| desktop.run_in_xterm(&format!("echo still-alive-{}", random_token(6))))?;
    blocked_texts.extend(clipboard_texts_during(&mut blocked, REFUSED_WATCH).await?);
    assert!(
        blocked_texts.is_empty(),
        "clipboard_out = false: the viewer received clipboard texts {blocked_texts:?}"
    );
    assert!(
        blocked.frames > frames,
        "the clipboard_out = false session drew no frame after a command was typed ({blocked:?})"
    );
    // And the open viewer keeps working too.
    open_viewer.pump(Duration::from_millis(200)).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_clipboard_browser_to_host_and_clipboard_in_false() -> Result<()> {
    require_xclip();
    let desktop = start_desktop(VncServer::X11vnc, None);
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["open", "no-in"])],
        &[
            Resource::new("open", desktop.vnc_addr(), None),
            Resource::new("no-in", desktop.vnc_addr(), None).line("clipboard_in = false"),
        ],
        "",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut open_viewer = open(&portal, "open").await?;
    let mut blocked = open(&portal, "no-in").await?;
    let x = desktop_x(&desktop);

    // The default policy: x11vnc sets both selections. x11vnc only creates the window that owns
    // its selections some seconds after a client connects (8 s once it sees a window manager):
    // until then it keeps the text in CUT_BUFFER0 only. The text is sent again every 3 s.
    let token = format!("PASTED_{}", random_token(12));
    let deadline = Instant::now() + X11VNC_SELECTION_WAIT;
    loop {
        open_viewer.send(ClientMessage::Clipboard { text: token.clone() }).await?;
        let viewers: &mut [&mut ViewerClient] = &mut [&mut open_viewer, &mut blocked];
        match wait_selection(&x, "clipboard", &token, viewers, Duration::from_secs(3)).await {
            Ok(()) => break,
            Err(error) if Instant::now() > deadline => return Err(error),
            Err(_) => {}
        }
    }
    wait_selection(&x, "primary", &token, &mut [&mut open_viewer, &mut blocked], CLIP_WAIT).await?;

    // clipboard_in = false: x11vnc now takes any text it gets, yet the pasted text never reaches
    // the desktop's selections.
    let refused = format!("REFUSED_{}", random_token(12));
    blocked.send(ClientMessage::Clipboard { text: refused.clone() }).await?;
    selections_never_hold(&x, &refused, &mut [&mut blocked, &mut open_viewer], REFUSED_WATCH).await?;
    ensure!(blocked.closed.is_none(), "the clipboard_in = false viewer was closed: {blocked:?}");
    let cut_buffer = crate::support::shell(&format!("DISPLAY={} xprop -root CUT_BUFFER0", x.display))?;
    ensure!(!cut_buffer.contains(&refused), "CUT_BUFFER0 holds the refused text: {cut_buffer:?}");
    for selection in ["primary", "clipboard"] {
        let current = x.read(selection).await;
        ensure!(current == token, "the {selection} selection changed to {current:?}, expected {token:?} still");
    }

    // A program on the desktop pastes it: a middle click in the xterm (PRIMARY) while `head`
    // reads.
    let file = std::env::temp_dir().join(format!("bascule-testsuite-paste-{}.txt", random_token(10).to_lowercase()));
    let _ = std::fs::remove_file(&file);
    let command = format!("head -c {} > {}; echo >> {}", token.len(), file.display(), file.display());
    tokio::task::block_in_place(|| desktop.run_in_xterm(&command)).context("typing in the xterm")?;
    open_viewer.pump(Duration::from_millis(500)).await?;
    let window = desktop.xterm_window().to_owned();
    xdotool(&desktop, &["mousemove", "--window", &window, "200", "200", "click", "2"]).await?;
    // The terminal is in canonical mode: `head` reads the pasted text once the line ends.
    tokio::time::sleep(Duration::from_millis(300)).await;
    xdotool(&desktop, &["windowactivate", "--sync", &window, "key", "Return"]).await?;
    let pasted = crate::support::wait_for_file(&file, Duration::from_secs(10)).await;
    let _ = std::fs::remove_file(&file);
    let pasted = pasted.with_context(|| format!("{} did not appear after a middle click", file.display()))?;
    assert_eq!(pasted.trim_end(), token, "the xterm pasted the viewer's text");

    // The refused text did not arrive late either.
    for selection in ["primary", "clipboard"] {
        let current = x.read(selection).await;
        assert!(!current.contains(&refused), "the {selection} selection holds the refused text: {current:?}");
    }
    Ok(())
}

/// The testbed's xrdp endpoint and unix account; fails with what to run when it is down.
fn xrdp_testbed() -> Result<(SocketAddr, String, String)> {
    let env = testbed_env();
    let get = |key: &str| {
        env.get(key).cloned().with_context(|| format!("{key} missing from the testbed env file: run scripts/testbed.sh up first"))
    };
    let addr: SocketAddr = get("TB_XRDP_ADDR")?.parse().context("TB_XRDP_ADDR")?;
    if let Err(error) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        bail!("xrdp does not answer on {addr} ({error}): run scripts/testbed.sh up first");
    }
    Ok((addr, get("TB_RDP_USER")?, get("TB_RDP_PASS")?))
}

/// The X displays of `user`'s xrdp sessions: each Xorg's `:N` argument, and the cookie file from
/// `-auth` (xrdp-sesman passes a path relative to the user's home) or `~/.Xauthority`.
async fn xrdp_session_displays(user: &str, timeout: Duration) -> Result<Vec<XDisplay>> {
    let home = crate::support::shell(&format!("getent passwd {user} | cut -d: -f6"))?.trim().to_owned();
    let deadline = Instant::now() + timeout;
    loop {
        let listing = crate::support::shell(&format!("ps -u {user} -o args= || true"))?;
        let mut displays = Vec::new();
        for line in listing.lines() {
            let args: Vec<&str> = line.split_whitespace().collect();
            if !args.first().is_some_and(|p| p.ends_with("Xorg")) {
                continue;
            }
            let Some(display) = args.iter().find(|a| a.starts_with(':') && a[1..].parse::<u32>().is_ok()) else {
                continue;
            };
            let auth = args.iter().position(|a| *a == "-auth").and_then(|i| args.get(i + 1)).map_or_else(
                || format!("{home}/.Xauthority"),
                |file| if file.starts_with('/') { (*file).to_owned() } else { format!("{home}/{file}") },
            );
            displays.push(XDisplay { display: (*display).to_owned(), xauthority: Some(auth) });
        }
        if !displays.is_empty() {
            return Ok(displays);
        }
        if Instant::now() > deadline {
            bail!("no Xorg of {user} after {timeout:?}; processes of {user}:\n{listing}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrdp_clipboard_both_ways() -> Result<()> {
    require_xclip();
    let (addr, user, password) = xrdp_testbed()?;
    // The testbed user's xrdp session is shared by the tests that log in as that user.
    let _session = crate::support::xrdp_testbed_session_lock().await;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["xrdp-clip"])],
        &[Resource::rdp("xrdp-clip", addr)
            .service(&user, &password)
            .line("security = \"tls\"")
            .line("certificate = \"accept-any\"")],
        "allow_insecure_certificates = true\n",
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = portal.open_viewer("xrdp-clip").await?;
    viewer.wait_hello(WAIT).await?;
    viewer.wait_frames(1, WAIT).await?;

    // Browser to host: the session's CLIPBOARD offers the text, fetched from the gateway over
    // cliprdr when an X program reads it. chansrv may still be setting up the channel of a fresh
    // connection: the text is sent again every 3 s. The user may have more than one session (one
    // per screen size): the one that gets the text is this connection's.
    let token = format!("RDPIN_{}", random_token(12));
    let deadline = Instant::now() + CLIP_WAIT;
    let mut seen = Vec::new();
    let x = 'paste: loop {
        viewer.send(ClientMessage::Clipboard { text: token.clone() }).await?;
        let round = Instant::now() + Duration::from_secs(3);
        while Instant::now() < round {
            seen.clear();
            for x in xrdp_session_displays(&user, Duration::from_secs(10)).await? {
                let current = x.read("clipboard").await;
                if current == token {
                    break 'paste x;
                }
                seen.push((x.display, current));
            }
            viewer.pump(Duration::from_millis(200)).await?;
        }
        if Instant::now() > deadline {
            bail!("no xrdp session of {user} has {token:?} in its CLIPBOARD after {CLIP_WAIT:?}: (display, CLIPBOARD) = {seen:?}");
        }
    };
    println!("xrdp session of {user}: {x:?}");

    // Host to browser: a program in the session copies a text.
    let out_token = format!("RDPOUT_{}", random_token(12));
    let owner = x.own("clipboard", &out_token).await?;
    let received = wait_clipboard(&mut viewer, &out_token, CLIP_WAIT, &mut [], &mut Vec::new()).await;
    drop(owner);
    let text = received?;
    assert_eq!(text.trim_end_matches('\0'), out_token, "the viewer receives exactly the copied text");
    assert_eq!(text, out_token, "no trailing NUL or line ending is added");
    viewer.close().await?;
    Ok(())
}
