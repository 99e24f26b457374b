//! Usage settlement: a result's billed calls and minutes land in the usage
//! row of the billing period its call belongs to (dialer.billing_period(),
//! sql/billing.sql), made when missing, under the user's lock
//! (src/locks.rs); the row's remaining figures are then counted again
//! (core/src/billing.rs, `remaining`, through dialer.remaining()).
//! record_call_result() (src/results.rs) settles every result through
//! [`settle`].

use crate::plans;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::Uuid;

/// The period covering `$2` for user `$1`; with `$3`, also the earlier
/// periods of a subscription and those of ended subscriptions.
const PERIOD: &str = "
    SELECT subscription_id, plan_id, period_start, period_end
    FROM dialer.billing_period($1, $2, earlier => $3, ended => $3)";

/// A usage row of the user's that covers `$2`, the latest: a period no
/// subscription describes any more (an admin removed or changed it).
const USAGE_COVERING: &str = "
    SELECT cu.id FROM public.user_call_usage cu
    WHERE cu.user_id = $1 AND cu.billing_period_start <= $2 AND $2 < cu.billing_period_end
    ORDER BY cu.billing_period_start DESC
    LIMIT 1
    FOR UPDATE";

/// The usage row of a subscription's period, found by its start (an end
/// moved by an admin or a billing sync keeps its usage).
const USAGE_OF_PERIOD: &str = "
    SELECT cu.id, cu.billing_period_end FROM public.user_call_usage cu
    WHERE cu.subscription_id = $1 AND cu.billing_period_start = $2
    FOR UPDATE";

/// Makes the usage row of a period, or moves its end to the period's.
const OPEN_PERIOD: &str = "
    INSERT INTO public.user_call_usage AS cu
        (user_id, subscription_id, billing_period_start, billing_period_end,
         calls_used, minutes_used, calls_remaining, minutes_remaining)
    SELECT $1, $2, $3, $4, 0, 0, p.call_limit, p.minutes_limit
    FROM public.subscription_plans p WHERE p.id = $5
    ON CONFLICT (subscription_id, billing_period_start) WHERE subscription_id IS NOT NULL
    DO UPDATE SET billing_period_end = excluded.billing_period_end
    WHERE cu.billing_period_end IS DISTINCT FROM excluded.billing_period_end";

/// Adds calls and minutes, saturating at the column's maximum.
const ADD_USAGE: &str = "
    UPDATE public.user_call_usage cu
    SET calls_used = least(coalesce(cu.calls_used, 0)::bigint + $2, 2147483647),
        minutes_used = least(coalesce(cu.minutes_used, 0)::bigint + $3, 2147483647)
    WHERE cu.id = $1";

/// The remaining figures of a usage row of a subscription: its plan's limits
/// less what was used and, for calls, reserved (dialer.reserved_calls_in()).
const REFRESH_REMAINING: &str = "
    UPDATE public.user_call_usage u
    SET calls_remaining = dialer.remaining(p.call_limit, coalesce(u.calls_used, 0),
            (SELECT r.calls FROM dialer.reserved_calls_in(u.user_id, u.billing_period_start,
                                                          u.billing_period_end) AS r)),
        minutes_remaining = dialer.remaining(p.minutes_limit, coalesce(u.minutes_used, 0), 0)
    FROM public.user_subscriptions s JOIN public.subscription_plans p ON p.id = s.plan_id
    WHERE u.id = $1 AND s.id = u.subscription_id";

/// A billing period: its subscription, plan and bounds.
struct Period {
    subscription_id: Uuid,
    plan_id: Uuid,
    start: TimestampWithTimeZone,
    end: TimestampWithTimeZone,
}

fn period(
    client: &SpiClient<'_>,
    user_id: Uuid,
    at: TimestampWithTimeZone,
    any: bool,
) -> Result<Option<Period>, SpiError> {
    plans::first(
        client,
        PERIOD,
        &[user_id.into(), at.into(), any.into()],
        |r| {
            Ok(Period {
                subscription_id: r.get_by_name("subscription_id")?.expect("a subscription"),
                plan_id: r.get_by_name("plan_id")?.expect("a plan"),
                start: r.get_by_name("period_start")?.expect("a start"),
                end: r.get_by_name("period_end")?.expect("an end"),
            })
        },
    )
}

/// The usage row, locked, that a call of `user_id` at `at` is billed to:
/// that of the period covering `at`, made if missing; failing that, a row
/// that covers `at` although no subscription describes its period any more;
/// failing that, that of an earlier or ended subscription's period. None
/// when nothing covers `at`.
fn usage_row(
    client: &SpiClient<'_>,
    user_id: Uuid,
    at: TimestampWithTimeZone,
) -> Result<Option<Uuid>, SpiError> {
    let period = match period(client, user_id, at, false)? {
        Some(period) => period,
        None => {
            let covering =
                plans::first(client, USAGE_COVERING, &[user_id.into(), at.into()], |r| {
                    r.get::<Uuid>(1)
                })?
                .flatten();
            if covering.is_some() {
                return Ok(covering);
            }
            match period(client, user_id, at, true)? {
                Some(period) => period,
                None => return Ok(None),
            }
        }
    };
    let of_period = |client: &SpiClient<'_>| {
        plans::first(
            client,
            USAGE_OF_PERIOD,
            &[period.subscription_id.into(), period.start.into()],
            |r| {
                Ok((
                    r.get::<Uuid>(1)?.expect("an id"),
                    r.get::<TimestampWithTimeZone>(2)?,
                ))
            },
        )
    };
    if let Some((id, end)) = of_period(client)? {
        if end == Some(period.end) {
            return Ok(Some(id));
        }
    }
    plans::query(
        client,
        OPEN_PERIOD,
        &[
            user_id.into(),
            period.subscription_id.into(),
            period.start.into(),
            period.end.into(),
            period.plan_id.into(),
        ],
    )?;
    Ok(of_period(client)?.map(|(id, _)| id))
}

/// Bills `calls` and `minutes` of a call of `user_id` at `at` to the usage
/// row of its period (see the module), under the user's lock. Runs with the
/// caller's privileges.
pub fn settle(
    client: &SpiClient<'_>,
    user_id: Uuid,
    at: TimestampWithTimeZone,
    calls: i32,
    minutes: i32,
) -> Result<(), SpiError> {
    crate::locks::lock_user(&user_id.to_string());
    // no subscription period covers the call: nothing to bill against
    let Some(usage_id) = usage_row(client, user_id, at)? else {
        return Ok(());
    };
    plans::query(
        client,
        ADD_USAGE,
        &[
            usage_id.into(),
            i64::from(calls).into(),
            i64::from(minutes).into(),
        ],
    )?;
    plans::query(client, REFRESH_REMAINING, &[usage_id.into()])?;
    Ok(())
}
