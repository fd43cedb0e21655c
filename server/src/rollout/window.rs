//! Maintenance windows (pure): a weekly local time range in an IANA time zone, parsed from
//! the request's text and asked whether it is open at an instant. Time zones come from
//! jiff's bundled copy of the time zone database, so every machine judges alike.
//!
//! - `days`: comma-separated day names (`Mon` … `Sun`, any case) and ranges (`Mon-Fri`;
//!   a range may wrap, `Fri-Mon` is Fri, Sat, Sun, Mon).
//! - `start`, `end`: `HH:MM`, 00:00-23:59. An `end` at or before `start` ends the next day:
//!   `Fri 22:00-02:00` is Friday 22:00 to Saturday 02:00, and belongs to Friday (the day it
//!   starts on). `start` equal to `end` is refused (no window has no length; a rollout
//!   without a window dispatches at any time).
//! - Across daylight-saving changes the local times are made instants with jiff's
//!   "compatible" rule (RFC 5545, Temporal): a time in a gap moves forward by the gap's
//!   length (02:30 on a spring-forward night is 03:30), a time in a fold is its earlier
//!   occurrence. A window is open from its start instant up to, not including, its end.

use fleet_protocol::api::MaintenanceWindow;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// Why a maintenance window is not acceptable (400 `bad_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "maintenance_window.days: unknown day `{0}`; use Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges (Mon-Fri) and lists (Sat,Sun)"
    )]
    Day(String),
    #[error("maintenance_window.{field}: `{value}` is not a time HH:MM (00:00 to 23:59)")]
    Time { field: &'static str, value: String },
    #[error("maintenance_window: start and end are both {0}; a window needs a length")]
    Empty(String),
    #[error("maintenance_window.time_zone: unknown time zone `{0}`; use an IANA name such as Europe/Berlin or UTC")]
    Zone(String),
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A parsed maintenance window; compared (and stored) as the text it was given.
#[derive(Debug, Clone)]
pub struct Window {
    spec: MaintenanceWindow,
    /// Monday first.
    days: [bool; 7],
    start: Time,
    end: Time,
    zone: TimeZone,
}

impl PartialEq for Window {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Window {
    pub fn parse(spec: &MaintenanceWindow) -> Result<Self, WindowError> {
        let start = time("start", &spec.start)?;
        let end = time("end", &spec.end)?;
        if start == end {
            return Err(WindowError::Empty(spec.start.clone()));
        }
        let zone = TimeZone::get(&spec.time_zone).map_err(|_| WindowError::Zone(spec.time_zone.clone()))?;
        Ok(Self { spec: spec.clone(), days: days(&spec.days)?, start, end, zone })
    }

    /// The window as it was given.
    pub fn spec(&self) -> &MaintenanceWindow {
        &self.spec
    }

    /// Whether the window is open at `ms` (milliseconds since the epoch).
    pub fn is_open_at_ms(&self, ms: i64) -> bool {
        Timestamp::from_millisecond(ms).is_ok_and(|at| self.is_open(at))
    }

    /// Whether the window is open at `at`: a window that started on the local day of `at`,
    /// or on the day before and crosses midnight, has begun and not yet ended.
    pub fn is_open(&self, at: Timestamp) -> bool {
        let today = at.to_zoned(self.zone.clone()).date();
        [today.yesterday().ok(), Some(today)]
            .into_iter()
            .flatten()
            .filter(|day| self.days[day.weekday().to_monday_zero_offset() as usize])
            .any(|day| self.bounds(day).is_some_and(|(start, end)| start <= at && at < end))
    }

    /// The instants the window that starts on local `day` opens and closes.
    fn bounds(&self, day: Date) -> Option<(Timestamp, Timestamp)> {
        let end_day = if self.end <= self.start { day.tomorrow().ok()? } else { day };
        let start = day.to_datetime(self.start).to_zoned(self.zone.clone()).ok()?;
        let end = end_day.to_datetime(self.end).to_zoned(self.zone.clone()).ok()?;
        Some((start.timestamp(), end.timestamp()))
    }
}

/// `HH:MM`, exactly.
fn time(field: &'static str, value: &str) -> Result<Time, WindowError> {
    let bad = || WindowError::Time { field, value: value.to_owned() };
    let (h, m) = value.split_once(':').ok_or_else(bad)?;
    let two_digits =
        |s: &str| if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<i8>().ok() } else { None };
    let (Some(h), Some(m)) = (two_digits(h), two_digits(m)) else {
        return Err(bad());
    };
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

fn day(name: &str) -> Result<usize, WindowError> {
    let lower = name.trim().to_ascii_lowercase();
    DAYS.iter().position(|d| *d == lower).ok_or_else(|| WindowError::Day(name.trim().to_owned()))
}

/// `Mon-Fri`, `Sat,Sun`, `Mon,Wed-Fri`, `Fri-Mon` (wrapping).
fn days(text: &str) -> Result<[bool; 7], WindowError> {
    let mut set = [false; 7];
    for item in text.split(',') {
        let (from, to) = match item.split_once('-') {
            Some((a, b)) => (day(a)?, day(b)?),
            None => (day(item)?, day(item)?),
        };
        let mut d = from;
        loop {
            set[d] = true;
            if d == to {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &str, start: &str, end: &str, zone: &str) -> Result<Window, WindowError> {
        let spec =
            MaintenanceWindow { days: days.into(), start: start.into(), end: end.into(), time_zone: zone.into() };
        Window::parse(&spec)
    }

    fn open(w: &Window, utc: &str) -> bool {
        w.is_open(utc.parse().unwrap())
    }

    #[test]
    fn days_take_names_ranges_and_lists() {
        let set = |t: &str| days(t).unwrap().iter().map(|d| u8::from(*d)).collect::<Vec<_>>();
        assert_eq!(set("Mon-Fri"), [1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(set("Sat,Sun"), [0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(set("Mon,Wed-Fri"), [1, 0, 1, 1, 1, 0, 0]);
        assert_eq!(set("fri-mon"), [1, 0, 0, 0, 1, 1, 1], "a range may wrap");
        assert_eq!(set(" Tue , THU "), [0, 1, 0, 1, 0, 0, 0]);
        assert_eq!(days("Mon-Fry"), Err(WindowError::Day("Fry".into())));
        assert_eq!(days(""), Err(WindowError::Day(String::new())));
        assert_eq!(days("Mon,"), Err(WindowError::Day(String::new())));
        assert_eq!(days("Monday"), Err(WindowError::Day("Monday".into())));
    }

    #[test]
    fn bad_values_are_refused_with_what_is_wrong() {
        let bad_time = |v: &str| WindowError::Time { field: "start", value: v.into() };
        for v in ["24:00", "1:00", "01:60", "01-00", "", "01:00:00", "+1:00"] {
            assert_eq!(window("Mon", v, "04:00", "UTC"), Err(bad_time(v)), "{v}");
        }
        assert_eq!(window("Mon", "01:00", "4", "UTC"), Err(WindowError::Time { field: "end", value: "4".into() }));
        assert_eq!(window("Mon", "01:00", "01:00", "UTC"), Err(WindowError::Empty("01:00".into())));
        assert_eq!(window("Mon", "01:00", "02:00", "Mars/Olympus"), Err(WindowError::Zone("Mars/Olympus".into())));
        assert_eq!(window("Xyz", "01:00", "02:00", "UTC"), Err(WindowError::Day("Xyz".into())));
        let e = window("Mon", "01:00", "02:00", "Mars/Olympus").unwrap_err().to_string();
        assert!(e.contains("unknown time zone `Mars/Olympus`"), "{e}");
    }

    #[test]
    fn a_window_follows_the_local_clock_in_winter_and_summer() {
        let w = window("Mon-Fri", "01:00", "04:00", "Europe/Berlin").unwrap();
        // Monday 2026-01-05, CET (UTC+1).
        assert!(!open(&w, "2026-01-04T23:59:59Z"), "00:59 local");
        assert!(open(&w, "2026-01-05T00:00:00Z"), "01:00 local");
        assert!(open(&w, "2026-01-05T02:59:59Z"));
        assert!(!open(&w, "2026-01-05T03:00:00Z"), "04:00 local: the end is not in the window");
        // Saturday 2026-01-10.
        assert!(!open(&w, "2026-01-10T00:30:00Z"));
        // Monday 2026-07-06, CEST (UTC+2).
        assert!(open(&w, "2026-07-05T23:00:00Z"), "01:00 local");
        assert!(!open(&w, "2026-07-06T02:00:00Z"), "04:00 local");
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let w = window("Fri", "22:00", "02:00", "UTC").unwrap();
        assert!(open(&w, "2026-01-09T22:00:00Z"), "Friday 22:00");
        assert!(open(&w, "2026-01-10T01:59:00Z"), "Saturday 01:59, still Friday's window");
        assert!(!open(&w, "2026-01-10T02:00:00Z"));
        assert!(!open(&w, "2026-01-09T01:00:00Z"), "Friday 01:00 belongs to Thursday's window");
        assert!(!open(&w, "2026-01-10T22:30:00Z"), "Saturday evening");
        let midnight = window("Sun", "22:00", "00:00", "UTC").unwrap();
        assert!(open(&midnight, "2026-01-11T23:59:00Z"));
        assert!(!open(&midnight, "2026-01-12T00:00:00Z"));
    }

    #[test]
    fn a_spring_gap_moves_times_forward() {
        // Berlin, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let across = window("Sun", "01:00", "04:00", "Europe/Berlin").unwrap();
        assert!(open(&across, "2026-03-29T00:00:00Z"), "01:00 CET");
        assert!(open(&across, "2026-03-29T01:59:00Z"), "03:59 CEST");
        assert!(!open(&across, "2026-03-29T02:00:00Z"), "04:00 CEST: two real hours that night");
        let in_gap = window("Sun", "02:30", "05:00", "Europe/Berlin").unwrap();
        assert!(!open(&in_gap, "2026-03-29T01:15:00Z"), "03:15 CEST: 02:30 did not exist, it is 03:30");
        assert!(open(&in_gap, "2026-03-29T01:30:00Z"), "03:30 CEST");
        assert!(!open(&in_gap, "2026-03-29T03:00:00Z"), "05:00 CEST");
        assert!(open(&in_gap, "2026-04-05T00:30:00Z"), "the next Sunday, 02:30 CEST");
    }

    #[test]
    fn an_autumn_fold_takes_the_earlier_time() {
        // Berlin, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:00-03:00 twice.
        let from_fold = window("Sun", "02:30", "04:00", "Europe/Berlin").unwrap();
        assert!(!open(&from_fold, "2026-10-25T00:29:00Z"), "02:29 CEST");
        assert!(open(&from_fold, "2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        assert!(open(&from_fold, "2026-10-25T01:45:00Z"), "02:45 CET, the second pass");
        assert!(open(&from_fold, "2026-10-25T02:59:00Z"), "03:59 CET");
        assert!(!open(&from_fold, "2026-10-25T03:00:00Z"), "04:00 CET");
        let to_fold = window("Sun", "01:00", "02:30", "Europe/Berlin").unwrap();
        assert!(open(&to_fold, "2026-10-25T00:15:00Z"), "02:15 CEST");
        assert!(!open(&to_fold, "2026-10-25T01:15:00Z"), "02:15 CET: the window ended at the first 02:30");
    }

    #[test]
    fn milliseconds_and_equality() {
        let w = window("Mon-Sun", "00:00", "12:00", "UTC").unwrap();
        let ms = |s: &str| s.parse::<Timestamp>().unwrap().as_millisecond();
        assert!(w.is_open_at_ms(ms("2026-01-05T11:59:59Z")));
        assert!(!w.is_open_at_ms(ms("2026-01-05T12:00:00Z")));
        assert_eq!(w, window("Mon-Sun", "00:00", "12:00", "UTC").unwrap());
        assert_ne!(w, window("mon-sun", "00:00", "12:00", "UTC").unwrap(), "compared as given");
    }
}
