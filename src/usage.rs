//! compute_remaining_usage(): what is left of a user's plan in the billing
//! period that covers a time (dialer.billing_period()), for the caller or,
//! for an admin or service_role, for anyone. It runs with the caller's
//! privileges: row level security shows a user only their own rows.

use crate::errors::spi;
use crate::plans;
use pg_dialer_core::billing::remaining;
use pgrx::prelude::*;
use pgrx::Uuid;

/// The plan, usage and reservations of the period covering a time:
/// dialer.billing_period(), dialer.period_usage() and
/// dialer.reserved_calls_in() (sql/billing.sql), which the planner inlines
/// into the kept plan.
const PERIOD_USAGE: &str = "
    SELECT bp.subscription_id, bp.plan_name, bp.period_start, bp.period_end, bp.call_limit, bp.minutes_limit,
           pu.calls_used, pu.minutes_used, r.calls AS reserved
    FROM dialer.billing_period($1, $2) AS bp
    CROSS JOIN LATERAL dialer.period_usage($1, bp.period_start) AS pu
    CROSS JOIN LATERAL dialer.reserved_calls_in($1, bp.period_start, bp.period_end) AS r";

/// compute_remaining_usage()'s row.
type Remaining = (
    Uuid,
    Option<String>,
    TimestampWithTimeZone,
    TimestampWithTimeZone,
    Option<i32>,
    i64,
    i64,
    Option<i64>,
    Option<i32>,
    i64,
    Option<i64>,
);

#[allow(clippy::type_complexity)] // pgrx needs the columns spelled out here
#[pg_extern(stable, parallel_safe)]
#[search_path(pg_catalog)]
fn compute_remaining_usage(
    user_id: default!(Option<Uuid>, "NULL"),
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(subscription_id, Uuid),
        name!(plan_name, Option<String>),
        name!(period_start, TimestampWithTimeZone),
        name!(period_end, TimestampWithTimeZone),
        name!(calls_limit, Option<i32>),
        name!(calls_used, i64),
        name!(calls_reserved, i64),
        name!(calls_remaining, Option<i64>),
        name!(minutes_limit, Option<i32>),
        name!(minutes_used, i64),
        name!(minutes_remaining, Option<i64>),
    ),
> {
    // one's own usage, or anyone's for an admin or service_role
    let target = crate::identity::acting_for(user_id, "see usage");
    let Some(at) = at else {
        return TableIterator::new(None);
    };
    let row: Option<Remaining> = spi(Spi::connect(|client| {
        plans::first(client, PERIOD_USAGE, &[target.into(), at.into()], |r| {
            let calls_limit: Option<i32> = r.get_by_name("call_limit")?;
            let minutes_limit: Option<i32> = r.get_by_name("minutes_limit")?;
            let calls_used = r.get_by_name::<i64, _>("calls_used")?.unwrap_or(0);
            let minutes_used = r.get_by_name::<i64, _>("minutes_used")?.unwrap_or(0);
            let reserved = r.get_by_name::<i64, _>("reserved")?.unwrap_or(0);
            Ok((
                r.get_by_name::<Uuid, _>("subscription_id")?
                    .expect("a period has its subscription"),
                r.get_by_name("plan_name")?,
                r.get_by_name::<TimestampWithTimeZone, _>("period_start")?
                    .expect("a period has a start"),
                r.get_by_name::<TimestampWithTimeZone, _>("period_end")?
                    .expect("a period has an end"),
                calls_limit,
                calls_used,
                reserved,
                remaining(calls_limit.map(i64::from), calls_used, reserved),
                minutes_limit,
                minutes_used,
                remaining(minutes_limit.map(i64::from), minutes_used, 0),
            ))
        })
    }));
    TableIterator::new(row)
}
