//! RDP through the gateway, with the Rust viewer: freerdp-shadow-cli sharing a private desktop
//! (TLS, NLA, trust on first use), xrdp from `scripts/testbed.sh up` (service account,
//! reattaching a session, pass-through credentials, a published application), and hostile RDP
//! servers.
//!
//! Keys are sent as a browser with a US keyboard sends them (keysym and set-1 scancode): the RDP
//! backend forwards the scancode, and the resources say `keyboard_layout = 0x0409` to match the
//! US keymap of the X servers here.

use crate::support::fake_vnc::{FakeVnc, drain};
use crate::support::gateway::{Resource, TestGateway, User, start_gateway};
use crate::support::http::{Portal, healthz, login};
use crate::support::viewer::ViewerClient;
use crate::support::{
    EchoCommand, focus_xterm, is_isolated_run, mean_abs_diff, proc_status_kib, process_cpu_time, random_token,
    run_isolated_test, screenshot, shell, start_rdp_desktop, testbed_env, wait_for_file, xterm_geometry,
};
use anyhow::{Context, Result, bail, ensure};
use bascule_desktop::{Desktop, RdpShadow};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USER: &str = "agent";
const PASSWORD: &str = "rdp-tests-portal-pw";
/// Generous: RDP connection sequences and first pictures on a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(30);
/// Largest mean absolute difference per channel between the viewer's canvas and the X screen
/// (RemoteFX and planar codecs may be lossy).
const MAX_MEAN_DIFF: f64 = 8.0;
/// Lets the demo-only certificate policy through.
const INSECURE: &str = "allow_insecure_certificates = true\n";

/// A freerdp-shadow (TLS, no authentication) resource that accepts any host certificate.
fn shadow_resource(id: &str, desktop: &Desktop) -> Resource {
    Resource::rdp(id, rdp_addr(desktop))
        .service("shadow", "any-password")
        .line("security = \"tls\"")
        .line("certificate = \"accept-any\"")
}

fn rdp_addr(desktop: &Desktop) -> SocketAddr {
    desktop.rdp_addr().expect("started with RDP")
}

/// Opens a viewer of `resource` and waits for its hello and first frame.
async fn open_with_frames(portal: &Portal, resource: &str) -> Result<ViewerClient> {
    let mut viewer = portal.open_viewer(resource).await.with_context(|| format!("opening a viewer of {resource}"))?;
    viewer.wait_hello(WAIT).await.with_context(|| format!("hello of {resource}"))?;
    viewer.wait_frames(1, WAIT).await.with_context(|| format!("first frame of {resource}"))?;
    Ok(viewer)
}

/// Lets the picture settle, then compares it with the X screen; returns the mean absolute
/// difference per channel. Up to three rounds, as the desktop may still be drawing.
async fn settled_difference(viewer: &mut ViewerClient, desktop: &Desktop) -> Result<f64> {
    let mut best = f64::MAX;
    for round in 0..3 {
        viewer.settle(if round == 0 { 1 } else { 0 }).await?;
        let (w, h, rgba) = screenshot(desktop)?;
        let difference = mean_abs_diff(viewer.picture(), (w, h, &rgba))?;
        best = best.min(difference);
        if difference < MAX_MEAN_DIFF {
            break;
        }
        eprintln!("round {round}: mean absolute difference {difference:.2}");
        viewer.pump(Duration::from_secs(1)).await?;
    }
    Ok(best)
}

