//! These tests run real X, VNC and RDP servers. When a program is missing they fail with the
//! `MissingPrograms` message (install with `scripts/testbed.sh install`); they never skip.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use bascule_desktop::{Desktop, DesktopOptions, Error, RdpShadow, VncServer, missing_programs, missing_rdp_programs};

fn options(server: VncServer, password: Option<&str>) -> DesktopOptions {
    DesktopOptions {
        width: 1280,
        height: 800,
        server,
        password: password.map(str::to_string),
        log_dir: PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("desktop-logs"),
        rdp: None,
        x11vnc_poll_ms: None,
    }
}

fn start(options: DesktopOptions) -> Desktop {
    let server = options.server;
    let t0 = Instant::now();
    match Desktop::start(options) {
        Ok(d) => {
            eprintln!("{server:?} desktop {} on {} started in {:?}", d.display(), d.vnc_addr(), t0.elapsed());
            d
        }
        Err(e) => panic!("Desktop::start({server:?}) failed: {e}"),
    }
}

/// Connects, checks the 12-byte banner, answers with 3.8 and returns the offered security types.
fn rfb_security_types(desktop: &Desktop) -> Vec<u8> {
    let mut s = TcpStream::connect(desktop.vnc_addr()).expect("connect to the VNC port");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut banner = [0u8; 12];
    s.read_exact(&mut banner).expect("read banner");
    assert_eq!(&banner, b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").expect("send version");
    let mut n = [0u8; 1];
    s.read_exact(&mut n).expect("read number of security types");
    let mut types = vec![0u8; usize::from(n[0])];
    s.read_exact(&mut types).expect("read security types");
    types
}

fn wait_for_file(path: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

fn proc_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn programs_are_installed() {
    for server in [VncServer::X11vnc, VncServer::TigerVnc] {
        let list = missing_programs(server);
        assert!(list.is_empty(), "{}", Error::MissingPrograms { list });
    }
    let list = missing_rdp_programs();
    assert!(list.is_empty(), "{}", Error::MissingPrograms { list });
}

#[test]
fn missing_programs_message_names_the_packages() {
    let e = Error::MissingPrograms { list: vec![("Xvfb", "xvfb"), ("xwd", "x11-apps")] };
    assert_eq!(e.to_string(), "missing programs: Xvfb (apt-get install xvfb), xwd (apt-get install x11-apps)");
}

#[test]
fn x11vnc_with_password_answers_rfb_and_offers_vnc_auth() {
    let d = start(options(VncServer::X11vnc, Some("s3cret")));
    assert!(d.vnc_addr().ip().is_loopback());
    assert!(d.display().starts_with(':'));
    let types = rfb_security_types(&d);
    assert!(types.contains(&2), "VncAuth offered: {types:?}");
    assert!(!types.contains(&1), "no None with a password: {types:?}");
    d.stop();
}

#[test]
fn screenshot_is_full_size_and_not_uniform() {
    let d = start(options(VncServer::X11vnc, None));
    let t0 = Instant::now();
    let (w, h, rgba) = d.screenshot_rgba().expect("screenshot");
    eprintln!("screenshot took {:?}", t0.elapsed());
    assert_eq!((w, h), (1280, 800));
    assert_eq!(rgba.len(), 1280 * 800 * 4);
    assert!(rgba.chunks_exact(4).all(|p| p[3] == 255), "alpha is 255");
    let first = &rgba[..4];
    assert!(rgba.chunks_exact(4).any(|p| p != first), "screenshot is uniform");
    // Bottom-left corner: the root window, painted #1d4e89 by xsetroot (x11-xserver-utils).
    if Path::new("/usr/bin/xsetroot").exists() {
        let i = (799 * 1280) * 4;
        assert_eq!(&rgba[i..i + 4], &[0x1d, 0x4e, 0x89, 255]);
    }
    // No password: security type None.
    assert_eq!(rfb_security_types(&d), vec![1]);
}

#[test]
fn run_in_xterm_runs_the_command() {
    let d = start(options(VncServer::X11vnc, Some("pw")));
    assert!(!d.xterm_window().is_empty());
    let path = std::env::temp_dir().join(format!("bascule-desktop-test-{}-x11vnc", std::process::id()));
    let _ = std::fs::remove_file(&path);
    d.run_in_xterm(&format!("echo TOKEN-42 > {}", path.display())).expect("run_in_xterm");
    let got = wait_for_file(&path, Duration::from_secs(10));
    let _ = std::fs::remove_file(&path);
    assert_eq!(got.as_deref(), Some("TOKEN-42\n"));
}

#[test]
fn tigervnc_starts_answers_and_runs_commands() {
    let d = start(options(VncServer::TigerVnc, Some("vncpass")));
    assert_eq!(rfb_security_types(&d), vec![2]);
    let (w, h, _) = d.screenshot_rgba().expect("screenshot");
    assert_eq!((w, h), (1280, 800));
    let path = std::env::temp_dir().join(format!("bascule-desktop-test-{}-tiger", std::process::id()));
    let _ = std::fs::remove_file(&path);
    d.run_in_xterm(&format!("echo TIGER > {}", path.display())).expect("run_in_xterm");
    let got = wait_for_file(&path, Duration::from_secs(10));
    let _ = std::fs::remove_file(&path);
    assert_eq!(got.as_deref(), Some("TIGER\n"));
}

#[test]
fn two_desktops_at_once_get_different_displays_and_ports() {
    let a = thread::spawn(|| start(options(VncServer::X11vnc, None)));
    let b = thread::spawn(|| start(options(VncServer::X11vnc, None)));
    let (a, b) = (a.join().expect("thread a"), b.join().expect("thread b"));
    assert_ne!(a.display(), b.display());
    assert_ne!(a.vnc_addr(), b.vnc_addr());
    assert_eq!(rfb_security_types(&a), vec![1]);
    assert_eq!(rfb_security_types(&b), vec![1]);
}

#[test]
fn dropping_a_desktop_kills_its_processes() {
    let d = start(options(VncServer::X11vnc, Some("pw")));
    let mut pids: Vec<u32> = d.pids().into_iter().map(|(_, pid)| pid).collect();
    assert_eq!(d.pids().iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["Xvfb", "openbox", "xterm", "x11vnc"]);
    // The xterm's shell too.
    let xterm = d.pids()[2].1;
    pids.extend(children_of(xterm));
    assert_eq!(pids.len(), 5, "{pids:?}");
    assert!(pids.iter().all(|&p| proc_exists(p)));
    let display = d.display().trim_start_matches(':').to_string();
    let addr = d.vnc_addr();
    drop(d);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| proc_exists(p)) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let alive: Vec<u32> = pids.iter().copied().filter(|&p| proc_exists(p)).collect();
    assert!(alive.is_empty(), "still alive after drop: {alive:?}");
    assert!(!Path::new(&format!("/tmp/.X{display}-lock")).exists());
    assert!(TcpStream::connect(addr).is_err(), "VNC port closed");
}

/// Sends an X.224 Connection Request asking for TLS | CredSSP and returns the 19-byte answer.
fn x224_answer(addr: std::net::SocketAddr) -> Vec<u8> {
    const REQUEST: [u8; 19] =
        [0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00];
    let mut s = TcpStream::connect(addr).expect("connect to the RDP port");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(&REQUEST).expect("send X.224 Connection Request");
    let mut answer = vec![0u8; 19];
    s.read_exact(&mut answer).expect("read X.224 Connection Confirm");
    answer
}

/// Starts a desktop shared by freerdp-shadow-cli and checks the X.224 answer: a TPKT (`03 00`)
/// with a Connection Confirm (`0e d0`) whose RDP Negotiation Response (type 2) selects `protocol`
/// (1 = TLS, 2 = CredSSP); then checks that stopping the desktop ends the RDP server.
fn shadow_answers(shadow: RdpShadow, protocol: u8) {
    let options = DesktopOptions { rdp: Some(shadow.clone()), ..options(VncServer::X11vnc, Some("pw")) };
    let t0 = Instant::now();
    let d = Desktop::start(options).unwrap_or_else(|e| panic!("Desktop::start with {shadow:?} failed: {e}"));
    let addr = d.rdp_addr().expect("rdp_addr is set");
    eprintln!("{shadow:?} shadow of {} on {addr} started in {:?}", d.display(), t0.elapsed());
    assert!(addr.ip().is_loopback());
    assert_ne!(addr, d.vnc_addr());
    let answer = x224_answer(addr);
    assert_eq!(&answer[..2], &[0x03, 0x00], "TPKT header: {answer:02x?}");
    assert_eq!(answer[5], 0xd0, "Connection Confirm: {answer:02x?}");
    assert_eq!(answer[11], 0x02, "RDP Negotiation Response: {answer:02x?}");
    assert_eq!(&answer[15..19], &[protocol, 0, 0, 0], "selected protocol: {answer:02x?}");
    // The VNC side still works.
    assert_eq!(rfb_security_types(&d), vec![2]);
    let names: Vec<&str> = d.pids().iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["Xvfb", "openbox", "xterm", "x11vnc", "freerdp-shadow-cli"]);
    let shadow_pid = d.pids()[4].1;
    d.stop();
    assert!(!proc_exists(shadow_pid), "freerdp-shadow-cli still alive after stop");
    assert!(TcpStream::connect(addr).is_err(), "RDP port closed");
}

#[test]
fn rdp_shadow_tls_answers_x224() {
    shadow_answers(RdpShadow::Tls, 1);
}

#[test]
fn rdp_shadow_nla_answers_x224() {
    shadow_answers(RdpShadow::Nla { user: "alice".into(), password: "s3cret pass".into() }, 2);
}

#[test]
fn no_rdp_by_default() {
    assert_eq!(DesktopOptions::default().rdp, None);
}
