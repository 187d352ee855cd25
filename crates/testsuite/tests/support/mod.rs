//! Helpers shared by the test modules: desktops, pixel comparison, an RFB driver, a gateway
//! harness, an HTTPS client, a viewer client and fake VNC servers.

#![allow(dead_code)]

pub(crate) mod fake_vnc;
pub(crate) mod gateway;
pub(crate) mod http;
pub(crate) mod keyboard;
pub(crate) mod rfb;
pub(crate) mod viewer;

use anyhow::{Context, Result, bail};
use bascule_desktop::{Desktop, DesktopOptions, VncServer};
use rand::Rng;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `n` random characters from `A-Z0-9`.
pub(crate) fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// A directory under the system temp dir, removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "bascule-testsuite-{tag}-{}-{}",
            std::process::id(),
            random_token(10).to_lowercase()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir(path))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the desktops' X and VNC servers log.
fn desktop_log_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("desktop-logs")
}

/// Starts a 1280x800 desktop; a missing program or a failed start is a test failure that says
/// what went wrong.
pub(crate) fn start_desktop(server: VncServer, password: Option<&str>) -> Desktop {
    let options = DesktopOptions {
        width: 1280,
        height: 800,
        server,
        password: password.map(str::to_owned),
        log_dir: desktop_log_dir(),
        ..DesktopOptions::default()
    };
    let started = tokio::task::block_in_place(|| Desktop::start(options));
    match started {
        Ok(desktop) => desktop,
        Err(error) => panic!(
            "cannot start a {server:?} desktop: {error}\n(install the programs with `scripts/testbed.sh install`; logs in {})",
            desktop_log_dir().display()
        ),
    }
}

/// The desktop's root window as RGBA.
pub(crate) fn screenshot(desktop: &Desktop) -> Result<(u32, u32, Vec<u8>)> {
    tokio::task::block_in_place(|| desktop.screenshot_rgba()).context("screenshot of the desktop (xwd)")
}

/// Gives the desktop's xterm the keyboard focus, so that keys sent over VNC reach its shell.
pub(crate) fn focus_xterm(desktop: &Desktop) -> Result<()> {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new("xdotool")
            .args(["windowactivate", "--sync", desktop.xterm_window()])
            .env("DISPLAY", desktop.display())
            .output()
    })
    .context("running xdotool windowactivate")?;
    if !output.status.success() {
        bail!("xdotool windowactivate failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}

/// Where the X pointer is, from `xdotool getmouselocation`.
pub(crate) fn pointer_position(desktop: &Desktop) -> Result<(u16, u16)> {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new("xdotool")
            .args(["getmouselocation", "--shell"])
            .env("DISPLAY", desktop.display())
            .output()
    })
    .context("running xdotool getmouselocation")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Result<u16> {
        let line = text.lines().find_map(|l| l.strip_prefix(name)).with_context(|| format!("no {name} in {text:?}"))?;
        line.trim().parse().with_context(|| format!("bad {name} in {text:?}"))
    };
    Ok((field("X=")?, field("Y=")?))
}

/// Compares two RGBA images pixel for pixel; the error says how many pixels differ and where the
/// first one is.
pub(crate) fn compare_rgba(what: &str, actual: (u32, u32, &[u8]), expected: (u32, u32, &[u8])) -> Result<(), String> {
    let (aw, ah, a) = actual;
    let (ew, eh, e) = expected;
    if (aw, ah) != (ew, eh) {
        return Err(format!("{what}: size {aw}x{ah}, expected {ew}x{eh}"));
    }
    if a.len() != e.len() || a.len() != aw as usize * ah as usize * 4 {
        return Err(format!("{what}: buffers of {} and {} bytes for {aw}x{ah}", a.len(), e.len()));
    }
    let mut count = 0usize;
    let mut first = None;
    for (i, (pa, pe)) in a.chunks_exact(4).zip(e.chunks_exact(4)).enumerate() {
        if pa != pe {
            count += 1;
            if first.is_none() {
                first = Some((i as u32 % aw, i as u32 / aw, pa.to_vec(), pe.to_vec()));
            }
        }
    }
    match first {
        None => Ok(()),
        Some((x, y, pa, pe)) => Err(format!(
            "{what}: {count} of {} pixels differ; first at ({x}, {y}): got RGBA {pa:?}, expected {pe:?}",
            aw * ah
        )),
    }
}

/// X11 keysyms for printable ASCII text; `\n` is Return.
pub(crate) fn keysyms(text: &str) -> Vec<u32> {
    text.chars()
        .map(|c| match c {
            '\n' => 0xff0d,
            ' '..='~' => u32::from(c),
            other => panic!("no keysym mapping for {other:?} in the test helper"),
        })
        .collect()
}

/// Polls `path` until it holds a complete line, for at most `timeout`.
pub(crate) async fn wait_for_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return Some(text);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A shell command that writes a fresh token into a fresh file, and what the file must contain.
pub(crate) struct EchoCommand {
    pub(crate) command: String,
    pub(crate) path: PathBuf,
    pub(crate) expected: String,
}

impl EchoCommand {
    pub(crate) fn new(prefix: &str) -> EchoCommand {
        let token = format!("{prefix}_{}", random_token(12));
        let path = std::env::temp_dir().join(format!("bascule-testsuite-{}.txt", token.to_lowercase()));
        let _ = std::fs::remove_file(&path);
        EchoCommand { command: format!("echo {token} > {}\n", path.display()), path, expected: format!("{token}\n") }
    }

