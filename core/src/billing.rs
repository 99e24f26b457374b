//! Billing arithmetic: minutes billed for a call, and how a subscription's
//! period moves on.
//!
//! * A call is billed per started minute: 0 s is 0 minutes, 1 to 60 s one
//!   minute, 61 s two.
//! * Periods are counted from the subscription's anchor (the start of its
//!   first period), so that month ends stay put: a period anchored on
//!   January 31 runs to February 28 (29 in a leap year), then to March 31.
//!   Yearly periods anchored on February 29 end on February 28 in other years.

use chrono::{DateTime, Datelike, Months, Utc};

/// Minutes billed for a call of `seconds`.
pub fn billed_minutes(seconds: i64) -> i64 {
    if seconds <= 0 {
        0
    } else {
        (seconds + 59) / 60
    }
}

/// What is left of a plan's limit: the limit less what was used and what
/// is reserved, never below zero; no limit (`None`) is unlimited.
pub fn remaining(limit: Option<i64>, used: i64, reserved: i64) -> Option<i64> {
    limit.map(|limit| limit.saturating_sub(used).saturating_sub(reserved).max(0))
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

/// About how many periods lie from `from` to `to` (at least 1), from the
/// calendar months between them: where the searches below start.
fn periods_estimate(from: DateTime<Utc>, to: DateTime<Utc>, interval: Interval) -> Option<u32> {
    let months = (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month())
        - i64::from(from.month());
    u32::try_from((months / i64::from(interval.months())).max(1)).ok()
}

/// The index `n >= 1` of the first period boundary counted from `anchor`
/// that lies after `t`. Computed from the months between them, then
/// corrected by at most a step or two: no loop over the periods in between,
/// however old the anchor.
fn first_boundary_after(
    anchor: DateTime<Utc>,
    interval: Interval,
    t: DateTime<Utc>,
) -> Option<u32> {
    let mut n = periods_estimate(anchor, t, interval)?;
    while n > 1 && nth_end(anchor, interval, n - 1)? > t {
        n -= 1;
    }
    while nth_end(anchor, interval, n)? <= t {
        n = n.checked_add(1)?;
    }
    Some(n)
}

/// The period that follows one ending at `end`: the first boundary counted
/// from `anchor` that lies after `end`.
pub fn next_period(
    anchor: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Interval,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let n = first_boundary_after(anchor, interval, end)?;
    Some((end, nth_end(anchor, interval, n)?))
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
    let next = next_period(anchor, end, interval)?;
    if next.1 > at {
        return Some(next);
    }
    let n = first_boundary_after(anchor, interval, at)?;
    Some((
        nth_end(anchor, interval, n - 1)?,
        nth_end(anchor, interval, n)?,
    ))
}

/// A subscription's billing periods, as its row describes them.
#[derive(Debug, Clone, Copy)]
pub struct Subscription {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    /// Where its periods are counted from: the start of its first period.
    pub anchor: DateTime<Utc>,
    pub interval: Interval,
    /// Active or trialing and not ending at period end: the periods after
    /// the current one are its own even before a rollover has moved it on.
    pub renews: bool,
}

impl Subscription {
    /// The period of this subscription that covers `at`: its current
    /// period; a later one if it renews (so that an active subscription
    /// works between a period's end and the rollover run that moves it on);
    /// and, if `earlier`, one before its current period, counted from the
    /// anchor (where a late result of an old call is billed).
    pub fn period_covering(
        &self,
        at: DateTime<Utc>,
        earlier: bool,
    ) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.period_start > self.period_end {
            return None;
        }
        if self.period_start <= at && at < self.period_end {
            return Some((self.period_start, self.period_end));
        }
        if at >= self.period_end {
            return if self.renews {
                roll_forward(self.anchor, self.period_end, self.interval, at)
            } else {
                None
            };
        }
        if !earlier {
            return None;
        }
        let (start, end) = if at < self.anchor {
            period_before(self.anchor, self.interval, at)?
        } else if at < nth_end(self.anchor, self.interval, 1)? {
            (self.anchor, nth_end(self.anchor, self.interval, 1)?)
        } else {
            roll_forward(self.anchor, self.anchor, self.interval, at)?
        };
        Some((start, end.min(self.period_start)))
    }
}

/// The boundary `n` periods before `anchor`.
fn nth_start_before(anchor: DateTime<Utc>, interval: Interval, n: u32) -> Option<DateTime<Utc>> {
    anchor.checked_sub_months(Months::new(interval.months().checked_mul(n)?))
}

