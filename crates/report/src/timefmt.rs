//! Conversions between the domain's `Timestamp` (Unix seconds) and jiff, and the formats of
//! times in a report.

use bascule_domain::time::Timestamp;
use jiff::Zoned;
use jiff::tz::TimeZone;

use crate::Result;
use crate::error::time_error;

/// The domain timestamp as a jiff one (clamped to jiff's range, which spans years -9999..9999).
pub(crate) fn to_jiff(at: Timestamp) -> jiff::Timestamp {
    let seconds = at.unix_seconds().clamp(
        jiff::Timestamp::MIN.as_second(),
        jiff::Timestamp::MAX.as_second(),
    );
    jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// The jiff timestamp as a domain one (whole seconds, rounded down).
pub(crate) fn from_jiff(at: jiff::Timestamp) -> Timestamp {
    Timestamp::from_unix_seconds(at.as_second())
}

/// `at` in the site's zone.
pub(crate) fn zoned(at: Timestamp, tz: &TimeZone) -> Zoned {
    to_jiff(at).to_zoned(tz.clone())
}

/// `2026-03-10T10:15:00+01:00`: local time with its offset, unambiguous on DST days.
pub(crate) fn iso_local(at: Timestamp, tz: &TimeZone) -> String {
    zoned(at, tz).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The time zone's name for a report: its IANA name, else its fixed offset or `UTC`.
pub(crate) fn zone_name(tz: &TimeZone) -> String {
    if let Some(name) = tz.iana_name() {
        return name.to_owned();
    }
    let offset = tz.to_offset(jiff::Timestamp::UNIX_EPOCH);
    if offset.seconds() == 0 {
        "UTC".to_owned()
    } else {
        offset.to_string()
    }
}

/// Reads back an [`iso_local`] time (for display).
pub(crate) fn parse_iso(text: &str) -> Result<Zoned> {
    let parsed = jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%:z", text).map_err(time_error)?;
    let at = parsed.to_timestamp().map_err(time_error)?;
    let offset = parsed
        .offset()
        .ok_or_else(|| time_error(format!("{text:?} has no offset")))?;
    Ok(at.to_zoned(TimeZone::fixed(offset)))
}

/// `10:15` of an [`iso_local`] time (the text itself if it does not parse).
pub(crate) fn hh_mm(text: &str) -> String {
    parse_iso(text).map_or_else(|_| text.to_owned(), |at| at.strftime("%H:%M").to_string())
}
