//! A call after its claim, for the dialing worker: `mark_call_placed()`
//! records the provider's call id, `mark_call_failed()` counts a failed
//! attempt, `rescue_stale_calls()` counts one for calls left in progress. A
//! failed attempt queues the call again after a backoff (core/src/retry.rs)
//! or ends it as failed.
//!
//! `mark_call_placed` and `mark_call_failed` answer PT404/PT409 through the
//! typed boundary of src/errors.rs; their SQL shells are in sql/queue.sql.

use crate::errors::{outcome, spi};
use crate::identity::require_worker;
use crate::plans;
use crate::settings;
use pg_dialer_core::error::{DialerError, ErrorKind};
use pg_dialer_core::retry::AfterFailure;
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::Uuid;

/// A row of `public.call_queue`, as the API returns it. (The functions'
/// signatures spell it out: pgrx reads the SQL type from the macro there.)
pub type CallRow = pgrx::composite_type!('static, "public.call_queue");

/// A call in progress, locked: its attempts so far. PT404 when there is no
/// such call, PT409 when it is not in progress.
const LOCK_IN_PROGRESS: &str = "
    SELECT q.status, q.retry_count, q.recipient_number, q.call_window::text
    FROM public.call_queue q WHERE q.id = $1 FOR UPDATE";

const SET_CALL_ID: &str = "
    UPDATE public.call_queue q SET call_id = $2 WHERE q.id = $1 RETURNING q";

const END_FAILED: &str = "
    UPDATE public.call_queue q SET status = 'failed', retry_count = $2, last_error = $3
    WHERE q.id = $1 RETURNING q";

/// Queued again for its next attempt, unless its campaign was canceled
/// meanwhile: then it ends canceled. The campaign's row is read locked
/// (FOR SHARE waits for a cancel under way and reads its outcome).
const QUEUE_AGAIN: &str = "
    UPDATE public.call_queue q
    SET status = CASE WHEN EXISTS (SELECT FROM public.campaigns c
                                   WHERE c.id = q.campaign_id AND c.canceled_at IS NOT NULL
                                   FOR SHARE)
                      THEN 'canceled' ELSE 'queued' END,
        retry_count = $2, last_error = $3, scheduled_time = $4,
        provider_id = NULL, provider_phone_number_id = NULL, claimed_at = NULL, call_id = NULL
    WHERE q.id = $1 RETURNING q";

/// Calls in progress since `$1` or earlier, oldest first; those another
/// transaction holds are left to it.
const STALE: &str = "
    SELECT q.id, q.retry_count, q.recipient_number, q.call_window::text FROM public.call_queue q
    WHERE q.status = 'in-progress' AND coalesce(q.claimed_at, q.updated_at) <= now() - $1
      -- not a call the dispatcher's worker is sending (src/dispatch.rs,
      -- SENDING): its mark taken and given back at once, so that a rescue
      -- of many calls holds no lock per call
      AND (pg_catalog.pg_try_advisory_lock_shared(1886350437, pg_catalog.hashtext(q.id::text))
           AND pg_catalog.pg_advisory_unlock_shared(1886350437, pg_catalog.hashtext(q.id::text)))
    ORDER BY coalesce(q.claimed_at, q.updated_at)
    FOR UPDATE SKIP LOCKED";

/// Queued calls past their latest time; those another transaction holds
/// (a claim) are left to it.
const EXPIRED: &str = "
    SELECT q.id FROM public.call_queue q
    WHERE q.status = 'queued' AND q.expires_at <= now()
    FOR UPDATE SKIP LOCKED";

/// Queued calls past their latest time, of the ids given, end canceled as
/// expired (not billed: they were never placed). For claims and
/// `rescue_stale_calls()`, whichever notices first.
pub fn expire(client: &SpiClient<'_>, ids: &[Uuid]) -> Result<Vec<CallRow>, SpiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    plans::query(
        client,
        "UPDATE public.call_queue q
         SET status = 'canceled', last_error = 'expired: not placed by ' || q.expires_at
         WHERE q.id = ANY ($1) AND q.status = 'queued' AND q.expires_at IS NOT NULL
         RETURNING q",
        &[ids.to_vec().into()],
    )?
    .map(|row| row.get::<CallRow>(1).map(|call| call.expect("a row")))
    .collect()
}

/// A call in progress, locked, as a failed attempt needs it.
pub struct Attempted {
    pub id: Uuid,
    /// Attempts made before.
    pub attempts: i32,
    pub recipient: Option<String>,
    pub call_window: Option<String>,
}

