//! `enqueue_calls()`: up to 10,000 calls in one request. Every call passes
//! the checks of `enqueue_call()` (src/checks.rs, the same code), made
//! set-based: one lock and one lookup of the campaign, caller number,
//! template, voice and subscription per request, then each call's own
//! checks, then the quota for all of them, then one INSERT. All or nothing
//! by default: any bad call and nothing is written, and the error lists
//! every bad call (its index, the field, the reason) as JSON in its DETAIL;
//! with `skip_invalid` the good calls are queued and the bad ones returned.
//! A call whose idempotency key the user has used already is not queued
//! again: its call is returned.

use crate::checks::{
    check_call, check_quota, check_request, require_subscription, CallInput, CheckedCall, Refs,
};
use crate::errors::{outcome, spi};
use crate::identity::caller_is_privileged;
use crate::plans;
use crate::queue::{new_call_id, Passing, VARIABLES_READ_BYTES};
use crate::window::{parse_rfc3339, to_utc, MAX_WINDOW_BYTES};
use pg_dialer_core::error::{quoted, DialerError};
use pg_dialer_core::json;
use pg_dialer_core::phone::parse_e164;
use pg_dialer_core::window::Window;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::JsonB;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// The most calls one request queues.
pub const MAX_CALLS: usize = 10_000;
/// The longest request read: 10,000 calls with generous variables.
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// The keys a call of the list may have.
const CALL_KEYS: [&str; 6] = [
    "recipient_number",
    "custom_variables",
    "scheduled_time",
    "idempotency_key",
    "call_window",
    "expires_at",
];

/// The user's calls that hold some of the keys.
const BY_KEYS: &str = "
    SELECT q.idempotency_key, q.id, q.scheduled_time FROM public.call_queue q
    WHERE q.user_id = $1 AND q.idempotency_key = ANY ($2)";

/// The checked calls, queued in one statement.
const INSERT: &str = "
    INSERT INTO public.call_queue AS q
        (id, user_id, recipient_number, caller_number_id, template_id, voice_id, campaign_id,
         scheduled_time, custom_variables, idempotency_key, call_window, expires_at)
    SELECT r.id, $2, r.recipient, $3::uuid, $4::uuid, $5::uuid, $6::uuid,
           r.at, r.variables::jsonb, r.key, r.call_window::jsonb, r.expires_at
    FROM unnest($1::uuid[], $7::text[], $8::timestamptz[], $9::text[], $10::text[], $11::text[],
                $12::timestamptz[]) AS r(id, recipient, at, variables, key, call_window, expires_at)
    ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING q.id";

#[pg_schema]
mod dialer {
    use super::*;

    /// The work of `enqueue_calls()` (its SQL shell in sql/campaigns.sql).
    // pgrx reads the SQL columns from the spelled-out type
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    #[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog, pg_temp)]
    fn enqueue_batch(
        calls: Option<&str>,
        template_id: Option<pgrx::Uuid>,
        voice_id: Option<pgrx::Uuid>,
        caller_number_id: Option<pgrx::Uuid>,
        campaign_id: Option<pgrx::Uuid>,
        call_window: Option<&str>,
        expires_at: Option<TimestampWithTimeZone>,
        skip_invalid: Option<bool>,
        user_id: Option<pgrx::Uuid>,
    ) -> TableIterator<
        'static,
        (
            name!(result, Option<JsonB>),
            name!(error_code, Option<String>),
            name!(error_message, Option<String>),
            name!(error_detail, Option<String>),
            name!(error_hint, Option<String>),
        ),
    > {
        let id = |id: Option<pgrx::Uuid>| id.map(|id| id.to_string());
        let shared = Shared {
            caller_number_id: id(caller_number_id),
            template_id: id(template_id),
            voice_id: id(voice_id),
            campaign_id: id(campaign_id),
            expires_at,
        };
        let user = crate::identity::acting_for(user_id, "queue calls");
        outcome(
            read_request(calls, call_window)
                .and_then(|(list, window)| {
                    enqueue_all(user, &shared, list, window, skip_invalid.unwrap_or(false))
                })
                .map(JsonB),
        )
    }
}

/// What the request's calls share.
struct Shared {
    caller_number_id: Option<String>,
    template_id: Option<String>,
    voice_id: Option<String>,
    campaign_id: Option<String>,
    expires_at: Option<TimestampWithTimeZone>,
}

/// A call of the list, read; its variables are kept as their text and
/// read when the call is checked, one call at a time.
struct Item<'t> {
    recipient_number: String,
    custom_variables: Option<&'t str>,
    scheduled_time: Option<TimestampWithTimeZone>,
    idempotency_key: Option<String>,
    call_window: Option<Value>,
    expires_at: Option<TimestampWithTimeZone>,
}

