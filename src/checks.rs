//! The checks every queued call passes, in two parts: what a request's calls
//! share, checked once per request (`check_request`: the user's lock, the
//! campaign, caller number, template and voice, the subscription), and what
//! each call brings (`check_call`: recipient, variables, idempotency key,
//! calling window, expiry, the call's time), then the quota for all of them
//! (`check_quota`). `enqueue_call()`, the trigger on `call_queue` and
//! `enqueue_calls()` run the same steps.

use crate::errors::spi;
use crate::identity::current_identity;
use crate::plans;
use crate::settings;
use crate::window::{CallWindow, MAX_WINDOW_BYTES};
use pg_dialer_core::error::{quoted, DialerError, ErrorKind};
use pg_dialer_core::json;
use pg_dialer_core::params::TemplateParams;
use pg_dialer_core::phone::PhoneNumber;
use pg_dialer_core::window::Window;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use serde_json::Value;

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// What a request names for its calls (ids as text).
#[derive(Default)]
pub struct Refs<'a> {
    pub caller_number_id: Option<&'a str>,
    pub template_id: Option<&'a str>,
    pub voice_id: Option<&'a str>,
    pub campaign_id: Option<&'a str>,
    /// Every call of the request brings its own window: no default is
    /// read (unless a campaign is named).
    pub window_given: bool,
}

/// What a request's calls share, checked.
pub struct Request {
    pub now: TimestampWithTimeZone,
    pub account: Account,
    /// The template's params (none without a template).
    pub params: TemplateParams,
    /// Kinds of costly numbers the plan or the DBA allows.
    pub allowed_number_types: Vec<String>,
    /// The ids the calls use: their own, else the campaign's.
    pub caller_number_id: Option<String>,
    pub template_id: Option<String>,
    pub voice_id: Option<String>,
    /// A call's window when it has none of its own: the campaign's, else the
    /// user's default (`user_profiles.call_window`), else the DBA's
    /// (`pg_dialer.default_call_window`), else 08:00-21:00 every day. None
    /// when the request said every call brings its own (`window_given`).
    pub default_window: Option<Window>,
    /// A call's latest time when it has none of its own: the campaign's.
    pub default_expires_at: Option<TimestampWithTimeZone>,
}

/// What one call brings.
pub struct CallInput<'a> {
    pub recipient: &'a PhoneNumber,
    pub variables: Option<&'a Value>,
    pub scheduled_time: Option<TimestampWithTimeZone>,
    pub idempotency_key: Option<&'a str>,
    pub call_window: Option<&'a Value>,
    pub expires_at: Option<TimestampWithTimeZone>,
}

/// One call, checked: what is stored.
pub struct CheckedCall {
    /// The recipient in E.164.
    pub recipient_number: String,
    /// Its time: as given (or now), or the next opening of its window.
    pub scheduled_time: TimestampWithTimeZone,
    /// Its window, every key written out.
    pub call_window: Value,
    pub expires_at: Option<TimestampWithTimeZone>,
}

/// The user the call is queued for (core/src/claims.rs, `acting_for`), and
/// that user again when the call named none (to be written into it).
pub fn call_owner(
    target: Option<pgrx::Uuid>,
    privileged: bool,
) -> Result<(String, Option<pgrx::Uuid>), DialerError> {
    let target_id = target.map(|id| uuid::Uuid::from_bytes(*id.as_bytes()));
    let me = current_identity().user_id;
    let user_id = pg_dialer_core::claims::acting_for(me, privileged, target_id, "queue calls")?;
    let named_none = target
        .is_none()
        .then(|| pgrx::Uuid::from_bytes(*user_id.as_bytes()));
    Ok((user_id.to_string(), named_none))
}

