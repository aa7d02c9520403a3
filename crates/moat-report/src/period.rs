//! The period a report covers, and the UTC calendar arithmetic the report needs (days, hours,
//! months), all in Unix milliseconds.

use time::{Month, OffsetDateTime};

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A half-open span of time, `[from_ms, to_ms)`, in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first millisecond covered.
    pub from_ms: i64,
    /// The first millisecond no longer covered.
    pub to_ms: i64,
}

impl Period {
    /// The period `[from_ms, to_ms)`; `None` unless `from_ms < to_ms`.
    pub fn new(from_ms: i64, to_ms: i64) -> Option<Period> {
        (from_ms < to_ms).then_some(Period { from_ms, to_ms })
    }

    /// The period of the same length that ends where this one starts.
    pub fn previous(&self) -> Period {
        let len = self.len_ms();
        Period {
            from_ms: self.from_ms.saturating_sub(len),
            to_ms: self.from_ms,
        }
    }

    /// Its length in milliseconds.
    pub fn len_ms(&self) -> i64 {
        self.to_ms.saturating_sub(self.from_ms)
    }

    /// Its length in days (fractional for a period that is not whole days).
    pub fn days(&self) -> f64 {
        self.len_ms() as f64 / DAY_MS as f64
    }

    /// Whether `ts_ms` falls inside.
    pub fn contains(&self, ts_ms: i64) -> bool {
        self.from_ms <= ts_ms && ts_ms < self.to_ms
    }

    /// Whether it is exactly one calendar month (UTC).
    pub fn is_calendar_month(&self) -> bool {
        let (Some(from), Some(to)) = (datetime(self.from_ms), datetime(self.to_ms)) else {
            return false;
        };
        let midnight_first = |d: OffsetDateTime| d.day() == 1 && d.time() == time::Time::MIDNIGHT;
        let next = match from.month() {
            Month::December => (from.year() + 1, Month::January),
            m => (from.year(), m.next()),
        };
        midnight_first(from) && midnight_first(to) && (to.year(), to.month()) == next
    }

    /// How many milliseconds of each calendar month (UTC) it covers, with the length of that
    /// month, in time order.
    pub fn month_overlaps(&self) -> Vec<MonthOverlap> {
        let mut out = Vec::new();
        let mut at = self.from_ms;
        while at < self.to_ms {
            let Some((start, end)) = month_bounds(at) else {
                break;
            };
            let until = end.min(self.to_ms);
            out.push(MonthOverlap {
                covered_ms: until - at,
                month_ms: end - start,
            });
            at = until;
        }
        out
    }
}

/// The part of one calendar month a period covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthOverlap {
    /// Milliseconds of the month inside the period.
    pub covered_ms: i64,
    /// The month's whole length in milliseconds.
    pub month_ms: i64,
}

/// The start of the UTC hour holding `ts_ms`.
pub fn hour_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The start of the UTC day holding `ts_ms`.
pub fn day_start(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS) * DAY_MS
}

/// `2026-10-01`, the UTC date of `ts_ms`.
pub fn date_label(ts_ms: i64) -> String {
    match datetime(ts_ms) {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        None => ts_ms.to_string(),
    }
}

/// `2026-10-01 14:00`, the UTC date and minute of `ts_ms`.
pub fn minute_label(ts_ms: i64) -> String {
    match datetime(ts_ms) {
        Some(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute()
        ),
        None => ts_ms.to_string(),
    }
}

/// The label of a period: `2026-10-01 – 2026-10-31` (the last day covered, inclusive).
pub fn period_label(period: &Period) -> String {
    let last = period.to_ms.saturating_sub(1);
    if day_start(period.from_ms) == period.from_ms && day_start(period.to_ms) == period.to_ms {
        format!("{} – {}", date_label(period.from_ms), date_label(last))
    } else {
        format!(
            "{} – {} UTC",
            minute_label(period.from_ms),
            minute_label(period.to_ms)
        )
    }
}

fn datetime(ts_ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000).ok()
}

/// The UTC calendar month holding `ts_ms`, as `[start, end)` in ms.
fn month_bounds(ts_ms: i64) -> Option<(i64, i64)> {
    let d = datetime(ts_ms)?;
    let first = time::Date::from_calendar_date(d.year(), d.month(), 1).ok()?;
    let next = match d.month() {
        Month::December => time::Date::from_calendar_date(d.year() + 1, Month::January, 1),
        m => time::Date::from_calendar_date(d.year(), m.next(), 1),
    }
    .ok()?;
    let ms = |date: time::Date| date.midnight().assume_utc().unix_timestamp() * 1000;
    Some((ms(first), ms(next)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    // 2026-10-01T00:00:00Z and 2026-11-01T00:00:00Z.
    const OCT: i64 = 1_790_812_800_000;
    const NOV: i64 = OCT + 31 * DAY_MS;

    #[test]
    fn october_is_a_calendar_month() {
        let p = Period::new(OCT, NOV).unwrap();
        assert!(p.is_calendar_month());
        assert_eq!(p.previous().len_ms(), 31 * DAY_MS);
        assert_eq!(date_label(OCT), "2026-10-01");
        assert_eq!(period_label(&p), "2026-10-01 – 2026-10-31");
        assert_eq!(
            p.month_overlaps(),
            vec![MonthOverlap {
                covered_ms: 31 * DAY_MS,
                month_ms: 31 * DAY_MS
            }]
        );
    }

    #[test]
    fn a_span_across_months_is_split() {
        let p = Period::new(OCT + 16 * DAY_MS, NOV + 15 * DAY_MS).unwrap();
        assert!(!p.is_calendar_month());
        assert_eq!(
            p.month_overlaps(),
            vec![
                MonthOverlap {
                    covered_ms: 15 * DAY_MS,
                    month_ms: 31 * DAY_MS
                },
                MonthOverlap {
                    covered_ms: 15 * DAY_MS,
                    month_ms: 30 * DAY_MS
                },
            ]
        );
        assert!(Period::new(OCT, OCT).is_none());
    }
}
