//! Recording a call's result: `record_call_result()`, a provider's
//! end-of-call webhook body as delivered, normalized by core/src/results.rs.
//! Recorded once: the same result again changes nothing, a later event of
//! the same call (Retell's `call_analyzed`) fills in what the first lacked.
//! The call moves on (completed, canceled, or a failed attempt, see
//! src/calls.rs), its history row is written and its usage settled
//! (src/settlement.rs).
//!
//! A result of a call nobody placed is PT404, returned through the typed
//! boundary of src/errors.rs; the SQL shell is in sql/billing.sql.

use crate::calls::{fail_attempt, Attempted};
use crate::errors::{error_columns, spi};
use crate::identity::require_worker;
use crate::plans;
use crate::settlement::settle;
use pg_dialer_core::billing::billed_minutes;
use pg_dialer_core::error::DialerError;
use pg_dialer_core::json;
use pg_dialer_core::results::{normalize, CallResult, Outcome, Webhook};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::Uuid;

/// The call that has the provider's call id, locked: its lock orders
/// concurrent deliveries of its results.
const CALL: &str = "
    SELECT q.id, q.user_id, q.status, coalesce(q.scheduled_time, q.created_at) AS call_time,
           q.retry_count, q.provider_id, q.provider_phone_number_id, q.caller_number_id,
           q.voice_id, q.template_id, q.recipient_number, q.call_window::text
    FROM public.call_queue q WHERE q.call_id = $1 FOR UPDATE";

/// The result already recorded for the provider's call id, locked.
const RECORDED: &str = "
    SELECT h.id, h.user_id, h.call_queue_id, h.transcript, h.recording_url, h.call_summary,
           h.duration, h.created_at
    FROM public.user_call_history h WHERE h.call_id = $1 FOR UPDATE";

/// A later event's additions to a recorded result.
const ENRICH: &str = "
    UPDATE public.user_call_history h
    SET transcript = coalesce($2, h.transcript), recording_url = coalesce($3, h.recording_url),
        call_summary = coalesce($4, h.call_summary), duration = greatest(coalesce(h.duration, 0), $5),
        call_data = $6::jsonb
    WHERE h.id = $1";

const STATUS: &str = "SELECT q.status FROM public.call_queue q WHERE q.id = $1";

const COMPLETE: &str = "
    UPDATE public.call_queue q SET status = 'completed', last_error = NULL WHERE q.id = $1";

const CANCEL: &str = "UPDATE public.call_queue q SET status = 'canceled' WHERE q.id = $1";

/// The history row of an attempt as placed: its provider and number, the
/// call's template's assistant and its voice.
const RECORD: &str = "
    INSERT INTO public.user_call_history AS h
        (user_id, call_queue_id, call_id, provider_id, assistant_id, phone_number_id,
         caller_number_id, voice_id, transcript, status, duration, recording_url, call_summary,
         call_data)
    SELECT $1, $2, $3, $4, t.assistant_id, $5, $6, coalesce($7, t.voice_id), $8, $9, $10, $11,
           $12, $13::jsonb
    FROM (SELECT 1) one
    LEFT JOIN public.call_templates t ON t.id = $14
    RETURNING h.id";

/// The queued call a result belongs to, as it was when the result came.
struct Call {
    id: Uuid,
    user_id: Uuid,
    status: String,
    /// When it was to be placed: the period it is billed to.
    call_time: TimestampWithTimeZone,
    attempts: i32,
    provider_id: Option<Uuid>,
    number_id: Option<Uuid>,
    caller_number_id: Option<Uuid>,
    voice_id: Option<Uuid>,
    template_id: Option<Uuid>,
    /// What a retry's time depends on: the recipient's zones and the window.
    recipient: Option<String>,
    call_window: Option<String>,
}

/// A result recorded before.
struct Recorded {
    id: Uuid,
    user_id: Uuid,
    call_queue_id: Option<Uuid>,
    transcript: Option<String>,
    recording_url: Option<String>,
    summary: Option<String>,
    duration: i32,
    created_at: TimestampWithTimeZone,
}

/// What `record_call_result()` answers: the call, its history row, the
/// call's status now, and what was done (`recorded`, `enriched`,
/// `duplicate`, `ignored`).
struct Answer {
    call_queue_id: Option<Uuid>,
    history_id: Option<Uuid>,
    queue_status: Option<String>,
    result: &'static str,
}

