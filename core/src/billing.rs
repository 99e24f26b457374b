//! Billing arithmetic: minutes billed for a call, and how a subscription's
//! period moves on.
//!
//! * A call is billed per started minute: 0 s is 0 minutes, 1 to 60 s one
//!   minute, 61 s two.
//! * Periods are counted from the subscription's anchor (the start of its
//!   first period), so that month ends stay put: a period anchored on
//!   January 31 runs to February 28 (29 in a leap year), then to March 31.
//!   Yearly periods anchored on February 29 end on February 28 in other years.

use chrono::{DateTime, Months, Utc};

/// Minutes billed for a call of `seconds`.
pub fn billed_minutes(seconds: i64) -> i64 {
    if seconds <= 0 {
        0
    } else {
        (seconds + 59) / 60
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Monthly,
    Yearly,
}

impl Interval {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "monthly" => Some(Interval::Monthly),
            "yearly" => Some(Interval::Yearly),
            _ => None,
        }
    }

    fn months(self) -> u32 {
        match self {
            Interval::Monthly => 1,
            Interval::Yearly => 12,
        }
    }
}

/// The end of the `n`th period after `anchor`.
fn nth_end(anchor: DateTime<Utc>, interval: Interval, n: u32) -> Option<DateTime<Utc>> {
    anchor.checked_add_months(Months::new(interval.months().checked_mul(n)?))
}

/// The period that follows one ending at `end`: the first boundary counted
/// from `anchor` that lies after `end`.
pub fn next_period(
    anchor: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Interval,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    // Start from an estimate and step to the first boundary after `end`.
    let mut n = 1;
    loop {
        let next_end = nth_end(anchor, interval, n)?;
        if next_end > end {
            return Some((end, next_end));
        }
        n += 1;
        if n > 100_000 {
            return None;
        }
    }
}

/// Moves a period that ended at or before `at` on until it covers `at`,
/// however many periods were missed. Returns `None` when the period has not
/// ended yet.
pub fn roll_forward(
    anchor: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Interval,
    at: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if end > at {
        return None;
    }
    let mut period = next_period(anchor, end, interval)?;
    while period.1 <= at {
        period = next_period(anchor, period.1, interval)?;
    }
    Some(period)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn minutes_are_billed_per_started_minute() {
        assert_eq!(billed_minutes(0), 0);
        assert_eq!(billed_minutes(-5), 0);
        assert_eq!(billed_minutes(1), 1);
        assert_eq!(billed_minutes(60), 1);
        assert_eq!(billed_minutes(61), 2);
        assert_eq!(billed_minutes(3600), 60);
    }

    #[test]
    fn month_ends_stay_put() {
        let anchor = day(2027, 1, 31);
        let feb = next_period(anchor, anchor, Interval::Monthly).unwrap();
        assert_eq!(feb, (day(2027, 1, 31), day(2027, 2, 28)));
        let mar = next_period(anchor, feb.1, Interval::Monthly).unwrap();
        assert_eq!(mar, (day(2027, 2, 28), day(2027, 3, 31)));
        let apr = next_period(anchor, mar.1, Interval::Monthly).unwrap();
        assert_eq!(apr.1, day(2027, 4, 30));
    }

    #[test]
    fn leap_years() {
        let anchor = day(2028, 1, 31);
        assert_eq!(
            next_period(anchor, anchor, Interval::Monthly).unwrap().1,
            day(2028, 2, 29)
        );
        let leap_day = day(2028, 2, 29);
        let y1 = next_period(leap_day, leap_day, Interval::Yearly).unwrap();
        assert_eq!(y1.1, day(2029, 2, 28));
        let y4 = roll_forward(leap_day, y1.1, Interval::Yearly, day(2031, 6, 1)).unwrap();
        assert_eq!(y4, (day(2031, 2, 28), day(2032, 2, 29)));
    }

    #[test]
    fn missed_periods_are_skipped_at_once() {
        let anchor = day(2027, 1, 15);
        let end = day(2027, 2, 15);
        let at = day(2027, 5, 20);
        assert_eq!(
            roll_forward(anchor, end, Interval::Monthly, at),
            Some((day(2027, 5, 15), day(2027, 6, 15)))
        );
    }

    #[test]
    fn an_end_exactly_at_the_boundary_rolls() {
        let anchor = day(2027, 1, 1);
        let end = day(2027, 2, 1);
        assert_eq!(
            roll_forward(anchor, end, Interval::Monthly, end),
            Some((day(2027, 2, 1), day(2027, 3, 1)))
        );
        assert_eq!(
            roll_forward(anchor, end, Interval::Monthly, day(2027, 1, 31)),
            None
        );
    }

    #[test]
    fn times_of_day_are_kept() {
        let anchor = Utc.with_ymd_and_hms(2027, 3, 31, 13, 45, 7).unwrap();
        let (_, end) = next_period(anchor, anchor, Interval::Monthly).unwrap();
        assert_eq!(end, Utc.with_ymd_and_hms(2027, 4, 30, 13, 45, 7).unwrap());
    }

    #[test]
    fn intervals_parse() {
        assert_eq!(Interval::parse("monthly"), Some(Interval::Monthly));
        assert_eq!(Interval::parse("yearly"), Some(Interval::Yearly));
        assert_eq!(Interval::parse("weekly"), None);
    }
}