/// Takes the user's lock (held until the transaction ends: the quota
/// counts below see what earlier holders committed) and checks what the
/// request's calls share. `call_id` is the call checked again on an UPDATE
/// (left out of the reserved calls); `key` the idempotency key of a new
/// single call.
pub fn check_request(
    client: &SpiClient<'_>,
    user: &str,
    privileged: bool,
    refs: &Refs<'_>,
    call_id: Option<&str>,
    key: Option<&str>,
) -> Result<Request, DialerError> {
    // The caller resolved `user` as the caller's own or one a privileged
    // caller acts for (call_owner); the lock, the lookups and the account
    // are read under the extension's owner in one go.
    let (lookups, account) = spi(crate::identity::as_extension_owner(|| {
        crate::locks::take(client, user)?;
        load_request(client, refs, user, call_id, key)
    }));
    let campaign = refs
        .campaign_id
        .map(|id| check_campaign(&lookups, id, user))
        .transpose()?;
    let from_campaign = |own: Option<&str>, campaign: &Option<String>| {
        own.map(str::to_owned)
            .or_else(|| refs.campaign_id.and(campaign.clone()))
    };
    let caller_number_id = from_campaign(refs.caller_number_id, &lookups.campaign_caller);
    let template_id = from_campaign(refs.template_id, &lookups.campaign_template);
    let voice_id = from_campaign(refs.voice_id, &lookups.campaign_voice);

    // The providers of what the call uses, which must be one.
    let mut providers: Vec<(&str, &str)> = Vec::new();
    if let Some(number_id) = caller_number_id.as_deref() {
        check_caller_number(&lookups, number_id, user, privileged, &mut providers)?;
    }
    let params = template_params(&lookups, template_id.as_deref(), user, &mut providers)?;
    check_voice(&lookups, voice_id.as_deref(), &mut providers)?;
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
    check_plan(&account, premium_voice)?;
    let mut allowed_number_types = account.allowed_number_types.clone();
    allowed_number_types.extend(settings::allowed_number_types());

    let default_window = match (&campaign, &lookups.profile_window) {
        (Some(Some(window)), _) => Some(stored_window("the campaign's call_window", window)?),
        _ if refs.window_given => None,
        (_, Some(window)) => Some(stored_window("the user's default call_window", window)?),
        _ => Some(settings::default_call_window()?),
    };
    Ok(Request {
        now: lookups.now,
        account,
        params,
        allowed_number_types,
        caller_number_id,
        template_id,
        voice_id,
        default_window,
        default_expires_at: refs.campaign_id.and(lookups.campaign_expires_at),
    })
}

/// Checks one call of a checked request; an error names the field it is
/// about (the caller parsed the recipient, field `recipient_number`).
pub fn check_call(
    request: &Request,
    call: &CallInput<'_>,
) -> Result<CheckedCall, (&'static str, DialerError)> {
    let at = |field| move |err| (field, err);
    call.recipient
        .check_cost("recipient_number", &request.allowed_number_types)
        .map_err(at("recipient_number"))?;
    check_key(call.idempotency_key).map_err(at("idempotency_key"))?;
    if let Some(variables) = call.variables {
        json::check_size("custom_variables", variables, json::MAX_FIELD_BYTES)
            .map_err(at("custom_variables"))?;
    }
    request
        .params
        .check(call.variables)
        .map_err(at("custom_variables"))?;

    let window = match call.call_window {
        Some(value) => Window::parse("call_window", value).map_err(at("call_window"))?,
        None => request
            .default_window
            .clone()
            .expect("a request whose calls have no window of their own reads the default"),
    };
    let zones = window.zones(call.recipient).map_err(at("call_window"))?;
    let window = CallWindow { window, zones };
    let asked = call.scheduled_time.unwrap_or(request.now);
    let from = if as_micros(asked) < as_micros(request.now) {
        request.now
    } else {
        asked
    };
    let opening = window.opening(from).map_err(at("call_window"))?;
    let scheduled_time = if as_micros(opening) == as_micros(from) {
        asked
    } else {
        opening
    };

    let expires_at = call.expires_at.or(request.default_expires_at);
    if let Some(expires) = expires_at {
        check_expiry(expires, request.now, scheduled_time, opening != from)
            .map_err(at("expires_at"))?;
    }
    check_call_time(&request.account, scheduled_time).map_err(at("scheduled_time"))?;
    Ok(CheckedCall {
        recipient_number: call.recipient.e164.clone(),
        scheduled_time,
        call_window: window.window.to_json(),
        expires_at,
    })
}

