#![warn(missing_docs)]
//! Host health checks: is a VNC or RDP host up and speaking its protocol?
//!
//! Three parts, in the project's sans-IO style:
//!
//! - [`check_banner`] (pure): decides from the first bytes a host sent whether it speaks the
//!   expected protocol. VNC servers speak first with a 12-byte RFB ProtocolVersion
//!   (`RFB 003.008\n`). An RDP server answers the X.224 Connection Request of
//!   [`rdp_connection_request`] (TLS | CredSSP asked) with an X.224 Connection Confirm carrying
//!   an RDP Negotiation Response or Failure. No socket, no clock; never panics.
//! - [`probe`] (tokio): resolves, connects, sends the request for RDP, reads until
//!   [`check_banner`] decides or the timeout ends, then closes politely. It never logs in and
//!   never sends credentials.
//! - [`HealthTracker`] (pure): turns probe results into Healthy/Unhealthy transitions with
//!   hysteresis (unhealthy after N consecutive failures, healthy after one success).
//!
//! **Caveat: TigerVNC (Xvnc, x0vncserver).** TigerVNC counts every connection that does not log
//! in, a probe included, as a blacklist mark: after `BlacklistThreshold` (5) marks it refuses
//! the address for `BlacklistTimeout` (10 s), doubling at each expiry, until a connection from
//! that address logs in. Probing such a host without logging in, more often than users log in
//! through the gateway, locks the gateway out. The refusal (`RFB 003.003`, then "Too many
//! security failures") is reported as [`BannerCheck::Bad`].

mod banner;
mod probe;
mod tracker;

pub use banner::{BannerCheck, Protocol, check_banner, rdp_connection_request};
pub use probe::{Phase, ProbeError, ProbeOk, probe};
pub use tracker::{Health, HealthTracker, Transition};
