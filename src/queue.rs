//! Queueing a call: the checks every queued call passes, whether it comes
//! through `enqueue_call()` or a direct INSERT or UPDATE of `call_queue`
//! (trigger `validate_queued_call`, see sql/queue.sql).

use crate::errors::{spi, to_result_json};
use crate::identity::{caller_is_privileged, current_identity};
use crate::plans;
use crate::settings;
use pg_dialer_core::error::{quoted, DialerError, ErrorKind};
use pg_dialer_core::json;
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

    /// Checks a queued call (the row as `to_jsonb(NEW)::text`, and
    /// `to_jsonb(OLD)::text` on UPDATE). Returns `{"ok": {column: value}}`
    /// with the values to store (the normalized number, the default user and
    /// time), or `{"error": ...}`. The rows come as text so that variables
    /// too deep or too large are the caller's error, not a crash.
    #[pg_extern(volatile, parallel_unsafe)]
    fn check_queued_call(new_row: &str, old_row: Option<&str>) -> JsonB {
        let parsed = json::parse("custom_variables", new_row, ROW_BYTES).and_then(|new| {
            let old = old_row
                .map(|o| json::parse("custom_variables", o, ROW_BYTES))
                .transpose()?;
            Ok((new, old))
        });
        to_result_json(
            parsed
                .and_then(|(new, old)| super::check(&new, old.as_ref()))
                .map(Value::Object),
        )
    }

    /// Cancels a queued call for `cancel_call()`: the caller's own, or any
    /// for an admin or service_role. Returns NULL, or `{"error": ...}` (PT404
    /// for a call that is not there or not the caller's, PT409 for one that
    /// is no longer queued). The update runs with the owner's privileges, as a
    /// user's own update policy keeps a call queued.
    #[pg_extern(volatile, strict, parallel_unsafe)]
    #[search_path(pg_catalog)]
    fn cancel_queued_call(call_id: pgrx::Uuid) -> Option<JsonB> {
        super::cancel(call_id)
            .err()
            .map(|err| to_result_json(Err(err)))
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

    /// Checks a template's `params` and `params_order` (see core/src/params.rs),
    /// as text. Returns NULL, or `{"error": ...}`.
    #[pg_extern(immutable, parallel_safe)]
    fn check_template_params(params: Option<&str>, params_order: Option<&str>) -> Option<JsonB> {
        let parse = |field, text: Option<&str>| {
            text.map(|t| json::parse(field, t, json::MAX_FIELD_BYTES))
                .transpose()
        };
        parse("params", params)
            .and_then(|params| Ok((params, parse("params_order", params_order)?)))
            .and_then(|(params, order)| TemplateParams::parse(params.as_ref(), order.as_ref()))
            .err()
            .map(|err| to_result_json(Err(err)))
    }
}

fn cancel(call_id: pgrx::Uuid) -> Result<(), DialerError> {
    let me = current_identity().user_id.map(|id| id.to_string());
    let privileged = caller_is_privileged();
    let found = spi(crate::identity::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT user_id::text, status FROM public.call_queue WHERE id = $1 FOR UPDATE",
                    None,
                    &[call_id.into()],
                )?
                .next()
                .map(|r| Ok((r.get::<String>(1)?, r.get::<String>(2)?)))
                .transpose()
        })
    }));
    let not_found = || DialerError::not_found(format!("call {call_id} not found"));
    let (owner, status) = found.ok_or_else(not_found)?;
    if !privileged && owner != me {
        return Err(not_found());
    }
    if status.as_deref() != Some("queued") {
        return Err(DialerError::new(
            ErrorKind::Conflict,
            format!(
                "call {call_id} is {}; only a queued call can be canceled",
                status.unwrap_or_default()
            ),
        ));
    }
    spi(crate::identity::as_extension_owner(|| {
        Spi::run_with_args(
            "UPDATE public.call_queue SET status = 'canceled' WHERE id = $1",
            &[call_id.into()],
        )
    }));
    Ok(())
}