/// The period before `anchor`, counted back from it, that covers `at`
/// (`at < anchor`): a subscription whose anchor a billing sync moved on still
/// has the periods before it. As `first_boundary_after`, from an estimate.
fn period_before(
    anchor: DateTime<Utc>,
    interval: Interval,
    at: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let mut n = periods_estimate(at, anchor, interval)?;
    while n > 1 && nth_start_before(anchor, interval, n - 1)? <= at {
        n -= 1;
    }
    while nth_start_before(anchor, interval, n)? > at {
        n = n.checked_add(1)?;
    }
    let start = nth_start_before(anchor, interval, n)?;
    let end = if n == 1 {
        anchor
    } else {
        nth_start_before(anchor, interval, n - 1)?
    };
    Some((start, end))
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
    fn remaining_is_the_limit_less_used_and_reserved() {
        assert_eq!(remaining(Some(100), 30, 20), Some(50));
        assert_eq!(remaining(Some(10), 8, 5), Some(0), "never below zero");
        assert_eq!(remaining(None, 8, 5), None, "no limit is unlimited");
        assert_eq!(
            remaining(Some(i64::MIN), i64::MAX, i64::MAX),
            Some(0),
            "no overflow"
        );
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

    fn monthly(start: DateTime<Utc>, end: DateTime<Utc>, renews: bool) -> Subscription {
        Subscription {
            period_start: start,
            period_end: end,
            anchor: day(2027, 1, 31),
            interval: Interval::Monthly,
            renews,
        }
    }

    #[test]
    fn a_renewing_subscription_covers_the_periods_after_its_current_one() {
        let sub = monthly(day(2027, 1, 31), day(2027, 2, 28), true);
        assert_eq!(
            sub.period_covering(day(2027, 2, 10), false),
            Some((day(2027, 1, 31), day(2027, 2, 28)))
        );
        assert_eq!(
            sub.period_covering(day(2027, 2, 28), false),
            Some((day(2027, 2, 28), day(2027, 3, 31)))
        );
        assert_eq!(
            sub.period_covering(day(2027, 6, 1), false),
            Some((day(2027, 5, 31), day(2027, 6, 30)))
        );
        let ending = monthly(day(2027, 1, 31), day(2027, 2, 28), false);
        assert_eq!(ending.period_covering(day(2027, 2, 28), false), None);
    }

    #[test]
    fn earlier_periods_count_from_the_anchor_only_when_asked() {
        let sub = monthly(day(2027, 3, 31), day(2027, 4, 30), true);
        assert_eq!(sub.period_covering(day(2027, 2, 10), false), None);
        assert_eq!(
            sub.period_covering(day(2027, 2, 10), true),
            Some((day(2027, 1, 31), day(2027, 2, 28)))
        );
        assert_eq!(
            sub.period_covering(day(2027, 3, 1), true),
            Some((day(2027, 2, 28), day(2027, 3, 31)))
        );
        // Before the anchor (a billing sync moved the period on and left no
        // anchor): counted back from it.
        assert_eq!(
            sub.period_covering(day(2026, 12, 1), true),
            Some((day(2026, 11, 30), day(2026, 12, 31)))
        );
        let synced = Subscription {
            period_start: day(2027, 2, 15),
            period_end: day(2027, 3, 15),
            anchor: day(2027, 2, 15),
            interval: Interval::Monthly,
            renews: true,
        };
        assert_eq!(
            synced.period_covering(day(2027, 2, 14), true),
            Some((day(2027, 1, 15), day(2027, 2, 15)))
        );
        assert_eq!(
            synced.period_covering(day(2026, 2, 20), true),
            Some((day(2026, 2, 15), day(2026, 3, 15)))
        );
        assert_eq!(synced.period_covering(day(2027, 2, 14), false), None);
        // An earlier period never reaches into the current one.
        let moved = monthly(day(2027, 3, 15), day(2027, 4, 30), true);
        assert_eq!(
            moved.period_covering(day(2027, 3, 1), true),
            Some((day(2027, 2, 28), day(2027, 3, 15)))
        );
    }

    #[test]
    fn an_ancient_anchor_rolls_at_once() {
        let anchor = day(100, 1, 1);
        let at = day(2027, 5, 20);
        assert_eq!(
            roll_forward(anchor, day(100, 2, 1), Interval::Monthly, at),
            Some((day(2027, 5, 1), day(2027, 6, 1)))
        );
        assert_eq!(
            roll_forward(anchor, day(100, 2, 1), Interval::Yearly, at),
            Some((day(2027, 1, 1), day(2028, 1, 1)))
        );
        // The far edge of chrono's range is no period at all, not a panic.
        let far = DateTime::<Utc>::MAX_UTC;
        assert_eq!(
            roll_forward(anchor, day(100, 2, 1), Interval::Monthly, far),
            None
        );
    }

    #[test]
    fn a_period_that_ends_before_it_starts_covers_nothing() {
        let sub = monthly(day(2027, 3, 31), day(2027, 3, 1), true);
        assert_eq!(sub.period_covering(day(2027, 3, 15), true), None);
    }

    #[test]
    fn rolling_matches_stepping_period_by_period() {
        for (y, m, d) in [(2027, 1, 31), (2028, 2, 29), (2027, 3, 30), (2027, 12, 31)] {
            let anchor = day(y, m, d);
            for interval in [Interval::Monthly, Interval::Yearly] {
                let mut period = next_period(anchor, anchor, interval).unwrap();
                for _ in 0..40 {
                    let next = next_period(anchor, period.1, interval).unwrap();
                    assert_eq!(next.0, period.1);
                    assert!(next.1 > next.0);
                    let mid = next.0 + (next.1 - next.0) / 2;
                    assert_eq!(roll_forward(anchor, anchor, interval, mid), Some(next));
                    period = next;
                }
            }
        }
    }
}