fn load_call(client: &SpiClient<'_>, call_id: &str) -> Result<Option<Call>, SpiError> {
    plans::first(client, CALL, &[call_id.into()], |r| {
        Ok(Call {
            id: r.get(1)?.expect("an id"),
            user_id: r.get(2)?.expect("a user"),
            status: r.get(3)?.unwrap_or_default(),
            call_time: r.get(4)?.expect("a created_at"),
            attempts: r.get(5)?.unwrap_or(0),
            provider_id: r.get(6)?,
            number_id: r.get(7)?,
            caller_number_id: r.get(8)?,
            voice_id: r.get(9)?,
            template_id: r.get(10)?,
            recipient: r.get(11)?,
            call_window: r.get(12)?,
        })
    })
}

fn load_recorded(client: &SpiClient<'_>, call_id: &str) -> Result<Option<Recorded>, SpiError> {
    plans::first(client, RECORDED, &[call_id.into()], |r| {
        Ok(Recorded {
            id: r.get(1)?.expect("an id"),
            user_id: r.get(2)?.expect("a user"),
            call_queue_id: r.get(3)?,
            transcript: r.get(4)?,
            recording_url: r.get(5)?,
            summary: r.get(6)?,
            duration: r.get(7)?.unwrap_or(0),
            created_at: r.get(8)?.expect("a created_at"),
        })
    })
}

fn seconds(result: &CallResult) -> i32 {
    // at most a day (core/src/results.rs, MAX_CALL_SECONDS)
    result
        .duration_secs
        .unwrap_or(0)
        .clamp(0, i64::from(i32::MAX)) as i32
}

fn minutes(seconds: i32) -> i32 {
    billed_minutes(i64::from(seconds)) as i32
}

/// A result of a call recorded before: a later event fills in what the
/// first lacked and bills the minutes it adds; the same result again
/// changes nothing.
fn enrich(
    client: &SpiClient<'_>,
    recorded: Recorded,
    call: Option<&Call>,
    result: &CallResult,
    payload: &str,
) -> Result<Answer, SpiError> {
    let seconds = seconds(result);
    let adds = |new: &Option<String>, old: &Option<String>| new.is_some() && new != old;
    let changed = adds(&result.transcript, &recorded.transcript)
        || adds(&result.recording_url, &recorded.recording_url)
        || adds(&result.summary, &recorded.summary)
        || seconds > recorded.duration;
    if changed {
        plans::query(
            client,
            ENRICH,
            &[
                recorded.id.into(),
                result.transcript.as_deref().into(),
                result.recording_url.as_deref().into(),
                result.summary.as_deref().into(),
                seconds.into(),
                payload.into(),
            ],
        )?;
        let added = minutes(seconds) - minutes(recorded.duration);
        if added > 0 {
            // The call's period: its time while the queue row still holds
            // this attempt (found by its call id), else when its first
            // result came.
            let at = call.map_or(recorded.created_at, |c| c.call_time);
            settle(client, recorded.user_id, at, 0, added)?;
        }
    }
    let queue_status = match recorded.call_queue_id {
        Some(id) => plans::first(client, STATUS, &[id.into()], |r| r.get::<String>(1))?.flatten(),
        None => None,
    };
    Ok(Answer {
        call_queue_id: recorded.call_queue_id,
        history_id: Some(recorded.id),
        queue_status,
        result: if changed { "enriched" } else { "duplicate" },
    })
}

/// A call's first result: the call moves on, its attempt as placed is
/// recorded and billed to the period of the call's time.
fn record(
    client: &SpiClient<'_>,
    call: Call,
    result: &CallResult,
    payload: &str,
) -> Result<Answer, SpiError> {
    let mut status = call.status.clone();
    if status == "in-progress" {
        status = match result.outcome {
            Outcome::Completed => {
                plans::query(client, COMPLETE, &[call.id.into()])?;
                result.outcome.name().to_string()
            }
            Outcome::Canceled => {
                plans::query(client, CANCEL, &[call.id.into()])?;
                result.outcome.name().to_string()
            }
            Outcome::Failed { retryable } => {
                let reason = result.ended_reason.as_deref().unwrap_or("the call failed");
                let attempted = Attempted {
                    id: call.id,
                    attempts: call.attempts,
                    recipient: call.recipient.clone(),
                    call_window: call.call_window.clone(),
                };
                let row = fail_attempt(client, &attempted, reason, retryable)?;
                row.get_by_name::<String>("status")
                    .expect("call_queue has a status")
                    .unwrap_or_default()
            }
        };
    }
    let seconds = seconds(result);
    let history_id = plans::first(
        client,
        RECORD,
        &[
            call.user_id.into(),
            call.id.into(),
            result.call_id.as_str().into(),
            call.provider_id.into(),
            call.number_id.into(),
            call.caller_number_id.into(),
            call.voice_id.into(),
            result.transcript.as_deref().into(),
            result.outcome.name().into(),
            seconds.into(),
            result.recording_url.as_deref().into(),
            result.summary.as_deref().into(),
            payload.into(),
            call.template_id.into(),
        ],
        |r| r.get::<Uuid>(1),
    )?
    .flatten();
    let completed = i32::from(result.outcome == Outcome::Completed);
    settle(
        client,
        call.user_id,
        call.call_time,
        completed,
        minutes(seconds),
    )?;
    Ok(Answer {
        call_queue_id: Some(call.id),
        history_id,
        queue_status: Some(status),
        result: "recorded",
    })
}

