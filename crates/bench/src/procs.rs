//! Programs: the pre-flight check (every program with its Debian package), children stopped
//! when dropped, a private Xvfb for each reference viewer, and short tools with a timeout.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One program the benchmark runs and the Debian package that has it.
pub type Program = (&'static str, &'static str);

/// Which systems a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    /// The gateway and the headless benchmark client, which offers a tile cache as the browser
    /// does.
    Bascule,
    /// The same without the tile cache (the client makes no offer).
    #[serde(rename = "bascule-nocache")]
    BasculeNoCache,
    /// TigerVNC's viewer straight to x11vnc.
    Tigervnc,
    /// xfreerdp to freerdp-shadow-cli.
    Rdp,
}

impl System {
    /// Every system, in table order.
    pub const ALL: [System; 4] = [
        System::Bascule,
        System::BasculeNoCache,
        System::Tigervnc,
        System::Rdp,
    ];

    /// The command-line name.
    pub fn id(self) -> &'static str {
        match self {
            System::Bascule => "bascule",
            System::BasculeNoCache => "bascule-nocache",
            System::Tigervnc => "tigervnc",
            System::Rdp => "rdp",
        }
    }

    /// The name in the table and the progress lines.
    pub fn label(self) -> &'static str {
        match self {
            System::Bascule => "Bascule",
            System::BasculeNoCache => "Bascule (no cache)",
            System::Tigervnc => "TigerVNC",
            System::Rdp => "RDP",
        }
    }

    /// Parses a command-line name.
    pub fn parse(name: &str) -> Option<System> {
        System::ALL.into_iter().find(|s| s.id() == name.trim())
    }

    /// The programs this system's run needs besides the desktop and the workload's.
    pub fn programs(self) -> Vec<Program> {
        match self {
            System::Bascule | System::BasculeNoCache => Vec::new(),
            System::Tigervnc => vec![("Xvfb", "xvfb"), ("xtigervncviewer", "tigervnc-viewer")],
            System::Rdp => vec![
                ("Xvfb", "xvfb"),
                ("xfreerdp", "freerdp2-x11"),
                ("freerdp-shadow-cli", "freerdp2-shadow-x11"),
                ("winpr-hash", "winpr-utils"),
            ],
        }
    }
}

/// The programs every run needs: the desktop's (as `bascule-desktop` lists them) and the
/// workload's.
pub fn common_programs() -> Vec<Program> {
    vec![
        ("Xvfb", "xvfb"),
        ("x11vnc", "x11vnc"),
        ("xdpyinfo", "x11-utils"),
        ("xprop", "x11-utils"),
        ("xwininfo", "x11-utils"),
        ("xwd", "x11-apps"),
        ("xdotool", "xdotool"),
        ("openbox", "openbox"),
        ("xterm", "xterm"),
        ("less", "less"),
        ("display", "imagemagick"),
        ("kill", "procps"),
    ]
}

/// The programs of `needed` that are not in `$PATH` (each once).
pub fn missing(needed: &[Program]) -> Vec<Program> {
    let mut missing: Vec<Program> = Vec::new();
    for &(program, package) in needed {
        if !in_path(program) && !missing.iter().any(|(p, _)| *p == program) {
            missing.push((program, package));
        }
    }
    missing
}

/// The pre-flight error: every missing program, its package, and one `apt-get` line.
pub fn missing_message(missing: &[Program]) -> String {
    let mut packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    packages.sort_unstable();
    packages.dedup();
    let list: Vec<String> = missing
        .iter()
        .map(|(program, package)| format!("  {program} (Debian package {package})"))
        .collect();
    format!(
        "missing programs:\n{}\ninstall them with: apt-get install {}\n(or `scripts/testbed.sh install`, which installs the desktop packages; leave a system out with --systems)",
        list.join("\n"),
        packages.join(" ")
    )
}