    /// Waits up to 10 s for the file and checks its content.
    pub(crate) async fn check(&self) -> Result<()> {
        let found = wait_for_file(&self.path, Duration::from_secs(10)).await;
        let _ = std::fs::remove_file(&self.path);
        match found {
            Some(text) if text == self.expected => Ok(()),
            Some(text) => bail!("{} holds {text:?}, expected {:?}", self.path.display(), self.expected),
            None => bail!("{} did not appear within 10 s after typing {:?}", self.path.display(), self.command),
        }
    }
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
pub(crate) fn proc_status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let value = line.split_whitespace().nth(1).with_context(|| format!("malformed line {line:?}"))?;
    value.parse().with_context(|| format!("malformed line {line:?}"))
}

/// Reads `$TB_DIR/env` (default `/tmp/bascule-testbed/env`) written by `scripts/testbed.sh up`.
pub(crate) fn testbed_env() -> std::collections::HashMap<String, String> {
    let dir = std::env::var("TB_DIR").unwrap_or_else(|_| "/tmp/bascule-testbed".into());
    let path = Path::new(&dir).join("env");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => panic!("cannot read {}: {error}; run scripts/testbed.sh up first", path.display()),
    };
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Starts a 1280x800 x11vnc desktop also shared over RDP by `freerdp-shadow-cli`; a missing
/// program or a failed start is a test failure that says what went wrong.
pub(crate) fn start_rdp_desktop(shadow: bascule_desktop::RdpShadow) -> Desktop {
    let options = DesktopOptions {
        width: 1280,
        height: 800,
        server: VncServer::X11vnc,
        password: None,
        log_dir: desktop_log_dir(),
        rdp: Some(shadow),
        x11vnc_poll_ms: None,
    };
    let started = tokio::task::block_in_place(|| Desktop::start(options));
    match started {
        Ok(desktop) if desktop.rdp_addr().is_some() => desktop,
        Ok(desktop) => panic!("the desktop {desktop:?} has no RDP address"),
        Err(error) => panic!(
            "cannot start a desktop shared by freerdp-shadow-cli: {error}\n(install the programs with `scripts/testbed.sh install`; logs in {})",
            desktop_log_dir().display()
        ),
    }
}

/// `(x, y, width, height)` of the desktop's xterm window, from `xdotool getwindowgeometry`.
pub(crate) fn xterm_geometry(desktop: &Desktop) -> Result<(u16, u16, u16, u16)> {
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new("xdotool")
            .args(["getwindowgeometry", "--shell", desktop.xterm_window()])
            .env("DISPLAY", desktop.display())
            .output()
    })
    .context("running xdotool getwindowgeometry")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> Result<u16> {
        let line = text.lines().find_map(|l| l.strip_prefix(name)).with_context(|| format!("no {name} in {text:?}"))?;
        line.trim().parse().with_context(|| format!("bad {name} in {text:?}"))
    };
    Ok((field("X=")?, field("Y=")?, field("WIDTH=")?, field("HEIGHT=")?))
}

/// Mean absolute difference per channel (R, G, B) between two RGBA images of the same size.
pub(crate) fn mean_abs_diff(actual: (u32, u32, &[u8]), expected: (u32, u32, &[u8])) -> Result<f64> {
    let (aw, ah, a) = actual;
    let (ew, eh, e) = expected;
    if (aw, ah) != (ew, eh) || a.len() != e.len() || a.is_empty() {
        bail!("images of {aw}x{ah} ({} bytes) and {ew}x{eh} ({} bytes) cannot be compared", a.len(), e.len());
    }
    let mut sum = 0u64;
    for (pa, pe) in a.chunks_exact(4).zip(e.chunks_exact(4)) {
        for c in 0..3 {
            sum += u64::from(pa[c].abs_diff(pe[c]));
        }
    }
    Ok(sum as f64 / (a.len() / 4 * 3) as f64)
}

/// Runs a command and returns its stdout; a failure carries its stderr.
pub(crate) fn run_command(program: &str, args: &[&str]) -> Result<String> {
    let output = tokio::task::block_in_place(|| std::process::Command::new(program).args(args).output())
        .with_context(|| format!("running {program} {args:?}"))?;
    if !output.status.success() {
        bail!("{program} {args:?} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a shell script with `sh -c`; returns its stdout.
pub(crate) fn shell(script: &str) -> Result<String> {
    run_command("sh", &["-c", script])
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
pub(crate) fn process_cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')').context("malformed /proc/self/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11).zip(fields.get(12)).context("short /proc/self/stat").and_then(|(u, s)| {
        Ok(u.parse::<u64>().context("utime")? + s.parse::<u64>().context("stime")?)
    })?;
    let per_second: u64 = run_command("getconf", &["CLK_TCK"])?.trim().parse().context("CLK_TCK")?;
    Ok(Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

/// Name of the environment variable that tells a re-executed test binary to run the isolated
/// part of a test.
pub(crate) const ISOLATED: &str = "BASCULE_TESTSUITE_ISOLATED";

/// True when this process is the isolated run of `test`.
pub(crate) fn is_isolated_run(test: &str) -> bool {
    std::env::var(ISOLATED).as_deref() == Ok(test)
}

/// Runs `test` again alone in a child process (memory and CPU figures mean nothing while other
/// tests run in the same process), checks that exactly it ran and passed, and prints its stderr.
pub(crate) fn run_isolated_test(test: &str) -> Result<()> {
    let exe = std::env::current_exe().context("current test binary")?;
    let output = tokio::task::block_in_place(|| {
        std::process::Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ISOLATED, test)
            .output()
    })
    .context("re-running the test binary")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() || !stdout.contains("1 passed") {
        bail!("isolated run of {test} failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    eprintln!("{stderr}");
    Ok(())
}

/// Serialises the tests that log in to the testbed's xrdp as its unix user (`TB_RDP_USER`): they
/// all land in the same xrdp session, and a second connection takes that session over from the
/// first. Hold the guard for as long as the connection is open.
pub(crate) async fn xrdp_testbed_session_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await
}

