//! `bascule serve` runs with a fixed malloc mmap threshold (bascule_gateway::malloc): it
//! re-executes itself once with GLIBC_TUNABLES set, keeping its process id.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn environ_of(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|bytes| bytes.split(|&b| b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn serve_reexecutes_itself_with_a_fixed_mmap_threshold() {
    let dir = std::env::temp_dir().join(format!("bascule-malloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("bascule.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[health]\nenabled = false\n", dir.display()))
        .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bascule"))
        .args(["--config", &config.display().to_string(), "serve"])
        .env_remove("GLIBC_TUNABLES")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bascule serve");
    // Same process id, new environment, once exec has happened.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        seen = environ_of(child.id());
        if seen.iter().any(|v| v.starts_with("GLIBC_TUNABLES=")) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("bascule serve exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let tunables = seen.iter().find(|v| v.starts_with("GLIBC_TUNABLES=")).cloned();
    assert_eq!(tunables, Some(format!("GLIBC_TUNABLES={}", bascule_gateway::malloc::TUNABLE)));
}