/// The largest `call_queue` row read: its variables and a little more.
const ROW_BYTES: usize = json::MAX_FIELD_BYTES + 64 * 1024;
/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

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
    let privileged = caller_is_privileged();
    let mut patch = Map::new();
    let user_id = call_owner(new, privileged, &mut patch)?;
    let user = user_id.as_str();

    let recipient = text(new, "recipient_number")
        .ok_or_else(|| DialerError::invalid("recipient_number is required"))?;
    let recipient = parse_e164("recipient_number", recipient)?;
    patch.insert("recipient_number".into(), recipient.e164.clone().into());

    let caller_number_id = text(new, "caller_number_id");
    let template_id = text(new, "template_id");
    let voice_id = text(new, "voice_id");
    // The user's lock, taken before the account is read below: the quota
    // counts see what earlier holders of the lock committed.
    crate::locks::lock_user(user);
    let lookups = load_lookups(client, caller_number_id, template_id, voice_id);

    let call_time = match text(new, "scheduled_time") {
        Some(t) => t.to_owned(),
        None => {
            patch.insert("scheduled_time".into(), lookups.now.clone().into());
            lookups.now.clone()
        }
    };
    let key = idempotency_key(new, old)?;
    let account = load_account(client, user, &call_time, text(new, "id"), key);

    // Numbers that cost the caller extra: only where the plan or the DBA
    // allows their kind.
    let mut allowed = account.allowed_number_types.clone();
    allowed.extend(settings::allowed_number_types());
    recipient.check_cost("recipient_number", &allowed)?;

    // The providers of what the call uses, which must be one.
    let mut providers: Vec<(&str, &str)> = Vec::new();
    if let Some(number_id) = caller_number_id {
        check_caller_number(&lookups, number_id, user, privileged, &mut providers)?;
    }
    check_template(
        &lookups,
        template_id,
        user,
        new.get("custom_variables"),
        &mut providers,
    )?;
    check_voice(&lookups, voice_id, &mut providers)?;
    if let Some((first_source, first)) = providers.first() {
        if let Some((source, other)) = providers.iter().find(|(_, p)| p != first) {
            return Err(DialerError::invalid(format!(
                "the call's {first_source} belongs to provider {first} but its {source} to provider {other}"
            ))
            .with_hint("A call goes out through one provider: pick a caller number, template and voice of the same provider."));
        }
    }

    let premium_voice = lookups
        .voice_id
        .as_deref()
        .filter(|_| lookups.voice_premium);
    check_account(&account, premium_voice)?;
    Ok(patch)
}

/// The user the call is queued for (core/src/claims.rs, `acting_for`),
/// written into the row when it names none.
fn call_owner(
    new: &Value,
    privileged: bool,
    patch: &mut Map<String, Value>,
) -> Result<String, DialerError> {
    let target = text(new, "user_id")
        .map(|id| {
            uuid::Uuid::parse_str(id)
                .map_err(|_| DialerError::invalid(format!("user_id {id:?} is not a UUID")))
        })
        .transpose()?;
    let me = current_identity().user_id;
    let user_id =
        pg_dialer_core::claims::acting_for(me, privileged, target, "queue calls")?.to_string();
    if target.is_none() {
        patch.insert("user_id".into(), user_id.clone().into());
    }
    Ok(user_id)
}

