//! The results of a run: the JSON document (`--json`) and the Markdown table.

use crate::echo::EchoMethod;
use crate::procs::System;
use crate::stats::LatencySummary;
use serde::Serialize;

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The emulated link, the same for every system.
    pub link: LinkSpec,
    /// The desktop's size.
    pub desktop: DesktopSpec,
    /// What the workload does.
    pub workload: WorkloadSpec,
    /// One result per system, in table order.
    pub systems: Vec<SystemResult>,
    /// When the run started, seconds since the Unix epoch.
    pub started_unix: u64,
}

/// The emulated link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinkSpec {
    /// Rate each way, kbit/s (0: unlimited).
    pub rate_kbps: u64,
    /// Round-trip time, ms (half each way).
    pub rtt_ms: u64,
    /// Queue per direction, bytes.
    pub queue_bytes: usize,
}

/// The desktop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DesktopSpec {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

/// The workload's parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadSpec {
    /// Characters typed (Return included).
    pub typed_chars: usize,
    /// Typing speed.
    pub chars_per_second: f64,
    /// Page Down presses in `less`.
    pub pages: u32,
    /// Window switches.
    pub switches: u32,
    /// Photo size in pixels.
    pub photo: (u32, u32),
    /// How long the photo is shown, seconds.
    pub photo_seconds: f64,
    /// How long the video plays (0: no video phase), seconds.
    pub video_seconds: f64,
    /// Idle time at the end, seconds.
    pub idle_seconds: f64,
}

/// Bytes through the link over a span of time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Traffic {
    /// Server to viewer.
    pub bytes_down: u64,
    /// Viewer to server.
    pub bytes_up: u64,
    /// The span, seconds.
    pub seconds: f64,
    /// Average server-to-viewer rate, kbit/s.
    pub kbps_down: f64,
    /// Average viewer-to-server rate, kbit/s.
    pub kbps_up: f64,
}

impl Traffic {
    /// Traffic of `bytes_down`/`bytes_up` over `seconds`.
    pub fn new(bytes_down: u64, bytes_up: u64, seconds: f64) -> Traffic {
        let over = std::time::Duration::from_secs_f64(seconds.max(0.0));
        Traffic {
            bytes_down,
            bytes_up,
            seconds,
            kbps_down: crate::stats::kbit_per_s(bytes_down, over),
            kbps_up: crate::stats::kbit_per_s(bytes_up, over),
        }
    }
}

/// One phase of the workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTraffic {
    /// `typing`, `scrolling`, `switching`, `photo`, `video` (with `--video-seconds`), `idle`
    /// (the idle phase includes the drain).
    pub phase: String,
    /// Its traffic.
    pub traffic: Traffic,
}

/// Keystroke-echo latencies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EchoResult {
    /// How frames were matched to keystrokes.
    pub method: EchoMethod,
    /// Keystrokes injected.
    pub keystrokes: usize,
    /// Keystrokes no frame showed.
    pub missing: usize,
    /// The latencies of the others.
    pub latency: Option<LatencySummary>,
}

/// The client tile cache, over the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CacheResult {
    /// Tiles the client offered.
    pub offered: u32,
    /// Tiles the gateway agreed to.
    pub agreed: u32,
    /// `CacheStore` messages (tiles sent and kept).
    pub stores: u64,
    /// `CacheDraw` messages (tiles redrawn from the cache).
    pub hits: u64,
}

/// The messages of one kind over a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageBytes {
    /// The kind: `tile/png`, `tile/jpeg`, `glyphs`, `fill`, `copy`, `cache/store`, …
    pub kind: String,
    /// How many.
    pub count: u64,
    /// Their payload bytes.
    pub bytes: u64,
}

/// The viewer's final picture against the X server's own screenshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PictureCheck {
    /// Pixels whose RGB differs.
    pub differing_pixels: u64,
    /// Pixels compared.
    pub total_pixels: u64,
    /// Mean absolute difference per channel (0 to 255).
    pub mean_abs_diff: f64,
}

