//! Results and billing: the pure parts of `record_call_result`,
//! `rollover_billing_periods` and usage settlement (core/src/results.rs,
//! core/src/billing.rs), exposed to the SQL in sql/billing.sql.

use pg_dialer_core::billing::{remaining, Interval, Subscription};
use pgrx::prelude::*;

#[pg_schema]
mod dialer {
    use super::*;

    /// What is left of a plan's limit (core/src/billing.rs, `remaining`):
    /// the limit less used and reserved, never below zero; NULL (no limit)
    /// stays NULL.
    #[pg_extern(immutable, strict, parallel_safe, name = "remaining")]
    fn plan_remaining(limit: i64, used: i64, reserved: i64) -> i64 {
        remaining(Some(limit), used, reserved).unwrap_or(0)
    }

    /// The one definition of the period of a subscription that covers `at`,
    /// given its current period
    /// (core/src/billing.rs, `Subscription::period_covering`): its current
    /// period; a later one if it `renews`; an earlier one, counted from its
    /// anchor, if `earlier`. No row when none does, or when the row's
    /// timestamps (infinite, reversed) describe no period: an odd row makes
    /// its own subscription cover nothing and stops nobody else.
    #[pg_extern(immutable, parallel_safe)]
    fn subscription_period(
        current_start: Option<TimestampWithTimeZone>,
        current_end: Option<TimestampWithTimeZone>,
        anchor: Option<TimestampWithTimeZone>,
        billing_interval: Option<&str>,
        renews: Option<bool>,
        earlier: Option<bool>,
        at: Option<TimestampWithTimeZone>,
    ) -> TableIterator<
        'static,
        (
            name!(period_start, TimestampWithTimeZone),
            name!(period_end, TimestampWithTimeZone),
        ),
    > {
        let (Some(start), Some(end), Some(at)) = (current_start, current_end, at) else {
            return TableIterator::new(None);
        };
        // The current period needs no arithmetic, so that infinite bounds
        // still cover what lies between them.
        let (s, e, t): (i64, i64, i64) = (start.into_inner(), end.into_inner(), at.into_inner());
        if s <= t && t < e {
            return TableIterator::new(Some((start, end)));
        }
        let period = (|| {
            let subscription = Subscription {
                period_start: to_chrono(start)?,
                period_end: to_chrono(end)?,
                anchor: to_chrono(anchor.unwrap_or(start))?,
                interval: Interval::parse(billing_interval?)?,
                renews: renews.unwrap_or(false),
            };
            let (s, e) = subscription.period_covering(to_chrono(at)?, earlier.unwrap_or(false))?;
            Some((from_chrono(s)?, from_chrono(e)?))
        })();
        TableIterator::new(period)
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A PostgreSQL timestamp as chrono's, `None` for infinity and for what
/// chrono cannot hold.
fn to_chrono(t: TimestampWithTimeZone) -> Option<chrono::DateTime<chrono::Utc>> {
    if t.is_infinity() || t.is_neg_infinity() {
        return None;
    }
    let pg: i64 = t.into_inner();
    chrono::DateTime::from_timestamp_micros(pg.checked_add(PG_EPOCH_US)?)
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Option<TimestampWithTimeZone> {
    TimestampWithTimeZone::try_from(t.timestamp_micros().checked_sub(PG_EPOCH_US)?).ok()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn roll(anchor: &str, end: &str, interval: &str, at: &str) -> Option<String> {
        Spi::get_one_with_args::<String>(
            "SELECT period_start::text || ' .. ' || period_end::text
             FROM dialer.subscription_period($1::timestamptz, $2::timestamptz, $1::timestamptz, $3, true, false,
                                             $4::timestamptz)",
            &[anchor.into(), end.into(), interval.into(), at.into()],
        )
        .ok()
        .flatten()
    }

    #[pg_test]
    fn month_ends_through_sql() {
        Spi::run("SET TIME ZONE 'UTC'").unwrap();
        assert_eq!(
            roll("2027-01-31", "2027-02-28", "monthly", "2027-02-28").as_deref(),
            Some("2027-02-28 00:00:00+00 .. 2027-03-31 00:00:00+00")
        );
        assert_eq!(
            roll("2027-01-31", "2027-02-28", "monthly", "2027-02-27").as_deref(),
            Some("2027-01-31 00:00:00+00 .. 2027-02-28 00:00:00+00")
        );
        assert_eq!(
            roll("0100-01-01", "0100-02-01", "monthly", "2027-05-20").as_deref(),
            Some("2027-05-01 00:00:00+00 .. 2027-06-01 00:00:00+00")
        );
    }

    #[pg_test]
    fn odd_rows_cover_nothing_and_raise_nothing() {
        Spi::run("SET TIME ZONE 'UTC'").unwrap();
        assert_eq!(
            roll("2027-01-31", "2027-02-28", "weekly", "2027-03-01"),
            None
        );
        assert_eq!(
            roll("-infinity", "2027-02-28", "monthly", "2027-03-01"),
            None
        );
        assert_eq!(
            roll("2027-01-31", "infinity", "monthly", "294276-12-31").as_deref(),
            Some("2027-01-31 00:00:00+00 .. infinity")
        );
        assert_eq!(
            roll("2027-03-31", "2027-02-28", "monthly", "2027-03-01"),
            None
        );
        assert_eq!(
            roll("-infinity", "2027-02-28", "monthly", "2027-02-01").as_deref(),
            Some("-infinity .. 2027-02-28 00:00:00+00")
        );
        assert_eq!(
            roll(
                "2027-01-31",
                "2027-02-28",
                "monthly",
                "294276-12-31 23:59:59"
            ),
            None
        );
    }
}
