//! Conversions between `bascule_domain` values and column values, at the edge.
//!
//! Booleans are stored as 0/1 and limits as `-1` (unlimited) or the number, so that one SQL text
//! and one row decoder serve SQLite and PostgreSQL alike.

use bascule_domain::access::Role;
use bascule_domain::inventory::{Balancing, Protocol};
use bascule_domain::policy::Limit;
use bascule_domain::session::{EndReason, FailReason};
use bascule_domain::time::{AllowedHours, TimeWindow, Weekday, WeekdaySet};

use crate::{AuthSource, StoreError};

pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: detail.into(),
    }
}

pub(crate) fn unsupported(what: impl std::fmt::Debug) -> StoreError {
    StoreError::Unsupported(format!("{what:?}"))
}

pub(crate) fn bool_to_db(value: bool) -> i64 {
    i64::from(value)
}

pub(crate) fn bool_from_db(table: &'static str, value: i64) -> Result<bool, StoreError> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(table, format!("boolean {other}"))),
    }
}

pub(crate) fn u32_from_db(table: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(table, format!("{value} is not a u32")))
}

pub(crate) fn role_to_db(role: Role) -> Result<&'static str, StoreError> {
    Ok(match role {
        Role::User => "user",
        Role::Helpdesk => "helpdesk",
        Role::Admin => "admin",
        other => return Err(unsupported(other)),
    })
}

pub(crate) fn roles_to_db(roles: &[Role]) -> Result<String, StoreError> {
    let names = roles
        .iter()
        .map(|&role| role_to_db(role))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(names.join(","))
}

pub(crate) fn roles_from_db(text: &str) -> Result<Vec<Role>, StoreError> {
    text.split(',')
        .filter(|name| !name.is_empty())
        .map(|name| match name {
            "user" => Ok(Role::User),
            "helpdesk" => Ok(Role::Helpdesk),
            "admin" => Ok(Role::Admin),
            other => Err(corrupt("users", format!("role {other:?}"))),
        })
        .collect()
}

pub(crate) fn auth_source_to_db(source: &AuthSource) -> &'static str {
    match source {
        AuthSource::Local => "local",
        AuthSource::Directory => "directory",
    }
}

pub(crate) fn auth_source_from_db(text: &str) -> Result<AuthSource, StoreError> {
    match text {
        "local" => Ok(AuthSource::Local),
        "directory" => Ok(AuthSource::Directory),
        other => Err(corrupt("users", format!("source {other:?}"))),
    }
}

pub(crate) fn protocol_to_db(protocol: Protocol) -> Result<&'static str, StoreError> {
    Ok(match protocol {
        Protocol::Rdp => "rdp",
        Protocol::Vnc => "vnc",
        other => return Err(unsupported(other)),
    })
}

pub(crate) fn protocol_from_db(text: &str) -> Result<Protocol, StoreError> {
    match text {
        "rdp" => Ok(Protocol::Rdp),
        "vnc" => Ok(Protocol::Vnc),
        other => Err(corrupt("hosts", format!("protocol {other:?}"))),
    }
}

pub(crate) fn balancing_to_db(balancing: Balancing) -> Result<&'static str, StoreError> {
    Ok(match balancing {
        Balancing::FewestSessions => "fewest_sessions",
        Balancing::Weighted => "weighted",
        other => return Err(unsupported(other)),
    })
}

pub(crate) fn balancing_from_db(text: &str) -> Result<Balancing, StoreError> {
    match text {
        "fewest_sessions" => Ok(Balancing::FewestSessions),
        "weighted" => Ok(Balancing::Weighted),
        other => Err(corrupt("pools", format!("balancing {other:?}"))),
    }
}

pub(crate) fn limit_to_db(limit: Limit) -> i64 {
    match limit {
        Limit::Unlimited => -1,
        Limit::AtMost(value) => i64::from(value),
    }
}

pub(crate) fn limit_from_db(value: i64) -> Result<Limit, StoreError> {
    if value == -1 {
        Ok(Limit::Unlimited)
    } else {
        Ok(Limit::AtMost(u32_from_db("policies", value)?))
    }
}

fn weekdays_to_bits(days: WeekdaySet) -> u8 {
    Weekday::ALL
        .iter()
        .enumerate()
        .filter(|&(_, &day)| days.contains(day))
        .fold(0, |bits, (index, _)| bits | 1 << index)
}

fn weekdays_from_bits(bits: u8) -> WeekdaySet {
    Weekday::ALL
        .iter()
        .enumerate()
        .filter(|&(index, _)| bits & 1 << index != 0)
        .fold(WeekdaySet::empty(), |set, (_, &day)| set.with(day))
}

/// `"<weekday bits>:<start>-<end>"` per window, joined by `;`; `""` is "never".
pub(crate) fn hours_to_db(hours: &AllowedHours) -> String {
    hours
        .windows()
        .iter()
        .map(|window| {
            format!(
                "{}:{}-{}",
                weekdays_to_bits(window.days()),
                window.start_minute(),
                window.end_minute()
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

pub(crate) fn hours_from_db(text: &str) -> Result<AllowedHours, StoreError> {
    let bad = || corrupt("policies", format!("allowed hours {text:?}"));
    let mut windows = Vec::new();
    for part in text.split(';').filter(|part| !part.is_empty()) {
        let (bits, range) = part.split_once(':').ok_or_else(bad)?;
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let start: u16 = start.parse().map_err(|_| bad())?;
        let end: u16 = end.parse().map_err(|_| bad())?;
        windows.push(TimeWindow::new(weekdays_from_bits(bits), start, end).map_err(|_| bad())?);
    }
    Ok(AllowedHours::new(windows))
}

pub(crate) fn end_reason_to_db(reason: EndReason) -> Result<&'static str, StoreError> {
    Ok(match reason {
        EndReason::LoggedOff => "logged_off",
        EndReason::IdleTimeout => "idle_timeout",
        EndReason::DisconnectedTimeout => "disconnected_timeout",
        EndReason::EndedByStaff => "ended_by_staff",
        EndReason::HostLost => "host_lost",
        other => return Err(unsupported(other)),
    })
}

pub(crate) fn end_reason_from_db(text: &str) -> Result<EndReason, StoreError> {
    Ok(match text {
        "logged_off" => EndReason::LoggedOff,
        "idle_timeout" => EndReason::IdleTimeout,
        "disconnected_timeout" => EndReason::DisconnectedTimeout,
        "ended_by_staff" => EndReason::EndedByStaff,
        "host_lost" => EndReason::HostLost,
        other => return Err(corrupt("sessions", format!("end reason {other:?}"))),
    })
}

pub(crate) fn fail_reason_to_db(reason: FailReason) -> Result<&'static str, StoreError> {
    Ok(match reason {
        FailReason::HostUnreachable => "host_unreachable",
        FailReason::AuthenticationFailed => "authentication_failed",
        FailReason::CertificateRejected => "certificate_rejected",
        FailReason::TimedOut => "timed_out",
        other => return Err(unsupported(other)),
    })
}

pub(crate) fn fail_reason_from_db(text: &str) -> Result<FailReason, StoreError> {
    Ok(match text {
        "host_unreachable" => FailReason::HostUnreachable,
        "authentication_failed" => FailReason::AuthenticationFailed,
        "certificate_rejected" => FailReason::CertificateRejected,
        "timed_out" => FailReason::TimedOut,
        other => return Err(corrupt("sessions", format!("fail reason {other:?}"))),
    })
}
