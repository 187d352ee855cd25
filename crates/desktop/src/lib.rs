//! Isolated local X desktops served over VNC, for `bascule demo` and the integration tests.
//!
//! [`Desktop::start`] picks a free X display in `:20..=:99` and a free loopback port, then runs
//! either `Xvfb` + `x11vnc` ([`VncServer::X11vnc`]) or `Xtigervnc` ([`VncServer::TigerVnc`],
//! which is X server and VNC server in one), plus `openbox` and an `xterm` running a plain
//! `bash` with the prompt `$ `. Every child logs to a file in [`DesktopOptions::log_dir`] and
//! gets SIGTERM if this process dies; dropping the [`Desktop`] stops them all.
//!
//! With [`DesktopOptions::rdp`], `freerdp-shadow-cli` also shares the display over RDP on another
//! loopback port ([`Desktop::rdp_addr`]).
//!
//! Several desktops can run at once, in one process or several.

mod process;
mod xwd;

use std::fmt::Write as _;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use process::{ToolOutput, log_tail, run_tool};

/// Which VNC server serves the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VncServer {
    /// `Xvfb` as X server, shared by `x11vnc`.
    X11vnc,
    /// `Xtigervnc`: X server and VNC server in one process.
    TigerVnc,
}

/// How `freerdp-shadow-cli` (FreeRDP 2) shares the desktop over RDP. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub enum RdpShadow {
    /// TLS security only and no authentication (`-auth /sec:tls`): any credentials, or none, are
    /// accepted.
    Tls,
    /// NLA (CredSSP with NTLM) only (`+auth /sec:nla`), checked against a SAM file made by
    /// `winpr-hash` that holds this one user.
    Nla { user: String, password: String },
}

impl std::fmt::Debug for RdpShadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RdpShadow::Tls => f.write_str("Tls"),
            RdpShadow::Nla { user, .. } => f.debug_struct("Nla").field("user", user).field("password", &"<hidden>").finish(),
        }
    }
}

/// What [`Desktop::start`] starts.
#[derive(Debug, Clone)]
pub struct DesktopOptions {
    pub width: u16,
    pub height: u16,
    pub server: VncServer,
    /// VNC password (VncAuth, only the first 8 bytes count); `None` = no authentication.
    pub password: Option<String>,
    /// Where each child's stdout/stderr goes, as `desktop-<display>-<program>.log`.
    pub log_dir: PathBuf,
    /// Also share the display over RDP with `freerdp-shadow-cli` on a free 127.0.0.1 port
    /// ([`Desktop::rdp_addr`]); `None` (the default) = no RDP.
    pub rdp: Option<RdpShadow>,
    /// x11vnc's polling period (`-wait` and `-defer`, milliseconds); `None` (the default) keeps
    /// x11vnc's own (about 20 ms each, and a change takes several polls to be seen: keystroke
    /// echo p50/p95 of 118/215 ms with no link at all, against 63/95 ms through an 80 ms link
    /// with 2 ms). The benchmark polls fast so that it measures the display path, not x11vnc.
    pub x11vnc_poll_ms: Option<u16>,
}

impl Default for DesktopOptions {
    /// 1280x800, x11vnc, no password, logs in `$TMPDIR/bascule-desktop-logs`, no RDP.
    fn default() -> Self {
        DesktopOptions {
            width: 1280,
            height: 800,
            server: VncServer::X11vnc,
            password: None,
            log_dir: std::env::temp_dir().join("bascule-desktop-logs"),
            rdp: None,
            x11vnc_poll_ms: None,
        }
    }
}

/// Why a desktop could not be started or used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing programs: {}", format_missing(list))]
    MissingPrograms { list: Vec<(&'static str, &'static str)> },
    #[error("no free X display in :{FIRST_DISPLAY}..:{LAST_DISPLAY}")]
    NoFreeDisplay,
    #[error("no free TCP port on 127.0.0.1 for the VNC or RDP server")]
    NoFreePort,
    #[error("failed to start {what}: {detail}")]
    Start { what: &'static str, detail: String },
    #[error("timed out waiting for {what}")]
    Timeout { what: &'static str },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("screenshot failed: {0}")]
    Screenshot(String),
}

fn format_missing(list: &[(&'static str, &'static str)]) -> String {
    let mut s = String::new();
    for (i, (program, package)) in list.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(s, "{sep}{program} (apt-get install {package})");
    }
    s
}