/// One system's measurements; `error` says why the others are missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemResult {
    /// Which system.
    pub system: System,
    /// The viewer and its settings, for the table.
    pub client: String,
    /// The viewer's command line (reference viewers), or how the client connects.
    pub command: String,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// From the connection to the first settled picture.
    pub connect: Option<Traffic>,
    /// From the first key to the end of the drain.
    pub workload: Option<Traffic>,
    /// The workload, phase by phase.
    pub phases: Vec<PhaseTraffic>,
    /// How long the link kept carrying after the script ended, seconds.
    pub drain_seconds: Option<f64>,
    /// Frames received during the workload (Bascule).
    pub frames: Option<u64>,
    /// Keystroke echo (Bascule).
    pub echo: Option<EchoResult>,
    /// The tile cache over the whole connection (Bascule, when agreed).
    pub cache: Option<CacheResult>,
    /// Bytes per kind of message over the whole connection (Bascule): WebSocket payloads,
    /// without TLS and WebSocket framing.
    pub messages: Vec<MessageBytes>,
    /// Glyphs over the whole connection (Bascule): (stored, drawn in all).
    pub glyphs: Option<(u64, u64)>,
    /// The final picture against the X server's.
    pub final_picture: Option<PictureCheck>,
}

impl SystemResult {
    /// An empty result for `system`.
    pub fn new(system: System, client: &str, command: &str) -> SystemResult {
        SystemResult {
            system,
            client: client.to_owned(),
            command: command.to_owned(),
            error: None,
            connect: None,
            workload: None,
            phases: Vec::new(),
            drain_seconds: None,
            frames: None,
            echo: None,
            cache: None,
            messages: Vec::new(),
            glyphs: None,
            final_picture: None,
        }
    }
}

/// `1234567` → `"1,234.6 kB"`: decimal kilobytes with a thousands separator.
pub fn kilobytes(bytes: u64) -> String {
    let tenths = (bytes + 50) / 100;
    format!("{}.{} kB", thousands(tenths / 10), tenths % 10)
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const NONE: &str = "—";

fn or_none<T>(value: Option<T>, format: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| NONE.to_owned(), format)
}

