//! Queueing a call: the checks every queued call passes, whether it comes
//! through `enqueue_call()` or a direct INSERT or UPDATE of `call_queue`
//! (trigger `validate_queued_call`, see sql/queue.sql).

use crate::calls::CallRow;
use crate::checks::{call_owner, check_call, check_quota, check_request, CallInput, Refs};
use crate::errors::{outcome, raise, spi};
use crate::guards::StoredValue;
use crate::identity::{caller_is_privileged, current_identity};
use crate::plans;
use crate::window::MAX_WINDOW_BYTES;
use pg_dialer_core::error::{DialerError, ErrorKind};
use pg_dialer_core::json;
use pg_dialer_core::params::TemplateParams;
use pg_dialer_core::phone::parse_e164;
use pgrx::datum::TryFromDatumError;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{AllocatedByPostgres, AllocatedByRust, JsonB};
use serde_json::Value;
use std::collections::HashSet;

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
        campaign_id: Option<pgrx::Uuid>,
        call_window: Option<&str>,
        expires_at: Option<TimestampWithTimeZone>,
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
        let read = || -> Result<QueuedCall, DialerError> {
            Ok(QueuedCall {
                id: None,
                user_id: Some(user),
                recipient_number,
                caller_number_id: caller_number_id.map(|id| id.to_string()),
                template_id: template_id.map(|id| id.to_string()),
                voice_id: voice_id.map(|id| id.to_string()),
                scheduled_time,
                custom_variables: custom_variables
                    .map(|text| json::parse("custom_variables", text, VARIABLES_READ_BYTES))
                    .transpose()?,
                idempotency_key,
                campaign_id: campaign_id.map(|id| id.to_string()),
                call_window: call_window
                    .map(|text| json::parse("call_window", text, MAX_WINDOW_BYTES))
                    .transpose()?,
                expires_at,
            })
        };
        crate::errors::outcome_or_null(
            read().and_then(|call| super::enqueue(call, custom_variables)),
        )
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
    /// a queued row is to be checked. Not a row this backend checked (or
    /// moves itself) and is writing right now (`Passing`: each passes
    /// once), and not a superuser's; any other. Answered here, the
    /// trigger's PL/pgSQL shell does not run for those. Takes the row's id,
    /// not the row: a whole row would be built for every row written.
    #[pg_extern(volatile, parallel_unsafe)]
    fn needs_check(id: Option<pgrx::Uuid>) -> bool {
        // a queued row is written: the dispatcher's worker looks at commit
        crate::worker::wake_on_commit();
        if crate::identity::caller_is_superuser() {
            return false;
        }
        PASSING.with(|passing| {
            let mut passing = passing.borrow_mut();
            passing.is_empty() || !id.is_some_and(|id| passing.remove(id.as_bytes()))
        })
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

/// A jsonb column of a row, parsed within the limits of core/src/json.rs
/// (so that a value too deep or too large is the writer's error, 22023, not
/// a crash), read as its text.
pub fn jsonb_column<A: pgrx::WhoAllocated>(
    row: &PgHeapTuple<'_, A>,
    column: &'static str,
    max_bytes: usize,
) -> Result<Option<Value>, TryFromDatumError> {
    let jsonb = row
        .get_attribute_by_name(column)
        .is_some_and(|(_, attribute)| attribute.atttypid == pg_sys::JSONBOID);
    if !jsonb {
        return Err(TryFromDatumError::NoSuchAttributeName(column.to_owned()));
    }
    // read as stored: pgrx's own `JsonB` deserializes on conversion and
    // cannot refuse a value too deep or too large
    let Some(StoredValue(datum)) = row.get_by_name::<StoredValue>(column)? else {
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
/// `json::MAX_FIELD_BYTES` as compact JSON (`check_call`).
pub const VARIABLES_READ_BYTES: usize = json::MAX_FIELD_BYTES + 64 * 1024;

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
    campaign_id: Option<String>,
    call_window: Option<Value>,
    expires_at: Option<TimestampWithTimeZone>,
}

/// What the checks fill in or normalize.
struct Patch {
    recipient_number: String,
    /// The user, when the row named none.
    user_id: Option<pgrx::Uuid>,
    scheduled_time: TimestampWithTimeZone,
    call_window: Value,
    expires_at: Option<TimestampWithTimeZone>,
    /// The call's own, else its campaign's.
    caller_number_id: Option<String>,
    template_id: Option<String>,
    voice_id: Option<String>,
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
        campaign_id: id("campaign_id")?,
        call_window: jsonb_column(row, "call_window", MAX_WINDOW_BYTES)?,
        expires_at: row.get_by_name("expires_at")?,
    })
}