/// Room in the plan's limits for `new_calls` more calls: calls used plus
/// calls reserved (queued or in progress in the period) plus these stay
/// within `call_limit`; minutes used stay under `minutes_limit`.
pub fn check_quota(account: &Account, new_calls: i64) -> Result<(), DialerError> {
    let plan = quoted(account.plan.as_deref().unwrap_or_default());
    // A call with an idempotency key that a reserved call holds either meets
    // the unique index (and is not queued) or replaces that call, should a
    // concurrent transaction delete it: it takes no room of its own. Every
    // other check applies to it all the same.
    let reserved = account.reserved - i64::from(account.key_holder_reserved);
    let used = account.calls_used;
    let period = || format!("{} to {}", as_text(account.starts), as_text(account.ends));
    if let Some(limit) = account.call_limit {
        let room = (i64::from(limit) - used - reserved).max(0);
        if new_calls > room {
            let message = if new_calls == 1 {
                format!("call limit reached: plan {plan} allows {limit} calls per billing period")
            } else {
                format!(
                    "call limit reached: plan {plan} allows {limit} calls per billing period; {room} of the {new_calls} calls would fit"
                )
            };
            return Err(DialerError::payment_required(message)
                .with_detail(format!(
                    "{used} calls used and {reserved} queued or in progress in the period {}", period()
                ))
                .with_hint(
                    "Upgrade the plan, cancel a queued call, or schedule the call in the next period.",
                ));
        }
    }
    if let Some(limit) = account.minutes_limit {
        if account.minutes_used >= i64::from(limit) {
            return Err(DialerError::payment_required(format!(
                "minute limit reached: plan {plan} allows {limit} minutes per billing period"
            ))
            .with_detail(format!(
                "{} minutes used in the period {}",
                account.minutes_used,
                period()
            )));
        }
    }
    Ok(())
}

pub fn as_micros(at: TimestampWithTimeZone) -> i64 {
    pg_sys::TimestampTz::from(at)
}

/// A window stored in a campaign or profile (checked when written; a row
/// a DBA wrote otherwise is an error naming it).
fn stored_window(what: &str, text: &str) -> Result<Window, DialerError> {
    json::parse(what, text, MAX_WINDOW_BYTES).and_then(|value| Window::parse(what, &value))
}

/// The campaign is the user's and not canceled; its window, if it has one.
fn check_campaign(
    lookups: &Lookups,
    campaign_id: &str,
    user: &str,
) -> Result<Option<String>, DialerError> {
    if lookups.campaign_owner.as_deref() != Some(user) {
        return Err(DialerError::not_found(format!(
            "campaign {campaign_id} not found"
        )));
    }
    if lookups.campaign_canceled {
        return Err(DialerError::new(
            ErrorKind::Conflict,
            format!("campaign {campaign_id} is canceled; no calls can be added to it"),
        ));
    }
    Ok(lookups.campaign_window.clone())
}

/// A latest time that leaves the call a chance: later than now and than
/// the call's time (its window's opening, when it had to wait for one).
fn check_expiry(
    expires: TimestampWithTimeZone,
    now: TimestampWithTimeZone,
    scheduled: TimestampWithTimeZone,
    waited: bool,
) -> Result<(), DialerError> {
    if as_micros(expires) <= as_micros(now) {
        return Err(DialerError::invalid(format!(
            "expires_at {expires} has passed"
        )));
    }
    if as_micros(expires) <= as_micros(scheduled) {
        let when = if waited {
            "the call's window first opens at"
        } else {
            "the call is scheduled at"
        };
        return Err(DialerError::invalid(format!(
            "expires_at {expires} comes before the call could be placed: {when} {scheduled}"
        )));
    }
    Ok(())
}

