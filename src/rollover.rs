//! rollover_billing_periods(): every active or trialing subscription whose
//! period ended by `at` is canceled (`cancel_at_period_end`) or moves on by
//! its plan's interval, several periods at once if runs were missed (the
//! period arithmetic is dialer.subscription_period(), core/src/billing.rs);
//! a subscription whose row describes no next period is skipped and
//! reported; and every active subscription gets the usage row of its current
//! period. Set-based statements, one at a time under the rollover's lock
//! (src/locks.rs), so running it twice at once is safe.

use crate::errors::spi;
use crate::plans;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError, SpiTupleTable};
use pgrx::Uuid;

/// Ended periods: canceled, renewed, or skipped when no next period exists.
const ROLL: &str = "
    WITH ended AS (
        SELECT sub.id, sub.current_period_start, sub.current_period_end,
               coalesce(sub.billing_anchor, sub.current_period_start) AS anchor,
               coalesce(sub.cancel_at_period_end, false) AS cancel, next.period_start, next.period_end
        FROM public.user_subscriptions sub
        JOIN public.subscription_plans p ON p.id = sub.plan_id
        LEFT JOIN LATERAL dialer.subscription_period(
            sub.current_period_start, sub.current_period_end,
            coalesce(sub.billing_anchor, sub.current_period_start), p.\"interval\",
            true, false, $1) AS next ON true
        WHERE sub.status IN ('active', 'trialing') AND sub.current_period_end <= $1
        FOR UPDATE OF sub
    ), canceled AS (
        UPDATE public.user_subscriptions sub SET status = 'canceled'
        FROM ended e
        WHERE sub.id = e.id AND e.cancel
        RETURNING sub.id, sub.user_id, 'canceled'::text, e.current_period_start, e.current_period_end
    ), renewed AS (
        UPDATE public.user_subscriptions sub
        SET current_period_start = e.period_start, current_period_end = e.period_end, billing_anchor = e.anchor
        FROM ended e
        WHERE sub.id = e.id AND NOT e.cancel AND e.period_start IS NOT NULL
        RETURNING sub.id, sub.user_id, 'renewed'::text, sub.current_period_start, sub.current_period_end
    )
    SELECT id AS subscription_id, user_id, text AS action, current_period_start AS period_start,
           current_period_end AS period_end
    FROM canceled
    UNION ALL
    SELECT * FROM renewed
    UNION ALL
    SELECT e.id, sub.user_id, 'skipped', e.current_period_start, e.current_period_end
    FROM ended e JOIN public.user_subscriptions sub ON sub.id = e.id
    WHERE NOT e.cancel AND e.period_start IS NULL";

/// The usage row of every active subscription's current period, where
/// missing; its remaining figures count calls already reserved in it.
const OPEN_USAGE: &str = "
    INSERT INTO public.user_call_usage AS cu
        (user_id, subscription_id, billing_period_start, billing_period_end,
         calls_used, minutes_used, calls_remaining, minutes_remaining)
    SELECT sub.user_id, sub.id, sub.current_period_start, sub.current_period_end, 0, 0,
           dialer.remaining(p.call_limit, 0, r.calls), p.minutes_limit
    FROM public.user_subscriptions sub JOIN public.subscription_plans p ON p.id = sub.plan_id
    CROSS JOIN LATERAL dialer.reserved_calls_in(sub.user_id, sub.current_period_start,
                                                sub.current_period_end) AS r
    WHERE sub.status IN ('active', 'trialing')
      AND sub.current_period_start <= $1 AND $1 < sub.current_period_end
      AND NOT EXISTS (SELECT 1 FROM public.user_call_usage u
                      WHERE u.subscription_id = sub.id AND u.billing_period_start = sub.current_period_start)
    ON CONFLICT (subscription_id, billing_period_start) WHERE subscription_id IS NOT NULL DO NOTHING
    RETURNING cu.subscription_id, cu.user_id, 'usage-opened' AS action,
              cu.billing_period_start AS period_start, cu.billing_period_end AS period_end";

/// What the rollover did to one subscription.
type Action = (
    Uuid,
    Uuid,
    String,
    TimestampWithTimeZone,
    TimestampWithTimeZone,
);

fn read_actions(rows: SpiTupleTable<'_>) -> Result<Vec<Action>, SpiError> {
    rows.map(|r| {
        Ok((
            r.get_by_name::<Uuid, _>("subscription_id")?
                .expect("a subscription"),
            r.get_by_name::<Uuid, _>("user_id")?.expect("a user"),
            r.get_by_name::<String, _>("action")?.expect("an action"),
            r.get_by_name::<TimestampWithTimeZone, _>("period_start")?
                .expect("a start"),
            r.get_by_name::<TimestampWithTimeZone, _>("period_end")?
                .expect("an end"),
        ))
    })
    .collect()
}

fn roll(client: &SpiClient<'_>, at: TimestampWithTimeZone) -> Result<Vec<Action>, SpiError> {
    let mut actions = read_actions(plans::query(client, ROLL, &[at.into()])?)?;
    actions.extend(read_actions(plans::query(
        client,
        OPEN_USAGE,
        &[at.into()],
    )?)?);
    Ok(actions)
}

#[allow(clippy::type_complexity)] // pgrx needs the columns spelled out here
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog)]
fn rollover_billing_periods(
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(subscription_id, Uuid),
        name!(user_id, Uuid),
        name!(action, String),
        name!(period_start, TimestampWithTimeZone),
        name!(period_end, TimestampWithTimeZone),
    ),
> {
    crate::identity::require_worker("rollover_billing_periods");
    let Some(at) = at else {
        return TableIterator::new(Vec::new());
    };
    crate::locks::lock_user(crate::locks::ROLLOVER_KEY);
    TableIterator::new(spi(Spi::connect(|client| roll(client, at))))
}