/// The root window of X display `display` (any display, e.g. a viewer's Xvfb), `(width,
/// height, rgba)` with alpha 255, read with `xwd`.
pub fn screenshot_display(display: &str) -> Result<(u32, u32, Vec<u8>), Error> {
    let out = run_tool("xwd", ["-root", "-silent", "-display", display], display, STAGE_TIMEOUT)?;
    if !out.status.success() {
        return Err(Error::Screenshot(format!("xwd failed ({}): {}", out.status, out.stderr_text())));
    }
    xwd::decode(&out.stdout).map_err(Error::Screenshot)
}

/// The programs `server` needs that are not in `$PATH`, with the Debian package of each.
pub fn missing_programs(server: VncServer) -> Vec<(&'static str, &'static str)> {
    let specific: &[(&'static str, &'static str)] = match server {
        VncServer::X11vnc => &[("Xvfb", "xvfb"), ("x11vnc", "x11vnc")],
        VncServer::TigerVnc => &[("Xtigervnc", "tigervnc-standalone-server"), ("vncpasswd", "tigervnc-tools")],
    };
    let common: &[(&'static str, &'static str)] = &[
        ("xdpyinfo", "x11-utils"),
        ("xprop", "x11-utils"),
        ("xwd", "x11-apps"),
        ("xdotool", "xdotool"),
        ("openbox", "openbox"),
        ("xterm", "xterm"),
    ];
    specific.iter().chain(common).copied().filter(|(program, _)| !process::in_path(program)).collect()
}

/// The programs [`DesktopOptions::rdp`] needs that are not in `$PATH`, with the Debian package of
/// each.
pub fn missing_rdp_programs() -> Vec<(&'static str, &'static str)> {
    [("freerdp-shadow-cli", "freerdp2-shadow-x11"), ("winpr-hash", "winpr-utils")]
        .into_iter()
        .filter(|(program, _)| !process::in_path(program))
        .collect()
}

const FIRST_DISPLAY: u32 = 20;
const LAST_DISPLAY: u32 = 99;
/// How long each stage may take (generous: parallel tests on a 2-core machine).
const STAGE_TIMEOUT: Duration = Duration::from_secs(20);
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(30);
const RFB_BANNER: &[u8; 12] = b"RFB 003.008\n";
/// X.224 Connection Request (in a TPKT) with an RDP Negotiation Request for TLS | CredSSP.
const X224_CONNECTION_REQUEST: [u8; 19] =
    [0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00];
const XTERM_CLASS: &str = "bascule-term";
/// How many times a new port is tried when the picked one turns out to be taken.
const PORT_ATTEMPTS: u32 = 5;

/// Counts display attempts and temp dirs in this process.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// One child process of a desktop.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

/// A running desktop. Stops its processes when dropped.
pub struct Desktop {
    server: VncServer,
    number: u32,
    display: String,
    vnc_addr: SocketAddr,
    rdp_addr: Option<SocketAddr>,
    xterm_window: String,
    procs: Vec<Proc>,
    temp_dir: PathBuf,
    log_dir: PathBuf,
}

impl std::fmt::Debug for Desktop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desktop")
            .field("server", &self.server)
            .field("display", &self.display)
            .field("vnc_addr", &self.vnc_addr)
            .field("rdp_addr", &self.rdp_addr)
            .field("xterm_window", &self.xterm_window)
            .field("pids", &self.pids())
            .finish()
    }
}

/// How waiting for a child's readiness ended, when it did not succeed.
enum WaitFail {
    /// The child exited.
    Exited,
    /// Another process listens on the port the child was to use.
    PortTaken,
    Timeout,
}