/// Polls until the gateway has no live session (its backend connection is dropped).
async fn wait_no_session(gateway: &TestGateway, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while gateway.running.session_count() != 0 {
        if Instant::now() > deadline {
            bail!("the gateway still has {} session(s) after {timeout:?}", gateway.running.session_count());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Clicks at `(x, y)` (to give that window the focus), clears the shell's line with Control-C,
/// types `command` and Return, and waits for `path` to hold a complete line. A fresh remote
/// session may not show its terminal yet when the first frame arrives: up to `attempts` tries.
async fn type_until_file(
    viewer: &mut ViewerClient,
    (x, y): (u16, u16),
    command: &str,
    path: &Path,
    attempts: u32,
) -> Result<String> {
    for attempt in 1..=attempts {
        viewer.click(x, y).await?;
        viewer.pump(Duration::from_millis(300)).await?;
        viewer.control('c').await?;
        viewer.pump(Duration::from_millis(200)).await?;
        viewer.type_us(&format!("{command}\n")).await?;
        let waiting = wait_for_file(path, Duration::from_secs(6));
        tokio::pin!(waiting);
        // Keep reading (and acknowledging) frames while the command runs.
        let found = loop {
            tokio::select! {
                found = &mut waiting => break found,
                incoming = viewer.recv(Duration::from_secs(1)) => {
                    if let Some(crate::support::viewer::Incoming::Closed) = incoming? {
                        bail!("the viewer closed while waiting for {} ({viewer:?})", path.display());
                    }
                }
            }
        };
        if let Some(text) = found {
            return Ok(text);
        }
        eprintln!("attempt {attempt}: {} did not appear after typing {command:?}", path.display());
    }
    bail!("{} did not appear after typing {command:?} {attempts} times", path.display())
}

/// The uid of a unix account.
fn uid_of(user: &str) -> Result<u32> {
    shell(&format!("id -u {user}"))?.trim().parse().with_context(|| format!("id -u {user}"))
}

/// Pids of the processes of a unix account (`pgrep -u`).
fn pids_of(user: &str) -> Result<Vec<u32>> {
    let output = shell(&format!("pgrep -u {user} || true"))?;
    output.lines().map(|l| l.trim().parse::<u32>().context("pgrep output")).collect()
}

/// Ends every process of a unix account created by these tests, by pid, and waits until none is
/// left.
async fn end_processes_of(user: &str) -> Result<()> {
    for _ in 0..50 {
        let pids = pids_of(user)?;
        if pids.is_empty() {
            return Ok(());
        }
        for pid in pids {
            let _ = shell(&format!("kill -KILL {pid} 2>/dev/null || true"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("processes of {user} are still running: {:?}", pids_of(user)?)
}

fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_tls_canvas_keys_and_clicks() -> Result<()> {
    let desktop = start_rdp_desktop(RdpShadow::Tls);
    let gateway =
        start_gateway(&[User::new(USER, PASSWORD, &["shadow"])], &[shadow_resource("shadow", &desktop)], INSECURE)
            .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut viewer = open_with_frames(&portal, "shadow").await?;
    let (width, height, name) = viewer.hello.clone().context("hello")?;
    assert_eq!((width, height), (1280, 800), "freerdp-shadow shares the whole 1280x800 screen");
    assert_eq!(name, "shadow");

    let difference = settled_difference(&mut viewer, &desktop).await?;
    println!("FIGURE: shadow TLS: mean absolute difference per channel, canvas vs. xwd: {difference:.3}");
    assert!(difference < MAX_MEAN_DIFF, "the canvas differs from the X screen by {difference:.2} per channel");

    // Keys: a command typed with US scancodes runs in the xterm.
    focus_xterm(&desktop)?;
    let echo = EchoCommand::new("RDP_SHADOW");
    viewer.type_us(&echo.command).await?;
    echo.check().await?;

    // Pointer: the xterm reports a left press in X10 mouse mode: ESC [ M, then 32 + button 0.
    let clicks = std::env::temp_dir().join(format!("bascule-testsuite-click-{}.txt", random_token(10).to_lowercase()));
    remove(&clicks);
    viewer
        .type_us(&format!(
            "printf '\\033[?9h'; read -rsn6 c; printf '\\033[?9l'; printf '%s' \"$c\" | od -An -tu1 > {}\n",
            clicks.display()
        ))
        .await?;
    // The shell must be waiting in `read` with mouse reporting on before the click.
    viewer.settle(0).await?;
    viewer.pump(Duration::from_millis(500)).await?;
    let (x, y, w, h) = xterm_geometry(&desktop)?;
    // Near the top-left of the terminal, so that column and row stay below 95 (ASCII bytes).
    let (click_x, click_y) = (x + (w / 8).min(200), y + (h / 8).min(150));
    viewer.click(click_x, click_y).await?;
    let found = wait_for_file(&clicks, Duration::from_secs(10)).await;
    remove(&clicks);
    let text = found.with_context(|| format!("no mouse report after a click at ({click_x}, {click_y})"))?;
    let bytes: Vec<u32> = text.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    assert!(bytes.starts_with(&[27, 91, 77, 32]), "the xterm reported {bytes:?} for a left press");
    assert_eq!(bytes.len(), 6, "ESC [ M b x y: {bytes:?}");
    assert_eq!(gateway.running.session_count(), 1);
    Ok(())
}

/// A host with `h264 = true`: freerdp-shadow sends AVC420 (H.264). A viewer that decodes H.264
/// gets it as the host sent it (host-stream `Video` messages); a viewer on the same session that
/// does not gets the pixels the gateway decoded. Both show the X screen, within H.264's loss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_h264_is_passed_through_to_viewers_that_decode_it() -> Result<()> {
    let desktop = start_rdp_desktop(RdpShadow::Tls);
    let resource = shadow_resource("shadow", &desktop).line("h264 = true");
    let gateway = start_gateway(&[User::new(USER, PASSWORD, &["shadow"])], &[resource], INSECURE).await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let h264 = crate::support::viewer::BROWSER_CODECS | bascule_proto::CODEC_H264;
    let mut decoding = portal.open_viewer_with("shadow", h264).await?;
    decoding.wait_hello(WAIT).await?;
    decoding.wait_frames(1, WAIT).await?;
    let mut pixels = open_with_frames(&portal, "shadow").await?;
    // freerdp-shadow sends H.264 for what changes once AVC is confirmed: type into the xterm.
    focus_xterm(&desktop)?;
    let deadline = Instant::now() + WAIT;
    while decoding.host_video < 5 {
        ensure!(Instant::now() < deadline, "no H.264 passed through within {WAIT:?}: {} host pictures", decoding.host_video);
        decoding.type_us("echo h264\n").await?;
        decoding.pump(Duration::from_millis(300)).await?;
        pixels.pump(Duration::from_millis(100)).await?;
    }
    let decoded = settled_difference(&mut decoding, &desktop).await?;
    let difference = settled_difference(&mut pixels, &desktop).await?;
    println!(
        "FIGURE: shadow H.264: {} host pictures passed through; mean absolute difference per channel, canvas vs. xwd: {decoded:.3} (H.264 viewer), {difference:.3} (PNG viewer)",
        decoding.host_video
    );
    assert!(decoded < MAX_MEAN_DIFF && difference < MAX_MEAN_DIFF, "{decoded:.2} / {difference:.2}");
    assert_eq!(pixels.host_video + pixels.own_video, 0, "the viewer without H.264 got none");
    // A viewer that comes later (a reload) catches up with the stream since its IDR: it decodes
    // the host's pictures at the next change, not at the host's next IDR (250 pictures later).
    let mut late = portal.open_viewer_with("shadow", h264).await?;
    late.wait_hello(WAIT).await?;
    late.wait_frames(1, WAIT).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while late.host_video == 0 {
        ensure!(Instant::now() < deadline, "the late viewer got no H.264 within 10 s");
        late.type_us("echo late\n").await?;
        late.pump(Duration::from_millis(300)).await?;
    }
    let late_difference = settled_difference(&mut late, &desktop).await?;
    println!("FIGURE: shadow H.264: a viewer that came later decoded {} host pictures; difference {late_difference:.3}", late.host_video);
    assert!(late_difference < MAX_MEAN_DIFF, "{late_difference:.2}");
    assert_eq!(gateway.running.session_count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_nla_right_and_wrong_password() -> Result<()> {
    let (nla_user, nla_password) = ("nlauser", format!("nla-{}", random_token(8)));
    let desktop = start_rdp_desktop(RdpShadow::Nla { user: nla_user.into(), password: nla_password.clone() });
    let nla = |id: &str, password: &str| {
        Resource::rdp(id, rdp_addr(&desktop))
            .service(nla_user, password)
            .line("security = \"nla\"")
            .line("certificate = \"accept-any\"")
    };
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["right", "wrong"])],
        &[nla("right", &nla_password), nla("wrong", "not-the-password")],
        INSECURE,
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;

    let mut wrong = portal.open_viewer("wrong").await?;
    let (code, detail) = wrong.wait_notice(WAIT).await?;
    assert_eq!(code, "session.auth_failed", "detail: {detail}");
    assert!(!detail.contains("not-the-password"), "the notice must not leak the password: {detail}");
    let (close_code, _) = wrong.wait_closed(WAIT).await?;
    assert_eq!(close_code, 1000);
    assert!(wrong.hello.is_none() && wrong.frames == 0, "no picture for refused credentials");

    let mut right = open_with_frames(&portal, "right").await?;
    let difference = settled_difference(&mut right, &desktop).await?;
    println!("FIGURE: shadow NLA: mean absolute difference per channel: {difference:.3}");
    assert!(difference < MAX_MEAN_DIFF, "NLA canvas differs by {difference:.2}");
    assert_eq!(gateway.running.session_count(), 1, "only the session with the right password lives");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_then_approval_and_a_wrong_pin() -> Result<()> {
    let desktop = start_rdp_desktop(RdpShadow::Tls);
    let addr = rdp_addr(&desktop);
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["tofu", "pinned"])],
        &[
            // Default policy: trust on first use.
            Resource::rdp("tofu", addr).service("shadow", "pw").line("security = \"tls\""),
            Resource::rdp("pinned", addr)
                .service("shadow", "pw")
                .line("security = \"tls\"")
                .line(&format!("certificate = \"pin:{}\"", "00".repeat(32))),
        ],
        "",
    )
    .await?;
    let store = bascule_gateway::certstore::CertificateStore::new(gateway.data_dir());
    assert!(store.pending()?.is_empty(), "nothing pending before the first connection");
    let portal = login(gateway.addr, USER, PASSWORD).await?;

    let mut first = portal.open_viewer("tofu").await?;
    let (code, detail) = first.wait_notice(WAIT).await?;
    assert_eq!(code, "session.certificate_untrusted", "detail: {detail}");
    assert!(detail.contains("bascule host approve"), "the detail tells the admin what to run: {detail}");
    first.wait_closed(WAIT).await?;
    assert!(first.hello.is_none());

    let pending = store.pending()?;
    let seen = pending.get("tofu").with_context(|| format!("tofu is not pending: {pending:?}"))?;
    assert!(detail.contains(&seen.fingerprint), "the notice names the pending fingerprint {}: {detail}", seen.fingerprint);
    assert!(store.approved("tofu")?.is_empty());
    // A wrong fingerprint is refused; the right one is approved.
    assert!(store.approve("tofu", &"11".repeat(32)).is_err(), "approving a fingerprint never seen");
    store.approve("tofu", &seen.fingerprint)?;
    assert!(store.pending()?.is_empty());

    let mut second = open_with_frames(&portal, "tofu").await?;
    let difference = settled_difference(&mut second, &desktop).await?;
    assert!(difference < MAX_MEAN_DIFF, "approved host: canvas differs by {difference:.2}");

    let mut pinned = portal.open_viewer("pinned").await?;
    let (code, detail) = pinned.wait_notice(WAIT).await?;
    assert_eq!(code, "session.certificate_mismatch", "detail: {detail}");
    pinned.wait_closed(WAIT).await?;
    assert!(pinned.hello.is_none());
    assert_eq!(gateway.running.session_count(), 1, "only the approved session lives");
    Ok(())
}

/// The testbed's xrdp, with its unix user; fails with a clear message when the testbed is down.
struct Xrdp {
    addr: SocketAddr,
    user: String,
    password: String,
}

fn xrdp_from_testbed() -> Result<Xrdp> {
    let env = testbed_env();
    let get = |key: &str| {
        env.get(key).cloned().with_context(|| format!("{key} missing from the testbed env file: run scripts/testbed.sh up"))
    };
    let addr: SocketAddr = get("TB_XRDP_ADDR")?.parse().context("TB_XRDP_ADDR")?;
    if let Err(error) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        bail!("xrdp does not answer on {addr} ({error}): run scripts/testbed.sh up");
    }
    Ok(Xrdp { addr, user: get("TB_RDP_USER")?, password: get("TB_RDP_PASS")? })
}

/// Inside the testbed session's xterm (`-geometry 90x25+40+40`).
const XRDP_XTERM: (u16, u16) = (200, 120);

/// Reads a token written by the remote shell and checks its owner.
fn read_owned_file(path: &Path, uid: u32) -> Result<String> {
    let owner = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.uid();
    ensure!(owner == uid, "{} is owned by uid {owner}, expected {uid}", path.display());
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrdp_service_account_reattach_and_passthrough() -> Result<()> {
    // A second connection as testuser takes the xrdp session over: wait for the other tests.
    let _session = crate::support::xrdp_testbed_session_lock().await;
    let xrdp = xrdp_from_testbed()?;
    let uid = uid_of(&xrdp.user)?;
    let xrdp_resource = |id: &str| {
        Resource::rdp(id, xrdp.addr).line("security = \"tls\"").line("certificate = \"accept-any\"")
    };
    let gateway = start_gateway(
        // The portal account has the unix user's name and password, for pass-through.
        &[User::new(&xrdp.user, &xrdp.password, &["xrdp-svc", "xrdp-sso"])],
        &[
            xrdp_resource("xrdp-svc").service(&xrdp.user, &xrdp.password),
            xrdp_resource("xrdp-sso").line("credentials = \"passthrough\""),
        ],
        &format!("{INSECURE}[sessions]\nreconnect_window_secs = 1\n"),
    )
    .await?;
    let portal = login(gateway.addr, &xrdp.user, &xrdp.password).await?;
    let token = random_token(12);
    let (mark, sso_token) = (random_token(12), random_token(12));
    let token_file = PathBuf::from(format!("/tmp/bascule-xrdp-{token}"));
    let mark_file = PathBuf::from(format!("/tmp/bascule-xrdp-mark-{mark}"));
    let sso_file = PathBuf::from(format!("/tmp/bascule-xrdp-sso-{sso_token}"));
    let result = async {
        // (a) Service account: frames, and a command runs as the unix user.
        let started = Instant::now();
        let mut viewer = open_with_frames(&portal, "xrdp-svc").await?;
        println!("FIGURE: xrdp: launch (ticket request) to first frame through the gateway: {:?}", started.elapsed());
        let (width, height, _) = viewer.hello.clone().context("hello")?;
        ensure!((width, height) == (1280, 800), "xrdp gave {width}x{height}, the gateway asks for 1280x800");
        let text =
            type_until_file(&mut viewer, XRDP_XTERM, &format!("echo {token} > {}", token_file.display()), &token_file, 5)
                .await?;
        ensure!(text.trim() == token, "{} holds {text:?}, expected {token}", token_file.display());
        read_owned_file(&token_file, uid)?;

        // (b) Leave a mark in the shell, drop the connection, reattach.
        viewer.type_us(&format!("export BASCULE_MARK={mark}\n")).await?;
        viewer.pump(Duration::from_millis(500)).await?;
        viewer.close().await?;
        wait_no_session(&gateway, Duration::from_secs(20)).await?;
        let mut again = open_with_frames(&portal, "xrdp-svc").await?;
        let text = type_until_file(
            &mut again,
            XRDP_XTERM,
            &format!("echo $BASCULE_MARK > {}", mark_file.display()),
            &mark_file,
            5,
        )
        .await?;
        ensure!(text.trim() == mark, "the reattached shell has BASCULE_MARK={text:?}, expected {mark}: not the same xrdp session");
        read_owned_file(&mark_file, uid)?;
        again.close().await?;
        wait_no_session(&gateway, Duration::from_secs(20)).await?;

        // (c) Pass-through: the portal login reaches the same session.
        let mut sso = open_with_frames(&portal, "xrdp-sso").await?;
        let text = type_until_file(
            &mut sso,
            XRDP_XTERM,
            &format!("echo $BASCULE_MARK > {}", sso_file.display()),
            &sso_file,
            5,
        )
        .await?;
        ensure!(text.trim() == mark, "pass-through: BASCULE_MARK={text:?}, expected {mark}: not the same xrdp session");
        read_owned_file(&sso_file, uid)?;
        sso.close().await?;
        wait_no_session(&gateway, Duration::from_secs(20)).await
    }
    .await;
    for path in [&token_file, &mark_file, &sso_file] {
        remove(path);
    }
    result
}

const APP_USER: &str = "bascapp";
const APP_PASSWORD: &str = "bascapp-pass";

/// Creates the unix user of the published-application test (if missing), with a `startwm.sh`
/// like the testbed's (openbox + xterm): only an honoured alternate shell avoids openbox.
fn prepare_app_user() -> Result<()> {
    shell(&format!("id {APP_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {APP_USER}"))?;
    shell(&format!("printf '%s:%s\\n' {APP_USER} {APP_PASSWORD} | chpasswd"))?;
    let home = shell(&format!("getent passwd {APP_USER} | cut -d: -f6"))?.trim().to_owned();
    ensure!(Path::new(&home).is_dir(), "no home directory {home} for {APP_USER}");
    let startwm = Path::new(&home).join("startwm.sh");
    std::fs::write(&startwm, "openbox &\nexec xterm -name bascapp-desktop -e bash -l\n")?;
    shell(&format!("chmod 755 {0} && chown {APP_USER}: {0}", startwm.display()))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xrdp_published_application_runs_only_that_program() -> Result<()> {
    let xrdp = xrdp_from_testbed()?;
    prepare_app_user()?;
    // An existing session would be reattached, and xrdp then ignores the alternate shell.
    end_processes_of(APP_USER).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let app_uid = uid_of(APP_USER)?;
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["app"])],
        &[Resource::rdp("app", xrdp.addr)
            .service(APP_USER, APP_PASSWORD)
            .line("security = \"tls\"")
            .line("certificate = \"accept-any\"")
            .line("kind = \"application\"")
            .line("application = \"/usr/bin/xterm -name bascapp -e /bin/bash\"")],
        INSECURE,
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let path = PathBuf::from(format!("/tmp/bascule-app-{}", random_token(12)));
    let result = async {
        let mut viewer = open_with_frames(&portal, "app").await?;
        // Without a window manager the xterm sits at the top-left corner, and the keyboard
        // follows the pointer.
        let text = type_until_file(&mut viewer, (60, 60), &format!("echo $$ > {}", path.display()), &path, 5).await?;
        let pid: u32 = text.trim().parse().with_context(|| format!("{} holds {text:?}", path.display()))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).context("no Uid line")?;
        ensure!(uid_line.split_whitespace().nth(1) == Some(app_uid.to_string().as_str()), "the shell runs as {APP_USER}: {uid_line}");
        let openbox = shell(&format!("pgrep -u {APP_USER} openbox || true"))?;
        ensure!(openbox.trim().is_empty(), "openbox runs for {APP_USER} (pids {openbox:?}): the desktop started, not the application");
        let desktop_xterm = shell(&format!("pgrep -u {APP_USER} -f bascapp-desktop || true"))?;
        ensure!(desktop_xterm.trim().is_empty(), "startwm.sh's xterm runs: {desktop_xterm:?}");
        let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")).context("no PPid")?.trim().to_owned();
        let parent = std::fs::read(format!("/proc/{ppid}/cmdline"))?;
        let parent: Vec<String> =
            parent.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).filter(|a| !a.is_empty()).collect();
        ensure!(
            parent.first().is_some_and(|p| p.ends_with("xterm")) && parent.windows(2).any(|w| w == ["-name", "bascapp"]),
            "the shell's parent is the published xterm: {parent:?}"
        );
        viewer.close().await
    }
    .await;
    remove(&path);
    drop(gateway);
    end_processes_of(APP_USER).await?;
    result
}

/// An RDP server that reads the X.224 Connection Request and answers with an HTTP error page.
async fn garbage_after_x224(mut stream: TcpStream) -> Result<()> {
    let mut request = [0u8; 64];
    let n = stream.read(&mut request).await?;
    ensure!(n >= 11 && request[0] == 0x03, "not an X.224 request: {:02x?}", &request[..n]);
    stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await?;
    drain(stream.into_split().0).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rdp_servers_end_only_their_sessions() -> Result<()> {
    let desktop = start_rdp_desktop(RdpShadow::Tls);
    let closer = FakeVnc::start("rdp-accept-and-close", |stream: TcpStream| async move {
        drop(stream);
        Ok(())
    })
    .await?;
    let garbage = FakeVnc::start("rdp-garbage", garbage_after_x224).await?;
    let hostile = |id: &str, addr: SocketAddr, certificate: &str| {
        Resource::rdp(id, addr).service("svc", "pw").line(&format!("certificate = \"{certificate}\""))
    };
    let gateway = start_gateway(
        &[User::new(USER, PASSWORD, &["shadow", "closer", "garbage", "garbage-tofu"])],
        &[
            shadow_resource("shadow", &desktop),
            hostile("closer", closer.addr, "accept-any"),
            hostile("garbage", garbage.addr, "accept-any"),
            // Under trust on first use the gateway only fetches the certificate first.
            hostile("garbage-tofu", garbage.addr, "tofu"),
        ],
        INSECURE,
    )
    .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let mut healthy = open_with_frames(&portal, "shadow").await?;
    healthy.settle(1).await?;

    let mut outcomes = Vec::new();
    for resource in ["closer", "garbage", "garbage-tofu"] {
        let mut viewer = portal.open_viewer(resource).await?;
        let (code, detail) = viewer.wait_notice(WAIT).await.with_context(|| format!("notice of {resource}"))?;
        let (close_code, _) = viewer.wait_closed(WAIT).await.with_context(|| format!("close of {resource}"))?;
        assert_eq!(close_code, 1000, "{resource}: the viewer of an ended session is closed normally");
        assert!(viewer.hello.is_none(), "{resource}: no hello");
        println!("{resource}: {code} ({detail})");
        outcomes.push((resource, code, detail));
    }
    let (_, code, detail) = &outcomes[0];
    assert!(
        ["session.refused", "session.ended", "session.protocol_error"].contains(&code.as_str()),
        "accept-and-close: {code} ({detail})"
    );
    for (resource, code, detail) in &outcomes[1..] {
        assert_eq!(code, "session.protocol_error", "{resource}: {detail}");
    }
    assert_eq!(closer.connections(), 1);
    assert_eq!(garbage.connections(), 2);

    // The real session lives on: a change on its desktop reaches the viewer.
    let frames = healthy.frames;
    let echo = EchoCommand::new("AFTER_HOSTILE");
    focus_xterm(&desktop)?;
    healthy.type_us(&echo.command).await?;
    echo.check().await?;
    healthy.wait_frames(1, WAIT).await?;
    assert!(healthy.frames > frames);
    let health = healthz(gateway.addr).await?;
    assert_eq!((health.status, health.text().as_str()), (200, "ok"));
    assert_eq!(gateway.running.session_count(), 1, "only the shadow session lives");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_shadow_session_cost() -> Result<()> {
    const NAME: &str = "rdp::figures_shadow_session_cost";
    if !is_isolated_run(NAME) {
        return run_isolated_test(NAME);
    }
    let desktop = start_rdp_desktop(RdpShadow::Tls);
    let gateway =
        start_gateway(&[User::new(USER, PASSWORD, &["shadow"])], &[shadow_resource("shadow", &desktop)], INSECURE)
            .await?;
    let portal = login(gateway.addr, USER, PASSWORD).await?;
    let rss_before = proc_status_kib("VmRSS")?;
    let started = Instant::now();
    let mut viewer = open_with_frames(&portal, "shadow").await?;
    let first_frame = started.elapsed();
    viewer.settle(1).await?;
    let rss_after = proc_status_kib("VmRSS")?;

    focus_xterm(&desktop)?;
    let log = std::env::temp_dir().join(format!("bascule-testsuite-workload-{}.txt", random_token(10).to_lowercase()));
    remove(&log);
    let (bytes_before, cpu_before, wall) = (viewer.bytes_received, process_cpu_time()?, Instant::now());
    for i in 0..10 {
        viewer.type_us(&format!("echo line {i} >> {}\n", log.display())).await?;
        viewer.settle(0).await?;
    }
    let (bytes, cpu, wall) = (viewer.bytes_received - bytes_before, process_cpu_time()? - cpu_before, wall.elapsed());
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    remove(&log);
    assert_eq!(lines.lines().count(), 10, "all ten commands ran: {lines:?}");
    println!("FIGURE: shadow: launch (ticket request) to first frame through the gateway: {first_frame:?}");
    println!("FIGURE: shadow: viewer received {bytes} bytes over 10 typed commands ({wall:?})");
    println!("FIGURE: shadow: VmRSS {rss_before} KiB before, {rss_after} KiB after opening one RDP session");
    println!("FIGURE: shadow: CPU time (gateway, viewer and test in one process) during the workload: {cpu:?}");
    eprintln!("FIGURE: shadow: first frame {first_frame:?}; {bytes} bytes; VmRSS {rss_before} -> {rss_after} KiB; CPU {cpu:?} over {wall:?}");
    Ok(())
}
