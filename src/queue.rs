//! Queueing a call: the checks every queued call passes, whether it comes
//! through `enqueue_call()` or a direct INSERT or UPDATE of `call_queue`
//! (trigger `validate_queued_call`, see sql/queue.sql).

use crate::calls::CallRow;
use crate::errors::{outcome, raise, spi};
use crate::identity::{caller_is_privileged, current_identity};
use crate::plans;
use crate::settings;
use pg_dialer_core::error::{quoted, DialerError, ErrorKind};
use pg_dialer_core::json;
use pg_dialer_core::params::TemplateParams;
use pg_dialer_core::phone::parse_e164;
use pgrx::datum::TryFromDatumError;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{AllocatedByPostgres, AllocatedByRust};
use serde_json::Value;

#[pg_schema]
mod dialer {
    use super::*;

    /// `enqueue_call()` (its SQL shell in sql/queue.sql): queues one call
    /// for the current user, or for `user_id` when an admin or service_role
    /// names one. With an `idempotency_key`, the same key returns the same
    /// call, however often it is sent. The variables come as text, so that
    /// JSON too deep or too large is the caller's error (22023), not a crash.
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    fn enqueue(
        recipient_number: Option<String>,
        template_id: Option<pgrx::Uuid>,
        custom_variables: Option<&str>,
        voice_id: Option<pgrx::Uuid>,
        caller_number_id: Option<pgrx::Uuid>,
        scheduled_time: Option<TimestampWithTimeZone>,
        idempotency_key: Option<String>,
        user_id: Option<pgrx::Uuid>,
    ) -> TableIterator<
        'static,
        (
            name!(
                call,
                Option<pgrx::composite_type!('static, "public.call_queue")>
            ),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        let user = crate::identity::acting_for(user_id, "queue calls");
        let call = custom_variables
            .map(|text| json::parse("custom_variables", text, VARIABLES_READ_BYTES))
            .transpose()
            .map(|custom_variables| QueuedCall {
                id: None,
                user_id: Some(user),
                recipient_number,
                caller_number_id: caller_number_id.map(|id| id.to_string()),
                template_id: template_id.map(|id| id.to_string()),
                voice_id: voice_id.map(|id| id.to_string()),
                scheduled_time,
                custom_variables,
                idempotency_key,
            });
        crate::errors::outcome_or_null(call.and_then(|call| super::enqueue(call, custom_variables)))
    }

    /// Trigger `validate_queued_call` (its SQL shell in sql/queue.sql):
    /// checks a queued call, `new` (and `old` on UPDATE), and returns the row
    /// to store, with the recipient in E.164 and the default user and time
    /// filled in, or the error (22023, 42501, PT402, PT404) beside NULL.
    /// The trigger fires only for the rows `needs_check` picks (queued, not
    /// a superuser's, not the one `enqueue` checked); a row that was not
    /// queued before an UPDATE (the worker queuing a call again) passes as
    /// it is.
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn check_queued_call(
        new: pgrx::composite_type!("public.call_queue"),
        old: Option<pgrx::composite_type!("public.call_queue")>,
    ) -> TableIterator<
        'static,
        (
            name!(
                call,
                Option<pgrx::composite_type!('static, "public.call_queue")>
            ),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        outcome(super::check_row(new, old))
    }

    /// The `WHEN` of trigger `validate_queued_call` (sql/queue.sql): whether
    /// a queued row is to be checked. Not the row `enqueue` checked and is
    /// inserting (its token is used up), and not a superuser's; any other.
    /// Answered here, the trigger's PL/pgSQL shell does not run for those.
    #[pg_extern(volatile, strict, parallel_unsafe, requires = ["tables"])]
    fn needs_check(new: pgrx::composite_type!("public.call_queue")) -> bool {
        if crate::identity::caller_is_superuser() {
            return false;
        }
        if !CHECKED.with(|checked| checked.borrow().is_some()) {
            return true;
        }
        let call = read_call(&new).expect("call_queue has the columns read");
        !checked_by_enqueue(&call)
    }

    /// `cancel_call()`: cancels a queued call, the caller's own, or any for
    /// an admin or service_role; PT404 for a call that is not there or not
    /// the caller's, PT409 for one that is no longer queued. The update runs
    /// with the owner's privileges, as a user's own update policy keeps a
    /// call queued.
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn cancel_queued_call(
        call_id: Option<pgrx::Uuid>,
    ) -> TableIterator<
        'static,
        (
            name!(
                call,
                Option<pgrx::composite_type!('static, "public.call_queue")>
            ),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        outcome(super::cancel(call_id))
    }

    /// Trigger `validate_template` on `call_templates`: `params` and
    /// `params_order` describe the template's variables (core/src/params.rs);
    /// 22023 naming what is wrong otherwise.
    #[pg_trigger]
    fn validate_template<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, TryFromDatumError> {
        let row = trigger
            .new()
            .expect("a BEFORE INSERT OR UPDATE row trigger has a new row");
        let params = jsonb_column(&row, "params", json::MAX_FIELD_BYTES)?;
        let order = jsonb_column(&row, "params_order", json::MAX_FIELD_BYTES)?;
        if let Err(err) = TemplateParams::parse(params.as_ref(), order.as_ref()) {
            raise(err);
        }
        Ok(Some(row))
    }
}

fn cancel(call_id: Option<pgrx::Uuid>) -> Result<CallRow, DialerError> {
    let Some(call_id) = call_id else {
        return Err(DialerError::not_found("call <NULL> not found"));
    };
    let me = current_identity()
        .user_id
        .map(|id| pgrx::Uuid::from_bytes(*id.as_bytes()));
    let privileged = caller_is_privileged();
    // Only the caller's own call is locked (any, for an admin or
    // service_role): another tenant's is not found, and not touched.
    let found = spi(crate::identity::as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT status FROM public.call_queue WHERE id = $1 AND (user_id = $2 OR $3)
                     FOR UPDATE",
                    None,
                    &[call_id.into(), me.into(), privileged.into()],
                )?
                .next()
                .map(|r| r.get::<String>(1))
                .transpose()
        })
    }));
    let status =
        found.ok_or_else(|| DialerError::not_found(format!("call {call_id} not found")))?;
    if status.as_deref() != Some("queued") {
        return Err(DialerError::new(
            ErrorKind::Conflict,
            format!(
                "call {call_id} is {}; only a queued call can be canceled",
                status.unwrap_or_default()
            ),
        ));
    }
    Ok(spi(crate::identity::as_extension_owner(|| {
        Spi::get_one_with_args::<CallRow>(
            "UPDATE public.call_queue q SET status = 'canceled' WHERE id = $1 RETURNING q",
            &[call_id.into()],
        )
    }))
    .expect("the canceled call"))
}