impl Desktop {
    /// Starts X server, window manager, xterm, VNC server and, if asked, the RDP server, and waits
    /// until each is ready.
    pub fn start(options: DesktopOptions) -> Result<Desktop, Error> {
        let mut list = missing_programs(options.server);
        if options.rdp.is_some() {
            list.extend(missing_rdp_programs());
        }
        if !list.is_empty() {
            return Err(Error::MissingPrograms { list });
        }
        if options.width == 0 || options.height == 0 {
            return Err(Error::Start { what: "desktop", detail: "width and height must not be 0".into() });
        }
        fs::create_dir_all(&options.log_dir)?;
        remove_stale_temp_dirs();
        let temp_dir = std::env::temp_dir().join(format!(
            "bascule-desktop-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&temp_dir);
        fs::create_dir_all(&temp_dir)?;
        // From here on, an early return drops `desktop`, which stops whatever was started.
        let mut desktop = Desktop {
            server: options.server,
            number: 0,
            display: String::new(),
            vnc_addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)),
            rdp_addr: None,
            xterm_window: String::new(),
            procs: Vec::new(),
            temp_dir,
            log_dir: options.log_dir.clone(),
        };
        let password_file = match &options.password {
            Some(p) => Some(desktop.write_password_file(p)?),
            None => None,
        };
        desktop.start_x_server(&options, password_file.as_deref())?;
        if process::in_path("xsetroot") {
            let _ = run_tool("xsetroot", ["-solid", "#1d4e89"], &desktop.display, TOOL_TIMEOUT);
        }
        desktop.start_window_manager()?;
        desktop.start_xterm()?;
        if options.server == VncServer::X11vnc {
            desktop.start_x11vnc(password_file.as_deref(), options.x11vnc_poll_ms)?;
        }
        if let Some(shadow) = &options.rdp {
            desktop.start_rdp_shadow(shadow)?;
        }
        Ok(desktop)
    }

    /// The VNC server's address, `127.0.0.1:port`.
    pub fn vnc_addr(&self) -> SocketAddr {
        self.vnc_addr
    }

    /// The RDP server's address, `127.0.0.1:port`, when [`DesktopOptions::rdp`] asked for one.
    pub fn rdp_addr(&self) -> Option<SocketAddr> {
        self.rdp_addr
    }

    /// The X display, `":N"`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The X window id (decimal, as xdotool prints it) of the xterm.
    pub fn xterm_window(&self) -> &str {
        &self.xterm_window
    }