/// A call that passed: its index, the call checked, the call as read, its
/// variables as they are stored.
type Checked<'i, 't> = (usize, CheckedCall, &'i Item<'t>, Option<String>);

/// A bad call: its index in the list, the field, the reason.
struct Invalid {
    index: usize,
    field: String,
    reason: String,
}

/// A call's answer: queued now, or queued before under its key.
struct Answer {
    index: usize,
    id: pgrx::Uuid,
    scheduled_time: Option<TimestampWithTimeZone>,
    existing: bool,
}

/// The list of calls (each call as its text) and the shared window, read
/// within their limits: at most `MAX_CALLS` calls are kept in memory, and
/// a longer list is refused, however long.
fn read_request<'t>(
    calls: Option<&'t str>,
    call_window: Option<&str>,
) -> Result<(Vec<&'t RawValue>, Option<Window>), DialerError> {
    let text = calls.ok_or_else(|| DialerError::invalid("calls is required"))?;
    let Some((list, count)) = json::parse_list("calls", text, MAX_REQUEST_BYTES, MAX_CALLS)? else {
        return Err(DialerError::invalid(
            "calls must be a JSON array of calls, such as [{\"recipient_number\": \"+14155550100\"}]",
        ));
    };
    if count == 0 {
        return Err(DialerError::invalid("calls is an empty list"));
    }
    if count > MAX_CALLS {
        return Err(DialerError::invalid(format!(
            "calls holds {count} calls; at most {MAX_CALLS} are queued in one request"
        )));
    }
    // A bad shared window is the request's error, not every call's.
    let window = call_window
        .map(|text| {
            json::parse("call_window", text, MAX_WINDOW_BYTES)
                .and_then(|value| Window::parse("call_window", &value))
        })
        .transpose()?;
    Ok((list, window))
}

fn enqueue_all(
    user: pgrx::Uuid,
    shared: &Shared,
    list: Vec<&RawValue>,
    window: Option<Window>,
    skip_invalid: bool,
) -> Result<Value, DialerError> {
    let total = list.len();
    let mut invalid = Vec::new();
    let items: Vec<Option<Item>> = list
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            read_item(value)
                .map_err(|(field, reason)| {
                    invalid.push(Invalid {
                        index,
                        field,
                        reason,
                    })
                })
                .ok()
        })
        .collect();
    // `user` is the caller or one they may act for (`acting_for` above)
    let privileged = caller_is_privileged();
    let user_text = user.to_string();
    spi(Spi::connect_mut(|client| {
        let refs = Refs {
            caller_number_id: shared.caller_number_id.as_deref(),
            template_id: shared.template_id.as_deref(),
            voice_id: shared.voice_id.as_deref(),
            campaign_id: shared.campaign_id.as_deref(),
            window_given: window.is_some(),
        };
        let mut request = match check_request(client, &user_text, privileged, &refs, None, None)
            .and_then(|request| require_subscription(&request).map(|()| request))
        {
            Ok(request) => request,
            Err(err) => return Ok(Err(err)),
        };
        // The window given for all calls is each call's own (read once).
        if let Some(window) = window {
            request.default_window = Some(window);
        }
        let existing = existing_calls(client, user, &items)?;
        let mut answers = Vec::new();
        let mut checked: Vec<Checked> = Vec::new();
        let mut keys_seen: HashMap<&str, usize> = HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let Some(item) = item else { continue };
            check_for_interrupts!();
            let key = item.idempotency_key.as_deref();
            if let Some(&(id, at)) = key.and_then(|key| existing.get(key)) {
                answers.push(Answer {
                    index,
                    id,
                    scheduled_time: at,
                    existing: true,
                });
                continue;
            }
            let mut first_with_key = |index| key.and_then(|key| keys_seen.insert(key, index));
            match check_item(&request, item, shared.expires_at) {
                Err((field, err)) => invalid.push(Invalid {
                    index,
                    field: field.into(),
                    reason: err.message,
                }),
                // a key is judged among the calls that pass
                Ok((call, variables)) => match first_with_key(index) {
                    Some(first) => invalid.push(Invalid {
                        index,
                        field: "idempotency_key".into(),
                        reason: format!(
                            "idempotency_key {} is that of call {first} too",
                            quoted(key.unwrap_or_default())
                        ),
                    }),
                    None => checked.push((index, call, item, variables)),
                },
            }
        }
        invalid.sort_by_key(|bad| bad.index);
        if !invalid.is_empty() && !skip_invalid {
            return Ok(Err(refused(&invalid, total)));
        }
        if let Err(err) = check_quota(&request.account, checked.len() as i64) {
            return Ok(Err(err));
        }
        let queued = insert(client, user, shared, &request, &checked)?;
        answers.extend(queued);
        answers.sort_by_key(|answer| answer.index);
        Ok(Ok(summary(&answers, &invalid)))
    }))
}

