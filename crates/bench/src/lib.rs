//! `bascule-bench`: the thin-link benchmark.
//!
//! `bascule-bench thin-link` runs one scripted office workload on a real desktop (an xterm being
//! typed into, a long document scrolled in `less`, two windows switched, a photo shown, then
//! idle) and measures, through the same emulated link (`bascule-linkemu`), what it costs with:
//!
//! 1. **Bascule**: an in-process gateway in front of the desktop's x11vnc, and the headless
//!    benchmark client of this crate ([`client`]) speaking the viewer protocol over WSS;
//! 2. **TigerVNC**: `xtigervncviewer` (Tight, JPEG) straight to the same x11vnc;
//! 3. **RDP**: `xfreerdp` to `freerdp-shadow-cli` sharing the same desktop.
//!
//! The pure parts (frame decoding, echo attribution, percentiles, the table) are unit-tested;
//! [`run`] drives real programs.

pub mod client;
pub mod content;
pub mod echo;
pub mod https;
pub mod memory;
pub mod procs;
pub mod quiet;
pub mod report;
pub mod run;
pub mod stats;