/// The call's caller number, template and voice (`LOOKUPS`), with the
/// owner's privileges: a user's view of voice_options hides inactive voices,
/// which must be refused as such (22023) like for anyone else. What a user
/// may use is checked by the steps below, not left to RLS.
fn load_lookups(
    client: &SpiClient<'_>,
    caller_number_id: Option<&str>,
    template_id: Option<&str>,
    voice_id: Option<&str>,
) -> Lookups {
    spi(crate::identity::as_extension_owner(|| {
        plans::first(
            client,
            LOOKUPS,
            &[caller_number_id.into(), template_id.into(), voice_id.into()],
            |r| {
                Ok(Lookups {
                    now: r.get::<String>(1)?.unwrap_or_default(),
                    caller_owner: r.get(2)?,
                    caller_provider: r.get(3)?,
                    caller_active: r.get::<bool>(4)?.unwrap_or(false),
                    template_name: r.get(5)?,
                    template_public: r.get::<bool>(6)?.unwrap_or(false),
                    template_owner: r.get(7)?,
                    template_provider: r.get(8)?,
                    template_params: r.get(9)?,
                    template_params_order: r.get(10)?,
                    voice_id: r.get(11)?,
                    voice_active: r.get::<bool>(12)?.unwrap_or(false),
                    voice_premium: r.get::<bool>(13)?.unwrap_or(false),
                    voice_provider: r.get(14)?,
                    template_voice: r.get(15)?,
                })
            },
        )
    }))
    .expect("the lookups return one row")
}

/// The idempotency key the account query looks for (a new call's only),
/// after checking its length on every write.
fn idempotency_key<'a>(
    new: &'a Value,
    old: Option<&Value>,
) -> Result<Option<&'a str>, DialerError> {
    if let Some(key) = text(new, "idempotency_key") {
        if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
            return Err(DialerError::invalid(format!(
                "idempotency_key is {} characters long; at most {MAX_IDEMPOTENCY_KEY_CHARS} are accepted",
                key.chars().count()
            )));
        }
    }
    Ok(if old.is_none() {
        text(new, "idempotency_key")
    } else {
        None
    })
}

/// The user's plan, period, usage and reservations at the call's time
/// (`ACCOUNT`), read under the user's lock.
fn load_account(
    client: &SpiClient<'_>,
    user: &str,
    call_time: &str,
    call_id: Option<&str>,
    key: Option<&str>,
) -> Account {
    spi(plans::first(
        client,
        ACCOUNT,
        &[user.into(), call_time.into(), call_id.into(), key.into()],
        |r| {
            Ok(Account {
                key_holder_reserved: r.get::<bool>(1)?.unwrap_or(false),
                plan: r.get(2)?,
                period_start: r.get::<String>(3)?.unwrap_or_default(),
                period_end: r.get::<String>(4)?.unwrap_or_default(),
                call_limit: r.get(5)?,
                minutes_limit: r.get(6)?,
                premium_voices: r.get::<bool>(7)?.unwrap_or(false),
                allowed_number_types: r.get::<Vec<String>>(8)?.unwrap_or_default(),
                calls_used: r.get::<i64>(9)?.unwrap_or(0),
                minutes_used: r.get::<i64>(10)?.unwrap_or(0),
                reserved: r.get::<i64>(11)?.unwrap_or(0),
                call_time: r.get::<String>(12)?.unwrap_or_default(),
            })
        },
    ))
    .expect("the account query returns one row")
}

/// The caller number is the user's and active; its provider joins
/// `providers`.
fn check_caller_number<'a>(
    lookups: &'a Lookups,
    number_id: &str,
    user: &str,
    privileged: bool,
    providers: &mut Vec<(&'static str, &'a str)>,
) -> Result<(), DialerError> {
    let own = if privileged { "the user's" } else { "your" };
    if lookups.caller_owner.as_deref() != Some(user) {
        return Err(DialerError::not_found(format!(
            "caller_number_id {number_id} is not one of {own} phone numbers"
        )));
    }
    if !lookups.caller_active {
        return Err(DialerError::invalid(format!(
            "caller number {number_id} is not active"
        )));
    }
    if let Some(provider) = &lookups.caller_provider {
        providers.push(("caller number", provider));
    }
    Ok(())
}

