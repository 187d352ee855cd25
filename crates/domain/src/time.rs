//! Time as an input: timestamps, the site's local time, and allowed-hours windows.
//!
//! Nothing here reads a clock. The shell passes `now` as a [`Timestamp`] and the site's current
//! offset from UTC; daylight-saving rules stay in the shell, which knows the time-zone database.

use thiserror::Error;

/// Seconds in a day.
const SECONDS_PER_DAY: i64 = 86_400;
/// Minutes in a day: the exclusive upper bound of a minute of the day.
pub const MINUTES_PER_DAY: u16 = 1_440;
/// Minutes in a week.
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY as u32;

/// A point in time, in whole seconds since the Unix epoch (UTC).
///
/// Seconds are enough for sessions, health and licences, and an `i64` maps directly to an
/// integer column in SQLite and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The time `seconds` after 1970-01-01 00:00:00 UTC.
    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix_seconds(self) -> i64 {
        self.0
    }

    /// This time plus `seconds` (negative to go back), saturating at the ends of `i64`.
    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds))
    }
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// Lundi.
    Monday,
    /// Mardi.
    Tuesday,
    /// Mercredi.
    Wednesday,
    /// Jeudi.
    Thursday,
    /// Vendredi.
    Friday,
    /// Samedi.
    Saturday,
    /// Dimanche.
    Sunday,
}

impl Weekday {
    /// Every day, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// Monday is 0, Sunday is 6.
    fn index(self) -> u8 {
        self as u8
    }

    fn from_index(index: u8) -> Weekday {
        Weekday::ALL[usize::from(index % 7)]
    }

    /// The day after this one.
    pub fn next(self) -> Weekday {
        Weekday::from_index(self.index() + 1)
    }

    /// The day before this one.
    pub fn previous(self) -> Weekday {
        Weekday::from_index(self.index() + 6)
    }
}

/// A set of weekdays, e.g. Monday to Friday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WeekdaySet(u8);

impl WeekdaySet {
    /// No day.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every day of the week.
    pub const fn all() -> Self {
        Self(0b111_1111)
    }

    /// Monday to Friday.
    pub const fn working_days() -> Self {
        Self(0b001_1111)
    }

    /// The given days.
    pub fn of(days: &[Weekday]) -> Self {
        days.iter().fold(Self::empty(), |set, &day| set.with(day))
    }

    /// This set with `day` added.
    pub fn with(self, day: Weekday) -> Self {
        Self(self.0 | 1 << day.index())
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & 1 << day.index() != 0
    }
}

/// A wall-clock time at the site: a weekday and a minute of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LocalTime {
    weekday: Weekday,
    minute_of_day: u16,
}

impl LocalTime {
    /// `minute_of_day` counts from midnight and must be below [`MINUTES_PER_DAY`].
    pub fn new(weekday: Weekday, minute_of_day: u16) -> Result<Self, TimeError> {
        if minute_of_day >= MINUTES_PER_DAY {
            return Err(TimeError::MinuteOutOfRange(minute_of_day));
        }
        Ok(Self {
            weekday,
            minute_of_day,
        })
    }

    /// The site's local time at `at`, given the site's offset from UTC at that moment
    /// (e.g. `3600` for Paris in winter, `7200` in summer).
    pub fn at(at: Timestamp, utc_offset_seconds: i32) -> Self {
        let local = at
            .unix_seconds()
            .saturating_add(i64::from(utc_offset_seconds));
        let days = local.div_euclid(SECONDS_PER_DAY);
        // 1970-01-01 was a Thursday (index 3).
        let weekday = Weekday::from_index((days + 3).rem_euclid(7) as u8);
        // rem_euclid(86_400) / 60 is below 1_440, so it fits in a u16.
        let minute_of_day = (local.rem_euclid(SECONDS_PER_DAY) / 60) as u16;
        Self {
            weekday,
            minute_of_day,
        }
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        self.weekday
    }

    /// Minutes since midnight, below [`MINUTES_PER_DAY`].
    pub fn minute_of_day(self) -> u16 {
        self.minute_of_day
    }

    /// Minutes since Monday 00:00.
    fn minute_of_week(self) -> u32 {
        u32::from(self.weekday.index()) * u32::from(MINUTES_PER_DAY) + u32::from(self.minute_of_day)
    }
}

/// One allowed-hours window: on each day of `days`, from `start_minute` (included) to
/// `end_minute` (excluded), in the site's local time.
///
/// A window whose end is before its start crosses midnight: `22:00–06:00` on Friday allows Friday
/// 22:00 to Saturday 06:00, so `days` names the day the window opens.
/// A whole day is `0..1440`; a window with `start == end` is refused as ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeWindow {
    days: WeekdaySet,
    start_minute: u16,
    end_minute: u16,
}