impl Attempted {
    /// When the call goes out again after `delay`: then, or its window's
    /// next opening (a window that cannot be read leaves the time as is:
    /// the claim ends such a call with the reason).
    fn retry_at(&self, delay: f64) -> TimestampWithTimeZone {
        let micros = crate::checks::as_micros(crate::window::transaction_now())
            .saturating_add((delay * 1e6).round() as i64);
        let at = TimestampWithTimeZone::try_from(micros).expect("a retry within a week of now");
        let recipient = self.recipient.as_deref().unwrap_or_default();
        pg_dialer_core::phone::parse_e164("recipient_number", recipient)
            .and_then(|r| crate::window::CallWindow::of_call(self.call_window.as_deref(), &r))
            .and_then(|window| window.opening(at))
            .unwrap_or(at)
    }
}

/// The call, if it is in progress (locked).
fn lock_in_progress(
    client: &SpiClient<'_>,
    id: Option<Uuid>,
) -> Result<Result<Attempted, DialerError>, SpiError> {
    let Some(id) = id else {
        return Ok(Err(DialerError::not_found("call <NULL> not found")));
    };
    let found = plans::first(client, LOCK_IN_PROGRESS, &[id.into()], |row| {
        Ok((
            row.get::<String>(1)?,
            Attempted {
                id,
                attempts: row.get::<i32>(2)?.unwrap_or(0),
                recipient: row.get(3)?,
                call_window: row.get(4)?,
            },
        ))
    })?;
    Ok(match found {
        None => Err(DialerError::not_found(format!("call {id} not found"))),
        Some((Some(status), call)) if status == "in-progress" => Ok(call),
        Some((status, _)) => Err(DialerError::new(
            ErrorKind::Conflict,
            format!(
                "call {id} is {}, not in-progress",
                status.unwrap_or_default()
            ),
        )),
    })
}

fn seconds(secs: f64) -> Interval {
    Interval::new(0, 0, (secs * 1e6).round() as i64)
        .expect("a delay of at most a week fits an interval")
}

/// pg_dialer.stale_call_timeout as an interval.
fn stale_call_timeout() -> Interval {
    seconds(f64::from(settings::STALE_CALL_TIMEOUT.get()))
}

/// The delay in seconds before a call's next attempt after `attempts`
/// attempts, or `None` when the call has had its last attempt (or the
/// failure is not retryable). `jitter` is a random number in [0, 1).
fn retry_delay(attempts: i32, retryable: bool, jitter: f64) -> Option<f64> {
    let attempts = u32::try_from(attempts).unwrap_or(0);
    match settings::retry_policy().after_failure(attempts, retryable, jitter) {
        AfterFailure::GiveUp => None,
        AfterFailure::RetryAfter(secs) => Some(secs),
    }
}

/// A random number in [0, 1), from the backend's generator (as `random()`).
fn jitter() -> f64 {
    // SAFETY: the backend's global generator, seeded at backend start
    unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) }
}

/// One failed attempt of `call` (locked, in progress): queued again after
/// the backoff (within its window), or failed for good.
pub fn fail_attempt(
    client: &SpiClient<'_>,
    call: &Attempted,
    reason: &str,
    retryable: bool,
) -> Result<CallRow, SpiError> {
    let attempts = call.attempts.max(0).saturating_add(1);
    match retry_delay(attempts, retryable, jitter()) {
        None => updated_call(
            client,
            END_FAILED,
            &[call.id.into(), attempts.into(), reason.into()],
        ),
        Some(secs) => updated_call(
            client,
            QUEUE_AGAIN,
            &[
                call.id.into(),
                attempts.into(),
                reason.into(),
                call.retry_at(secs).into(),
            ],
        ),
    }
}

/// `mark_call_placed()`'s work: the provider's call id of a call in
/// progress (PT404/PT409 when it is not).
pub fn place(
    client: &SpiClient<'_>,
    id: Option<Uuid>,
    provider_call_id: &str,
) -> Result<Result<CallRow, DialerError>, SpiError> {
    match lock_in_progress(client, id)? {
        Err(err) => Ok(Err(err)),
        Ok(_) => updated_call(client, SET_CALL_ID, &[id.into(), provider_call_id.into()]).map(Ok),
    }
}

/// `mark_call_failed()`'s work: a failed attempt of a call in progress.
pub fn fail(
    client: &SpiClient<'_>,
    id: Option<Uuid>,
    reason: &str,
    retryable: bool,
) -> Result<Result<CallRow, DialerError>, SpiError> {
    match lock_in_progress(client, id)? {
        Err(err) => Ok(Err(err)),
        Ok(call) => fail_attempt(client, &call, reason, retryable).map(Ok),
    }
}

/// A call in progress back in the queue without counting an attempt (its
/// provider refused to take it now: 429), due `after_secs` from now (within
/// its window), with `reason` as its last error.
pub fn put_back(
    client: &SpiClient<'_>,
    id: Uuid,
    reason: &str,
    after_secs: f64,
) -> Result<Result<CallRow, DialerError>, SpiError> {
    match lock_in_progress(client, Some(id))? {
        Err(err) => Ok(Err(err)),
        Ok(call) => updated_call(
            client,
            QUEUE_AGAIN,
            &[
                call.id.into(),
                call.attempts.into(),
                reason.into(),
                call.retry_at(after_secs).into(),
            ],
        )
        .map(Ok),
    }
}