/// The checks of a queued call's row (see `check_queued_call`).
fn check_row(
    mut new: PgHeapTuple<'_, AllocatedByRust>,
    old: Option<PgHeapTuple<'_, AllocatedByRust>>,
) -> Result<CallRow, DialerError> {
    // The trigger's WHEN (`needs_check`) leaves out rows that are not
    // queued, a superuser's and those this backend checked; what it cannot
    // see is the row before an UPDATE: a call the worker queues again (a
    // retry) passes as it is.
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
    let patch = Spi::connect(|client| check(client, &call, old.is_some()))?;
    let uuid = |id: &Option<String>| {
        id.as_deref()
            .map(|id| id.parse::<uuid::Uuid>().expect("an id read from the row"))
            .map(|id| pgrx::Uuid::from_bytes(*id.as_bytes()))
    };
    let set = |row: &mut PgHeapTuple<'_, AllocatedByRust>| -> Result<(), TryFromDatumError> {
        row.set_by_name("recipient_number", patch.recipient_number.clone())?;
        if let Some(user_id) = patch.user_id {
            row.set_by_name("user_id", user_id)?;
        }
        row.set_by_name("scheduled_time", patch.scheduled_time)?;
        row.set_by_name("call_window", JsonB(patch.call_window.clone()))?;
        if let Some(at) = patch.expires_at {
            row.set_by_name("expires_at", at)?;
        }
        for (column, id) in [
            ("caller_number_id", &patch.caller_number_id),
            ("template_id", &patch.template_id),
            ("voice_id", &patch.voice_id),
        ] {
            if let Some(id) = uuid(id) {
                row.set_by_name(column, id)?;
            }
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
        (id, user_id, recipient_number, caller_number_id, scheduled_time, template_id, voice_id,
         custom_variables, idempotency_key, campaign_id, call_window, expires_at)
    VALUES ($1, $2, $3, $4::uuid, $5, $6::uuid, $7::uuid, $8::jsonb, $9, $10::uuid, $11::jsonb, $12)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING q";

thread_local! {
    /// The ids of the calls this backend checked (or moves itself) and is
    /// writing right now: the trigger's WHEN (`needs_check`) lets each of
    /// them pass once without checking it again (under the user's lock,
    /// which the writer holds, the answer would be the same). Any other row
    /// is checked.
    static PASSING: std::cell::RefCell<HashSet<[u8; 16]>> = std::cell::RefCell::new(HashSet::new());
}

/// Rows that pass the queued-call trigger unchecked while this value lives
/// (see `PASSING`): what a statement did not write is forgotten with it,
/// also when the statement fails.
pub struct Passing;

impl Passing {
    pub fn rows(ids: impl IntoIterator<Item = pgrx::Uuid>) -> Passing {
        PASSING.with(|passing| {
            passing
                .borrow_mut()
                .extend(ids.into_iter().map(|id| *id.as_bytes()))
        });
        Passing
    }
}

impl Drop for Passing {
    fn drop(&mut self) {
        PASSING.with(|passing| passing.borrow_mut().clear());
    }
}

/// Random bytes for this many call ids are drawn at a time.
const IDS_PER_DRAW: usize = 64;

thread_local! {
    /// Random bytes from PostgreSQL's strong source not yet used, and how
    /// many of them were used. Drawn in the backend on its first call id:
    /// never in the postmaster, so no two backends share them.
    static RANDOM: std::cell::RefCell<([u8; 16 * IDS_PER_DRAW], usize)> =
        const { std::cell::RefCell::new(([0; 16 * IDS_PER_DRAW], 16 * IDS_PER_DRAW)) };
}

/// A new call's id, as uuid_generate_v4() makes it (from PostgreSQL's
/// strong random source, drawn for several ids at once: a draw costs about
/// as much as a small query).
pub fn new_call_id() -> pgrx::Uuid {
    let mut bytes = [0u8; 16];
    RANDOM.with(|random| {
        let (pool, used) = &mut *random.borrow_mut();
        if *used == pool.len() {
            // SAFETY: fills the buffer it is given
            let filled = unsafe { pg_sys::pg_strong_random(pool.as_mut_ptr().cast(), pool.len()) };
            assert!(filled, "no random bytes for a call id");
            *used = 0;
        }
        bytes.copy_from_slice(&pool[*used..*used + 16]);
        *used += 16;
    });
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    pgrx::Uuid::from_bytes(bytes)
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
            let patch = match check(client, &call, false) {
                Ok(patch) => patch,
                Err(err) => return Ok(Err(err)),
            };
            call.recipient_number = Some(patch.recipient_number);
            call.scheduled_time = Some(patch.scheduled_time);
            call.expires_at = patch.expires_at;
            call.caller_number_id = patch.caller_number_id;
            call.template_id = patch.template_id;
            call.voice_id = patch.voice_id;
            call.call_window = Some(patch.call_window);
        }
        let id = new_call_id();
        let window = call.call_window.as_ref().map(Value::to_string);
        let args = [
            id.into(),
            user.into(),
            call.recipient_number.as_deref().into(),
            call.caller_number_id.as_deref().into(),
            call.scheduled_time.into(),
            call.template_id.as_deref().into(),
            call.voice_id.as_deref().into(),
            variables.into(),
            call.idempotency_key.as_deref().into(),
            call.campaign_id.as_deref().into(),
            window.as_deref().into(),
            call.expires_at.into(),
        ];
        let _passing = Passing::rows([id]);
        let inserted = plans::first(client, INSERT, &args, |r| r.get::<CallRow>(1))?.flatten();
        Ok(Ok(match (inserted, call.idempotency_key.as_deref()) {
            (Some(queued), _) => Some(queued),
            // A concurrent request with the same key won the race.
            (None, Some(key)) => by_key(client, key)?,
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

/// The checks of one call (src/checks.rs): what it shares with no other
/// call, then the call itself, then the quota for it.
fn check(client: &SpiClient<'_>, new: &QueuedCall, is_update: bool) -> Result<Patch, DialerError> {
    let privileged = caller_is_privileged();
    let (user, default_user) = call_owner(new.user_id, privileged)?;
    let recipient = new
        .recipient_number
        .as_deref()
        .ok_or_else(|| DialerError::invalid("recipient_number is required"))?;
    let recipient = parse_e164("recipient_number", recipient)?;
    let refs = Refs {
        caller_number_id: new.caller_number_id.as_deref(),
        template_id: new.template_id.as_deref(),
        voice_id: new.voice_id.as_deref(),
        campaign_id: new.campaign_id.as_deref(),
        window_given: new.call_window.is_some(),
    };
    // The key of a new call: a reserved call holding it takes no room.
    let key = new.idempotency_key.as_deref().filter(|_| !is_update);
    let request = check_request(client, &user, privileged, &refs, new.id.as_deref(), key)?;
    let checked = check_call(
        &request,
        &CallInput {
            recipient: &recipient,
            variables: new.custom_variables.as_ref(),
            scheduled_time: new.scheduled_time,
            idempotency_key: new.idempotency_key.as_deref(),
            call_window: new.call_window.as_ref(),
            expires_at: new.expires_at,
        },
    )
    .map_err(|(_, err)| err)?;
    check_quota(&request.account, 1)?;
    Ok(Patch {
        recipient_number: checked.recipient_number,
        user_id: default_user,
        scheduled_time: checked.scheduled_time,
        call_window: checked.call_window,
        expires_at: checked.expires_at,
        caller_number_id: request.caller_number_id,
        template_id: request.template_id,
        voice_id: request.voice_id,
    })
}