impl TimeWindow {
    /// `start_minute` is below 1440, `end_minute` at most 1440, and they differ.
    pub fn new(days: WeekdaySet, start_minute: u16, end_minute: u16) -> Result<Self, TimeError> {
        if start_minute >= MINUTES_PER_DAY {
            return Err(TimeError::MinuteOutOfRange(start_minute));
        }
        if end_minute > MINUTES_PER_DAY {
            return Err(TimeError::MinuteOutOfRange(end_minute));
        }
        if start_minute == end_minute {
            return Err(TimeError::EmptyWindow(start_minute));
        }
        Ok(Self {
            days,
            start_minute,
            end_minute,
        })
    }

    /// The days on which the window opens.
    pub fn days(self) -> WeekdaySet {
        self.days
    }

    /// The minute of the day the window opens (included).
    pub fn start_minute(self) -> u16 {
        self.start_minute
    }

    /// The minute of the day the window closes (excluded); before the start if it crosses midnight.
    pub fn end_minute(self) -> u16 {
        self.end_minute
    }

    fn crosses_midnight(self) -> bool {
        self.end_minute < self.start_minute
    }

    /// Whether `time` is inside the window.
    pub fn contains(self, time: LocalTime) -> bool {
        let minute = time.minute_of_day;
        if self.crosses_midnight() {
            (self.days.contains(time.weekday) && minute >= self.start_minute)
                || (self.days.contains(time.weekday.previous()) && minute < self.end_minute)
        } else {
            self.days.contains(time.weekday)
                && self.start_minute <= minute
                && minute < self.end_minute
        }
    }

    /// Minutes from `time` to the next opening of this window, if it ever opens.
    /// Zero when it opens exactly at `time`.
    fn minutes_to_next_opening(self, time: LocalTime) -> Option<u32> {
        let now = time.minute_of_week();
        Weekday::ALL
            .into_iter()
            .filter(|&day| self.days.contains(day))
            .map(|day| {
                let opening = u32::from(day.index()) * u32::from(MINUTES_PER_DAY)
                    + u32::from(self.start_minute);
                (opening + MINUTES_PER_WEEK - now) % MINUTES_PER_WEEK
            })
            .min()
    }
}

/// When sessions may be launched: the union of a few [`TimeWindow`]s, in the site's local time.
///
/// No window at all means never. Policies of several groups merge by concatenating their windows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHours {
    windows: Vec<TimeWindow>,
}

impl AllowedHours {
    /// Any day, any time.
    pub fn always() -> Self {
        Self {
            windows: vec![TimeWindow {
                days: WeekdaySet::all(),
                start_minute: 0,
                end_minute: MINUTES_PER_DAY,
            }],
        }
    }

    /// The union of `windows`; empty means never.
    pub fn new(windows: Vec<TimeWindow>) -> Self {
        Self { windows }
    }

    /// The windows, in the order given.
    pub fn windows(&self) -> &[TimeWindow] {
        &self.windows
    }

    /// Whether `time` is inside one of the windows.
    pub fn contains(&self, time: LocalTime) -> bool {
        self.windows.iter().any(|window| window.contains(time))
    }

    /// The union of these hours and `other`'s.
    pub fn union(&self, other: &AllowedHours) -> AllowedHours {
        let mut windows = self.windows.clone();
        windows.extend(
            other
                .windows
                .iter()
                .copied()
                .filter(|window| !self.windows.contains(window)),
        );
        AllowedHours { windows }
    }

    /// The next moment at or after `now` when launches are allowed, or `None` if never.
    ///
    /// Computed with today's offset: if the offset changes in between (a daylight-saving switch),
    /// the answer is an hour off, which is good enough for "come back at …".
    pub fn next_allowed(&self, now: Timestamp, utc_offset_seconds: i32) -> Option<Timestamp> {
        let time = LocalTime::at(now, utc_offset_seconds);
        if self.contains(time) {
            return Some(now);
        }
        let minutes = self
            .windows
            .iter()
            .filter_map(|window| window.minutes_to_next_opening(time))
            .min()?;
        // `now` may be in the middle of a minute; the window opens at the start of a minute.
        let into_minute = (now.unix_seconds() + i64::from(utc_offset_seconds)).rem_euclid(60);
        Some(now.plus_seconds(i64::from(minutes) * 60 - into_minute))
    }
}