/// The key's length, checked on every write.
fn check_key(key: Option<&str>) -> Result<(), DialerError> {
    if let Some(key) = key {
        let chars = key.chars().count();
        if chars > MAX_IDEMPOTENCY_KEY_CHARS {
            return Err(DialerError::invalid(format!(
                "idempotency_key is {chars} characters long; at most {MAX_IDEMPOTENCY_KEY_CHARS} are accepted"
            )));
        }
    }
    Ok(())
}

/// The call's caller number, template, voice and campaign, the user's
/// default window, and the user's plan, period, usage and reservations now,
/// in one statement (`REQUEST`), with the owner's privileges and under the
/// user's lock (taken before: its snapshot sees what the lock's previous
/// holder committed). A user's view of voice_options hides inactive voices,
/// which must be refused as such (22023) like for anyone else: what a user
/// may use is checked by the steps below, not left to RLS.
fn load_request(
    client: &SpiClient<'_>,
    refs: &Refs<'_>,
    user: &str,
    call_id: Option<&str>,
    key: Option<&str>,
) -> Result<(Lookups, Account), SpiError> {
    let args = [
        refs.caller_number_id.into(),
        refs.template_id.into(),
        refs.voice_id.into(),
        refs.campaign_id.into(),
        user.into(),
        call_id.into(),
        key.into(),
    ];
    // A statement without the campaign's join when the call names none,
    // and without the user's default window when the calls bring theirs:
    // every join costs its executor start-up at every call.
    let query = match (refs.campaign_id, refs.window_given) {
        (Some(_), _) => REQUEST_WITH_CAMPAIGN,
        (None, false) => REQUEST,
        (None, true) => REQUEST_WINDOW_GIVEN,
    };
    plans::first(client, query, &args, |r| {
        // ids are read as uuids and written out here: a cast to text in the
        // query would look up the type's output function at every call
        let id = |n| r.get::<pgrx::Uuid>(n).map(|id| id.map(|id| id.to_string()));
        let lookups = Lookups {
            now: r.get(1)?.expect("now() is a time"),
            caller_owner: id(2)?,
            caller_provider: id(3)?,
            caller_active: r.get::<bool>(4)?.unwrap_or(false),
            template_name: r.get(5)?,
            template_public: r.get::<bool>(6)?.unwrap_or(false),
            template_owner: id(7)?,
            template_provider: id(8)?,
            template_params: r.get(9)?,
            template_params_order: r.get(10)?,
            voice_id: id(11)?,
            voice_active: r.get::<bool>(12)?.unwrap_or(false),
            voice_premium: r.get::<bool>(13)?.unwrap_or(false),
            voice_provider: id(14)?,
            template_voice: id(15)?,
            campaign_owner: id(16)?,
            campaign_canceled: r.get::<bool>(17)?.unwrap_or(false),
            campaign_caller: id(18)?,
            campaign_template: id(19)?,
            campaign_voice: id(20)?,
            campaign_window: r.get(21)?,
            campaign_expires_at: r.get(22)?,
            profile_window: r.get(23)?,
        };
        let account = Account {
            key_holder_reserved: r.get::<bool>(24)?.unwrap_or(false),
            plan: r.get(25)?,
            call_limit: r.get(26)?,
            minutes_limit: r.get(27)?,
            premium_voices: r.get::<bool>(28)?.unwrap_or(false),
            allowed_number_types: r.get::<Vec<String>>(29)?.unwrap_or_default(),
            calls_used: r.get::<i64>(30)?.unwrap_or(0),
            minutes_used: r.get::<i64>(31)?.unwrap_or(0),
            reserved: r.get::<i64>(32)?.unwrap_or(0),
            starts: r.get(33)?,
            ends: r.get(34)?,
        };
        Ok((lookups, account))
    })
    .map(|row| row.expect("the request's query returns one row"))
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
    pg_dialer_core::routing::check_caller_number(
        number_id,
        lookups.caller_owner.as_deref() == Some(user),
        lookups.caller_active,
        if privileged { "the user's" } else { "your" },
    )?;
    if let Some(provider) = &lookups.caller_provider {
        providers.push(("caller number", provider));
    }
    Ok(())
}