/// A jsonb value as stored, not yet read: pgrx's own `JsonB` deserializes
/// on conversion and cannot refuse a value too deep or too large.
struct StoredJsonb(pg_sys::Datum);

impl FromDatum for StoredJsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then_some(StoredJsonb(datum))
    }
}

impl IntoDatum for StoredJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum is kept as it is, as pg_sys::Datum's own implementation does
unsafe impl pgrx::datum::UnboxDatum for StoredJsonb {
    type As<'src> = StoredJsonb;
    unsafe fn unbox<'src>(datum: pgrx::datum::Datum<'src>) -> Self::As<'src>
    where
        Self: 'src,
    {
        StoredJsonb(datum.sans_lifetime())
    }
}

/// A jsonb column of a row, parsed within the limits of core/src/json.rs
/// (so that a value too deep or too large is the writer's error, 22023, not
/// a crash), read as its text.
pub fn jsonb_column<A: pgrx::WhoAllocated>(
    row: &PgHeapTuple<'_, A>,
    column: &'static str,
    max_bytes: usize,
) -> Result<Option<Value>, TryFromDatumError> {
    let Some(StoredJsonb(datum)) = row.get_by_name::<StoredJsonb>(column)? else {
        return Ok(None);
    };
    // SAFETY: a jsonb datum of the row, not null
    let text =
        unsafe { pgrx::direct_function_call::<&std::ffi::CStr>(pg_sys::jsonb_out, &[Some(datum)]) }
            .expect("jsonb_out returns text");
    Ok(Some(
        json::parse(column, &text.to_string_lossy(), max_bytes).unwrap_or_else(|err| raise(err)),
    ))
}

/// The longest variables read at all; the checks then hold them to
/// `json::MAX_FIELD_BYTES` as compact JSON (`check_template`).
const VARIABLES_READ_BYTES: usize = json::MAX_FIELD_BYTES + 64 * 1024;
/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// A queued call's columns that the checks read.
struct QueuedCall {
    id: Option<String>,
    user_id: Option<pgrx::Uuid>,
    recipient_number: Option<String>,
    caller_number_id: Option<String>,
    template_id: Option<String>,
    voice_id: Option<String>,
    scheduled_time: Option<TimestampWithTimeZone>,
    custom_variables: Option<Value>,
    idempotency_key: Option<String>,
}

impl QueuedCall {
    /// The same call, whatever its id.
    fn same_call(&self, other: &QueuedCall) -> bool {
        let time = |t: Option<TimestampWithTimeZone>| t.map(i64::from);
        self.user_id == other.user_id
            && self.recipient_number == other.recipient_number
            && self.caller_number_id == other.caller_number_id
            && self.template_id == other.template_id
            && self.voice_id == other.voice_id
            && time(self.scheduled_time) == time(other.scheduled_time)
            && self.custom_variables == other.custom_variables
            && self.idempotency_key == other.idempotency_key
    }
}