/// A wall-clock value out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TimeError {
    /// A minute of the day is 1440 or more (or above 1440 for a window's end).
    #[error("minute of the day {0} is out of range")]
    MinuteOutOfRange(u16),
    /// A window starts and ends at the same minute.
    #[error("time window starts and ends at minute {0}")]
    EmptyWindow(u16),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn window(days: &[Weekday], start: u16, end: u16) -> TimeWindow {
        TimeWindow::new(WeekdaySet::of(days), start, end).unwrap()
    }

    fn local(weekday: Weekday, hour: u16, minute: u16) -> LocalTime {
        LocalTime::new(weekday, hour * 60 + minute).unwrap()
    }

    #[test]
    fn local_time_from_timestamp() {
        // 2026-03-02 was a Monday; 08:30 UTC is 09:30 in Paris (winter, UTC+1).
        let monday_0830_utc = Timestamp::from_unix_seconds(1_772_440_200);
        assert_eq!(
            LocalTime::at(monday_0830_utc, 3600),
            local(Weekday::Monday, 9, 30)
        );
        // Before the epoch, and across midnight backwards: 1969-12-31 was a Wednesday.
        assert_eq!(
            LocalTime::at(Timestamp::from_unix_seconds(-60), 0),
            local(Weekday::Wednesday, 23, 59)
        );
        assert_eq!(
            LocalTime::at(Timestamp::from_unix_seconds(0), -3600),
            local(Weekday::Wednesday, 23, 0)
        );
    }

    #[test]
    fn window_bounds() {
        let office = window(&[Weekday::Monday], 8 * 60, 18 * 60);
        assert!(!office.contains(local(Weekday::Monday, 7, 59)));
        assert!(office.contains(local(Weekday::Monday, 8, 0)));
        assert!(office.contains(local(Weekday::Monday, 17, 59)));
        assert!(!office.contains(local(Weekday::Monday, 18, 0)));
        assert!(!office.contains(local(Weekday::Tuesday, 9, 0)));
        assert_eq!(
            TimeWindow::new(WeekdaySet::all(), 600, 600),
            Err(TimeError::EmptyWindow(600))
        );
        assert_eq!(
            TimeWindow::new(WeekdaySet::all(), 1440, 10),
            Err(TimeError::MinuteOutOfRange(1440))
        );
        assert_eq!(
            TimeWindow::new(WeekdaySet::all(), 0, 1441),
            Err(TimeError::MinuteOutOfRange(1441))
        );
        assert!(TimeWindow::new(WeekdaySet::all(), 0, 1440).is_ok());
    }

    #[test]
    fn window_crossing_midnight_belongs_to_its_opening_day() {
        let night = window(&[Weekday::Friday], 22 * 60, 6 * 60);
        assert!(!night.contains(local(Weekday::Friday, 21, 59)));
        assert!(night.contains(local(Weekday::Friday, 22, 0)));
        assert!(night.contains(local(Weekday::Friday, 23, 59)));
        assert!(night.contains(local(Weekday::Saturday, 0, 0)));
        assert!(night.contains(local(Weekday::Saturday, 5, 59)));
        assert!(!night.contains(local(Weekday::Saturday, 6, 0)));
        assert!(!night.contains(local(Weekday::Saturday, 22, 30)));
        // Friday's early morning belongs to Thursday's window, which does not exist.
        assert!(!night.contains(local(Weekday::Friday, 1, 0)));
        // Sunday night wraps to Monday morning.
        let sunday = window(&[Weekday::Sunday], 23 * 60, 60);
        assert!(sunday.contains(local(Weekday::Monday, 0, 30)));
    }

    #[test]
    fn next_allowed_finds_the_next_opening() {
        let hours = AllowedHours::new(vec![window(
            &[
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ],
            8 * 60,
            18 * 60,
        )]);
        // Friday 2026-03-06 19:00:30 UTC, site in UTC: next opening is Monday 08:00:00.
        let friday_evening = Timestamp::from_unix_seconds(1_772_823_630);
        assert_eq!(
            LocalTime::at(friday_evening, 0),
            local(Weekday::Friday, 19, 0)
        );
        let monday_morning = Timestamp::from_unix_seconds(1_773_043_200);
        assert_eq!(
            LocalTime::at(monday_morning, 0),
            local(Weekday::Monday, 8, 0)
        );
        assert_eq!(hours.next_allowed(friday_evening, 0), Some(monday_morning));
        assert_eq!(hours.next_allowed(monday_morning, 0), Some(monday_morning));
        assert_eq!(
            AllowedHours::new(vec![]).next_allowed(friday_evening, 0),
            None
        );
    }
}