/// The variables fit, the template is the user's or public, and the
/// variables are what its params declare (none without a template); the
/// template's provider joins `providers`.
fn check_template<'a>(
    lookups: &'a Lookups,
    template_id: Option<&str>,
    user: &str,
    variables: Option<&Value>,
    providers: &mut Vec<(&'static str, &'a str)>,
) -> Result<(), DialerError> {
    if let Some(variables) = variables {
        json::check_size("custom_variables", variables, json::MAX_FIELD_BYTES)?;
    }
    let Some(template_id) = template_id else {
        return TemplateParams::default().check(variables).map(drop);
    };
    let not_found = || DialerError::not_found(format!("template {template_id} not found"));
    let Some(name) = &lookups.template_name else {
        return Err(not_found());
    };
    if !lookups.template_public && lookups.template_owner.as_deref() != Some(user) {
        return Err(not_found());
    }
    let params = json::parse_field("params", lookups.template_params.as_deref())
        .and_then(|params| {
            let order =
                json::parse_field("params_order", lookups.template_params_order.as_deref())?;
            TemplateParams::parse(params.as_ref(), order.as_ref())
        })
        .map_err(|err| {
            DialerError::invalid(format!(
                "template {} has invalid params: {}",
                quoted(name),
                err.message
            ))
        })?;
    params.check(variables)?;
    if let Some(provider) = &lookups.template_provider {
        providers.push(("template", provider));
    }
    Ok(())
}

/// The call's voice, else the template's, exists and is available; its
/// provider joins `providers`.
fn check_voice<'a>(
    lookups: &'a Lookups,
    voice_id: Option<&str>,
    providers: &mut Vec<(&'static str, &'a str)>,
) -> Result<(), DialerError> {
    if let Some(voice) = &lookups.voice_id {
        if !lookups.voice_active {
            return Err(DialerError::invalid(format!(
                "voice {voice} is not available"
            )));
        }
        if let Some(provider) = &lookups.voice_provider {
            providers.push(("voice", provider));
        }
    } else if let Some(voice) = voice_id.or(lookups.template_voice.as_deref()) {
        return Err(DialerError::not_found(format!("voice {voice} not found")));
    }
    Ok(())
}

/// The call's caller number, template and voice (the call's voice, else
/// the template's), in one statement.
const LOOKUPS: &str = "
    SELECT now()::text,
           cn.user_id::text, cn.provider_id::text, coalesce(cn.is_active, false),
           t.name, coalesce(t.is_public, false), t.created_by::text, t.provider_id::text, t.params::text, t.params_order::text,
           v.id::text, coalesce(v.is_active, false), coalesce(v.is_premium, false), v.provider_id::text,
           t.voice_id::text
    FROM (SELECT 1) AS one
    LEFT JOIN public.user_phone_numbers cn ON cn.id = $1::uuid
    LEFT JOIN public.call_templates t ON t.id = $2::uuid
    LEFT JOIN public.voice_options v ON v.id = coalesce($3::uuid, t.voice_id)";

/// The subscription period that covers now (dialer.billing_period()),
/// whether it covers the call time too (a call is queued into the current
/// period only: a renewing subscription's later periods are not sold in
/// advance), what was used (dialer.period_usage()) and reserved in it, and
/// whether that reservation includes a call holding the same idempotency
/// key, in one statement; the SQL functions are inlined into the kept plan.
const ACCOUNT: &str = "
    SELECT r.key_holder_reserved,
           CASE WHEN $2::timestamptz >= s.period_start AND $2::timestamptz < s.period_end THEN s.plan_name END,
           s.period_start::text, s.period_end::text, s.call_limit, s.minutes_limit, s.premium_voices,
           coalesce(s.allowed_number_types, '{}'), u.calls_used, u.minutes_used, r.reserved,
           -- the call time as PostgreSQL reads it: a bad one is the caller's
           -- 22007 even where no subscription would have read it
           $2::timestamptz::text
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL dialer.billing_period($1::uuid, now()) AS s ON true
    LEFT JOIN LATERAL dialer.period_usage($1::uuid, s.period_start) AS u ON true
    -- the calls dialer.reserved_calls_in() counts, less the call checked
    -- (an UPDATE of a queued call), and whether one holds the key
    LEFT JOIN LATERAL (
        SELECT count(*) AS reserved,
               coalesce(bool_or(q.idempotency_key = $4), false) AS key_holder_reserved
        FROM public.call_queue q
        WHERE q.user_id = $1::uuid AND q.status IN ('queued', 'in-progress')
          AND coalesce(q.scheduled_time, q.created_at) >= s.period_start
          AND coalesce(q.scheduled_time, q.created_at) < s.period_end
          AND q.id IS DISTINCT FROM $3::uuid) AS r ON true";

