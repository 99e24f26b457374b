//! Results and billing: the pure parts of `record_call_result`,
//! `rollover_billing_periods` and usage settlement (core/src/results.rs,
//! core/src/billing.rs), exposed to the SQL in sql/billing.sql.

use crate::errors::{raise, to_result_json};
use pg_dialer_core::billing::{billed_minutes, roll_forward, Interval};
use pg_dialer_core::error::DialerError;
use pg_dialer_core::json;
use pg_dialer_core::results::normalize;
use pgrx::prelude::*;
use pgrx::JsonB;

#[pg_schema]
mod dialer {
    use super::*;
    use chrono::{DateTime, Utc};

    /// A provider's webhook body (as text, so that a body too deep, too large
    /// or with numbers beyond a double is the caller's error, not a crash),
    /// normalized: `{"ok": {...}}` or `{"error": ...}`.
    #[pg_extern(immutable, parallel_safe)]
    fn normalize_call_result(payload: Option<&str>) -> JsonB {
        let payload = payload
            .ok_or_else(|| {
                DialerError::invalid(
                    "payload is required: the webhook body, as the provider sent it",
                )
            })
            .and_then(|text| json::parse("payload", text, json::MAX_PAYLOAD_BYTES));
        to_result_json(
            payload
                .and_then(|p| normalize(&p))
                .map(|webhook| webhook.to_json()),
        )
    }

    /// Minutes billed for a call of `seconds`: per started minute.
    #[pg_extern(immutable, strict, parallel_safe)]
    fn billed_minutes_for(seconds: i32) -> i32 {
        billed_minutes(i64::from(seconds)) as i32
    }

    /// The billing period after one that ended at `period_end_us`, moved on
    /// until it covers `at_us` (all in microseconds since 1970), counted from
    /// the subscription's anchor. No row while the period has not ended.
    #[pg_extern(immutable, strict, parallel_safe)]
    fn roll_billing_period(
        anchor_us: i64,
        period_end_us: i64,
        billing_interval: &str,
        at_us: i64,
    ) -> TableIterator<'static, (name!(period_start_us, i64), name!(period_end_us, i64))> {
        let interval = Interval::parse(billing_interval).unwrap_or_else(|| {
            raise(DialerError::invalid(format!(
                "billing interval {billing_interval:?} is neither monthly nor yearly"
            )))
        });
        let at = |us: i64| {
            DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_else(|| {
                raise(DialerError::invalid(format!(
                    "timestamp {us} is out of range"
                )))
            })
        };
        let period = roll_forward(at(anchor_us), at(period_end_us), interval, at(at_us))
            .map(|(start, end)| (start.timestamp_micros(), end.timestamp_micros()));
        TableIterator::new(period)
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn roll(anchor: &str, end: &str, interval: &str, at: &str) -> Option<String> {
        Spi::get_one_with_args::<String>(
            "SELECT (timestamptz 'epoch' + period_start_us * interval '1 microsecond')::text || ' .. ' ||
                    (timestamptz 'epoch' + period_end_us * interval '1 microsecond')::text
             FROM dialer.roll_billing_period(
                 (extract(epoch FROM $1::timestamptz) * 1e6)::bigint,
                 (extract(epoch FROM $2::timestamptz) * 1e6)::bigint, $3,
                 (extract(epoch FROM $4::timestamptz) * 1e6)::bigint)",
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
            roll("2027-01-31", "2027-02-28", "monthly", "2027-02-27"),
            None
        );
    }

    #[pg_test(error = "billing interval \"weekly\" is neither monthly nor yearly")]
    fn unknown_interval_is_refused() {
        roll("2027-01-31", "2027-02-28", "weekly", "2027-03-01");
    }

    #[pg_test]
    fn minutes_are_billed_per_started_minute() {
        assert_eq!(
            Spi::get_one::<i32>("SELECT dialer.billed_minutes_for(61)").unwrap(),
            Some(2)
        );
    }
}