/// Escapes a table cell (pipes and newlines).
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown table: one column per system, one row per measure, then notes for the failures.
pub fn markdown(report: &Report) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let systems = &report.systems;
    let mut row = |name: &str, value: &dyn Fn(&SystemResult) -> String| {
        rows.push((name.to_owned(), systems.iter().map(value).collect()));
    };
    row("viewer", &|s| s.client.clone());
    row("status", &|s| match &s.error {
        None => "ok".to_owned(),
        Some(error) => format!("**failed**: {}", first_line(error, 90)),
    });
    row("connect: initial screen down", &|s| {
        or_none(s.connect, |t| {
            format!("{} in {:.1} s", kilobytes(t.bytes_down), t.seconds)
        })
    });
    row("workload: bytes down", &|s| {
        or_none(s.workload, |t| kilobytes(t.bytes_down))
    });
    row("workload: bytes up", &|s| {
        or_none(s.workload, |t| kilobytes(t.bytes_up))
    });
    row("workload: duration", &|s| {
        or_none(s.workload, |t| format!("{:.1} s", t.seconds))
    });
    row("average kbit/s down", &|s| {
        or_none(s.workload, |t| format!("{:.1}", t.kbps_down))
    });
    row("average kbit/s up", &|s| {
        or_none(s.workload, |t| format!("{:.1}", t.kbps_up))
    });
    let phases: Vec<String> = {
        let mut names: Vec<String> = Vec::new();
        for s in systems {
            for p in &s.phases {
                if !names.contains(&p.phase) {
                    names.push(p.phase.clone());
                }
            }
        }
        names
    };
    for phase in &phases {
        row(&format!("— {phase}: down (kbit/s)"), &|s| {
            or_none(s.phases.iter().find(|p| &p.phase == phase), |p| {
                format!(
                    "{} ({:.0})",
                    kilobytes(p.traffic.bytes_down),
                    p.traffic.kbps_down
                )
            })
        });
    }
    row("drain after the script", &|s| {
        or_none(s.drain_seconds, |d| format!("{d:.1} s"))
    });
    row("keystroke echo p50 / p95", &|s| match &s.echo {
        Some(EchoResult {
            latency: Some(l),
            missing,
            ..
        }) => {
            let missing = if *missing > 0 {
                format!(", {missing} unseen")
            } else {
                String::new()
            };
            format!(
                "{:.0} / {:.0} ms (n = {}{missing})",
                l.p50_ms, l.p95_ms, l.count
            )
        }
        Some(EchoResult {
            latency: None,
            keystrokes,
            ..
        }) => format!("none of {keystrokes} seen"),
        None => NONE.to_owned(),
    });
    row("bytes by message (kB)", &|s| {
        if s.messages.is_empty() {
            return NONE.to_owned();
        }
        let mut kinds: Vec<&MessageBytes> = s.messages.iter().filter(|m| m.bytes >= 1000).collect();
        kinds.sort_by_key(|m| std::cmp::Reverse(m.bytes));
        kinds.iter().map(|m| format!("{} {:.0}", m.kind, m.bytes as f64 / 1000.0)).collect::<Vec<_>>().join(", ")
    });
    row("glyphs: stored / drawn", &|s| or_none(s.glyphs, |(stored, drawn)| format!("{} / {}", thousands(stored), thousands(drawn))));
    row("tile cache: stored / redrawn", &|s| {
        or_none(s.cache, |c| {
            format!(
                "{} / {} ({} slots)",
                thousands(c.stores),
                thousands(c.hits),
                thousands(u64::from(c.agreed))
            )
        })
    });
    row("final picture vs X server", &|s| {
        or_none(s.final_picture, |p| {
            if p.differing_pixels == 0 {
                "exact (0 px differ)".to_owned()
            } else {
                format!(
                    "{} px differ ({:.2} %), mean abs. diff. {:.2}",
                    thousands(p.differing_pixels),
                    100.0 * p.differing_pixels as f64 / p.total_pixels.max(1) as f64,
                    p.mean_abs_diff
                )
            }
        })
    });

    let mut out = format!(
        "Thin link: {} kbit/s each way, {} ms RTT; desktop {}×{}.\n\n",
        report.link.rate_kbps, report.link.rtt_ms, report.desktop.width, report.desktop.height
    );
    out.push_str("| |");
    for s in systems {
        out.push_str(&format!(" {} |", s.system.label()));
    }
    out.push_str("\n|---|");
    for _ in systems {
        out.push_str("---|");
    }
    out.push('\n');
    for (name, values) in rows {
        out.push_str(&format!("| {} |", cell(&name)));
        for value in values {
            out.push_str(&format!(" {} |", cell(&value)));
        }
        out.push('\n');
    }
    let failures: Vec<&SystemResult> = systems.iter().filter(|s| s.error.is_some()).collect();
    if !failures.is_empty() {
        out.push('\n');
        for s in failures {
            out.push_str(&format!(
                "{} failed:\n\n```\n{}\n```\n",
                s.system.label(),
                s.error.as_deref().unwrap_or("")
            ));
        }
    }
    out
}