    /// `(name, pid)` of each child process: the X server, `openbox`, `xterm`, `x11vnc` (with
    /// Xvfb), and `freerdp-shadow-cli` (with [`DesktopOptions::rdp`]).
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.procs.iter().map(|p| (p.name, p.child.id())).collect()
    }

    /// The root window's pixels, `(width, height, rgba)`, with alpha 255, read with `xwd`.
    pub fn screenshot_rgba(&self) -> Result<(u32, u32, Vec<u8>), Error> {
        screenshot_display(&self.display)
    }

    /// Types `text` into the xterm (activating it first) with `xdotool type`.
    pub fn type_text(&self, text: &str) -> Result<(), Error> {
        // xdotool types about one character per 12 ms.
        let timeout = TOOL_TIMEOUT + Duration::from_millis(30) * text.chars().count() as u32;
        let args = ["windowactivate", "--sync", &self.xterm_window, "type", "--delay", "12", "--", text];
        self.xdotool(&args, timeout)
    }

    /// Types `command` into the xterm, then presses Return.
    pub fn run_in_xterm(&self, command: &str) -> Result<(), Error> {
        self.type_text(command)?;
        self.xdotool(&["windowactivate", "--sync", &self.xterm_window, "key", "Return"], TOOL_TIMEOUT)
    }

    /// Stops every child: SIGTERM, up to 3 s, then SIGKILL. Also done on drop.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn xdotool(&self, args: &[&str], timeout: Duration) -> Result<(), Error> {
        let out = run_tool("xdotool", args, &self.display, timeout)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Start { what: "xdotool", detail: format!("{}: {}", out.status, out.stderr_text()) })
        }
    }

    fn write_password_file(&self, password: &str) -> Result<PathBuf, Error> {
        let path = self.temp_dir.join("vncpasswd");
        let bytes = match self.server {
            VncServer::X11vnc => {
                // x11vnc writes the file itself.
                let out = run_tool("x11vnc", [OsStr::new("-storepasswd"), OsStr::new(password), path.as_os_str()], "", TOOL_TIMEOUT)?;
                if !out.status.success() || !path.exists() {
                    return Err(Error::Start { what: "x11vnc -storepasswd", detail: out.stderr_text() });
                }
                return Ok(path);
            }
            VncServer::TigerVnc => tiger_password(password)?,
        };
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        file.write_all(&bytes)?;
        Ok(path)
    }

    fn log_path(&self, number: u32, program: &str) -> PathBuf {
        self.log_dir.join(format!("desktop-{number}-{program}.log"))
    }

    /// Spawns a child and records it so that it is stopped with the desktop.
    fn spawn(&mut self, name: &'static str, mut cmd: Command, log: PathBuf) -> Result<usize, Error> {
        if !self.display.is_empty() {
            cmd.env("DISPLAY", &self.display);
        }
        let child = process::spawn_logged(cmd, &log)
            .map_err(|e| Error::Start { what: name, detail: format!("cannot run it: {e}") })?;
        self.procs.push(Proc { name, child, log });
        Ok(self.procs.len() - 1)
    }

    /// Kills and forgets the most recently spawned child (a failed attempt).
    fn discard_last(&mut self) {
        if let Some(mut p) = self.procs.pop() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn start_error(&self, index: usize, what: &'static str, problem: &str) -> Error {
        let p = &self.procs[index];
        Error::Start { what, detail: format!("{problem}\n{}", log_tail(&p.log, 20)) }
    }

    /// Polls `ready` until it returns true, failing if child `index` exits.
    fn wait_ready(&mut self, index: usize, mut ready: impl FnMut(&Desktop) -> bool) -> Result<(), WaitFail> {
        let deadline = Instant::now() + STAGE_TIMEOUT;
        loop {
            if !matches!(self.procs[index].child.try_wait(), Ok(None)) {
                return Err(WaitFail::Exited);
            }
            if ready(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(WaitFail::Timeout);
            }
            thread::sleep(POLL);
        }
    }

    /// Starts `Xvfb` or `Xtigervnc` on a free display (and, for TigerVNC, a free port).
    fn start_x_server(&mut self, options: &DesktopOptions, password_file: Option<&Path>) -> Result<(), Error> {
        let offset = std::process::id().wrapping_mul(7);
        let span = LAST_DISPLAY - FIRST_DISPLAY + 1;
        let mut port_failures = 0;
        for _ in 0..span {
            let number = FIRST_DISPLAY + offset.wrapping_add(SEQUENCE.fetch_add(1, Ordering::Relaxed)) % span;
            if display_in_use(number) {
                continue;
            }
            let display = format!(":{number}");
            let geometry = format!("{}x{}", options.width, options.height);
            let (name, mut cmd, port) = match options.server {
                VncServer::X11vnc => {
                    let mut cmd = Command::new("Xvfb");
                    cmd.args([&display, "-screen", "0", &format!("{geometry}x24"), "-nolisten", "tcp", "-ac", "-noreset"]);
                    ("Xvfb", cmd, 0)
                }
                VncServer::TigerVnc => {
                    let port = free_port()?;
                    let mut cmd = Command::new("Xtigervnc");
                    cmd.args([&display, "-geometry", &geometry, "-depth", "24", "-rfbport", &port.to_string()]);
                    cmd.args(["-localhost", "-nolisten", "tcp", "-AlwaysShared"]);
                    match password_file {
                        Some(f) => cmd.args([OsStr::new("-SecurityTypes"), OsStr::new("VncAuth"), OsStr::new("-PasswordFile"), f.as_os_str()]),
                        None => cmd.args(["-SecurityTypes", "None"]),
                    };
                    ("Xtigervnc", cmd, port)
                }
            };
            cmd.env_remove("DISPLAY");
            let log = self.log_path(number, name);
            let index = self.spawn(name, cmd, log)?;
            let pid = self.procs[index].child.id();
            let ready = self.wait_ready(index, |_| {
                lock_pid(number) == Some(pid) && run_tool("xdpyinfo", ["-display", &display], "", TOOL_TIMEOUT).is_ok_and(|o| o.status.success())
            });
            match ready {
                Ok(()) => {}
                Err(WaitFail::Exited) => {
                    let log = fs::read_to_string(&self.procs[index].log).unwrap_or_default();
                    let lost_race = log.contains("already active") || lock_pid(number).is_some_and(|p| p != pid);
                    let port_problem = options.server == VncServer::TigerVnc && port_failures + 1 < PORT_ATTEMPTS;
                    if lost_race || port_problem {
                        if !lost_race {
                            port_failures += 1;
                        }
                        self.discard_last();
                        continue;
                    }
                    let e = self.start_error(index, name, "the X server exited");
                    self.discard_last();
                    return Err(e);
                }
                Err(_) => return Err(Error::Timeout { what: "the X server" }),
            }
            self.number = number;
            self.display = display;
            if port != 0 {
                match self.wait_rfb(index, port) {
                    Ok(()) => {}
                    Err(WaitFail::PortTaken) if port_failures + 1 < PORT_ATTEMPTS => {
                        port_failures += 1;
                        self.display.clear();
                        self.discard_last();
                        continue;
                    }
                    Err(WaitFail::PortTaken) => return Err(Error::NoFreePort),
                    Err(WaitFail::Exited) => return Err(self.start_error(index, name, "Xtigervnc exited")),
                    Err(WaitFail::Timeout) => return Err(Error::Timeout { what: "the Xtigervnc RFB banner" }),
                }
            }
            return Ok(());
        }
        Err(Error::NoFreeDisplay)
    }

    fn start_window_manager(&mut self) -> Result<(), Error> {
        let index = self.spawn("openbox", Command::new("openbox"), self.log_path(self.number, "openbox"))?;
        let display = self.display.clone();
        match self.wait_ready(index, |_| {
            run_tool("xprop", ["-display", &display, "-root", "_NET_SUPPORTING_WM_CHECK"], &display, TOOL_TIMEOUT)
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("window id"))
        }) {
            Ok(()) => Ok(()),
            Err(WaitFail::Timeout) => Err(Error::Timeout { what: "openbox" }),
            Err(_) => Err(self.start_error(index, "openbox", "openbox exited")),
        }
    }

    /// Starts the xterm and waits for its window and its shell; retries once if xterm dies at
    /// once or shows no window (seen once: "Can't open display" right after the server was up).
    fn start_xterm(&mut self) -> Result<(), Error> {
        for attempt in 0..2 {
            let mut cmd = Command::new("xterm");
            cmd.args(["-name", XTERM_CLASS, "-xrm", "*allowTitleOps: false", "-fa", "Monospace", "-fs", "11"]);
            cmd.args(["-geometry", "100x30+40+40", "-e", "bash", "--norc", "--noprofile"]);
            cmd.env("PS1", "$ ").env("HISTFILE", "/dev/null").env_remove("PROMPT_COMMAND");
            // UTF-8, so that characters such as é, ç and € typed through a viewer reach the shell
            // as the user means them. C.UTF-8 exists on every Debian system.
            cmd.env("LC_ALL", "C.UTF-8").env("LANG", "C.UTF-8");
            let log = self.log_path(self.number, if attempt == 0 { "xterm" } else { "xterm-retry" });
            let index = self.spawn("xterm", cmd, log)?;
            let xterm_pid = self.procs[index].child.id();
            let mut window = String::new();
            let result = self.wait_ready(index, |d| {
                if window.is_empty() {
                    let pattern = format!("^{XTERM_CLASS}$");
                    if let Ok(o) = run_tool("xdotool", ["search", "--classname", &pattern], &d.display, TOOL_TIMEOUT) {
                        window = String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string();
                    }
                }
                // Also wait for the shell, so that typed text reaches bash.
                !window.is_empty() && !process::children_of(xterm_pid).is_empty()
            });
            match result {
                Ok(()) => {
                    self.xterm_window = window;
                    return Ok(());
                }
                Err(_) if attempt == 0 => self.discard_last(),
                Err(WaitFail::Timeout) => return Err(Error::Timeout { what: "the xterm window" }),
                Err(_) => return Err(self.start_error(index, "xterm", "xterm exited (twice)")),
            }
        }
        Err(Error::Timeout { what: "the xterm window" })
    }

    fn start_x11vnc(&mut self, password_file: Option<&Path>, poll_ms: Option<u16>) -> Result<(), Error> {
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new("x11vnc");
            cmd.args(["-display", &self.display, "-localhost", "-rfbport", &port.to_string()]);
            cmd.args(["-forever", "-shared", "-noxdamage", "-quiet"]);
            if let Some(ms) = poll_ms {
                cmd.args(["-wait", &ms.to_string(), "-defer", &ms.to_string()]);
            }
            match password_file {
                Some(f) => cmd.args([OsStr::new("-rfbauth"), f.as_os_str()]),
                None => cmd.arg("-nopw"),
            };
            let index = self.spawn("x11vnc", cmd, self.log_path(self.number, "x11vnc"))?;
            match self.wait_rfb(index, port) {
                Ok(()) => return Ok(()),
                Err(WaitFail::PortTaken) => self.discard_last(),
                Err(WaitFail::Exited) => return Err(self.start_error(index, "x11vnc", "x11vnc exited")),
                Err(WaitFail::Timeout) => return Err(Error::Timeout { what: "the x11vnc RFB banner" }),
            }
        }
        Err(Error::NoFreePort)
    }

    /// Waits until child `index` itself listens on 127.0.0.1:`port` and sends the RFB banner.
    fn wait_rfb(&mut self, index: usize, port: u16) -> Result<(), WaitFail> {
        self.vnc_addr = self.wait_port(index, port, |addr| read_banner(addr).is_ok_and(|b| &b == RFB_BANNER))?;
        Ok(())
    }

    /// Waits until child `index` itself listens on 127.0.0.1:`port` and `answers` says yes.
    fn wait_port(&mut self, index: usize, port: u16, answers: fn(SocketAddr) -> bool) -> Result<SocketAddr, WaitFail> {
        let pid = self.procs[index].child.id();
        let mut foreign_since: Option<Instant> = None;
        let mut taken = false;
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let result = self.wait_ready(index, |_| {
            let listeners = process::tcp_listeners(port);
            let ours = listeners.iter().any(|&(inode, lo)| lo && process::holds_socket(pid, inode));
            if !ours {
                if listeners.is_empty() {
                    foreign_since = None;
                } else if foreign_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2) {
                    taken = true;
                    return true;
                }
                return false;
            }
            answers(addr)
        });
        match result {
            Ok(()) if taken => Err(WaitFail::PortTaken),
            Ok(()) => Ok(addr),
            // Some servers (freerdp-shadow-cli) exit at once when the port is taken.
            Err(WaitFail::Exited) if !process::tcp_listeners(port).is_empty() => Err(WaitFail::PortTaken),
            Err(e) => Err(e),
        }
    }

    /// Starts `freerdp-shadow-cli` sharing the display on a free port, with its own HOME (where it
    /// writes its self-signed certificate on first start) in the temp dir.
    fn start_rdp_shadow(&mut self, shadow: &RdpShadow) -> Result<(), Error> {
        let home = self.temp_dir.join("shadow-home");
        fs::create_dir_all(&home)?;
        let sam_file = match shadow {
            RdpShadow::Tls => None,
            RdpShadow::Nla { user, password } => Some(self.write_sam_file(user, password)?),
        };
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut cmd = Command::new("freerdp-shadow-cli");
            cmd.env("HOME", &home).env("XDG_CONFIG_HOME", home.join(".config"));
            cmd.args(["/bind-address:127.0.0.1".to_string(), format!("/port:{port}")]);
            match &sam_file {
                None => cmd.args(["-auth", "/sec:tls"]),
                Some(f) => cmd.args(["+auth", "/sec:nla"]).arg(format!("/sam-file:{}", f.display())),
            };
            let index = self.spawn("freerdp-shadow-cli", cmd, self.log_path(self.number, "freerdp-shadow"))?;
            match self.wait_port(index, port, |addr| x224_reply(addr).is_ok_and(|r| r[..2] == [0x03, 0x00])) {
                Ok(addr) => {
                    self.rdp_addr = Some(addr);
                    return Ok(());
                }
                Err(WaitFail::PortTaken) => self.discard_last(),
                Err(WaitFail::Exited) => {
                    return Err(self.start_error(index, "freerdp-shadow-cli", "freerdp-shadow-cli exited"));
                }
                Err(WaitFail::Timeout) => return Err(Error::Timeout { what: "the freerdp-shadow-cli X.224 answer" }),
            }
        }
        Err(Error::NoFreePort)
    }

    /// Writes the NTLM SAM file (`user:::<NT hash>:::`) that `winpr-hash` makes.
    fn write_sam_file(&self, user: &str, password: &str) -> Result<PathBuf, Error> {
        if user.is_empty() || user.contains([':', '\n']) || password.contains('\n') {
            return Err(Error::Start { what: "RDP shadow", detail: "the NLA user must be non-empty, without ':' or newlines".into() });
        }
        let out = run_tool("winpr-hash", ["-u", user, "-p", password, "-f", "sam"], "", TOOL_TIMEOUT)?;
        if !out.status.success() || !out.stdout.starts_with(format!("{user}:").as_bytes()) {
            return Err(Error::Start { what: "winpr-hash", detail: format!("{}: {}", out.status, out.stderr_text()) });
        }
        let path = self.temp_dir.join("shadow.sam");
        let mut file = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        file.write_all(&out.stdout)?;
        Ok(path)
    }

    fn shutdown(&mut self) {
        let x_server = self.procs.first().map(|p| p.child.id());
        let mut running: Vec<&mut Proc> = Vec::new();
        for p in &mut self.procs {
            if matches!(p.child.try_wait(), Ok(None)) {
                running.push(p);
            }
        }
        process::terminate(&running.iter().map(|p| p.child.id()).collect::<Vec<_>>());
        let deadline = Instant::now() + Duration::from_secs(3);
        while !running.is_empty() && Instant::now() < deadline {
            running.retain_mut(|p| matches!(p.child.try_wait(), Ok(None)));
            if !running.is_empty() {
                thread::sleep(Duration::from_millis(20));
            }
        }
        for p in running {
            let _ = p.child.kill();
        }
        for p in &mut self.procs {
            let _ = p.child.wait();
        }
        self.procs.clear();
        // An X server killed with SIGKILL leaves its lock file and socket behind.
        if self.number != 0 && x_server.is_some() && lock_pid(self.number) == x_server {
            let _ = fs::remove_file(format!("/tmp/.X{}-lock", self.number));
            let _ = fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        }
        let _ = fs::remove_dir_all(&self.temp_dir);
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Removes `$TMPDIR/bascule-desktop-<pid>-<n>` left behind by processes that were killed hard.
fn remove_stale_temp_dirs() {
    let Ok(dir) = fs::read_dir(std::env::temp_dir()) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("bascule-desktop-")?.split_once('-')?.0.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether display `:number` looks taken (lock file or socket present).
fn display_in_use(number: u32) -> bool {
    Path::new(&format!("/tmp/.X{number}-lock")).symlink_metadata().is_ok()
        || Path::new(&format!("/tmp/.X11-unix/X{number}")).symlink_metadata().is_ok()
}

/// The PID written in `/tmp/.X<number>-lock`.
fn lock_pid(number: u32) -> Option<u32> {
    fs::read_to_string(format!("/tmp/.X{number}-lock")).ok()?.trim().parse().ok()
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|_| Error::NoFreePort)?;
    Ok(listener.local_addr().map_err(|_| Error::NoFreePort)?.port())
}

/// The first 12 bytes the server at `addr` sends.
fn read_banner(addr: SocketAddr) -> io::Result<[u8; 12]> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut banner = [0u8; 12];
    stream.read_exact(&mut banner)?;
    Ok(banner)
}

/// The first 2 bytes of the answer to an X.224 Connection Request (`03 00` from an RDP server).
fn x224_reply(addr: SocketAddr) -> io::Result<[u8; 2]> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(&X224_CONNECTION_REQUEST)?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// The obfuscated password file TigerVNC reads, made by `vncpasswd -f`.
fn tiger_password(password: &str) -> Result<Vec<u8>, Error> {
    let mut child = Command::new("vncpasswd")
        .arg("-f")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Start { what: "vncpasswd", detail: e.to_string() })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(format!("{password}\n").as_bytes())?;
    }
    let out = child.wait_with_output()?;
    let out = ToolOutput { status: out.status, stdout: out.stdout, stderr: out.stderr };
    if !out.status.success() || out.stdout.is_empty() {
        return Err(Error::Start { what: "vncpasswd -f", detail: format!("{}: {}", out.status, out.stderr_text()) });
    }
    Ok(out.stdout)
}
