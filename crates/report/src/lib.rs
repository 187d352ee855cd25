//! Bascule's daily report: the indicators of one site-local day (17:00 review of the IT
//! department), computed from the control-plane database.
//!
//! - [`compute`] is the pure core: a [`DayInput`] (the day's sessions, their traffic counters,
//!   audit lines, incidents, licence samples, sites) gives a [`DailyReport`] (serde, stable field
//!   names). Nothing there reads a clock or a database.
//! - [`compute_day`], [`compute_and_store`] and [`trend`] are the async shell over
//!   [`bascule_store::Store`]: they load `[local midnight, next local midnight)` (23 or 25 hours on
//!   daylight-saving days) and keep computed reports in `daily_reports`.
//! - [`to_csv`], [`trend_csv`] and serde JSON export a report; [`text_summary`] is the readable
//!   summary of the mail and the command line; [`charts`] draws SVG charts (no script, no
//!   `style`), for a page with a strict CSP.
//! - [`send_report`] mails the summary with the CSV attached (lettre, rustls on ring).
//! - [`next_run`] says when a cron schedule (default [`DEFAULT_SCHEDULE`], 17:00) fires next in
//!   the site's time zone.
//! - [`RttHistogram`] is the per-session round-trip-time histogram the gateway records and stores
//!   as JSON in `session_stats.rtt_buckets`.
//!
//! Texts shown to a person exist in French and English ([`Lang`]).

#![warn(missing_docs)]

pub mod charts;
mod compute;
mod error;
mod export;
mod histogram;
mod lang;
mod mail;
mod schedule;
mod shell;
mod sites;
mod timefmt;

pub use compute::{
    Bandwidth, DailyReport, DayInput, HourPoint, REPORT_FORMAT_VERSION, SiteBandwidth, compute,
};
pub use error::ReportError;
pub use export::{text_summary, to_csv, trend_csv};
pub use histogram::{RTT_BUCKET_BOUNDS_MS, RTT_BUCKETS, RttHistogram};
pub use lang::Lang;
pub use mail::{SmtpSecurity, SmtpSettings, send_report};
pub use schedule::{DEFAULT_SCHEDULE, next_run};
pub use shell::{
    Progress, compute_and_store, compute_and_store_at, compute_day, compute_day_at, day_bounds,
    default_day, load_day, trend, trend_at,
};
pub use sites::{SiteMap, parse_ranges};

/// What the functions of this crate return.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