/// One call of the list, as its keys say; `Err` names the field.
fn read_item(raw: &RawValue) -> Result<Item<'_>, (String, String)> {
    let Ok(mut call) = serde_json::from_str::<BTreeMap<String, &RawValue>>(raw.get()) else {
        return Err((
            "call".into(),
            "a call must be a JSON object with a recipient_number".into(),
        ));
    };
    if let Some(key) = call.keys().find(|k| !CALL_KEYS.contains(&k.as_str())) {
        return Err((
            key.clone(),
            format!(
                "unknown key {}; a call takes {}",
                quoted(key),
                CALL_KEYS.join(", ")
            ),
        ));
    }
    let mut value = |field: &str| call.remove(field).filter(|v| v.get() != "null");
    let text = |field: &str, raw: Option<&RawValue>| {
        raw.map(|raw| {
            serde_json::from_str::<String>(raw.get()).map_err(|_| {
                let shown: String = raw.get().chars().take(60).collect();
                (
                    field.to_owned(),
                    format!("{field} must be a string, not {shown}"),
                )
            })
        })
        .transpose()
    };
    let time = |field: &str, raw: Option<&RawValue>| {
        text(field, raw)?
            .map(|text| {
                parse_rfc3339(&text).ok_or_else(|| {
                    (
                        field.to_owned(),
                        format!(
                            "{field} {} is not a time such as 2026-12-01T09:00:00-05:00 (RFC 3339, with its offset)",
                            quoted(&text)
                        ),
                    )
                })
            })
            .transpose()
    };
    let recipient_number =
        text("recipient_number", value("recipient_number"))?.ok_or_else(|| {
            (
                "recipient_number".to_owned(),
                "recipient_number is required".to_owned(),
            )
        })?;
    let call_window = value("call_window")
        .map(|raw| json::parse("call_window", raw.get(), MAX_WINDOW_BYTES))
        .transpose()
        .map_err(|err| ("call_window".to_owned(), err.message))?;
    Ok(Item {
        recipient_number,
        custom_variables: value("custom_variables").map(RawValue::get),
        scheduled_time: time("scheduled_time", value("scheduled_time"))?,
        idempotency_key: text("idempotency_key", value("idempotency_key"))?,
        call_window,
        expires_at: time("expires_at", value("expires_at"))?,
    })
}

/// The checks of one call (src/checks.rs), its recipient parsed first;
/// the call checked and its variables as they are to be stored.
fn check_item(
    request: &crate::checks::Request,
    item: &Item,
    expires_at: Option<TimestampWithTimeZone>,
) -> Result<(CheckedCall, Option<String>), (&'static str, DialerError)> {
    let recipient = parse_e164("recipient_number", &item.recipient_number)
        .map_err(|err| ("recipient_number", err))?;
    let variables = item
        .custom_variables
        .map(|text| json::parse("custom_variables", text, VARIABLES_READ_BYTES))
        .transpose()
        .map_err(|err| ("custom_variables", err))?;
    let checked = check_call(
        request,
        &CallInput {
            recipient: &recipient,
            variables: variables.as_ref(),
            scheduled_time: item.scheduled_time,
            idempotency_key: item.idempotency_key.as_deref(),
            call_window: item.call_window.as_ref(),
            expires_at: item.expires_at.or(expires_at),
        },
    )?;
    // stored as checked: the text read, written again (a number PostgreSQL
    // would read otherwise than the check did is stored as the check read it)
    Ok((checked, variables.as_ref().map(Value::to_string)))
}

/// The user's calls holding the keys of the list: key, id, time.
fn existing_calls(
    client: &SpiClient<'_>,
    user: pgrx::Uuid,
    items: &[Option<Item>],
) -> Result<HashMap<String, (pgrx::Uuid, Option<TimestampWithTimeZone>)>, SpiError> {
    let keys: Vec<&str> = items
        .iter()
        .flatten()
        .filter_map(|item| item.idempotency_key.as_deref())
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    calls_by_keys(client, user, keys)
}

/// The user's calls holding `keys`: key, id, time.
fn calls_by_keys(
    client: &SpiClient<'_>,
    user: pgrx::Uuid,
    keys: Vec<&str>,
) -> Result<HashMap<String, (pgrx::Uuid, Option<TimestampWithTimeZone>)>, SpiError> {
    plans::query(client, BY_KEYS, &[user.into(), keys.into()])?
        .map(|row| {
            Ok((
                row.get::<String>(1)?.unwrap_or_default(),
                (row.get::<pgrx::Uuid>(2)?.expect("an id"), row.get(3)?),
            ))
        })
        .collect()
}