/// The first line of `text`, cut to `max` characters.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Report {
        let mut bascule = SystemResult::new(System::Bascule, "bascule-bench (PNG)", "wss via link");
        bascule.connect = Some(Traffic::new(250_000, 4_000, 4.0));
        bascule.workload = Some(Traffic::new(1_600_000, 20_000, 40.0));
        bascule.phases = vec![PhaseTraffic {
            phase: "typing".into(),
            traffic: Traffic::new(64_000, 1_000, 8.0),
        }];
        bascule.drain_seconds = Some(0.25);
        bascule.frames = Some(321);
        bascule.echo = Some(EchoResult {
            method: EchoMethod::CursorCell,
            keystrokes: 106,
            missing: 0,
            latency: LatencySummary::of(&[
                std::time::Duration::from_millis(95),
                std::time::Duration::from_millis(140),
            ]),
        });
        bascule.cache = Some(CacheResult {
            offered: 2048,
            agreed: 2048,
            stores: 1_200,
            hits: 340,
        });
        bascule.final_picture = Some(PictureCheck {
            differing_pixels: 0,
            total_pixels: 1_024_000,
            mean_abs_diff: 0.0,
        });
        let mut tiger = SystemResult::new(
            System::Tigervnc,
            "xtigervncviewer | Tight",
            "xtigervncviewer …",
        );
        tiger.final_picture = Some(PictureCheck {
            differing_pixels: 10_240,
            total_pixels: 1_024_000,
            mean_abs_diff: 0.5,
        });
        let mut rdp = SystemResult::new(System::Rdp, "xfreerdp", "xfreerdp …");
        rdp.error =
            Some("xfreerdp exited (exit status: 131)\nERRCONNECT_CONNECT_TRANSPORT_FAILED".into());
        Report {
            link: LinkSpec {
                rate_kbps: 512,
                rtt_ms: 80,
                queue_bytes: 18_560,
            },
            desktop: DesktopSpec {
                width: 1280,
                height: 800,
            },
            workload: WorkloadSpec {
                typed_chars: 106,
                chars_per_second: 8.0,
                pages: 8,
                switches: 4,
                photo: (800, 520),
                photo_seconds: 4.0,
                video_seconds: 0.0,
                idle_seconds: 5.0,
            },
            systems: vec![bascule, tiger, rdp],
            started_unix: 1_700_000_000,
        }
    }

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(kilobytes(0), "0.0 kB");
        assert_eq!(kilobytes(49), "0.0 kB");
        assert_eq!(kilobytes(1_250), "1.3 kB");
        assert_eq!(kilobytes(1_234_567), "1,234.6 kB");
        let t = Traffic::new(64_000, 6_400, 2.0);
        assert_eq!((t.kbps_down, t.kbps_up), (256.0, 25.6));
    }

    #[test]
    fn markdown_table_has_a_column_per_system_and_notes_failures() {
        let table = markdown(&sample());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "Thin link: 512 kbit/s each way, 80 ms RTT; desktop 1280×800."
        );
        assert_eq!(lines[2], "| | Bascule | TigerVNC | RDP |");
        assert_eq!(lines[3], "|---|---|---|---|");
        assert_eq!(
            lines[4],
            "| viewer | bascule-bench (PNG) | xtigervncviewer \\| Tight | xfreerdp |"
        );
        assert!(
            table.contains("| status | ok | ok | **failed**: xfreerdp exited (exit status: 131) |"),
            "{table}"
        );
        assert!(
            table.contains("| connect: initial screen down | 250.0 kB in 4.0 s | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| workload: bytes down | 1,600.0 kB | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| average kbit/s down | 320.0 | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| — typing: down (kbit/s) | 64.0 kB (64) | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| keystroke echo p50 / p95 | 95 / 140 ms (n = 2) | — | — |"),
            "{table}"
        );
        assert!(
            table.contains("| final picture vs X server | exact (0 px differ) | 10,240 px differ (1.00 %), mean abs. diff. 0.50 | — |"),
            "{table}"
        );
        // Every row has as many cells as the header.
        for line in &lines[2..] {
            if !line.starts_with('|') {
                break;
            }
            assert_eq!(line.replace("\\|", "").matches('|').count(), 5, "{line}");
        }
        assert!(
            table.contains("| tile cache: stored / redrawn | 1,200 / 340 (2,048 slots) | — | — |"),
            "{table}"
        );
        assert!(table.contains("RDP failed:\n\n```\nxfreerdp exited (exit status: 131)\nERRCONNECT_CONNECT_TRANSPORT_FAILED\n```"));
    }

    #[test]
    fn json_has_the_documented_fields() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["link"]["rate_kbps"], 512);
        assert_eq!(json["systems"][0]["system"], "bascule");
        assert_eq!(json["systems"][1]["system"], "tigervnc");
        assert_eq!(json["systems"][0]["workload"]["bytes_down"], 1_600_000);
        assert_eq!(json["systems"][0]["workload"]["kbps_down"], 320.0);
        assert_eq!(json["systems"][0]["echo"]["method"], "cursor-cell");
        assert_eq!(json["systems"][0]["echo"]["latency"]["p95_ms"], 140.0);
        assert_eq!(json["systems"][0]["final_picture"]["differing_pixels"], 0);
        assert_eq!(json["systems"][0]["phases"][0]["phase"], "typing");
        assert_eq!(json["systems"][0]["cache"]["hits"], 340);
        assert!(json["systems"][2]["workload"].is_null());
        assert!(
            json["systems"][2]["error"]
                .as_str()
                .unwrap()
                .starts_with("xfreerdp exited")
        );
        assert_eq!(json["workload"]["photo"], serde_json::json!([800, 520]));
    }
}