/// Whether `program` is an executable file in a directory of `$PATH`.
pub fn in_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(program))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A child process that is stopped (SIGTERM, then SIGKILL after 2 s) when dropped.
#[derive(Debug)]
pub struct Guarded {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Guarded {
    /// Spawns `command` with stdin from /dev/null and stdout + stderr to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Result<Guarded> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {name}"))?;
        Ok(Guarded {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails, with the end of its log, when the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "{} exited ({status}); end of its log:\n{}",
                self.name,
                self.log_tail(25)
            ),
            Err(error) => bail!("cannot check {}: {error}", self.name),
        }
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Stops the process: SIGTERM, then SIGKILL after 2 s.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // `kill` the program: the workspace forbids the unsafe libc call.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("({}: {error})", path.display()),
    }
}

/// A private X server for a reference viewer to draw into, `width` × `height` × 24.
#[derive(Debug)]
pub struct Xvfb {
    display: String,
    // Dropped last: the X server outlives whatever draws into it.
    _process: Guarded,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd`, which picks a free display and says which once it accepts
    /// connections.
    pub fn start(width: u16, height: u16, log_dir: &Path, tag: &str) -> Result<Xvfb> {
        let log = log_dir.join(format!("{tag}-xvfb.log"));
        let err = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
                "-noreset",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err))
            .spawn()
            .context("cannot run Xvfb")?;
        let stdout = child.stdout.take().context("Xvfb's stdout")?;
        let mut process = Guarded {
            name: "Xvfb".into(),
            child,
            log: log.clone(),
        };
        // Read the display number on a thread, so that a silent Xvfb cannot hang us.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => line,
            Err(_) => bail!(
                "Xvfb did not report its display within 20 s:\n{}",
                process.log_tail(20)
            ),
        };
        let number: u32 = match line.trim().parse() {
            Ok(number) => number,
            Err(_) => {
                process.check_running()?;
                bail!(
                    "Xvfb reported {line:?} as its display:\n{}",
                    process.log_tail(20)
                );
            }
        };
        Ok(Xvfb {
            display: format!(":{number}"),
            _process: process,
        })
    }

    /// The display, `":N"`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The screen's pixels, `(width, height, rgba)`, read with `xwd`.
    pub async fn screenshot(&self) -> Result<(u32, u32, Vec<u8>)> {
        let display = self.display.clone();
        tokio::task::spawn_blocking(move || bascule_desktop::screenshot_display(&display))
            .await?
            .map_err(|e| anyhow::anyhow!("xwd of {}: {e}", self.display))
    }
}

/// Runs a short tool on X display `display` and returns its stdout; fails with its stderr.
pub async fn output(
    program: &str,
    args: &[&str],
    display: &str,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(timeout, command.output())
        .await
        .with_context(|| format!("{program} {args:?} took more than {timeout:?}"))?
        .with_context(|| format!("cannot run {program}"))?;
    if !run.status.success() {
        bail!(
            "{program} {args:?} failed ({}): {}",
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        );
    }
    Ok(run.stdout)
}

/// Runs `xdotool` with `args` on `display`.
pub async fn xdotool(display: &str, args: &[&str]) -> Result<()> {
    output("xdotool", args, display, Duration::from_secs(15))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systems_and_the_missing_message() {
        for system in System::ALL {
            assert_eq!(System::parse(system.id()), Some(system));
        }
        assert_eq!(System::parse(" rdp "), Some(System::Rdp));
        for system in System::ALL {
            let json = serde_json::to_value(system).expect("serialises");
            assert_eq!(
                json,
                system.id(),
                "the JSON names a system as the command line does"
            );
        }
        assert_eq!(System::parse("vnc"), None);
        assert!(in_path("sh"));
        assert!(!in_path("bascule-bench-no-such-program"));
        let needed = [
            ("bascule-bench-nope", "nope-pkg"),
            ("sh", "dash"),
            ("bascule-bench-nope", "nope-pkg"),
        ];
        assert_eq!(missing(&needed), [("bascule-bench-nope", "nope-pkg")]);
        let message = missing_message(&[
            ("xtigervncviewer", "tigervnc-viewer"),
            ("Xvfb", "xvfb"),
            ("Xvfb2", "xvfb"),
        ]);
        assert!(
            message.contains("xtigervncviewer (Debian package tigervnc-viewer)"),
            "{message}"
        );
        assert!(
            message.contains("apt-get install tigervnc-viewer xvfb\n"),
            "{message}"
        );
    }
}
