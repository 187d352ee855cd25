//! Bascule's integration suite: one test binary, run with `cargo test -p bascule-testsuite`.
//!
//! Every test talks to real peers: X desktops served by x11vnc or Xtigervnc (started per test
//! by `bascule-desktop`, or by `scripts/testbed.sh up`), a real gateway on a loopback port, and
//! small hostile VNC servers written here. A missing program or testbed makes a test fail with
//! a message saying what to install or run; nothing is skipped.
//!
//! - `vnc_peers`: the sans-IO RFB client against x11vnc and TigerVNC.
//! - `gateway`: login, launch, viewer WebSocket and input, end to end.
//! - `hostile`: misbehaving VNC servers and malformed viewer messages.
//! - `rdp`: RDP hosts through the gateway: freerdp-shadow-cli (TLS, NLA, trust on first use),
//!   the testbed's xrdp (service account, reattach, pass-through, published application) and
//!   hostile RDP servers.
//! - `control_plane`: the broker over two real x11vnc hosts (spread, drain, a killed host),
//!   licences, session records, TOTP, the directory (slapd), refused launches, via the REST API.
//! - `flow`: flow control per viewer through the link emulator: a slow and a fast viewer of one
//!   session, a viewer that stops acknowledging.
//! - `clipboard`: the clipboard both ways and the per-resource `clipboard_in` / `clipboard_out`
//!   policy, against x11vnc and the testbed's xrdp.

mod clipboard;
mod console;
mod control_plane;
mod flow;
mod gateway;
mod health_probe;
mod hostile;
mod rdp;
mod support;
mod vnc_peers;