/// A result that came before its call's provider call id was recorded:
/// the dispatcher sends each call's `call_queue.id` as metadata, and the
/// provider may report the call's end before the dispatcher's transaction
/// that records the call id commits. Such a result names its call: one in
/// progress without a call id, of a provider that speaks the API the body
/// is in, at the attempt the body names, whose call id has no result yet,
/// gets the call id now (as `mark_call_placed()` would).
fn bind_early_result(client: &SpiClient<'_>, result: &CallResult) -> Result<(), SpiError> {
    let (Some(queued_call), Some(attempt)) = (result.queued_call.as_deref(), result.queued_attempt)
    else {
        return Ok(());
    };
    plans::first(
        client,
        "UPDATE public.call_queue q SET call_id = $2
         WHERE q.id = $1::uuid AND q.status = 'in-progress' AND q.call_id IS NULL AND coalesce(q.retry_count, 0) = $4 - 1
           AND q.provider_id IN (SELECT p.id FROM public.call_service_providers p WHERE p.api = $3)
           AND NOT EXISTS (SELECT FROM public.user_call_history h WHERE h.call_id = $2)
         RETURNING q.id",
        &[
            queued_call.into(),
            result.call_id.as_str().into(),
            result.provider.name().into(),
            attempt.into(),
        ],
        |r| r.get::<pgrx::Uuid>(1),
    )
    .map(drop)
}

/// The result of a webhook body: PT404 when no call has its call id.
fn record_result(payload: &str) -> Result<Answer, DialerError> {
    // a result frees its provider's slot: the dispatcher's worker looks
    crate::worker::wake_on_commit();
    let webhook = json::parse("payload", payload, json::MAX_PAYLOAD_BYTES)
        .and_then(|body| normalize(&body))
        .unwrap_or_else(|err| crate::errors::raise(err));
    let Webhook::Result(result) = webhook else {
        return Ok(Answer {
            call_queue_id: None,
            history_id: None,
            queue_status: None,
            result: "ignored",
        });
    };
    spi(Spi::connect_mut(|client| {
        let mut call = load_call(client, &result.call_id)?;
        if call.is_none() && result.queued_call.is_some() && result.queued_attempt.is_some() {
            // Bound now, or by the dispatcher meanwhile (the bind waited for
            // its transaction to end): read again, with a new snapshot.
            bind_early_result(client, &result)?;
            call = load_call(client, &result.call_id)?;
        }
        if let Some(recorded) = load_recorded(client, &result.call_id)? {
            return enrich(client, recorded, call.as_ref(), &result, payload).map(Ok);
        }
        let Some(call) = call else {
            return Ok(Err(DialerError::not_found(format!(
                "no call has provider call id {}",
                result.call_id
            ))
            .with_hint(
                "A call gets its provider call id from mark_call_placed() before its result can be recorded.",
            )));
        };
        record(client, call, &result, payload).map(Ok)
    }))
}

#[pg_schema]
mod dialer {
    use super::*;

    /// `record_call_result()`: the webhook body (as text, so that a body too
    /// deep, too large or with numbers beyond a double is the caller's
    /// error, 22023, not a crash).
    #[pg_extern(volatile, parallel_unsafe)]
    #[search_path(pg_catalog)]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn record_result(
        payload: Option<&str>,
    ) -> TableIterator<
        'static,
        (
            name!(call_queue_id, Option<Uuid>),
            name!(history_id, Option<Uuid>),
            name!(queue_status, Option<String>),
            name!(result, Option<String>),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        require_worker("record_call_result");
        let payload = payload.unwrap_or_else(|| {
            crate::errors::raise(DialerError::invalid(
                "payload is required: the webhook body, as the provider sent it",
            ))
        });
        TableIterator::once(match super::record_result(payload) {
            Ok(a) => (
                a.call_queue_id,
                a.history_id,
                a.queue_status,
                Some(a.result.to_string()),
                None,
                None,
                None,
                None,
            ),
            Err(err) => {
                let (code, message, detail, hint) = error_columns(err);
                (None, None, None, None, code, message, detail, hint)
            }
        })
    }
}
