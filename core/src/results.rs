//! Provider webhooks, normalized: VAPI's `end-of-call-report`, Retell's
//! `call_ended` and `call_analyzed`, and Bland's post-call body, each read
//! into one `CallResult`.
//!
//! What an ended call means for the queue:
//!
//! | outcome | VAPI `endedReason` | Retell `disconnection_reason` | Bland |
//! |---|---|---|---|
//! | completed | `customer-ended-call`, `assistant-*ended-call*`, `assistant-said-end-call-phrase`, `assistant-forwarded-call`, `exceeded-max-duration`, `silence-timed-out` | `user_hangup`, `agent_hangup`, `call_transfer`, `inactivity`, `max_duration_reached` | `status: completed`, answered by a human |
//! | retry (not reached) | `customer-did-not-answer`, `customer-busy`, `voicemail` | `dial_no_answer`, `dial_busy`, `dial_failed`, `voicemail_reached`, `user_declined`, `concurrency_limit_reached`, `telephony_provider_unavailable` | `busy`, `no-answer`, voicemail, any other `error_message` |
//! | retry (provider fault) | any other reason with `error` or `fault` in it | `error_*` | |
//! | failed for good | `assistant-not-found`, `assistant-not-valid`, `assistant-not-provided`, `assistant-request-*`, `call-start-error-*` | `invalid_destination`, `no_valid_payment`, `scam_detected`, `marked_as_spam`, `telephony_provider_permission_denied`, `sip_routing_error` | an `error_message` naming an invalid, blocked or do-not-call number, an unpaid or unauthorized account, or something not found |
//! | canceled | `manually-canceled` | | |
//!
//! Any other reason counts as completed when the call connected (it has a
//! duration or a transcript) and as a retryable failure when it did not.

use crate::error::DialerError;
use chrono::DateTime;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Vapi,
    Retell,
    Bland,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Vapi => "vapi",
            Provider::Retell => "retell",
            Provider::Bland => "bland",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Canceled,
    Failed { retryable: bool },
}

