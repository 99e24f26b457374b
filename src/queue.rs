//! Queueing a call: the checks every queued call passes, whether it comes
//! through `enqueue_call()` or a direct INSERT or UPDATE of `call_queue`
//! (trigger `validate_queued_call`, see sql/queue.sql).

use crate::errors::{spi, to_result_json};
use crate::identity::{caller_is_privileged, current_identity};
use crate::plans;
use crate::settings;
use pg_dialer_core::error::{quoted, DialerError};
use pg_dialer_core::params::TemplateParams;
use pg_dialer_core::phone::parse_e164;
use pg_dialer_core::retry::AfterFailure;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::{Map, Value};

fn seconds(secs: f64) -> Interval {
    Interval::new(0, 0, (secs * 1e6).round() as i64)
        .expect("a delay of at most a week fits an interval")
}

#[pg_schema]
mod dialer {
    use super::*;

    /// Checks a queued call (the row as `to_jsonb(NEW)`, and `to_jsonb(OLD)`
    /// on UPDATE). Returns `{"ok": {column: value}}` with the values to store
    /// (the normalized number, the default user and time), or `{"error": ...}`.
    #[pg_extern(volatile, parallel_unsafe)]
    fn check_queued_call(new_row: JsonB, old_row: Option<JsonB>) -> JsonB {
        to_result_json(super::check(&new_row.0, old_row.as_ref().map(|r| &r.0)).map(Value::Object))
    }

    /// The delay before a call's next attempt after `attempts_made` attempts,
    /// or NULL when the call has had its last attempt (or the failure is not
    /// retryable). `jitter` is a random number in [0, 1).
    #[pg_extern(stable, parallel_safe)]
    fn retry_delay(attempts_made: i32, retryable: bool, jitter: f64) -> Option<Interval> {
        let attempts = u32::try_from(attempts_made).unwrap_or(0);
        match settings::retry_policy().after_failure(attempts, retryable, jitter) {
            AfterFailure::GiveUp => None,
            AfterFailure::RetryAfter(secs) => Some(seconds(secs)),
        }
    }

    /// pg_dialer.stale_call_timeout as an interval.
    #[pg_extern(stable, strict, parallel_safe)]
    fn stale_call_timeout() -> Interval {
        seconds(f64::from(settings::STALE_CALL_TIMEOUT.get()))
    }

    /// Checks a template's `params` and `params_order` (see core/src/params.rs).
    /// Returns NULL, or `{"error": ...}`.
    #[pg_extern(immutable, parallel_safe)]
    fn check_template_params(params: Option<JsonB>, params_order: Option<JsonB>) -> Option<JsonB> {
        TemplateParams::parse(
            params.as_ref().map(|p| &p.0),
            params_order.as_ref().map(|p| &p.0),
        )
        .err()
        .map(|err| to_result_json(Err(err)))
    }
}

fn text<'a>(row: &'a Value, column: &str) -> Option<&'a str> {
    row.get(column).and_then(Value::as_str)
}

fn check(new: &Value, old: Option<&Value>) -> Result<Map<String, Value>, DialerError> {
    Spi::connect(|client| check_with(client, new, old))
}

