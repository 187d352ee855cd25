//! One benchmark run: for each system, a fresh desktop, the viewer behind the emulated link, the
//! scripted workload, the drain, and the final picture.

use crate::client::BenchClient;
use crate::content;
use crate::echo::{Area, EchoFrame, EchoModel, echo_latencies};
use crate::https::Portal;
use crate::procs::{self, Guarded, System, Xvfb, xdotool};
use crate::quiet::QuietDetector;
use crate::report::{
    CacheResult, DesktopSpec, EchoResult, LinkSpec, PhaseTraffic, PictureCheck, Report,
    SystemResult, Traffic, WorkloadSpec,
};
use crate::stats::LatencySummary;
use anyhow::{Context, Result, bail};
use bascule_desktop::{Desktop, DesktopOptions, RdpShadow, VncServer};
use bascule_linkemu::{LinkParams, Relay, RelayStats};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// The desktop's size (the reference viewers' X servers have the same).
pub const WIDTH: u16 = 1280;
/// The desktop's height.
pub const HEIGHT: u16 = 800;
/// The photo's size.
pub const PHOTO: (u32, u32) = (800, 520);
/// Size of the video's frames, and how many (looped at 25 frames/s).
pub const VIDEO: (u32, u32) = (480, 272);
const VIDEO_FRAMES: u32 = 100;
/// x11vnc's polling period on the benchmark desktop, milliseconds (`DesktopOptions::x11vnc_poll_ms`).
pub const X11VNC_POLL_MS: u16 = 2;

/// Lines of the document scrolled in `less`.
const DOCUMENT_LINES: usize = 600;
/// Steps of a system's run, for the progress lines.
const STEPS: u32 = 6;
/// How often the link's counters are read.
const POLL: Duration = Duration::from_millis(50);
/// The link is quiet when no poll saw more than this many new bytes for [`QUIET_WINDOW`].
const QUIET_NOISE: u64 = 100;
/// How long the link must stay quiet for a picture to count as settled ("1 s of idle").
const QUIET_WINDOW: Duration = Duration::from_secs(1);
/// Longest wait for the first picture, and for the drain after the script.
const SETTLE_MAX: Duration = Duration::from_secs(90);
/// A reference viewer shows the desktop once its screen is this close to it (mean absolute
/// difference per channel): lossy codecs never reach 0.
const SHOWS_DESKTOP_MAX_DIFF: f64 = 8.0;

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Link rate each way, kbit/s (0: unlimited).
    pub rate_kbps: u64,
    /// Link round-trip time, ms.
    pub rtt_ms: u64,
    /// The systems, in table order.
    pub systems: Vec<System>,
    /// Where the generated files and the logs go.
    pub work_dir: PathBuf,
    /// Typing speed.
    pub chars_per_second: f64,
    /// Page Down presses.
    pub pages: u32,
    /// Window switches.
    pub switches: u32,
    /// How long the photo is shown.
    pub photo_seconds: f64,
    /// How long the video plays (0: no video phase).
    pub video_seconds: f64,
    /// Idle time at the end of the script.
    pub idle_seconds: f64,
    /// TigerVNC viewer settings (before the server address).
    pub tigervnc_args: Vec<String>,
    /// xfreerdp settings (besides `/v`, credentials and `/size`).
    pub rdp_args: Vec<String>,
    /// The tile cache the Bascule client offers (the browser offers 2048); 0: none.
    pub cache_tiles: u32,
}