/// The checked calls, queued; a call whose key a concurrent request took
/// meanwhile is answered with that request's call.
fn insert(
    client: &SpiClient<'_>,
    user_id: pgrx::Uuid,
    shared: &Shared,
    request: &crate::checks::Request,
    checked: &[Checked],
) -> Result<Vec<Answer>, SpiError> {
    if checked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<pgrx::Uuid> = checked.iter().map(|_| new_call_id()).collect();
    let column = |f: &dyn Fn(&CheckedCall, &Item) -> Option<String>| -> Vec<Option<String>> {
        checked
            .iter()
            .map(|(_, call, item, _)| f(call, item))
            .collect()
    };
    let recipients = column(&|call, _| Some(call.recipient_number.clone()));
    let variables: Vec<Option<String>> = checked.iter().map(|c| c.3.clone()).collect();
    let keys = column(&|_, item| item.idempotency_key.clone());
    let windows = column(&|call, _| Some(call.call_window.to_string()));
    let times: Vec<Option<TimestampWithTimeZone>> = checked
        .iter()
        .map(|(_, call, _, _)| Some(call.scheduled_time))
        .collect();
    let expiries: Vec<Option<TimestampWithTimeZone>> = checked
        .iter()
        .map(|(_, call, _, _)| call.expires_at)
        .collect();
    let _passing = Passing::rows(ids.iter().copied());
    let inserted: std::collections::HashSet<[u8; 16]> = plans::query(
        client,
        INSERT,
        &[
            ids.clone().into(),
            user_id.into(),
            request.caller_number_id.as_deref().into(),
            request.template_id.as_deref().into(),
            request.voice_id.as_deref().into(),
            shared.campaign_id.as_deref().into(),
            recipients.into(),
            times.into(),
            variables.into(),
            keys.into(),
            windows.into(),
            expiries.into(),
        ],
    )?
    .map(|row| Ok(*row.get::<pgrx::Uuid>(1)?.expect("an id").as_bytes()))
    .collect::<Result<_, SpiError>>()?;
    let mut answers = Vec::with_capacity(checked.len());
    let mut raced = Vec::new();
    for ((index, call, item, _), id) in checked.iter().zip(ids) {
        if inserted.contains(id.as_bytes()) {
            answers.push(Answer {
                index: *index,
                id,
                scheduled_time: Some(call.scheduled_time),
                existing: false,
            });
        } else {
            raced.push((*index, item));
        }
    }
    if !raced.is_empty() {
        let keys: Vec<&str> = raced
            .iter()
            .filter_map(|(_, item)| item.idempotency_key.as_deref())
            .collect();
        let found = calls_by_keys(client, user_id, keys)?;
        for (index, item) in raced {
            let key = item.idempotency_key.as_deref().unwrap_or_default();
            if let Some(&(id, at)) = found.get(key) {
                answers.push(Answer {
                    index,
                    id,
                    scheduled_time: at,
                    existing: true,
                });
            }
        }
    }
    Ok(answers)
}

/// The error of a list with bad calls, when nothing is written.
fn refused(invalid: &[Invalid], total: usize) -> DialerError {
    let count = invalid.len();
    let verb = if count == 1 { "is" } else { "are" };
    DialerError::invalid(format!(
        "{count} of the {total} calls {verb} invalid; none was queued"
    ))
    .with_detail(Value::Array(invalid.iter().map(invalid_json).collect()).to_string())
    .with_hint("Correct them, or pass skip_invalid => true to queue the others and get these back.")
}

fn invalid_json(bad: &Invalid) -> Value {
    json!({"index": bad.index, "field": bad.field, "reason": bad.reason})
}

/// The answer: how many calls were queued now and before, each call's id
/// and time by its index in the list, and the bad calls.
fn summary(answers: &[Answer], invalid: &[Invalid]) -> Value {
    let existing = answers.iter().filter(|a| a.existing).count();
    json!({
        "queued": answers.len() - existing,
        "existing": existing,
        "invalid": invalid.iter().map(invalid_json).collect::<Vec<_>>(),
        "calls": answers.iter().map(|a| json!({
            "index": a.index,
            "id": a.id.to_string(),
            "scheduled_time": a.scheduled_time.and_then(to_utc).map(|t| t.to_rfc3339()),
            "existing": a.existing,
        })).collect::<Vec<_>>(),
    })
}
