//! Real peers on loopback for the bascule-rdp tests: Xvfb + xterm + freerdp-shadow-cli.
//! A missing program makes the test fail with the Debian package to install.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bascule_rdp::{RdpConfig, RdpEvent};

pub const W: u16 = 1024;
pub const H: u16 = 768;

/// Panics (test failure) when `program` is missing, naming the package.
pub fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false);
    assert!(found, "`{program}` is missing: apt-get install {package}");
}

static DISPLAY_LOCK: Mutex<()> = Mutex::new(());
static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), SEQ.fetch_add(1, Ordering::SeqCst))
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn wait_port(port: u16, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// How freerdp-shadow-cli should authenticate.
pub enum ShadowAuth {
    /// `-auth /sec:tls`
    TlsNoAuth,
    /// `+auth /sec:nla /sam-file:F` with this user and password.
    Nla { user: String, password: String },
}

/// Xvfb + xterm + freerdp-shadow-cli; everything is killed on drop.
pub struct Desktop {
    pub display: u32,
    pub port: u16,
    pub dir: PathBuf,
    children: Vec<(String, Child)>,
}

impl Desktop {
    pub fn start(auth: ShadowAuth) -> Desktop {
        require("Xvfb", "xvfb");
        require("xterm", "xterm");
        require("freerdp-shadow-cli", "freerdp2-shadow-x11");
        require("xwd", "x11-apps");
        require("convert", "imagemagick");
        if matches!(auth, ShadowAuth::Nla { .. }) {
            require("winpr-hash", "winpr-utils");
        }

        let dir = std::env::temp_dir().join(unique("bascule-rdp-test"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut desktop = Desktop {
            display: 0,
            port: 0,
            dir,
            children: Vec::new(),
        };

        // Xvfb on a free display in 40..99.
        {
            let _guard = DISPLAY_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let base = 40 + (std::process::id() % 60);
            let mut started = false;
            for i in 0..60 {
                let n = 40 + (base - 40 + i) % 60;
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists()
                {
                    continue;
                }
                let child = Command::new("Xvfb")
                    .args([&format!(":{n}"), "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-ac", "-noreset"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn Xvfb");
                desktop.children.push(("Xvfb".into(), child));
                desktop.display = n;
                let sock = format!("/tmp/.X11-unix/X{n}");
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(10) && !Path::new(&sock).exists() {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if Path::new(&sock).exists() {
                    started = true;
                    break;
                }
                desktop.kill_all();
            }
            assert!(started, "could not start Xvfb on any display in 40..99");
        }
        let disp = format!(":{}", desktop.display);

        // An xterm at a known place, with a plain shell.
        let xterm = Command::new("xterm")
            .env("DISPLAY", &disp)
            .args(["-geometry", "80x24+40+40", "-bg", "navy", "-fg", "white", "-e", "bash", "--norc", "--noprofile"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn xterm");
        desktop.children.push(("xterm".into(), xterm));

        // freerdp-shadow-cli with its own HOME (it writes its certificate there).
        let port = free_port();
        desktop.port = port;
        let mut args = vec!["/bind-address:127.0.0.1".to_owned(), format!("/port:{port}")];
        match &auth {
            ShadowAuth::TlsNoAuth => {
                args.push("-auth".into());
                args.push("/sec:tls".into());
            }
            ShadowAuth::Nla { user, password } => {
                let sam = desktop.dir.join("shadow.sam");
                let out = Command::new("winpr-hash")
                    .args(["-u", user, "-p", password, "-f", "sam"])
                    .output()
                    .expect("run winpr-hash");
                assert!(out.status.success(), "winpr-hash failed");
                std::fs::write(&sam, &out.stdout).unwrap();
                args.push("+auth".into());
                args.push("/sec:nla".into());
                args.push(format!("/sam-file:{}", sam.display()));
            }
        }
        let log = std::fs::File::create(desktop.dir.join("shadow.log")).unwrap();
        let shadow = Command::new("freerdp-shadow-cli")
            .env("DISPLAY", &disp)
            .env("HOME", &desktop.dir)
            .args(&args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn freerdp-shadow-cli");
        desktop.children.push(("freerdp-shadow-cli".into(), shadow));
        assert!(
            wait_port(port, Duration::from_secs(15)),
            "freerdp-shadow-cli did not listen on {port}; log: {}",
            desktop.log()
        );
        // Let the xterm map and bash print its prompt.
        std::thread::sleep(Duration::from_millis(700));
        desktop
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("shadow.log")).unwrap_or_default()
    }

    /// Screenshot of the Xvfb root window as RGBA (1024x768x4).
    pub fn screenshot(&self) -> Vec<u8> {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "xwd -root -silent -display :{} | /usr/bin/convert xwd:- -depth 8 rgba:-",
                self.display
            ))
            .output()
            .expect("run xwd | convert");
        assert!(out.status.success(), "xwd | convert failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// SHA-256 of the shadow server's certificate file, via openssl.
    pub fn certificate_sha256_hex(&self) -> Option<String> {
        let dir = self.dir.join(".config/freerdp/server");
        let alt = self.dir.join(".config/freerdp/shadow");
        let crt = [dir, alt]
            .into_iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "crt"))?;
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("openssl x509 -in '{}' -outform DER | sha256sum", crt.display()))
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()?.split_whitespace().next().map(str::to_owned)
    }

    fn kill_all(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
        }
        for (_, child) in self.children.iter_mut().rev() {
            let t = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if t.elapsed() > Duration::from_secs(2) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.kill_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn config(port: u16) -> RdpConfig {
    let mut c = RdpConfig::new("127.0.0.1", port, "testuser", "testpass");
    c.width = W;
    c.height = H;
    c.connect_timeout = Duration::from_secs(15);
    c
}

/// Client-side framebuffer assembled from events.
pub struct Framebuffer {
    pub width: u16,
    pub height: u16,
    pub rgba: Vec<u8>,
    pub covered: Vec<bool>,
    pub frames: usize,
    pub pixel_events: usize,
    /// `GraphicsPipeline { version, avc420 }`, when it came.
    pub egfx: Option<(u32, bool)>,
    /// `Avc420` events (not painted: the gateway does not decode them).
    pub avc420: Vec<RdpEvent>,
}

impl Framebuffer {
    pub fn new(width: u16, height: u16) -> Self {
        let n = usize::from(width) * usize::from(height);
        Self {
            width,
            height,
            rgba: vec![0; n * 4],
            covered: vec![false; n],
            frames: 0,
            pixel_events: 0,
            egfx: None,
            avc420: Vec::new(),
        }
    }

    pub fn apply(&mut self, ev: &RdpEvent) {
        match ev {
            RdpEvent::Pixels { x, y, width, height, rgba } => {
                assert!(x + width <= self.width && y + height <= self.height, "rect outside the desktop");
                assert_eq!(rgba.len(), usize::from(*width) * usize::from(*height) * 4);
                self.pixel_events += 1;
                for row in 0..usize::from(*height) {
                    let dst = ((usize::from(*y) + row) * usize::from(self.width) + usize::from(*x)) * 4;
                    let src = row * usize::from(*width) * 4;
                    let len = usize::from(*width) * 4;
                    self.rgba[dst..dst + len].copy_from_slice(&rgba[src..src + len]);
                    let c = dst / 4;
                    self.covered[c..c + usize::from(*width)].fill(true);
                }
            }
            RdpEvent::Resize { width, height } => *self = Framebuffer::new(*width, *height),
            RdpEvent::FrameEnd => self.frames += 1,
            RdpEvent::GraphicsPipeline { version, avc420 } => self.egfx = Some((*version, *avc420)),
            RdpEvent::Avc420 { .. } => self.avc420.push(ev.clone()),
            _ => {}
        }
    }

    pub fn coverage(&self) -> f64 {
        self.covered.iter().filter(|c| **c).count() as f64 / self.covered.len() as f64
    }

    /// Mean absolute difference per channel (R, G, B) against an RGBA image of the same size.
    pub fn mean_abs_diff(&self, other: &[u8]) -> [f64; 3] {
        assert_eq!(other.len(), self.rgba.len(), "screenshot size differs");
        let mut sum = [0u64; 3];
        for (a, b) in self.rgba.chunks_exact(4).zip(other.chunks_exact(4)) {
            for c in 0..3 {
                sum[c] += u64::from(a[c].abs_diff(b[c]));
            }
        }
        let n = (self.rgba.len() / 4) as f64;
        [sum[0] as f64 / n, sum[1] as f64 / n, sum[2] as f64 / n]
    }
}

/// US-layout scancodes (set 1) for typing ASCII text: (needs shift, scancode).
pub fn us_scancode(c: char) -> Option<(bool, u16)> {
    let letters = "qwertyuiop";
    let row2 = "asdfghjkl";
    let row3 = "zxcvbnm";
    if let Some(i) = letters.find(c) {
        return Some((false, 0x10 + i as u16));
    }
    if let Some(i) = row2.find(c) {
        return Some((false, 0x1E + i as u16));
    }
    if let Some(i) = row3.find(c) {
        return Some((false, 0x2C + i as u16));
    }
    match c {
        '1'..='9' => Some((false, 0x02 + (c as u16 - '1' as u16))),
        '0' => Some((false, 0x0B)),
        ' ' => Some((false, 0x39)),
        '-' => Some((false, 0x0C)),
        '_' => Some((true, 0x0C)),
        '.' => Some((false, 0x34)),
        '>' => Some((true, 0x34)),
        '/' => Some((false, 0x35)),
        '\n' => Some((false, 0x1C)),
        _ => None,
    }
}