fn check_with(
    client: &SpiClient<'_>,
    new: &Value,
    old: Option<&Value>,
) -> Result<Map<String, Value>, DialerError> {
    let identity = current_identity();
    let privileged = caller_is_privileged();
    let mut patch = Map::new();

    let user_id = match text(new, "user_id") {
        Some(id) => id.to_owned(),
        None => {
            let me = identity
                .user_id
                .ok_or_else(|| DialerError::forbidden("sign in to queue calls"))?;
            patch.insert("user_id".into(), me.to_string().into());
            me.to_string()
        }
    };
    if !privileged && identity.user_id.map(|u| u.to_string()).as_deref() != Some(user_id.as_str()) {
        return Err(
            DialerError::forbidden("you can only queue calls for yourself")
                .with_hint("Leave user_id out: it defaults to you."),
        );
    }
    let own = if privileged { "the user's" } else { "your" };
    let user = user_id.as_str();

    let recipient = text(new, "recipient_number")
        .ok_or_else(|| DialerError::invalid("recipient_number is required"))?;
    let recipient = parse_e164("recipient_number", recipient)?;
    patch.insert("recipient_number".into(), recipient.e164.clone().into());

    // One user's quota checks run one at a time, until their transactions end.
    // The same statement reads now(), the default call time.
    let now = spi(plans::first(
        client,
        "SELECT dialer.lock_user($1::uuid), now()::text",
        &[user.into()],
        |r| r.get::<String>(2),
    ))
    .flatten()
    .expect("now() is not null");
    let call_time = match text(new, "scheduled_time") {
        Some(t) => t.to_owned(),
        None => {
            patch.insert("scheduled_time".into(), now.clone().into());
            now
        }
    };

    let self_id = text(new, "id");
    if old.is_none() {
        if let Some(key) = text(new, "idempotency_key") {
            // The same key again: the INSERT meets the unique index and enqueue_call
            // returns the call queued first, so no quota is taken twice.
            let taken = spi(plans::first(
                client,
                "SELECT 1 FROM public.call_queue WHERE user_id = $1::uuid AND idempotency_key = $2",
                &[user.into(), key.into()],
                |_| Ok(()),
            ));
            if taken.is_some() {
                return Ok(patch);
            }
        }
    }

    let mut providers: Vec<(&str, String)> = Vec::new();

    if let Some(number_id) = text(new, "caller_number_id") {
        let found = spi(plans::first(
            client,
            "SELECT user_id::text, provider_id::text, coalesce(is_active, false)
             FROM public.user_phone_numbers WHERE id = $1::uuid",
            &[number_id.into()],
            |r| Ok((r.get::<String>(1)?, r.get::<String>(2)?, r.get::<bool>(3)?)),
        ));
        match found {
            Some((Some(owner), Some(provider), Some(active))) if owner == user_id => {
                if !active {
                    return Err(DialerError::invalid(format!(
                        "caller number {number_id} is not active"
                    )));
                }
                providers.push(("caller number", provider));
            }
            _ => {
                return Err(DialerError::not_found(format!(
                    "caller_number_id {number_id} is not one of {own} phone numbers"
                )))
            }
        }
    }

    let mut template_voice: Option<String> = None;
    let variables = new.get("custom_variables");
    if let Some(template_id) = text(new, "template_id") {
        let template = spi(plans::first(
            client,
            "SELECT name, coalesce(is_public, false), created_by::text, provider_id::text, voice_id::text,
                    params, params_order
             FROM public.call_templates WHERE id = $1::uuid",
            &[template_id.into()],
            |r| {
                Ok((
                    r.get::<String>(1)?.unwrap_or_default(),
                    r.get::<bool>(2)?.unwrap_or(false),
                    r.get::<String>(3)?,
                    r.get::<String>(4)?,
                    r.get::<String>(5)?,
                    r.get::<JsonB>(6)?.map(|j| j.0),
                    r.get::<JsonB>(7)?.map(|j| j.0),
                ))
            },
        ));
        let Some((name, is_public, created_by, provider, voice, params, order)) = template else {
            return Err(DialerError::not_found(format!(
                "template {template_id} not found"
            )));
        };
        if !is_public && created_by.as_deref() != Some(user) {
            return Err(DialerError::not_found(format!(
                "template {template_id} not found"
            )));
        }
        let params = TemplateParams::parse(params.as_ref(), order.as_ref()).map_err(|err| {
            DialerError::invalid(format!(
                "template {} has invalid params: {}",
                quoted(&name),
                err.message
            ))
        })?;
        params.check(variables)?;
        if let Some(provider) = provider {
            providers.push(("template", provider));
        }
        template_voice = voice;
    } else {
        TemplateParams::default().check(variables)?;
    }

    let mut premium_voice = None;
    if let Some(voice_id) = text(new, "voice_id").map(str::to_owned).or(template_voice) {
        let found = spi(plans::first(
            client,
            "SELECT coalesce(is_active, false), coalesce(is_premium, false), provider_id::text
             FROM public.voice_options WHERE id = $1::uuid",
            &[voice_id.as_str().into()],
            |r| Ok((r.get::<bool>(1)?, r.get::<bool>(2)?, r.get::<String>(3)?)),
        ));
        let Some((Some(active), Some(premium), Some(provider))) = found else {
            return Err(DialerError::not_found(format!(
                "voice {voice_id} not found"
            )));
        };
        if !active {
            return Err(DialerError::invalid(format!(
                "voice {voice_id} is not available"
            )));
        }
        if premium {
            premium_voice = Some(voice_id);
        }
        providers.push(("voice", provider));
    }
    if let Some((first_source, first)) = providers.first() {
        if let Some((source, other)) = providers.iter().find(|(_, p)| p != first) {
            return Err(DialerError::invalid(format!(
                "the call's {first_source} belongs to provider {first} but its {source} to provider {other}"
            ))
            .with_hint("A call goes out through one provider: pick a caller number, template and voice of the same provider."));
        }
    }

    check_subscription(client, user, &call_time, self_id, premium_voice.as_deref())?;
    Ok(patch)
}

