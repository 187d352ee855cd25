//! Allowed-hours windows as people write them: `mon-fri 07:00-19:00`.
//!
//! A window is `DAYS START-END`:
//! - `DAYS` is `*` (every day), a day, a range of days (`mon-fri`, `fri-mon` wraps over the
//!   week-end) or a comma-separated list of those (`mon,wed,fri-sat`). Days are English (`mon`…
//!   `sun`) or French (`lun`…`dim`), in any case;
//! - `START` and `END` are `HH:MM` (or `HHhMM`), from `00:00` to `24:00`; an end before the start
//!   crosses midnight (`fri 22:00-06:00` is Friday night to Saturday morning).
//!
//! [`format_window`] writes a window back in the same form (English days).

use bascule_domain::time::{MINUTES_PER_DAY, TimeWindow, Weekday, WeekdaySet};

use crate::error::HoursProblem;

const ENGLISH: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FRENCH: [&str; 7] = ["lun", "mar", "mer", "jeu", "ven", "sam", "dim"];

fn day(name: &str) -> Result<usize, HoursProblem> {
    let lower = name.trim().to_lowercase();
    ENGLISH
        .iter()
        .position(|&day| day == lower)
        .or_else(|| FRENCH.iter().position(|&day| day == lower))
        .ok_or_else(|| HoursProblem::UnknownDay(name.trim().to_string()))
}

fn days(text: &str) -> Result<WeekdaySet, HoursProblem> {
    if text == "*" {
        return Ok(WeekdaySet::all());
    }
    let mut set = WeekdaySet::empty();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let mut index = first;
                loop {
                    set = set.with(Weekday::ALL[index]);
                    if index == last {
                        break;
                    }
                    index = (index + 1) % 7;
                }
            }
            None => set = set.with(Weekday::ALL[day(part)?]),
        }
    }
    Ok(set)
}

fn minute(text: &str) -> Result<u16, HoursProblem> {
    let bad = || HoursProblem::BadTime(text.to_string());
    let (hours, minutes) = text.split_once([':', 'h', 'H']).ok_or_else(bad)?;
    let digits = |part: &str, most: usize| {
        !part.is_empty() && part.len() <= most && part.bytes().all(|byte| byte.is_ascii_digit())
    };
    if !(digits(hours, 2) && digits(minutes, 2) && minutes.len() == 2) {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let minutes: u16 = minutes.parse().map_err(|_| bad())?;
    let total = hours * 60 + minutes;
    if minutes >= 60 || total > MINUTES_PER_DAY {
        return Err(bad());
    }
    Ok(total)
}

/// Reads one window.
pub fn parse_window(text: &str) -> Result<TimeWindow, HoursProblem> {
    let mut words = text.split_whitespace();
    let (Some(day_part), Some(time_part), None) = (words.next(), words.next(), words.next()) else {
        return Err(HoursProblem::Shape);
    };
    let set = days(day_part)?;
    let (start_text, end_text) = time_part.split_once('-').ok_or(HoursProblem::Shape)?;
    let (start, end) = (minute(start_text)?, minute(end_text)?);
    if start == MINUTES_PER_DAY {
        return Err(HoursProblem::BadTime(start_text.to_string()));
    }
    if start == end {
        return Err(HoursProblem::EmptyWindow);
    }
    TimeWindow::new(set, start, end).map_err(|_| HoursProblem::Shape)
}

fn format_days(days: WeekdaySet) -> String {
    if days == WeekdaySet::all() {
        return "*".to_string();
    }
    // Runs of consecutive days, Monday first (no wrapping, so that the text is predictable).
    let mut parts = Vec::new();
    let mut index = 0;
    while index < 7 {
        if !days.contains(Weekday::ALL[index]) {
            index += 1;
            continue;
        }
        let start = index;
        while index + 1 < 7 && days.contains(Weekday::ALL[index + 1]) {
            index += 1;
        }
        if start == index {
            parts.push(ENGLISH[start].to_string());
        } else {
            parts.push(format!("{}-{}", ENGLISH[start], ENGLISH[index]));
        }
        index += 1;
    }
    parts.join(",")
}

fn format_minute(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Writes a window as [`parse_window`] reads it, e.g. `mon-fri 07:00-19:00`.
pub fn format_window(window: &TimeWindow) -> String {
    format!(
        "{} {}-{}",
        format_days(window.days()),
        format_minute(window.start_minute()),
        format_minute(window.end_minute())
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_and_writes_back() {
        for (text, written) in [
            ("mon-fri 07:00-19:00", "mon-fri 07:00-19:00"),
            ("LUN-VEN 7h00-19h30", "mon-fri 07:00-19:30"),
            ("* 00:00-24:00", "* 00:00-24:00"),
            ("fri-mon 22:00-06:00", "mon,fri-sun 22:00-06:00"),
            ("mon,wed,sam 08:00-12:00", "mon,wed,sat 08:00-12:00"),
        ] {
            let window = parse_window(text).unwrap();
            assert_eq!(format_window(&window), written, "{text}");
            assert_eq!(parse_window(written).unwrap(), window);
        }
        let night = parse_window("fri 22:00-06:00").unwrap();
        assert_eq!((night.start_minute(), night.end_minute()), (1320, 360));
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        assert_eq!(parse_window("mon-fri"), Err(HoursProblem::Shape));
        assert_eq!(
            parse_window("mon-fri 07:00 19:00"),
            Err(HoursProblem::Shape)
        );
        assert_eq!(
            parse_window("mon-fry 07:00-19:00"),
            Err(HoursProblem::UnknownDay("fry".into()))
        );
        assert_eq!(
            parse_window("mon 7-19"),
            Err(HoursProblem::BadTime("7".into()))
        );
        assert_eq!(
            parse_window("mon 07:00-24:01"),
            Err(HoursProblem::BadTime("24:01".into()))
        );
        assert_eq!(
            parse_window("mon 24:00-08:00"),
            Err(HoursProblem::BadTime("24:00".into()))
        );
        assert_eq!(
            parse_window("mon 08:00-08:00"),
            Err(HoursProblem::EmptyWindow)
        );
    }
}
