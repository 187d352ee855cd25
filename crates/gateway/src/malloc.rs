//! Memory allocator tuning for the long-running processes.
//!
//! glibc's allocator serves large blocks with `mmap` until one is freed; it then raises its
//! threshold to that block's size (up to 32 MB), and framebuffer-sized blocks (a 1280 × 800
//! RGBA frame is 4 MB) come from the heap arenas from then on, where the display engine's
//! temporary region copies fragment them. Measured with `bascule-bench memory` (10 sessions):
//! 19.9 MB per session with glibc's defaults, 8.8 MB with a fixed 128 KiB threshold.
//!
//! The threshold can only be fixed before the process starts (`GLIBC_TUNABLES`), so a
//! long-running command re-executes its own binary once with it, before anything else.

/// The glibc tunable this module sets.
pub const TUNABLE: &str = "glibc.malloc.mmap_threshold=131072";

/// Re-executes the current binary with the same arguments and `GLIBC_TUNABLES` holding a fixed
/// mmap threshold, unless it is already there (or `BASCULE_MALLOC_DEFAULTS` is set). Returns
/// only when it did not re-execute: with `Ok(false)` when there was nothing to do, or with the
/// reason the re-execution failed (the caller then goes on with glibc's defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn reexec_with_fixed_mmap_threshold() -> std::io::Result<bool> {
    use std::os::unix::process::CommandExt;
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.mmap_threshold") || std::env::var_os("BASCULE_MALLOC_DEFAULTS").is_some() {
        return Ok(false);
    }
    let value = if current.is_empty() { TUNABLE.to_owned() } else { format!("{current}:{TUNABLE}") };
    let exe = std::env::current_exe()?;
    // `exec` returns only on failure.
    Err(std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("GLIBC_TUNABLES", value).exec())
}

/// Elsewhere there is nothing to tune.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn reexec_with_fixed_mmap_threshold() -> std::io::Result<bool> {
    Ok(false)
}