impl Outcome {
    /// The call's status for this outcome, as `call_queue` and
    /// `user_call_history` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Canceled => "canceled",
            Outcome::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    pub provider: Provider,
    pub event: String,
    pub call_id: String,
    pub ended_reason: Option<String>,
    pub outcome: Outcome,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    pub summary: Option<String>,
    /// Whole seconds, rounded up.
    pub duration_secs: Option<i64>,
    /// In US dollars.
    pub cost: Option<f64>,
    /// The `call_queue.id` the dispatcher sent as the call's metadata
    /// (`call_queue_id`), when the body carries it back and it is a UUID: a
    /// result that comes before the dispatcher recorded the provider's call
    /// id still finds its call.
    pub queued_call: Option<String>,
    /// The attempt (1 for the first) the dispatcher sent beside it: a late
    /// result of an earlier attempt never binds to a later one.
    pub queued_attempt: Option<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Webhook {
    /// A call's result.
    Result(CallResult),
    /// Another event of a known provider (a status update, a call start):
    /// nothing to record.
    Ignored { provider: Provider, event: String },
}

/// The longest call a result may report: a day. A longer duration is not a
/// call but bad data, and would overflow the usage counters.
pub const MAX_CALL_SECONDS: i64 = 24 * 60 * 60;

/// Reads a webhook body as the provider delivered it.
pub fn normalize(payload: &Value) -> Result<Webhook, DialerError> {
    let webhook = normalize_any(payload)?;
    if let Webhook::Result(CallResult {
        duration_secs: Some(secs),
        ..
    }) = &webhook
    {
        if *secs > MAX_CALL_SECONDS {
            return Err(DialerError::invalid(format!(
                "the call's duration of {secs} seconds is more than a day ({MAX_CALL_SECONDS} seconds)"
            )));
        }
    }
    Ok(webhook)
}

fn normalize_any(payload: &Value) -> Result<Webhook, DialerError> {
    let Some(body) = payload.as_object() else {
        return Err(DialerError::invalid(
            "the webhook payload must be a JSON object",
        ));
    };
    if let Some(message) = body.get("message").filter(|m| m.get("type").is_some()) {
        return vapi(message);
    }
    if body.get("call").is_some_and(Value::is_object)
        && (body.get("event").is_some() || body.get("event_type").is_some())
    {
        return retell(payload);
    }
    if body.get("call_id").is_some()
        && [
            "concatenated_transcript",
            "call_length",
            "corrected_duration",
            "c_id",
            "answered_by",
            "queue_status",
        ]
        .iter()
        .any(|k| body.contains_key(*k))
    {
        return bland(payload);
    }
    Err(DialerError::invalid(
        "the payload is not a VAPI end-of-call-report, a Retell call event or a Bland post-call body",
    )
    .with_hint("Send the provider's webhook body unchanged."))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn whole_seconds(secs: f64) -> i64 {
    if secs.is_finite() && secs > 0.0 {
        secs.ceil() as i64
    } else {
        0
    }
}

fn required_call_id(id: Option<String>, field: &str) -> Result<String, DialerError> {
    id.ok_or_else(|| DialerError::invalid(format!("the payload has no {field}")))
}

/// Connected calls with an unknown reason count as completed.
fn by_connection(duration: Option<i64>, transcript: &Option<String>) -> Outcome {
    if duration.unwrap_or(0) > 0 || transcript.is_some() {
        Outcome::Completed
    } else {
        Outcome::Failed { retryable: true }
    }
}

fn vapi(message: &Value) -> Result<Webhook, DialerError> {
    let event = text(message, &["type"]).unwrap_or_default();
    if event != "end-of-call-report" {
        return Ok(Webhook::Ignored {
            provider: Provider::Vapi,
            event,
        });
    }
    let call_id = required_call_id(text(message, &["call", "id"]), "message.call.id")?;
    let transcript =
        text(message, &["artifact", "transcript"]).or_else(|| text(message, &["transcript"]));
    let recording_url =
        text(message, &["artifact", "recordingUrl"]).or_else(|| text(message, &["recordingUrl"]));
    let summary = text(message, &["analysis", "summary"]).or_else(|| text(message, &["summary"]));
    let duration_secs = number(message, &["durationSeconds"])
        .map(whole_seconds)
        .or_else(|| {
            let started =
                text(message, &["startedAt"]).or_else(|| text(message, &["call", "startedAt"]))?;
            let ended =
                text(message, &["endedAt"]).or_else(|| text(message, &["call", "endedAt"]))?;
            let started = DateTime::parse_from_rfc3339(&started).ok()?;
            let ended = DateTime::parse_from_rfc3339(&ended).ok()?;
            Some(whole_seconds(
                (ended - started).num_milliseconds() as f64 / 1000.0,
            ))
        });
    let ended_reason = text(message, &["endedReason"]);
    let outcome = match ended_reason.as_deref() {
        Some(
            "customer-ended-call"
            | "assistant-ended-call"
            | "assistant-ended-call-after-message-spoken"
            | "assistant-ended-call-with-hangup-task"
            | "assistant-said-end-call-phrase"
            | "assistant-forwarded-call"
            | "exceeded-max-duration"
            | "silence-timed-out",
        ) => Outcome::Completed,
        Some("customer-did-not-answer" | "customer-busy" | "voicemail") => {
            Outcome::Failed { retryable: true }
        }
        Some("manually-canceled") => Outcome::Canceled,
        Some(
            "assistant-not-found"
            | "assistant-not-valid"
            | "assistant-not-invalid"
            | "assistant-not-provided",
        ) => Outcome::Failed { retryable: false },
        Some(r) if r.starts_with("assistant-request-") || r.starts_with("call-start-error-") => {
            Outcome::Failed { retryable: false }
        }
        Some(r) if r.contains("error") || r.contains("fault") => {
            Outcome::Failed { retryable: true }
        }
        _ => by_connection(duration_secs, &transcript),
    };
    Ok(Webhook::Result(CallResult {
        provider: Provider::Vapi,
        event,
        call_id,
        ended_reason,
        outcome,
        transcript,
        recording_url,
        summary,
        duration_secs,
        cost: number(message, &["cost"]),
        queued_call: queued_call(
            text(
                message,
                &["call", "assistantOverrides", "metadata", "call_queue_id"],
            )
            .or_else(|| text(message, &["call", "metadata", "call_queue_id"])),
        ),
        queued_attempt: attempt(
            number(
                message,
                &["call", "assistantOverrides", "metadata", "attempt"],
            )
            .or_else(|| number(message, &["call", "metadata", "attempt"])),
        ),
    }))
}

fn retell(payload: &Value) -> Result<Webhook, DialerError> {
    let event = text(payload, &["event"])
        .or_else(|| text(payload, &["event_type"]))
        .unwrap_or_default();
    if event != "call_ended" && event != "call_analyzed" {
        return Ok(Webhook::Ignored {
            provider: Provider::Retell,
            event,
        });
    }
    let call = &payload["call"];
    let call_id = required_call_id(text(call, &["call_id"]), "call.call_id")?;
    let transcript = text(call, &["transcript"]);
    let duration_secs = number(call, &["duration_ms"])
        .or_else(|| Some(number(call, &["end_timestamp"])? - number(call, &["start_timestamp"])?))
        .map(|ms| whole_seconds(ms / 1000.0));
    let ended_reason = text(call, &["disconnection_reason"]);
    let outcome = match ended_reason.as_deref() {
        Some(
            "user_hangup"
            | "agent_hangup"
            | "call_transfer"
            | "inactivity"
            | "max_duration_reached",
        ) => Outcome::Completed,
        Some(
            "dial_no_answer"
            | "dial_busy"
            | "dial_failed"
            | "voicemail_reached"
            | "user_declined"
            | "concurrency_limit_reached"
            | "telephony_provider_unavailable",
        ) => Outcome::Failed { retryable: true },
        Some(
            "invalid_destination"
            | "no_valid_payment"
            | "scam_detected"
            | "marked_as_spam"
            | "telephony_provider_permission_denied"
            | "sip_routing_error",
        ) => Outcome::Failed { retryable: false },
        Some(r) if r.starts_with("error") => Outcome::Failed { retryable: true },
        _ => by_connection(duration_secs, &transcript),
    };
    Ok(Webhook::Result(CallResult {
        provider: Provider::Retell,
        event,
        call_id,
        ended_reason,
        outcome,
        transcript,
        recording_url: text(call, &["recording_url"]),
        summary: text(call, &["call_analysis", "call_summary"]),
        duration_secs,
        // Retell reports cents.
        cost: number(call, &["call_cost", "combined_cost"]).map(|cents| cents / 100.0),
        queued_call: queued_call(text(call, &["metadata", "call_queue_id"])),
        queued_attempt: attempt(number(call, &["metadata", "attempt"])),
    }))
}

fn bland(payload: &Value) -> Result<Webhook, DialerError> {
    let call_id = required_call_id(text(payload, &["call_id"]), "call_id")?;
    let transcript = text(payload, &["concatenated_transcript"]);
    let duration_secs = number(payload, &["corrected_duration"])
        .or_else(|| number(payload, &["call_length"]).map(|minutes| minutes * 60.0))
        .map(whole_seconds);
    let error = text(payload, &["error_message"]);
    let answered_by = text(payload, &["answered_by"]).map(|a| a.to_lowercase());
    let queue_status = text(payload, &["queue_status"]).map(|s| s.to_lowercase());
    let status = text(payload, &["status"]).map(|s| s.to_lowercase());
    let not_reached = |s: &Option<String>| {
        matches!(
            s.as_deref(),
            Some("busy" | "no-answer" | "no_answer" | "unanswered" | "failed" | "canceled")
        )
    };
    let (outcome, ended_reason) = if let Some(error) = error {
        let retryable = !bland_error_is_final(&error);
        (Outcome::Failed { retryable }, Some(error))
    } else if answered_by.as_deref() == Some("voicemail") {
        (
            Outcome::Failed { retryable: true },
            Some("voicemail".to_owned()),
        )
    } else if not_reached(&status) {
        // The reason (busy, no-answer), not the queue's state ("complete").
        (Outcome::Failed { retryable: true }, status)
    } else if not_reached(&queue_status) {
        (Outcome::Failed { retryable: true }, queue_status)
    } else if status.as_deref() == Some("completed")
        || payload.get("completed") == Some(&Value::Bool(true))
    {
        (
            Outcome::Completed,
            text(payload, &["call_ended_by"]).or(status),
        )
    } else {
        (by_connection(duration_secs, &transcript), status)
    };
    Ok(Webhook::Result(CallResult {
        provider: Provider::Bland,
        event: "post-call".to_owned(),
        call_id,
        ended_reason,
        outcome,
        transcript,
        recording_url: text(payload, &["recording_url"]),
        summary: text(payload, &["summary"]),
        duration_secs,
        cost: number(payload, &["price"]),
        queued_call: queued_call(text(payload, &["metadata", "call_queue_id"])),
        queued_attempt: attempt(number(payload, &["metadata", "attempt"])),
    }))
}

/// A metadata `call_queue_id`, when it is a UUID (written as PostgreSQL
/// writes uuids).
fn queued_call(id: Option<String>) -> Option<String> {
    uuid::Uuid::parse_str(id?.trim())
        .ok()
        .map(|id| id.to_string())
}

/// A metadata `attempt`: a whole number from 1 up.
fn attempt(n: Option<f64>) -> Option<i32> {
    n.filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= f64::from(i32::MAX))
        .map(|n| n as i32)
}

/// Whether a Bland `error_message` says that trying the call again cannot
/// help: a number that is invalid or not allowed, an account that cannot pay
/// or is not authorized, a pathway, agent or number that does not exist.
/// Anything else (a carrier or network error, a timeout) is retried.
fn bland_error_is_final(message: &str) -> bool {
    const FINAL: [&str; 14] = [
        "invalid",
        "not a valid",
        "not valid",
        "blocked",
        "blacklist",
        "do not call",
        "do-not-call",
        "insufficient",
        "balance",
        "unauthorized",
        "forbidden",
        "not found",
        "not allowed",
        "unsupported",
    ];
    let message = message.to_lowercase();
    FINAL.iter().any(|marker| message.contains(marker))
}

#[cfg(test)]
mod tests;