/// The call row an UPDATE ... RETURNING q of one call returns.
fn updated_call(
    client: &SpiClient<'_>,
    sql: &'static str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> Result<CallRow, SpiError> {
    plans::first(client, sql, args, |r| r.get::<CallRow>(1))?
        .flatten()
        .ok_or(SpiError::InvalidPosition)
}

/// `value`, unless it is NULL or spaces only (22023).
fn not_empty(name: &str, value: Option<&str>) -> String {
    match value.map(|v| v.trim_matches(' ')) {
        Some(v) if !v.is_empty() => value.unwrap_or_default().to_string(),
        _ => crate::errors::raise(DialerError::invalid(format!("{name} is empty"))),
    }
}

#[pg_schema]
mod dialer {
    use super::*;

    /// `mark_call_placed()`: the provider's call id of a call in progress.
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn place_call(
        call_queue_id: Option<Uuid>,
        provider_call_id: Option<&str>,
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
        require_worker("mark_call_placed");
        let provider_call_id = not_empty("provider_call_id", provider_call_id);
        outcome(spi(Spi::connect_mut(|client| {
            place(client, call_queue_id, &provider_call_id)
        })))
    }

    /// `mark_call_failed()`: a failed attempt of a call in progress.
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity)]
    fn fail_call(
        call_queue_id: Option<Uuid>,
        error_message: Option<&str>,
        retryable: Option<bool>,
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
        require_worker("mark_call_failed");
        let reason = not_empty("error_message", error_message);
        outcome(spi(Spi::connect_mut(|client| {
            // NULL: not retryable (the parameter's default is true)
            fail(client, call_queue_id, &reason, retryable.unwrap_or(false))
        })))
    }
}

/// rescue_stale_calls: calls in progress for longer than `older_than`
/// (default pg_dialer.stale_call_timeout) without a result count a failed
/// attempt: queued again, or failed once their attempts are used up. Queued
/// calls past their latest time (`expires_at`) end canceled, as expired.
/// Returns the calls it changed.
/// `older_than => '0 seconds'` takes back every call in progress (after an
/// outage).
#[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
#[search_path(pg_catalog)]
pub fn rescue_stale_calls(
    older_than: default!(Option<Interval>, "NULL"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "public.call_queue")> {
    require_worker("rescue_stale_calls");
    let timeout = older_than.unwrap_or_else(stale_call_timeout);
    let (text, negative) = spi(Spi::get_two_with_args::<String, bool>(
        "SELECT $1::text, $1 < interval '0'",
        &[timeout.into()],
    ));
    let text = text.unwrap_or_default();
    if negative == Some(true) {
        crate::errors::raise(DialerError::invalid(format!(
            "older_than must not be negative, not {text}"
        )));
    }
    let reason = format!("no result within {text} of being claimed");
    let rescued = spi(Spi::connect_mut(|client| {
        let stale: Vec<Attempted> = plans::query(client, STALE, &[timeout.into()])?
            .map(|row| {
                Ok(Attempted {
                    id: row.get::<Uuid>(1)?.expect("an id"),
                    attempts: row.get::<i32>(2)?.unwrap_or(0),
                    recipient: row.get(3)?,
                    call_window: row.get(4)?,
                })
            })
            .collect::<Result<_, SpiError>>()?;
        let mut rescued = stale
            .iter()
            .map(|call| fail_attempt(client, call, &reason, true))
            .collect::<Result<Vec<_>, SpiError>>()?;
        let expired: Vec<Uuid> = plans::query(client, EXPIRED, &[])?
            .map(|row| row.get::<Uuid>(1).map(|id| id.expect("an id")))
            .collect::<Result<_, SpiError>>()?;
        rescued.extend(expire(client, &expired)?);
        Ok(rescued)
    }));
    SetOfIterator::new(rescued)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn retry_delay_follows_the_settings() {
        let delay = super::retry_delay;
        assert_eq!(delay(1, true, 0.0), Some(30.0));
        assert_eq!(delay(2, true, 0.0), Some(60.0));
        assert_eq!(delay(3, true, 0.0), None, "three attempts by default");
        assert_eq!(delay(1, false, 0.0), None, "not retryable");
        Spi::run("SET LOCAL pg_dialer.max_attempts = 5").unwrap();
        Spi::run("SET LOCAL pg_dialer.retry_base_delay = '10s'").unwrap();
        assert_eq!(delay(3, true, 0.0), Some(20.0));
    }
}

/// How many stale calls `rescue_stale_calls()` took back (for the
/// dispatcher's worker, after `pg_dialer.stale_call_timeout`).
pub fn rescue_count() -> usize {
    rescue_stale_calls(None).count()
}