struct Lookups {
    now: String,
    caller_owner: Option<String>,
    caller_provider: Option<String>,
    caller_active: bool,
    template_name: Option<String>,
    template_public: bool,
    template_owner: Option<String>,
    template_provider: Option<String>,
    /// As text: parsed with the caps, so that an odd row a DBA wrote is a
    /// clear 22023 naming the template.
    template_params: Option<String>,
    template_params_order: Option<String>,
    voice_id: Option<String>,
    voice_active: bool,
    voice_premium: bool,
    voice_provider: Option<String>,
    template_voice: Option<String>,
}

struct Account {
    /// A call holding the same idempotency key is among the reserved calls.
    key_holder_reserved: bool,
    plan: Option<String>,
    period_start: String,
    period_end: String,
    call_limit: Option<i32>,
    minutes_limit: Option<i32>,
    premium_voices: bool,
    /// The plan's `features.allowed_number_types`.
    allowed_number_types: Vec<String>,
    calls_used: i64,
    minutes_used: i64,
    reserved: i64,
    /// The call time, as PostgreSQL writes it.
    call_time: String,
}

/// The user needs an active or trialing subscription covering the call time,
/// a plan that allows a premium voice if one is used, and room in the plan's
/// limits: calls used plus calls reserved (queued or in progress in the same
/// period) stay under `call_limit`; minutes used stay under `minutes_limit`.
fn check_account(account: &Account, premium_voice: Option<&str>) -> Result<(), DialerError> {
    let Some(plan) = &account.plan else {
        return Err(DialerError::payment_required(format!(
            "no active subscription covers the call time {}",
            account.call_time
        ))
        .with_hint("Subscribe to a plan, or schedule the call within a paid billing period."));
    };
    if let (Some(voice), false) = (premium_voice, account.premium_voices) {
        return Err(DialerError::payment_required(format!(
            "voice {voice} is premium and plan {} does not include premium voices",
            quoted(plan)
        ))
        .with_hint(
            "Choose a standard voice, or a plan whose features include \"premium_voices\": true.",
        ));
    }
    // A call with an idempotency key that a reserved call holds either meets
    // the unique index (and is not queued) or replaces that call, should a
    // concurrent transaction delete it: it takes no room of its own. Every
    // other check above applies to it all the same.
    let reserved = account.reserved - i64::from(account.key_holder_reserved);
    let used = account.calls_used;
    let period = format!("{} to {}", account.period_start, account.period_end);
    if let Some(limit) = account.call_limit {
        if used + reserved >= i64::from(limit) {
            return Err(DialerError::payment_required(format!(
                "call limit reached: plan {} allows {limit} calls per billing period",
                quoted(plan)
            ))
            .with_detail(format!(
                "{used} calls used and {reserved} queued or in progress in the period {period}"
            ))
            .with_hint(
                "Upgrade the plan, cancel a queued call, or schedule the call in the next period.",
            ));
        }
    }
    if let Some(limit) = account.minutes_limit {
        if account.minutes_used >= i64::from(limit) {
            return Err(DialerError::payment_required(format!(
                "minute limit reached: plan {} allows {limit} minutes per billing period",
                quoted(plan)
            ))
            .with_detail(format!(
                "{} minutes used in the period {period}",
                account.minutes_used
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