/// The user needs an active or trialing subscription covering the call time,
/// a plan that allows a premium voice if one is used, and room in the plan's
/// limits: calls used plus calls reserved (queued or in progress in the same
/// period) stay under `call_limit`; minutes used stay under `minutes_limit`.
fn check_subscription(
    client: &SpiClient<'_>,
    user: &str,
    call_time: &str,
    self_id: Option<&str>,
    premium_voice: Option<&str>,
) -> Result<(), DialerError> {
    let subscription = spi(plans::first(
        client,
        "SELECT p.name, s.current_period_start::text, s.current_period_end::text,
                p.call_limit, p.minutes_limit,
                coalesce(p.features -> 'premium_voices' = 'true'::jsonb, false)
         FROM public.user_subscriptions s
         JOIN public.subscription_plans p ON p.id = s.plan_id
         WHERE s.user_id = $1::uuid AND s.status IN ('active', 'trialing')
           AND s.current_period_start <= $2::timestamptz AND $2::timestamptz < s.current_period_end
         ORDER BY s.current_period_end DESC
         LIMIT 1",
        &[user.into(), call_time.into()],
        |r| {
            Ok((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<i32>(4)?,
                r.get::<i32>(5)?,
                r.get::<bool>(6)?.unwrap_or(false),
            ))
        },
    ));
    let Some((plan, period_start, period_end, call_limit, minutes_limit, premium_allowed)) =
        subscription
    else {
        return Err(DialerError::payment_required(format!(
            "no active subscription covers the call time {call_time}"
        ))
        .with_hint("Subscribe to a plan, or schedule the call within a paid billing period."));
    };
    if let (Some(voice), false) = (premium_voice, premium_allowed) {
        return Err(DialerError::payment_required(format!(
            "voice {voice} is premium and plan {} does not include premium voices",
            quoted(&plan)
        ))
        .with_hint(
            "Choose a standard voice, or a plan whose features include \"premium_voices\": true.",
        ));
    }
    if call_limit.is_none() && minutes_limit.is_none() {
        return Ok(());
    }
    // Used (settled) and reserved (queued or in progress) in the period.
    let (calls_used, minutes_used, reserved) = spi(plans::first(
        client,
        "SELECT (SELECT coalesce(sum(calls_used), 0)::bigint FROM public.user_call_usage
                 WHERE user_id = $1::uuid AND billing_period_start = $2::timestamptz
                   AND billing_period_end = $3::timestamptz),
                (SELECT coalesce(sum(minutes_used), 0)::bigint FROM public.user_call_usage
                 WHERE user_id = $1::uuid AND billing_period_start = $2::timestamptz
                   AND billing_period_end = $3::timestamptz),
                (SELECT count(*) FROM public.call_queue
                 WHERE user_id = $1::uuid AND status IN ('queued', 'in-progress')
                   AND coalesce(scheduled_time, created_at) >= $2::timestamptz
                   AND coalesce(scheduled_time, created_at) < $3::timestamptz
                   AND id IS DISTINCT FROM $4::uuid)",
        &[
            user.into(),
            period_start.as_str().into(),
            period_end.as_str().into(),
            self_id.into(),
        ],
        |r| {
            Ok((
                r.get::<i64>(1)?.unwrap_or(0),
                r.get::<i64>(2)?.unwrap_or(0),
                r.get::<i64>(3)?.unwrap_or(0),
            ))
        },
    ))
    .expect("an aggregate returns a row");
    if let Some(limit) = call_limit {
        if calls_used + reserved >= i64::from(limit) {
            return Err(DialerError::payment_required(format!(
                "call limit reached: plan {} allows {limit} calls per billing period",
                quoted(&plan)
            ))
            .with_detail(format!(
                "{calls_used} calls used and {reserved} queued or in progress in the period {period_start} to {period_end}"
            ))
            .with_hint("Upgrade the plan, cancel a queued call, or schedule the call in the next period."));
        }
    }
    if let Some(limit) = minutes_limit {
        if minutes_used >= i64::from(limit) {
            return Err(DialerError::payment_required(format!(
                "minute limit reached: plan {} allows {limit} minutes per billing period",
                quoted(&plan)
            ))
            .with_detail(format!(
                "{minutes_used} minutes used in the period {period_start} to {period_end}"
            )));
        }
    }
    Ok(())
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn delay(attempts: i32, retryable: bool, jitter: f64) -> Option<String> {
        Spi::get_one_with_args::<String>(
            "SELECT extract(epoch FROM dialer.retry_delay($1, $2, $3))::text",
            &[attempts.into(), retryable.into(), jitter.into()],
        )
        .unwrap()
    }

    #[pg_test]
    fn retry_delay_follows_the_settings() {
        assert_eq!(delay(1, true, 0.0).as_deref(), Some("30.000000"));
        assert_eq!(delay(2, true, 0.0).as_deref(), Some("60.000000"));
        assert_eq!(delay(3, true, 0.0), None, "three attempts by default");
        assert_eq!(delay(1, false, 0.0), None, "not retryable");
        Spi::run("SET LOCAL pg_dialer.max_attempts = 5").unwrap();
        Spi::run("SET LOCAL pg_dialer.retry_base_delay = '10s'").unwrap();
        assert_eq!(delay(3, true, 0.0).as_deref(), Some("20.000000"));
    }

    #[pg_test]
    fn template_params_are_checked() {
        assert_eq!(
            Spi::get_one::<bool>(
                "SELECT dialer.check_template_params('{\"a\": {\"type\": \"string\"}}', NULL) IS NULL"
            )
            .unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT dialer.check_template_params('{\"a\": {\"type\": \"uuid\"}}', NULL) -> 'error' ->> 'code'"
            )
            .unwrap()
            .as_deref(),
            Some("22023")
        );
    }
}
