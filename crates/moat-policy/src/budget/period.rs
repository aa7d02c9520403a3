//! Budget periods as UTC calendar windows, and the text forms a budget message needs.

use moat_core::Money;
use std::ops::Range;
use time::{Date, Duration, Month, OffsetDateTime};

/// Earliest and latest instants given windows (years 1 to 9999); clock readings outside are
/// clamped, which no real clock reaches.
const MIN_SECS: i64 = -62_135_596_800;
const MAX_SECS: i64 = 253_402_300_799;

/// A budget period: a UTC calendar day, ISO week (Monday 00:00 UTC) or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// A UTC calendar day.
    Day,
    /// An ISO week, Monday 00:00 UTC to the next Monday.
    Week,
    /// A UTC calendar month.
    Month,
}

impl Period {
    /// The lower-case name used in config, logs and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The adjective used in messages ("daily budget").
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
        }
    }

    /// The window holding `now_ms`, as Unix milliseconds from its start (inclusive) to its end
    /// (exclusive).
    pub fn window(self, now_ms: i64) -> Range<i64> {
        let secs = now_ms.div_euclid(1000).clamp(MIN_SECS, MAX_SECS);
        let Ok(now) = OffsetDateTime::from_unix_timestamp(secs) else {
            return i64::MIN..i64::MAX;
        };
        let today = now.date();
        let start = match self {
            Period::Day => today,
            Period::Week => {
                let since_monday = i64::from(today.weekday().number_days_from_monday());
                today
                    .checked_sub(Duration::days(since_monday))
                    .unwrap_or(today)
            }
            Period::Month => today.replace_day(1).unwrap_or(today),
        };
        let end = match self {
            Period::Day => start.next_day(),
            Period::Week => start.checked_add(Duration::days(7)),
            Period::Month => first_of_next_month(start),
        };
        midnight_ms(start)..end.map_or(i64::MAX, midnight_ms)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Money as dollars with at least two decimals and no float: `$4.99`, `$0.0015`, `-$1.00`.
pub(crate) fn dollars(money: Money) -> String {
    let sign = if money.0 < 0 { "-" } else { "" };
    let micros = money.0.unsigned_abs();
    let mut fraction = format!("{:06}", micros % 1_000_000);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{sign}${}.{fraction}", micros / 1_000_000)
}

/// An instant as RFC 3339 in UTC (`2026-11-23T00:00:00Z`), at second precision.
pub(crate) fn rfc3339(ms: i64) -> String {
    let formatted = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
    formatted.unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

fn first_of_next_month(first: Date) -> Option<Date> {
    let (year, month) = match first.month() {
        Month::December => (first.year().checked_add(1)?, Month::January),
        month => (first.year(), month.next()),
    };
    Date::from_calendar_date(year, month, 1).ok()
}

fn midnight_ms(date: Date) -> i64 {
    date.midnight().assume_utc().unix_timestamp() * 1000
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(text: &str) -> i64 {
        let at =
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap()
    }

    fn window(period: Period, at: &str) -> (String, String) {
        let range = period.window(ms(at));
        (rfc3339(range.start), rfc3339(range.end))
    }

    fn pair(start: &str, end: &str) -> (String, String) {
        (start.to_owned(), end.to_owned())
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(
            window(Period::Day, "2026-11-22T23:59:59.999Z"),
            pair("2026-11-22T00:00:00Z", "2026-11-23T00:00:00Z")
        );
        assert_eq!(
            window(Period::Day, "2026-11-23T00:00:00Z"),
            pair("2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z")
        );
        assert_eq!(
            window(Period::Day, "2026-12-31T12:00:00Z"),
            pair("2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            window(Period::Day, "1969-12-31T23:59:59.500Z"),
            pair("1969-12-31T00:00:00Z", "1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn weeks_start_on_monday_and_cross_months_and_years() {
        // 2026-11-22 is a Sunday, 2026-11-23 a Monday.
        assert_eq!(
            window(Period::Week, "2026-11-22T23:59:59Z"),
            pair("2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z")
        );
        assert_eq!(
            window(Period::Week, "2026-11-23T00:00:00Z"),
            pair("2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z")
        );
        // The week of 2026-12-31 (a Thursday) runs into 2027.
        assert_eq!(
            window(Period::Week, "2026-12-31T08:00:00Z"),
            pair("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
        );
        assert_eq!(
            window(Period::Week, "2027-01-03T23:00:00Z"),
            pair("2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z")
        );
        // 1970-01-01 was a Thursday.
        assert_eq!(
            window(Period::Week, "1970-01-01T00:00:00Z"),
            pair("1969-12-29T00:00:00Z", "1970-01-05T00:00:00Z")
        );
    }

    #[test]
    fn months_have_their_own_lengths_and_leap_years() {
        assert_eq!(
            window(Period::Month, "2028-02-29T23:59:59Z"),
            pair("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
        );
        let feb_2027 = Period::Month.window(ms("2027-02-10T00:00:00Z"));
        assert_eq!(feb_2027.end - feb_2027.start, 28 * 86_400_000);
        let feb_2028 = Period::Month.window(ms("2028-02-10T00:00:00Z"));
        assert_eq!(feb_2028.end - feb_2028.start, 29 * 86_400_000);
        assert_eq!(
            window(Period::Month, "2026-12-31T23:59:59.999Z"),
            pair("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(
            window(Period::Month, "2027-01-01T00:00:00Z"),
            pair("2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z")
        );
    }

    #[test]
    fn clock_readings_out_of_range_still_give_a_window() {
        for period in [Period::Day, Period::Week, Period::Month] {
            let late = period.window(i64::MAX);
            assert!(late.start < late.end);
            let early = period.window(i64::MIN);
            assert!(early.start < early.end);
        }
    }

    #[test]
    fn dollars_are_exact_with_at_least_two_decimals() {
        assert_eq!(dollars(Money(5_000_000)), "$5.00");
        assert_eq!(dollars(Money(4_990_000)), "$4.99");
        assert_eq!(dollars(Money(1_234_567)), "$1.234567");
        assert_eq!(dollars(Money(1_500)), "$0.0015");
        assert_eq!(dollars(Money(0)), "$0.00");
        assert_eq!(dollars(Money(-1_000_000)), "-$1.00");
        assert_eq!(dollars(Money(i64::MIN)), "-$9223372036854.775808");
    }
}