/// What the checks fill in or normalize.
struct Patch {
    recipient_number: String,
    user_id: Option<pgrx::Uuid>,
    scheduled_time: Option<TimestampWithTimeZone>,
}

fn read_call<A: pgrx::WhoAllocated>(
    row: &PgHeapTuple<'_, A>,
) -> Result<QueuedCall, TryFromDatumError> {
    let id = |column| {
        row.get_by_name::<pgrx::Uuid>(column)
            .map(|id| id.map(|id| id.to_string()))
    };
    Ok(QueuedCall {
        id: id("id")?,
        user_id: row.get_by_name("user_id")?,
        recipient_number: row.get_by_name("recipient_number")?,
        caller_number_id: id("caller_number_id")?,
        template_id: id("template_id")?,
        voice_id: id("voice_id")?,
        scheduled_time: row.get_by_name("scheduled_time")?,
        custom_variables: jsonb_column(row, "custom_variables", VARIABLES_READ_BYTES)?,
        idempotency_key: row.get_by_name("idempotency_key")?,
    })
}

/// The checks of a queued call's row (see `check_queued_call`).
fn check_row(
    mut new: PgHeapTuple<'_, AllocatedByRust>,
    old: Option<PgHeapTuple<'_, AllocatedByRust>>,
) -> Result<CallRow, DialerError> {
    // The trigger's WHEN (`needs_check`) leaves out rows that are not
    // queued, a superuser's and the one enqueue checked; what it cannot see
    // is the row before an UPDATE: a call the worker queues again (a retry)
    // passes as it is.
    let was_queued = |old: &PgHeapTuple<'_, AllocatedByRust>| {
        old.get_by_name::<String>("status")
            .expect("call_queue has a status")
            .as_deref()
            == Some("queued")
    };
    if old.as_ref().is_some_and(|old| !was_queued(old)) {
        return Ok(returned(new));
    }
    let call = read_call(&new).expect("call_queue has the columns read");
    let patch = Spi::connect(|client| check_with(client, &call, old.is_some()))?;
    let set = |row: &mut PgHeapTuple<'_, AllocatedByRust>| -> Result<(), TryFromDatumError> {
        row.set_by_name("recipient_number", patch.recipient_number.clone())?;
        if let Some(user_id) = patch.user_id {
            row.set_by_name("user_id", user_id)?;
        }
        if let Some(at) = patch.scheduled_time {
            row.set_by_name("scheduled_time", at)?;
        }
        Ok(())
    };
    set(&mut new).expect("call_queue has the columns set");
    Ok(returned(new))
}

/// The existing call of a user with an idempotency key.
const BY_KEY: &str = "
    SELECT q FROM public.call_queue q WHERE q.user_id = $1 AND q.idempotency_key = $2";

/// A checked call, queued; nothing when a call with its idempotency key is
/// there already.
const INSERT: &str = "
    INSERT INTO public.call_queue AS q
        (user_id, recipient_number, caller_number_id, scheduled_time, template_id, voice_id,
         custom_variables, idempotency_key)
    VALUES ($1, $2, $3::uuid, $4, $5::uuid, $6::uuid, $7::jsonb, $8)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING q";

thread_local! {
    /// The call `enqueue` checked and is inserting right now: its trigger
    /// (`needs_check`) need not check it again (under the user's lock, which `enqueue`
    /// holds, the answer would be the same). Any other row is checked.
    static CHECKED: std::cell::RefCell<Option<QueuedCall>> = const { std::cell::RefCell::new(None) };
}

/// Whether `call` is the one `enqueue` checked and is inserting (the token
/// is used up).
fn checked_by_enqueue(call: &QueuedCall) -> bool {
    CHECKED.with(|checked| {
        let mut checked = checked.borrow_mut();
        let same = checked.as_ref().is_some_and(|c| c.same_call(call));
        if same {
            *checked = None;
        }
        same
    })
}

