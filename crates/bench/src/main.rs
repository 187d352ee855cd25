//! `bascule-bench thin-link [--rate-kbps 512 --rtt-ms 80] [--json out.json]`: the thin-link
//! benchmark (see the crate's README.md).

use anyhow::{Context, Result, bail};
use bascule_bench::procs::{self, System};
use bascule_bench::report;
use bascule_bench::run::{self, Options};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Benchmarks of the Bascule display path against the usual remote-desktop viewers.
#[derive(Debug, Parser)]
#[command(name = "bascule-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// One scripted office workload on a real desktop, measured through the same emulated thin
    /// link for Bascule, TigerVNC's viewer and xfreerdp; prints a Markdown table.
    ThinLink(ThinLink),
    /// The gateway's memory per live 1280×800 session (resident set growth over N sessions on
    /// one desktop); prints a Markdown table.
    Memory(Memory),
}

#[derive(Debug, clap::Args)]
struct Memory {
    /// Sessions to open (at least 2).
    #[arg(long, default_value_t = 10)]
    sessions: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ThinLink {
    /// Link rate each way in kbit/s (1000 bit/s); 0 means unlimited.
    #[arg(long, default_value_t = 512)]
    rate_kbps: u64,
    /// Link round-trip time in milliseconds (half each way).
    #[arg(long, default_value_t = 80)]
    rtt_ms: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The systems to measure, in this order: bascule, bascule-nocache (the same client
    /// without the tile cache), tigervnc, rdp.
    #[arg(long, value_delimiter = ',', default_value = "bascule,tigervnc,rdp")]
    systems: Vec<String>,
    /// Tiles of the tile cache the Bascule client offers, as the browser does (2048); 0: none.
    #[arg(long, default_value_t = 2048)]
    cache_tiles: u32,
    /// Typing speed in characters per second.
    #[arg(long, default_value_t = 8.0)]
    chars_per_second: f64,
    /// Page Down presses in the document (one a second).
    #[arg(long, default_value_t = 8)]
    pages: u32,
    /// Window switches (one a second).
    #[arg(long, default_value_t = 4)]
    switches: u32,
    /// Seconds the photo is shown.
    #[arg(long, default_value_t = 4.0)]
    photo_seconds: f64,
    /// Seconds a video plays after the photo (a 480x270 camera pan at 25 frames/s, with
    /// ImageMagick's `animate`); 0, the default, leaves the video phase out of the office
    /// workload.
    #[arg(long, default_value_t = 0.0)]
    video_seconds: f64,
    /// Seconds of idle at the end of the script.
    #[arg(long, default_value_t = 5.0)]
    idle_seconds: f64,
    /// TigerVNC viewer settings, replacing the default Tight ones (one string, split on spaces).
    #[arg(long)]
    tigervnc_args: Option<String>,
    /// xfreerdp settings, replacing the default thin-link ones (one string, split on spaces).
    #[arg(long)]
    rdp_args: Option<String>,
    /// Work directory (generated files, logs); default: a fresh one in $TMPDIR, removed after a
    /// run without failures.
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // As `bascule serve` does: the in-process gateway runs with the allocator settings of the
    // real one (bascule_gateway::malloc).
    if let Err(error) = bascule_gateway::malloc::reexec_with_fixed_mmap_threshold() {
        eprintln!("could not re-execute with a fixed malloc mmap threshold ({error}); going on with glibc's defaults");
    }
    let args = match cli.command {
        Commands::ThinLink(args) => args,
        Commands::Memory(args) => return memory(&args),
    };
    let systems = args
        .systems
        .iter()
        .map(|name| {
            System::parse(name).with_context(|| {
                format!("unknown system {name:?} (bascule, bascule-nocache, tigervnc, rdp)")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if systems.is_empty() {
        bail!("no system to measure");
    }
    if !(args.chars_per_second > 0.0 && args.chars_per_second <= 50.0) {
        bail!("--chars-per-second must be in (0, 50]");
    }
    // Pre-flight: every program of every selected system, with its Debian package.
    let mut needed = procs::common_programs();
    for system in &systems {
        needed.extend(system.programs());
    }
    let missing = procs::missing(&needed);
    if !missing.is_empty() {
        eprintln!("bascule-bench: {}", procs::missing_message(&missing));
        std::process::exit(2);
    }
    let (work_dir, temporary) = match &args.work_dir {
        Some(dir) => (dir.clone(), false),
        None => (
            std::env::temp_dir().join(format!("bascule-bench-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let split = |text: &Option<String>, default: Vec<String>| {
        text.as_ref().map_or(default, |t| {
            t.split_whitespace().map(str::to_owned).collect()
        })
    };
    let options = Options {
        rate_kbps: args.rate_kbps,
        rtt_ms: args.rtt_ms,
        systems,
        work_dir: work_dir.clone(),
        chars_per_second: args.chars_per_second,
        pages: args.pages,
        switches: args.switches,
        photo_seconds: args.photo_seconds,
        video_seconds: args.video_seconds,
        idle_seconds: args.idle_seconds,
        tigervnc_args: split(&args.tigervnc_args, run::default_tigervnc_args()),
        rdp_args: split(&args.rdp_args, run::default_rdp_args()),
        cache_tiles: args.cache_tiles,
    };
    eprintln!(
        "bascule-bench thin-link: {} kbit/s, {} ms RTT; systems {}; work directory {}",
        options.rate_kbps,
        options.rtt_ms,
        options
            .systems
            .iter()
            .map(|s| s.id())
            .collect::<Vec<_>>()
            .join(", "),
        work_dir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let report = runtime.block_on(async {
        tokio::select! {
            report = run::run(&options) => report.map(Some),
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl+C")?;
                eprintln!("interrupted: stopping the desktops and viewers");
                Ok(None)
            }
        }
    });
    // The run's future has been dropped by now (its desktops and viewers stopped with it).
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    let Some(report) = report? else {
        std::process::exit(130);
    };
    println!("{}", report::markdown(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("JSON written to {}", path.display());
    }
    let failed = report.systems.iter().any(|s| s.error.is_some());
    if failed {
        eprintln!("logs kept in {}", work_dir.join("logs").display());
        std::process::exit(1);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(())
}

fn memory(args: &Memory) -> Result<()> {
    let work_dir = std::env::temp_dir().join(format!("bascule-bench-memory-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = runtime.block_on(bascule_bench::memory::run(args.sessions, &work_dir))?;
    print!("{}", bascule_bench::memory::table(&result));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&work_dir);
    Ok(())
}
