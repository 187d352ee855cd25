//! Spawning long-lived children that die with us, running short tools with a timeout, and
//! looking at `/proc`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::Error;

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. Tests
/// and async runtimes start desktops from threads that come and go, so every long-lived child is
/// forked by one thread that lives as long as the process.
fn spawner() -> Option<&'static mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnJob>();
            thread::Builder::new()
                .name("bascule-desktop-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Spawns `cmd` with stdin from /dev/null and stdout+stderr appended to `log`. The child gets
/// SIGTERM when this process dies.
pub(crate) fn spawn_logged(mut cmd: Command, log: &Path) -> Result<Child, Error> {
    let out = File::create(log)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(Stdio::from(out)).stderr(Stdio::from(err));
    let parent = std::process::id() as libc::pid_t;
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // async-signal-safe system calls prctl(2) and getppid(2); it allocates nothing (the error is
    // a raw OS error) and touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong, 0 as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died between fork and prctl: nobody would ever stop us.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let child = match spawner() {
        Some(tx) => {
            let (reply_tx, reply_rx) = mpsc::channel();
            tx.send((cmd, reply_tx)).map_err(|_| io::Error::other("spawner thread is gone"))?;
            reply_rx.recv().map_err(|_| io::Error::other("spawner thread is gone"))??
        }
        None => cmd.spawn()?,
    };
    Ok(child)
}

/// Output of a short-lived tool.
pub(crate) struct ToolOutput {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

impl ToolOutput {
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// Runs `program args...` with `DISPLAY=display`, killing it after `timeout`.
pub(crate) fn run_tool<I, S>(
    program: &'static str,
    args: I,
    display: &str,
    timeout: Duration,
) -> Result<ToolOutput, Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = (out.join(), err.join());
            return Err(Error::Timeout { what: program });
        }
        thread::sleep(Duration::from_millis(5));
    };
    Ok(ToolOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Whether `program` is an executable file in `$PATH`.
pub(crate) fn in_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path).any(|dir| {
        fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The last `n` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(n)..].join("\n");
            format!("last lines of {}:\n{tail}", path.display())
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Socket inodes of the TCP sockets listening on 127.0.0.1:`port` or 0.0.0.0:`port`, as
/// `(inode, is_loopback)`.
pub(crate) fn tcp_listeners(port: u16) -> Vec<(u64, bool)> {
    let loopback = u32::from_ne_bytes([127, 0, 0, 1]);
    let Ok(table) = fs::read_to_string("/proc/net/tcp") else { return Vec::new() };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            let (addr, p) = (u32::from_str_radix(addr, 16).ok()?, u16::from_str_radix(p, 16).ok()?);
            let listening = *f.get(3)? == "0A";
            let inode: u64 = f.get(9)?.parse().ok()?;
            (listening && p == port && (addr == loopback || addr == 0)).then_some((inode, addr == loopback))
        })
        .collect()
}

/// Whether process `pid` holds the socket with `inode` open.
pub(crate) fn holds_socket(pid: u32, inode: u64) -> bool {
    let want = PathBuf::from(format!("socket:[{inode}]"));
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| dir.flatten().any(|e| fs::read_link(e.path()).is_ok_and(|l| l == want)))
        .unwrap_or(false)
}

/// PIDs of the processes whose parent is `pid`.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| {
            fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Sends SIGTERM to `pids` (through the shell's `kill` builtin: this crate's only `unsafe` block
/// is the one in [`spawn_logged`]).
pub(crate) fn terminate(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg("kill -TERM \"$@\" 2>/dev/null")
        .arg("sh")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