/// The TigerVNC viewer's settings: Tight with JPEG quality 6 and zlib level 6, as an admin sets
/// it for a slow link (automatic selection off so that it stays so).
pub fn default_tigervnc_args() -> Vec<String> {
    [
        "-PreferredEncoding=Tight",
        "-AutoSelect=0",
        "-QualityLevel=6",
        "-CompressLevel=6",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// xfreerdp's settings for a thin link: the graphics pipeline (RDPGFX, whose codecs FreeRDP
/// picks: progressive/planar, or H.264 when both ends have it) in 32 bpp as it requires, the
/// connection type of a slow broadband link (no wallpaper, themes, animations or full-window
/// drag), bulk compression, and nothing but the display (no sound, clipboard or drives).
pub fn default_rdp_args() -> Vec<String> {
    [
        "/bpp:32",
        "/gfx",
        "/network:broadband-low",
        "+compression",
        "-clipboard",
        "/audio-mode:2",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The files every system's workload uses.
#[derive(Debug)]
struct Files {
    dir: PathBuf,
    logs: PathBuf,
}

impl Files {
    fn write(work_dir: &Path) -> Result<Files> {
        let logs = work_dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = work_dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
        };
        write("doc.txt", content::document(DOCUMENT_LINES).as_bytes())?;
        write("table.txt", content::table(200).as_bytes())?;
        write(
            "photo.png",
            &content::photo_png(PHOTO.0, PHOTO.1).context("encoding the photo")?,
        )?;
        for (i, frame) in content::video_pngs(VIDEO.0, VIDEO.1, VIDEO_FRAMES)
            .context("encoding the video")?
            .iter()
            .enumerate()
        {
            write(&format!("video-{i:03}.png"), frame)?;
        }
        Ok(Files {
            dir: work_dir.to_owned(),
            logs,
        })
    }
}

/// The tile cache Bascule's client offers in `system`'s run.
fn bascule_tiles(system: System, options: &Options) -> u32 {
    if system == System::Bascule {
        options.cache_tiles
    } else {
        0
    }
}

/// A progress line on stderr.
fn progress(step: u32, system: System, what: &str) {
    eprintln!("[{step}/{STEPS}] {}: {what}…", system.label());
}

/// Runs every system in turn and gathers the report. A system that fails keeps its error and
/// the others still run.
pub async fn run(options: &Options) -> Result<Report> {
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let files = Files::write(&options.work_dir)?;
    let link = LinkParams::from_rtt(options.rate_kbps, options.rtt_ms);
    let mut systems = Vec::new();
    for &system in &options.systems {
        let mut result = match system {
            System::Bascule | System::BasculeNoCache => {
                let tiles = bascule_tiles(system, options);
                let cache = if tiles > 0 {
                    format!("tile cache of {tiles}")
                } else {
                    "no tile cache".to_owned()
                };
                SystemResult::new(
                    system,
                    &format!("bascule-bench headless client (PNG, JPEG, glyphs, H.264; {cache})"),
                    "in-process gateway; login and launch direct, wss:// through the link",
                )
            }
            System::Tigervnc => SystemResult::new(
                system,
                &format!("xtigervncviewer {}", options.tigervnc_args.join(" ")),
                &format!(
                    "xtigervncviewer {} -FullScreen=1 -Shared=1 127.0.0.1::<link port>",
                    options.tigervnc_args.join(" ")
                ),
            ),
            System::Rdp => SystemResult::new(
                system,
                &format!("xfreerdp {}", options.rdp_args.join(" ")),
                &format!(
                    "xfreerdp /v:127.0.0.1:<link port> /u:bench /p:… /sec:tls /cert:ignore /size:{WIDTH}x{HEIGHT} {}",
                    options.rdp_args.join(" ")
                ),
            ),
        };
        if let Err(error) = run_system(system, options, &files, link, &mut result).await {
            eprintln!("{}: failed: {error:#}", system.label());
            result.error = Some(format!("{error:#}"));
        }
        systems.push(result);
    }
    Ok(Report {
        link: LinkSpec {
            rate_kbps: options.rate_kbps,
            rtt_ms: options.rtt_ms,
            queue_bytes: link.queue_limit_bytes,
        },
        desktop: DesktopSpec {
            width: WIDTH,
            height: HEIGHT,
        },
        workload: WorkloadSpec {
            typed_chars: content::PARAGRAPH.chars().count(),
            chars_per_second: options.chars_per_second,
            pages: options.pages,
            switches: options.switches,
            photo: PHOTO,
            photo_seconds: options.photo_seconds,
            video_seconds: options.video_seconds,
            idle_seconds: options.idle_seconds,
        },
        systems,
        started_unix,
    })
}

/// The viewer under test.
enum Viewer {
    Bascule {
        client: BenchClient,
        gateway: Option<bascule_gateway::RunningGateway>,
        _data_dir: TempDir,
    },
    Reference {
        process: Guarded,
        xvfb: Xvfb,
    },
}

impl Viewer {
    /// Fails when the viewer is gone.
    fn check(&mut self) -> Result<()> {
        match self {
            Viewer::Bascule { client, .. } => client.check_open(),
            Viewer::Reference { process, .. } => process.check_running(),
        }
    }

    /// What the viewer shows, `(width, height, rgba)`.
    async fn picture(&self) -> Result<(u32, u32, Vec<u8>)> {
        match self {
            Viewer::Bascule { client, .. } => {
                let tracker = client.tracker();
                let (width, height, rgba) = tracker.picture();
                Ok((width, height, rgba.to_vec()))
            }
            Viewer::Reference { xvfb, .. } => xvfb.screenshot().await,
        }
    }

    /// Stops the viewer (and the gateway).
    async fn stop(self) {
        match self {
            Viewer::Bascule {
                client,
                gateway,
                _data_dir,
            } => {
                drop(client);
                if let Some(gateway) = gateway {
                    let _ = tokio::time::timeout(Duration::from_secs(5), gateway.shutdown()).await;
                }
                drop(_data_dir);
            }
            Viewer::Reference { process, xvfb } => {
                tokio::task::block_in_place(move || {
                    drop(process);
                    drop(xvfb);
                });
            }
        }
    }
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Counter snapshots at the phase boundaries.
struct Meter<'a> {
    relay: &'a Relay,
    marks: Vec<(&'static str, Instant, RelayStats)>,
}

impl Meter<'_> {
    fn mark(&mut self, phase: &'static str) {
        self.marks.push((phase, Instant::now(), self.relay.stats()));
    }
}

fn traffic(from: RelayStats, to: RelayStats, seconds: f64) -> Traffic {
    Traffic::new(
        to.bytes_down - from.bytes_down,
        to.bytes_up - from.bytes_up,
        seconds,
    )
}

async fn run_system(
    system: System,
    options: &Options,
    files: &Files,
    link: LinkParams,
    result: &mut SystemResult,
) -> Result<()> {
    progress(1, system, "starting a fresh desktop and connecting");
    let desktop_options = DesktopOptions {
        width: WIDTH,
        height: HEIGHT,
        server: VncServer::X11vnc,
        password: None,
        log_dir: files.logs.clone(),
        rdp: (system == System::Rdp).then_some(RdpShadow::Tls),
        // Fast polling, so that echo measures the display path, not x11vnc (the same x11vnc
        // serves the TigerVNC run).
        x11vnc_poll_ms: Some(X11VNC_POLL_MS),
    };
    let desktop = tokio::task::spawn_blocking(move || Desktop::start(desktop_options))
        .await
        .context("the desktop's start task")?
        .with_context(|| {
            format!(
                "cannot start the desktop (logs in {})",
                files.logs.display()
            )
        })?;
    let outcome = measure(system, options, files, link, &desktop, result).await;
    tokio::task::spawn_blocking(move || drop(desktop))
        .await
        .context("stopping the desktop")?;
    outcome
}

/// Everything between the desktop's start and its stop.
async fn measure(
    system: System,
    options: &Options,
    files: &Files,
    link: LinkParams,
    desktop: &Desktop,
    result: &mut SystemResult,
) -> Result<()> {
    let display = desktop.display().to_owned();
    let main_window = desktop.xterm_window().to_owned();
    let tag = system.id();
    // The desktop as the user left it: the shell in the work directory, `cat` waiting for the
    // paragraph, and a second window (a table in `less`) partly behind the xterm.
    let typed = files.dir.join(format!("typed-{tag}.txt"));
    let _ = std::fs::remove_file(&typed);
    let command = format!(
        "cd {} && clear && cat > typed-{tag}.txt",
        shell_quote(&files.dir.display().to_string())
    );
    tokio::task::block_in_place(|| desktop.run_in_xterm(&command))
        .context("typing the setup command")?;
    let mut table = Command::new("xterm");
    table
        .args([
            "-name",
            "bascule-bench-table",
            "-fa",
            "Monospace",
            "-fs",
            "11",
            "-geometry",
            "84x30+560+230",
        ])
        .args(["-e", "less", "table.txt"])
        .current_dir(&files.dir)
        .env("DISPLAY", &display)
        .env("LC_ALL", "C.UTF-8");
    let table = Guarded::spawn(
        "xterm (table)",
        table,
        &files.logs.join(format!("{tag}-xterm-table.log")),
    )?;
    let table_window = find_window(&display, &["--classname", "^bascule-bench-table$"]).await?;
    xdotool(&display, &["windowactivate", "--sync", &main_window]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let target = match system {
        System::Bascule | System::BasculeNoCache | System::Tigervnc => desktop.vnc_addr(),
        System::Rdp => desktop
            .rdp_addr()
            .context("the desktop has no RDP address")?,
    };
    // For Bascule the link goes between the client and the gateway; the gateway comes first.
    let (mut viewer, relay) = match system {
        System::Bascule | System::BasculeNoCache => {
            let data_dir = TempDir(files.dir.join("gateway"));
            let _ = std::fs::remove_dir_all(&data_dir.0);
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let password = format!("bench-{}-{nanos}", std::process::id());
            let gateway = start_gateway(&data_dir.0, target, &password).await?;
            let relay = Relay::start(localhost(), gateway.address(), link, link)
                .await
                .context("starting the link")?;
            let connect_from = Instant::now();
            let stats0 = relay.stats();
            let portal = Portal::login(gateway.address(), "bench", &password).await?;
            let ticket = portal.launch("desk").await?;
            let ws = portal.open_ws(relay.local_addr(), &ticket).await?;
            let tiles = bascule_tiles(system, options);
            let client = BenchClient::start(ws, WIDTH, HEIGHT, tiles).await?;
            let mut viewer = Viewer::Bascule {
                client,
                gateway: Some(gateway),
                _data_dir: data_dir,
            };
            let connect = settle_connect(&mut viewer, &relay, desktop, connect_from, stats0).await;
            match connect {
                Ok(traffic) => result.connect = Some(traffic),
                Err(error) => {
                    viewer.stop().await;
                    return Err(error);
                }
            }
            (viewer, relay)
        }
        System::Tigervnc | System::Rdp => {
            let relay = Relay::start(localhost(), target, link, link)
                .await
                .context("starting the link")?;
            let xvfb = Xvfb::start(WIDTH, HEIGHT, &files.logs, tag)?;
            let home = files.dir.join(format!("home-{tag}"));
            std::fs::create_dir_all(&home)?;
            let port = relay.local_addr().port();
            let (name, mut command) = if system == System::Tigervnc {
                let mut command = Command::new("xtigervncviewer");
                command.args(&options.tigervnc_args);
                command.args([
                    "-FullScreen=1",
                    "-Shared=1",
                    "-RemoteResize=0",
                    "-AcceptClipboard=0",
                ]);
                command.args(["-SendClipboard=0", "-SendPrimary=0", "-SetPrimary=0"]);
                command.arg(format!("127.0.0.1::{port}"));
                ("xtigervncviewer", command)
            } else {
                let mut command = Command::new("xfreerdp");
                command.arg(format!("/v:127.0.0.1:{port}"));
                // freerdp-shadow-cli -auth accepts any credentials over TLS.
                command.args(["/u:bench", "/p:bench", "/sec:tls", "/cert:ignore"]);
                command.arg(format!("/size:{WIDTH}x{HEIGHT}"));
                command.args(&options.rdp_args);
                ("xfreerdp", command)
            };
            command
                .env("DISPLAY", xvfb.display())
                .env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join(".config"));
            let connect_from = Instant::now();
            let stats0 = relay.stats();
            let process =
                Guarded::spawn(name, command, &files.logs.join(format!("{tag}-{name}.log")))?;
            let mut viewer = Viewer::Reference { process, xvfb };
            match settle_connect(&mut viewer, &relay, desktop, connect_from, stats0).await {
                Ok(traffic) => result.connect = Some(traffic),
                Err(error) => {
                    viewer.stop().await;
                    return Err(error);
                }
            }
            (viewer, relay)
        }
    };

    let outcome = workload(
        system,
        options,
        &display,
        &main_window,
        &table_window,
        files,
        desktop,
        &relay,
        &mut viewer,
        result,
    )
    .await;
    viewer.stop().await;
    relay.shutdown().await;
    tokio::task::block_in_place(move || drop(table));
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn workload(
    system: System,
    options: &Options,
    display: &str,
    main_window: &str,
    table_window: &str,
    files: &Files,
    desktop: &Desktop,
    relay: &Relay,
    viewer: &mut Viewer,
    result: &mut SystemResult,
) -> Result<()> {
    // Bascule: look for xterm's text cursor in the xterm's area of the canvas.
    let mut base_cursor = None;
    let mut first_frame = 0;
    if let Viewer::Bascule { client, .. } = viewer {
        let area = window_area(display, main_window).await?;
        let mut tracker = client.tracker();
        tracker.set_probe(Some(area));
        base_cursor = tracker.probe_cursor();
        first_frame = tracker.frames().len();
        if base_cursor.is_none() {
            eprintln!(
                "  (the xterm's cursor block was not found in the canvas: echo latency falls back to the first change after each key)"
            );
        }
    }
    let mut meter = Meter {
        relay,
        marks: Vec::new(),
    };

    progress(2, system, "typing");
    meter.mark("typing");
    let keys = type_paragraph(display, options.chars_per_second).await?;
    // The last echoes may still be on their way: keep probing a little.
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Viewer::Bascule { client, .. } = viewer {
        client.tracker().set_probe(None);
    }
    xdotool(display, &["key", "ctrl+d"]).await?;
    viewer.check()?;

    progress(3, system, "scrolling a long document");
    meter.mark("scrolling");
    let command_delay = format!("{}", (1000.0 / options.chars_per_second).round() as u64);
    xdotool(
        display,
        &["type", "--delay", &command_delay, "less doc.txt"],
    )
    .await?;
    xdotool(display, &["key", "Return"]).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..options.pages {
        xdotool(display, &["key", "Next"]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    xdotool(display, &["key", "q"]).await?;
    viewer.check()?;

    progress(4, system, "switching windows");
    meter.mark("switching");
    for switch in 0..options.switches {
        let window = if switch % 2 == 0 {
            table_window
        } else {
            main_window
        };
        xdotool(display, &["windowactivate", "--sync", window]).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    viewer.check()?;

    progress(5, system, "showing a photo");
    meter.mark("photo");
    let mut photo = Command::new("display");
    photo
        .args([
            "-title",
            "bascule-bench-photo",
            "-geometry",
            "+240+90",
            "photo.png",
        ])
        .current_dir(&files.dir)
        .env("DISPLAY", display);
    let photo = Guarded::spawn(
        "display (photo)",
        photo,
        &files.logs.join(format!("{}-display.log", system.id())),
    )?;
    find_window(display, &["--name", "^bascule-bench-photo$"]).await?;
    tokio::time::sleep(Duration::from_secs_f64(options.photo_seconds)).await;
    tokio::task::block_in_place(move || drop(photo));
    viewer.check()?;

    if options.video_seconds > 0.0 {
        progress(5, system, "playing a video");
        meter.mark("video");
        let frames: Vec<String> = (0..VIDEO_FRAMES).map(|i| format!("video-{i:03}.png")).collect();
        let mut video = Command::new("animate");
        video
            .args(["-title", "bascule-bench-video", "-geometry", "+300+150", "-delay", "4", "-loop", "0"])
            .args(&frames)
            .current_dir(&files.dir)
            .env("DISPLAY", display);
        let video = Guarded::spawn(
            "animate (video)",
            video,
            &files.logs.join(format!("{}-animate.log", system.id())),
        )?;
        find_window(display, &["--name", "^bascule-bench-video$"]).await?;
        tokio::time::sleep(Duration::from_secs_f64(options.video_seconds)).await;
        tokio::task::block_in_place(move || drop(video));
        viewer.check()?;
    }

    progress(
        6,
        system,
        "idle, then waiting for the link to drain and comparing the final picture",
    );
    meter.mark("idle");
    tokio::time::sleep(Duration::from_secs_f64(options.idle_seconds)).await;
    let script_end = Instant::now();
    let (last_active, end_stats) = wait_quiet(relay, script_end, viewer).await?;
    let window_end = last_active.max(script_end);
    result.drain_seconds = Some(
        last_active
            .saturating_duration_since(script_end)
            .as_secs_f64(),
    );
    meter.marks.push(("end", window_end, end_stats));

    let (_, start, start_stats) = meter.marks[0];
    result.workload = Some(traffic(
        start_stats,
        end_stats,
        (window_end - start).as_secs_f64(),
    ));
    result.phases = meter
        .marks
        .windows(2)
        .map(|pair| {
            let ((phase, from, from_stats), (_, to, to_stats)) = (pair[0], pair[1]);
            PhaseTraffic {
                phase: phase.to_owned(),
                traffic: traffic(from_stats, to_stats, (to - from).as_secs_f64()),
            }
        })
        .collect();

    // The final picture: the X server's own screenshot against what the viewer shows.
    let (w, h, expected) = tokio::task::block_in_place(|| desktop.screenshot_rgba())
        .context("screenshot of the desktop")?;
    let (aw, ah, actual) = viewer.picture().await?;
    if (aw, ah) != (w, h) {
        bail!("the viewer shows {aw}x{ah}, the desktop is {w}x{h}");
    }
    result.final_picture = Some(compare(&actual, &expected));

    if let Viewer::Bascule { client, .. } = viewer {
        let tracker = client.tracker();
        result.messages = tracker
            .bytes_by_kind()
            .into_iter()
            .map(|(kind, count, bytes)| crate::report::MessageBytes { kind: kind.to_owned(), count, bytes })
            .collect();
        result.glyphs = Some(tracker.glyph_counters());
        if let Some((slots, stores, hits)) = tracker.cache_counters() {
            result.cache = Some(CacheResult {
                offered: bascule_tiles(system, options),
                agreed: slots,
                stores,
                hits,
            });
        }
        let frames = &tracker.frames()[first_frame..];
        result.frames = Some(
            frames
                .iter()
                .filter(|f| f.at >= start && f.at <= window_end)
                .count() as u64,
        );
        let model = EchoModel::new(content::PARAGRAPH);
        let echo_frames: Vec<EchoFrame> = frames
            .iter()
            .map(|f| EchoFrame {
                at: f.at,
                changed: f.changed(),
                shown: base_cursor
                    .zip(f.cursor)
                    .and_then(|(base, block)| model.shown(base, block)),
            })
            .collect();
        let (latencies, missing, method) = echo_latencies(&keys, &echo_frames);
        result.echo = Some(EchoResult {
            method,
            keystrokes: keys.len(),
            missing,
            latency: LatencySummary::of(&latencies),
        });
    }
    Ok(())
}

/// Types the paragraph, one `xdotool` call per character at `chars_per_second`; returns when
/// each key had been injected (its `xdotool` returned).
async fn type_paragraph(display: &str, chars_per_second: f64) -> Result<Vec<Instant>> {
    let period = Duration::from_secs_f64(1.0 / chars_per_second.max(0.1));
    let start = tokio::time::Instant::now();
    let mut keys = Vec::new();
    for (i, c) in content::PARAGRAPH.chars().enumerate() {
        tokio::time::sleep_until(start + period * i as u32).await;
        let text = c.to_string();
        if c == '\n' {
            xdotool(display, &["key", "Return"]).await?;
        } else {
            xdotool(display, &["type", "--delay", "0", "--", &text]).await?;
        }
        keys.push(Instant::now());
    }
    Ok(keys)
}

/// Waits, after the connection, for the viewer's first settled picture; returns its traffic.
async fn settle_connect(
    viewer: &mut Viewer,
    relay: &Relay,
    desktop: &Desktop,
    from: Instant,
    stats0: RelayStats,
) -> Result<Traffic> {
    let deadline = from + SETTLE_MAX;
    let total = |s: RelayStats| s.bytes_down + s.bytes_up;
    let mut quiet = QuietDetector::new(from, total(relay.stats()), QUIET_WINDOW, QUIET_NOISE);
    let mut last_compare: Option<Instant> = None;
    let mut last_diff = f64::NAN;
    loop {
        tokio::time::sleep(POLL).await;
        viewer.check()?;
        let now = Instant::now();
        let stats = relay.stats();
        let is_quiet = quiet.observe(now, total(stats));
        let ready = is_quiet
            && match viewer {
                Viewer::Bascule { client, .. } => {
                    let tracker = client.tracker();
                    !tracker.frames().is_empty() && tracker.between_frames()
                }
                Viewer::Reference { xvfb, .. } => {
                    // Compare the screens at most once a second: xwd is not free.
                    if stats.bytes_down == stats0.bytes_down
                        || last_compare.is_some_and(|t| now - t < Duration::from_secs(1))
                    {
                        false
                    } else {
                        last_compare = Some(now);
                        let screen = xvfb.screenshot().await?;
                        let reference = tokio::task::block_in_place(|| desktop.screenshot_rgba())?;
                        last_diff = compare(&screen.2, &reference.2).mean_abs_diff;
                        last_diff < SHOWS_DESKTOP_MAX_DIFF
                    }
                }
            };
        if ready {
            let settled = quiet.last_active();
            return Ok(traffic(stats0, stats, (settled - from).as_secs_f64()));
        }
        if now > deadline {
            let detail = if last_diff.is_nan() {
                String::new()
            } else {
                format!(" (mean difference {last_diff:.1})")
            };
            bail!(
                "the viewer did not show the desktop within {SETTLE_MAX:?}{detail}; {} bytes down, {} up",
                stats.bytes_down - stats0.bytes_down,
                stats.bytes_up - stats0.bytes_up
            );
        }
    }
}

/// Waits until the link has been quiet for [`QUIET_WINDOW`] after `from` (at most
/// [`SETTLE_MAX`]); returns the last moment it carried something (`from` if it carried nothing)
/// and the counters at the end.
async fn wait_quiet(
    relay: &Relay,
    from: Instant,
    viewer: &mut Viewer,
) -> Result<(Instant, RelayStats)> {
    let total = |s: RelayStats| s.bytes_down + s.bytes_up;
    let mut quiet = QuietDetector::new(from, total(relay.stats()), QUIET_WINDOW, QUIET_NOISE);
    loop {
        tokio::time::sleep(POLL).await;
        viewer.check()?;
        let now = Instant::now();
        let stats = relay.stats();
        if quiet.observe(now, total(stats)) || now - from > SETTLE_MAX {
            return Ok((quiet.last_active(), stats));
        }
    }
}

/// Compares two RGBA pictures of the same size.
pub fn compare(actual: &[u8], expected: &[u8]) -> PictureCheck {
    let mut differing = 0u64;
    let mut sum = 0u64;
    let mut total = 0u64;
    for (a, e) in actual.chunks_exact(4).zip(expected.chunks_exact(4)) {
        total += 1;
        if a[..3] != e[..3] {
            differing += 1;
            sum += (0..3).map(|c| u64::from(a[c].abs_diff(e[c]))).sum::<u64>();
        }
    }
    let mean_abs_diff = if total == 0 {
        0.0
    } else {
        sum as f64 / (total * 3) as f64
    };
    PictureCheck {
        differing_pixels: differing,
        total_pixels: total,
        mean_abs_diff,
    }
}

/// The X window ids `xdotool search --sync` finds (waits up to 15 s); the first one.
async fn find_window(display: &str, query: &[&str]) -> Result<String> {
    let mut args = vec!["search", "--sync", "--onlyvisible"];
    args.extend_from_slice(query);
    let out = procs::output("xdotool", &args, display, Duration::from_secs(15))
        .await
        .with_context(|| format!("waiting for the window {query:?}"))?;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .with_context(|| format!("no window {query:?}"))
}

/// A window's area on the screen, from `xwininfo` (`xdotool getwindowgeometry` adds the window
/// manager's frame offset twice).
async fn window_area(display: &str, window: &str) -> Result<Area> {
    let out = procs::output(
        "xwininfo",
        &["-id", window],
        display,
        Duration::from_secs(10),
    )
    .await?;
    parse_xwininfo(&String::from_utf8_lossy(&out))
}

/// The absolute area in `xwininfo`'s output.
fn parse_xwininfo(text: &str) -> Result<Area> {
    let field = |name: &str| -> Result<usize> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .with_context(|| format!("no {name:?} in xwininfo's output {text:?}"))?
            .trim()
            .parse()
            .with_context(|| format!("bad {name:?} in xwininfo's output {text:?}"))
    };
    Ok(Area {
        x: field("Absolute upper-left X:")?,
        y: field("Absolute upper-left Y:")?,
        width: field("Width:")?,
        height: field("Height:")?,
    })
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A shell word for `text` (single quotes).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A gateway on 127.0.0.1 with one user (`bench`, no second factor) entitled to one VNC
/// resource (`desk`) at `vnc`.
async fn start_gateway(
    data_dir: &Path,
    vnc: SocketAddr,
    password: &str,
) -> Result<bascule_gateway::RunningGateway> {
    start_gateway_for(data_dir, vnc, &["bench".to_owned()], password).await
}

/// A gateway on 127.0.0.1 with `users` (all with `password`, no second factor) entitled to one
/// VNC resource (`desk`) at `vnc`; no health probes.
pub(crate) async fn start_gateway_for(
    data_dir: &Path,
    vnc: SocketAddr,
    users: &[String],
    password: &str,
) -> Result<bascule_gateway::RunningGateway> {
    std::fs::create_dir_all(data_dir)?;
    let hash = toml_string(&bascule_gateway::hash_password(password));
    let mut toml = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = {data_dir}\n\n[mfa]\ntotp = \"off\"\n\n[health]\nenabled = false\n\n",
        data_dir = toml_string(&data_dir.display().to_string()),
    );
    for user in users {
        toml += &format!(
            "[[user]]\nname = {name}\npassword_hash = {hash}\nresources = [\"desk\"]\nroles = []\n\n",
            name = toml_string(user)
        );
    }
    toml += &format!(
        "[[resource]]\nid = \"desk\"\nname_fr = \"Bureau\"\nname_en = \"Desktop\"\nhost = {host}\nport = {port}\n",
        host = toml_string(&vnc.ip().to_string()),
        port = vnc.port(),
    );
    let config = bascule_gateway::Config::from_toml(&toml)
        .with_context(|| format!("gateway configuration refused:\n{toml}"))?;
    let gateway = bascule_gateway::Gateway::bind(config)
        .await
        .context("starting the gateway")?;
    gateway.start().await.context("starting the gateway")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_rgb_differences_only() {
        let a = [0, 0, 0, 255, 10, 20, 30, 255, 1, 1, 1, 0];
        let b = [0, 0, 0, 255, 13, 20, 27, 255, 1, 1, 1, 255];
        let check = compare(&a, &b);
        assert_eq!((check.differing_pixels, check.total_pixels), (1, 3));
        assert!((check.mean_abs_diff - 6.0 / 9.0).abs() < 1e-9);
        assert_eq!(shell_quote("/tmp/a b's"), "'/tmp/a b'\\''s'");
        assert_eq!(toml_string("C:\\x \"y\""), "\"C:\\\\x \\\"y\\\"\"");
    }

    #[test]
    fn reads_the_absolute_area_of_xwininfo() {
        let text = "\nxwininfo: Window id: 0x40000c \"bash\"\n\n  Absolute upper-left X:  41\n  Absolute upper-left Y:  60\n  \
                    Relative upper-left X:  1\n  Relative upper-left Y:  20\n  Width: 904\n  Height: 574\n  Depth: 24\n";
        let area = parse_xwininfo(text).expect("parsed");
        assert_eq!(
            area,
            Area {
                x: 41,
                y: 60,
                width: 904,
                height: 574
            }
        );
        assert!(parse_xwininfo("nothing").is_err());
    }
}