/// Queues `call` for its user (already the caller or one they may act for):
/// the call of the same idempotency key if there is one, else the checked
/// call. The user's lock, taken by the check, is held until the
/// transaction ends.
fn enqueue(mut call: QueuedCall, variables: Option<&str>) -> Result<Option<CallRow>, DialerError> {
    let user = call.user_id.expect("enqueue names the user");
    let by_key = |client: &SpiClient<'_>, key: &str| {
        plans::first(client, BY_KEY, &[user.into(), key.into()], |r| {
            r.get::<CallRow>(1)
        })
        .map(Option::flatten)
    };
    spi(Spi::connect_mut(|client| {
        if let Some(key) = call.idempotency_key.as_deref() {
            if let Some(queued) = by_key(client, key)? {
                return Ok(Ok(Some(queued)));
            }
        }
        // A superuser's rows are not checked (see check_row).
        if !crate::identity::caller_is_superuser() {
            let patch = match check_with(client, &call, false) {
                Ok(patch) => patch,
                Err(err) => return Ok(Err(err)),
            };
            call.recipient_number = Some(patch.recipient_number);
            call.scheduled_time = call.scheduled_time.or(patch.scheduled_time);
        }
        struct Forget;
        impl Drop for Forget {
            fn drop(&mut self) {
                CHECKED.with(|checked| checked.borrow_mut().take());
            }
        }
        let _forget = Forget;
        let args = [
            user.into(),
            call.recipient_number.as_deref().into(),
            call.caller_number_id.as_deref().into(),
            call.scheduled_time.into(),
            call.template_id.as_deref().into(),
            call.voice_id.as_deref().into(),
            variables.into(),
            call.idempotency_key.as_deref().into(),
        ];
        let key = call.idempotency_key.clone();
        CHECKED.with(|checked| *checked.borrow_mut() = Some(call));
        let inserted = plans::first(client, INSERT, &args, |r| r.get::<CallRow>(1))?.flatten();
        Ok(Ok(match (inserted, key) {
            (Some(queued), _) => Some(queued),
            // A concurrent request with the same key won the race.
            (None, Some(key)) => by_key(client, &key)?,
            // A trigger of the DBA's skipped the row: nothing was queued.
            (None, None) => None,
        }))
    }))
}

/// An argument's row as the function's result.
fn returned(row: PgHeapTuple<'_, AllocatedByRust>) -> CallRow {
    let datum = row
        .into_composite_datum()
        .expect("a row is a composite datum");
    // SAFETY: a composite datum just made, in the function's memory context
    unsafe { PgHeapTuple::from_composite_datum(datum) }
}

fn check_with(
    client: &SpiClient<'_>,
    new: &QueuedCall,
    is_update: bool,
) -> Result<Patch, DialerError> {
    let privileged = caller_is_privileged();
    let (user_id, default_user) = call_owner(new, privileged)?;
    let user = user_id.as_str();

    let recipient = new
        .recipient_number
        .as_deref()
        .ok_or_else(|| DialerError::invalid("recipient_number is required"))?;
    let recipient = parse_e164("recipient_number", recipient)?;

    let caller_number_id = new.caller_number_id.as_deref();
    let template_id = new.template_id.as_deref();
    let voice_id = new.voice_id.as_deref();
    // The user's lock, taken before the account is read below: the quota
    // counts see what earlier holders of the lock committed.
    crate::locks::lock_user(user);
    let lookups = load_lookups(client, caller_number_id, template_id, voice_id);

    let call_time = new.scheduled_time.unwrap_or(lookups.now);
    let key = idempotency_key(new, is_update)?;
    let account = load_account(client, user, call_time, new.id.as_deref(), key);

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
        new.custom_variables.as_ref(),
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
    Ok(Patch {
        recipient_number: recipient.e164,
        user_id: default_user,
        scheduled_time: new.scheduled_time.is_none().then_some(lookups.now),
    })
}

/// The user the call is queued for (core/src/claims.rs, `acting_for`), and
/// that user again when the row names none (to be written into it).
fn call_owner(
    new: &QueuedCall,
    privileged: bool,
) -> Result<(String, Option<pgrx::Uuid>), DialerError> {
    let target = new.user_id.map(|id| uuid::Uuid::from_bytes(*id.as_bytes()));
    let me = current_identity().user_id;
    let user_id = pg_dialer_core::claims::acting_for(me, privileged, target, "queue calls")?;
    let default_user = target
        .is_none()
        .then(|| pgrx::Uuid::from_bytes(*user_id.as_bytes()));
    Ok((user_id.to_string(), default_user))
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
                    now: r.get(1)?.expect("now() is a time"),
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
fn idempotency_key(new: &QueuedCall, is_update: bool) -> Result<Option<&str>, DialerError> {
    let key = new.idempotency_key.as_deref();
    if let Some(key) = key {
        if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
            return Err(DialerError::invalid(format!(
                "idempotency_key is {} characters long; at most {MAX_IDEMPOTENCY_KEY_CHARS} are accepted",
                key.chars().count()
            )));
        }
    }
    Ok(if is_update { None } else { key })
}

/// The user's plan, period, usage and reservations at the call's time
/// (`ACCOUNT`), read under the user's lock.
fn load_account(
    client: &SpiClient<'_>,
    user: &str,
    call_time: TimestampWithTimeZone,
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
    SELECT now(),
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