/// The template is the user's or public, and its params are readable: the
/// variables each call must bring (none without a template); its provider
/// joins `providers`.
fn template_params<'a>(
    lookups: &'a Lookups,
    template_id: Option<&str>,
    user: &str,
    providers: &mut Vec<(&'static str, &'a str)>,
) -> Result<TemplateParams, DialerError> {
    let Some(template_id) = template_id else {
        return Ok(TemplateParams::default());
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
    if let Some(provider) = &lookups.template_provider {
        providers.push(("template", provider));
    }
    Ok(params)
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

/// Where the user has a subscription now, its plan allows a premium voice
/// if one is used (without one, each call's time is refused:
/// `check_call_time`).
fn check_plan(account: &Account, premium_voice: Option<&str>) -> Result<(), DialerError> {
    let Some(plan) = &account.plan else {
        return Ok(());
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
    Ok(())
}

/// A subscription covers now: what a request of many calls needs before
/// any of them is looked at.
pub fn require_subscription(request: &Request) -> Result<(), DialerError> {
    match request.account.plan {
        Some(_) => Ok(()),
        None => Err(no_subscription(request.now)),
    }
}

/// A time as PostgreSQL writes it (`::text`, under the session's DateStyle
/// and TimeZone); empty for none.
fn as_text(at: Option<TimestampWithTimeZone>) -> String {
    // SAFETY: timestamptz_out takes a timestamptz datum and returns a
    // palloc'd C string.
    at.and_then(|at| unsafe {
        pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::timestamptz_out, &[at.into_datum()])
    })
    .map(|text| text.to_string_lossy().into_owned())
    .unwrap_or_default()
}

fn no_subscription(at: TimestampWithTimeZone) -> DialerError {
    DialerError::payment_required(format!("no active subscription covers the call time {at}"))
        .with_hint("Subscribe to a plan, or schedule the call within a paid billing period.")
}

/// A call is queued into the current period only: a renewing
/// subscription's later periods are not sold in advance.
fn check_call_time(account: &Account, at: TimestampWithTimeZone) -> Result<(), DialerError> {
    let within = match (account.starts, account.ends) {
        (Some(starts), Some(ends)) => {
            as_micros(starts) <= as_micros(at) && as_micros(at) < as_micros(ends)
        }
        _ => false,
    };
    if within {
        return Ok(());
    }
    Err(no_subscription(at))
}

/// `REQUEST`'s text, with the campaign's join given: the caller number,
/// template, voice and campaign a call names (the call's own, else the
/// campaign's; the call's voice, else the campaign's, else the template's),
/// the user's default window; then the subscription period that covers now
/// (dialer.billing_period()), what was used (dialer.period_usage()) and
/// reserved in it, and whether that reservation includes a call holding the
/// same idempotency key. The SQL functions are inlined into the kept plan.
macro_rules! request_query {
    ($campaign:expr, $profile:expr) => {
        concat!(
            "SELECT now(),
                    cn.user_id, cn.provider_id, coalesce(cn.is_active, false),
                    t.name, coalesce(t.is_public, false), t.created_by, t.provider_id,
                    t.params::text, t.params_order::text,
                    v.id, coalesce(v.is_active, false), coalesce(v.is_premium, false), v.provider_id,
                    t.voice_id,
                    c.user_id, c.canceled_at IS NOT NULL, c.caller_number_id, c.template_id,
                    c.voice_id, c.call_window::text, c.expires_at,
                    p.call_window::text,
                    r.key_holder_reserved, s.plan_name,
                    s.call_limit, s.minutes_limit, s.premium_voices,
                    coalesce(s.allowed_number_types, '{}'), u.calls_used, u.minutes_used, r.reserved,
                    s.period_start, s.period_end
             FROM (SELECT 1) AS one ",
            $campaign,
            "
             LEFT JOIN public.user_phone_numbers cn ON cn.id = coalesce($1::uuid, c.caller_number_id)
             LEFT JOIN public.call_templates t ON t.id = coalesce($2::uuid, c.template_id)
             LEFT JOIN public.voice_options v ON v.id = coalesce($3::uuid, c.voice_id, t.voice_id)
             ",
            $profile,
            "
             LEFT JOIN LATERAL dialer.billing_period($5::uuid, now()) AS s ON true
             LEFT JOIN LATERAL dialer.period_usage($5::uuid, s.period_start) AS u ON true
             -- the calls dialer.reserved_calls_in() counts, less the call
             -- checked (an UPDATE of a queued call), and whether one holds
             -- the key
             LEFT JOIN LATERAL (
                 SELECT count(*) AS reserved,
                        coalesce(bool_or(q.idempotency_key = $7), false) AS key_holder_reserved
                 FROM public.call_queue q
                 WHERE q.user_id = $5::uuid AND q.status IN ('queued', 'in-progress')
                   AND coalesce(q.scheduled_time, q.created_at) >= s.period_start
                   AND coalesce(q.scheduled_time, q.created_at) < s.period_end
                   AND q.id IS DISTINCT FROM $6::uuid) AS r ON true"
        )
    };
}

/// The user's default window.
macro_rules! profile_join {
    () => {
        "LEFT JOIN public.user_profiles p ON p.id = $5::uuid"
    };
}

/// The request's reads for a call of a campaign ($4).
const REQUEST_WITH_CAMPAIGN: &str = request_query!(
    "LEFT JOIN public.campaigns c ON c.id = $4::uuid",
    profile_join!()
);

/// The campaign's columns for a call of no campaign: constants the planner
/// folds away.
macro_rules! no_campaign {
    () => {
        "CROSS JOIN (SELECT NULL::uuid AS user_id, NULL::timestamptz AS canceled_at,
                            NULL::uuid AS caller_number_id, NULL::uuid AS template_id, NULL::uuid AS voice_id,
                            NULL::jsonb AS call_window, NULL::timestamptz AS expires_at) AS c"
    };
}

/// The request's reads for calls of no campaign.
const REQUEST: &str = request_query!(no_campaign!(), profile_join!());

/// The request's reads for calls of no campaign that bring their windows.
const REQUEST_WINDOW_GIVEN: &str = request_query!(
    no_campaign!(),
    "CROSS JOIN (SELECT NULL::jsonb AS call_window) AS p"
);

struct Lookups {
    now: TimestampWithTimeZone,
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
    campaign_owner: Option<String>,
    campaign_canceled: bool,
    campaign_caller: Option<String>,
    campaign_template: Option<String>,
    campaign_voice: Option<String>,
    campaign_window: Option<String>,
    campaign_expires_at: Option<TimestampWithTimeZone>,
    profile_window: Option<String>,
}

pub struct Account {
    /// A call holding the same idempotency key is among the reserved calls.
    key_holder_reserved: bool,
    plan: Option<String>,
    call_limit: Option<i32>,
    minutes_limit: Option<i32>,
    premium_voices: bool,
    /// The plan's `features.allowed_number_types`.
    allowed_number_types: Vec<String>,
    calls_used: i64,
    minutes_used: i64,
    reserved: i64,
    starts: Option<TimestampWithTimeZone>,
    ends: Option<TimestampWithTimeZone>,
}
