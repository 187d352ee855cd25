#![warn(missing_docs)]
//! A link emulator for the thin-link benchmark: a userspace TCP relay that makes a loopback
//! connection behave like a thin branch-office link (say 512 kbit/s with an 80 ms RTT), and
//! counts the bytes each way.
//!
//! It goes between a viewer (the browser client, TigerVNC's viewer, xfreerdp) and a server (the
//! gateway, x11vnc, freerdp-shadow) where the kernel has no netem.
//! Two parts, in the project's sans-IO style:
//!
//! - [`Direction`] (pure): one direction of the link, a bounded queue in front of a FIFO
//!   serialiser at [`LinkParams::rate_bps`], then [`LinkParams::one_way_delay`] of propagation.
//!   Time is an input; no socket, no clock.
//! - [`Relay`] (tokio): accepts connections, dials the target for each, and pumps each
//!   direction through its own [`Direction`], sleeping until the next delivery, half-closing
//!   like TCP, and counting bytes in [`RelayStats`].
//!
//! The `bascule-linkemu` binary runs a [`Relay`] from the command line.

mod link;
mod relay;

pub use link::{Direction, LinkParams, MAX_ONE_WAY_DELAY, SEGMENT_BYTES};
pub use relay::{Relay, RelayStats};
