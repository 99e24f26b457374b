//! The providers' create-call requests and what their answers mean, as each
//! provider documents them: VAPI `POST /call`, Retell
//! `POST /v2/create-phone-call`, Bland `POST /v1/calls` (docs/providers.md
//! sums them up). Which API a provider speaks is data: the `api` column of
//! `call_service_providers`, never guessed from its name.
//!
//! Nothing here sends anything: the dispatcher (src/dispatch.rs) sends what
//! [`build`] writes and hands the answer to [`read_answer`]. The API key goes
//! into the request's headers only, and every text that leaves this module
//! (reasons, errors) has it blotted out ([`redact`]).

use crate::error::quoted;
use crate::results::Provider;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::time::Duration;

/// A provider that answers 429 without `Retry-After` is paused this long.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(10);
/// The longest pause a `Retry-After` can ask for.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);
/// A reason (`last_error`) keeps at most this many characters of what the
/// provider said.
pub const MAX_REASON_CHARS: usize = 300;

impl Provider {
    /// The provider of an `api` value as `call_service_providers.api`
    /// spells it.
    pub fn from_api(api: &str) -> Option<Provider> {
        match api {
            "vapi" => Some(Provider::Vapi),
            "retell" => Some(Provider::Retell),
            "bland" => Some(Provider::Bland),
            _ => None,
        }
    }

    /// The create-call endpoint's path, after the provider's base URL.
    pub fn create_call_path(self) -> &'static str {
        match self {
            Provider::Vapi => "/call",
            Provider::Retell => "/v2/create-phone-call",
            Provider::Bland => "/v1/calls",
        }
    }

    /// The documented base URL (a superuser setting can point elsewhere).
    pub fn default_base_url(self) -> &'static str {
        match self {
            Provider::Vapi => "https://api.vapi.ai",
            Provider::Retell => "https://api.retellai.com",
            Provider::Bland => "https://api.bland.ai",
        }
    }
}

/// The API key of a provider's credentials (`{"api_key": "..."}`), as
/// decrypted in memory.
pub fn api_key(credentials: &Value) -> Result<&str, String> {
    match credentials.get("api_key") {
        Some(Value::String(key)) if !key.trim().is_empty() => Ok(key),
        Some(_) => Err("the provider's api_key is not a non-empty string".into()),
        None => Err("the provider's credentials hold no api_key".into()),
    }
}

/// One claimed call, as the provider is to place it.
#[derive(Debug, Clone)]
pub struct CallSpec<'a> {
    /// `call_queue.id` and the attempt (1 for the first), sent as metadata
    /// so that the provider's records name the call, and a result that comes
    /// before the call id was recorded finds its call and attempt.
    pub call_queue_id: &'a str,
    pub attempt: i32,
    /// The recipient, E.164.
    pub to: &'a str,
    /// The caller number, E.164 (`provider_phone_numbers.full_number`).
    pub from: &'a str,
    /// The provider's id of the caller number (`provider_phone_numbers.phone_id`).
    pub phone_id: Option<&'a str>,
    /// The template's agent: its `provider_agent_id`, else its
    /// `assistant_id`.
    pub agent: Option<&'a str>,
    /// The voice's id at the provider (`voice_options.voice_id`).
    pub voice: Option<&'a str>,
    /// The call's variables (template defaults and the call's own).
    pub variables: &'a Map<String, Value>,
    /// Where Bland posts the call's result (Bland takes it per call).
    pub webhook_url: Option<&'a str>,
}

/// A request to send: `POST {base URL}{path}` with these headers and body.
/// Its `Debug` shows it as [`HttpRequest::shown`] does, without the key.
#[derive(Clone, PartialEq)]
pub struct HttpRequest {
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl HttpRequest {
    /// The request as it may be shown (the demo, logs): the authorization
    /// header's value blotted out.
    pub fn shown(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(name, value)| {
                if name.eq_ignore_ascii_case("authorization") {
                    format!("{name}: [redacted]")
                } else {
                    format!("{name}: {value}")
                }
            })
            .collect();
        format!(
            "POST {}\n{}\n\n{}",
            self.path,
            headers.join("\n"),
            self.body
        )
    }
}

/// The create-call request of `call` for `provider`, with `key`. An error
/// (the call cannot be placed as it is: no caller number id for VAPI, a
/// voice VAPI cannot read, no Bland pathway) is a reason to fail the call
/// for good.
pub fn build(provider: Provider, key: &str, call: &CallSpec<'_>) -> Result<HttpRequest, String> {
    let body = match provider {
        Provider::Vapi => vapi_body(call)?,
        Provider::Retell => retell_body(call),
        Provider::Bland => bland_body(call)?,
    };
    let authorization = match provider {
        // Bland's reference: the raw key, without a scheme
        Provider::Bland => key.to_string(),
        Provider::Vapi | Provider::Retell => format!("Bearer {key}"),
    };
    Ok(HttpRequest {
        path: provider.create_call_path(),
        headers: vec![
            ("authorization", authorization),
            ("content-type", "application/json".into()),
            ("accept", "application/json".into()),
        ],
        body: body.to_string(),
    })
}

fn vapi_body(call: &CallSpec<'_>) -> Result<Value, String> {
    let phone_id = call.phone_id.ok_or_else(|| {
        format!(
            "VAPI needs the caller number's phoneNumberId: provider_phone_numbers.phone_id of {} is empty",
            call.from
        )
    })?;
    let agent = call
        .agent
        .ok_or("VAPI needs an assistant: the call's template names none (assistant_id or provider_agent_id)")?;
    let mut overrides = Map::new();
    overrides.insert(
        "variableValues".into(),
        Value::Object(call.variables.clone()),
    );
    overrides.insert(
        "metadata".into(),
        json!({ "call_queue_id": call.call_queue_id, "attempt": call.attempt }),
    );
    if let Some(voice) = call.voice {
        // VAPI's voice object names the voice's own provider: stored as
        // "<voice provider>:<voice id>", e.g. "11labs:21m00Tcm4TlvDq8ikWAM"
        let (voice_provider, voice_id) = voice
            .split_once(':')
            .filter(|(p, v)| !p.is_empty() && !v.is_empty())
            .ok_or_else(|| {
                format!(
                    "VAPI voice {} must be written <voice provider>:<voice id>, e.g. 11labs:21m00Tcm4TlvDq8ikWAM",
                    quoted(voice)
                )
            })?;
        overrides.insert(
            "voice".into(),
            json!({ "provider": voice_provider, "voiceId": voice_id }),
        );
    }
    Ok(json!({
        "assistantId": agent,
        "phoneNumberId": phone_id,
        "customer": { "number": call.to },
        "assistantOverrides": overrides,
    }))
}

fn retell_body(call: &CallSpec<'_>) -> Value {
    // Retell's dynamic variables are strings: other values go as their JSON
    let variables: Map<String, Value> = call
        .variables
        .iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            (name.clone(), Value::String(text))
        })
        .collect();
    let mut body = json!({
        "from_number": call.from,
        "to_number": call.to,
        "retell_llm_dynamic_variables": variables,
        "metadata": { "call_queue_id": call.call_queue_id, "attempt": call.attempt },
    });
    if let Some(agent) = call.agent {
        body["override_agent_id"] = Value::String(agent.into());
    }
    if let Some(voice) = call.voice {
        body["agent_override"] = json!({ "agent": { "voice_id": voice } });
    }
    body
}

fn bland_body(call: &CallSpec<'_>) -> Result<Value, String> {
    let pathway = call
        .agent
        .ok_or("Bland needs a pathway: the call's template names none (provider_agent_id)")?;
    let mut body = json!({
        "phone_number": call.to,
        "from": call.from,
        "pathway_id": pathway,
        "request_data": call.variables,
        "metadata": { "call_queue_id": call.call_queue_id, "attempt": call.attempt },
    });
    if let Some(voice) = call.voice {
        body["voice"] = Value::String(voice.into());
    }
    if let Some(url) = call.webhook_url {
        body["webhook"] = Value::String(url.into());
    }
    Ok(body)
}

/// What became of a create-call request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The provider took the call: its id, as `mark_call_placed` records it.
    Placed {
        provider_call_id: String,
    },
    Failed(Failure),
}

/// A call the provider did not take.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Worth trying again later (timeouts, connection errors, 429, 5xx).
    pub retryable: bool,
    /// For `last_error`: the provider's own message where it gave one,
    /// without the API key.
    pub reason: String,
    /// How long to send nothing more to this provider (429).
    pub pause: Option<Duration>,
}

impl Failure {
    fn new(retryable: bool, reason: String, key: &str) -> Failure {
        Failure {
            retryable,
            reason: clip(&redact(&reason, key)),
            pause: None,
        }
    }
}

/// What a provider's answer means: `status`, its `Retry-After` header and
/// its body, at `now`.
pub fn read_answer(
    provider: Provider,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    key: &str,
    now: DateTime<Utc>,
) -> Answer {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let name = provider.name();
    if (200..300).contains(&status) {
        let id_field = match provider {
            Provider::Vapi => "id",
            Provider::Retell | Provider::Bland => "call_id",
        };
        let bland_error = provider == Provider::Bland
            && parsed
                .as_ref()
                .and_then(|body| body.get("status"))
                .and_then(Value::as_str)
                .is_some_and(|status| status != "success");
        let id = parsed
            .as_ref()
            .and_then(|body| body.get(id_field))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= 200);
        return match (bland_error, id) {
            (false, Some(id)) => Answer::Placed {
                provider_call_id: id.to_string(),
            },
            (true, _) => Answer::Failed(Failure::new(
                false,
                format!(
                    "{name} refused the call: {}",
                    message(parsed.as_ref(), body)
                ),
                key,
            )),
            // The provider may have created the call: not sent again
            // (the call is not placed twice knowingly).
            (false, None) => Answer::Failed(Failure::new(
                false,
                format!(
                    "{name} answered {status} without a call id; the call may exist there: {}",
                    message(parsed.as_ref(), body)
                ),
                key,
            )),
        };
    }
    let said = message(parsed.as_ref(), body);
    match status {
        429 => Answer::Failed(Failure {
            pause: Some(
                retry_after
                    .and_then(|value| pause_for(value, now))
                    .unwrap_or(DEFAULT_PAUSE),
            ),
            ..Failure::new(true, format!("{name} {status}: {said}"), key)
        }),
        408 | 500..=599 => {
            Answer::Failed(Failure::new(true, format!("{name} {status}: {said}"), key))
        }
        _ => Answer::Failed(Failure::new(false, format!("{name} {status}: {said}"), key)),
    }
}

/// A request that got no answer. `sent` says whether it may have reached
/// the provider (a timeout or a connection lost after sending) rather than
/// certainly not (no connection made).
pub fn no_answer(provider: Provider, what: &str, sent: bool, key: &str) -> Failure {
    let reason = if sent {
        format!("{} did not answer: {what}", provider.name())
    } else {
        format!("{} could not be reached: {what}", provider.name())
    };
    Failure::new(true, reason, key)
}

/// The pause a `Retry-After` value asks for: seconds, or an HTTP date.
pub fn pause_for(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let pause = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(pause.min(MAX_PAUSE))
}

/// The provider's message in an error body: VAPI's `message` (a string or
/// a list), Retell's and Bland's `message`, Bland's newer `errors` list;
/// else the body itself.
fn message(parsed: Option<&Value>, body: &[u8]) -> String {
    let from_json = parsed.and_then(|body| {
        match body.get("message") {
            Some(Value::String(text)) => return Some(text.clone()),
            Some(Value::Array(items)) => {
                let texts: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                if !texts.is_empty() {
                    return Some(texts.join("; "));
                }
            }
            _ => {}
        }
        let errors = body.get("errors")?.as_array()?;
        let texts: Vec<String> = errors
            .iter()
            .filter_map(|error| {
                error
                    .get("message")
                    .or_else(|| error.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| error.as_str().map(str::to_string))
            })
            .collect();
        (!texts.is_empty()).then(|| texts.join("; "))
    });
    from_json.unwrap_or_else(|| {
        // The whole body (the sender reads at most 64 kB): a body cut before
        // the redaction could end in part of the key, which the clip could
        // then show.
        let text = String::from_utf8_lossy(body);
        if text.trim().is_empty() {
            "(no body)".to_string()
        } else {
            text.trim().to_string()
        }
    })
}

/// `text` on one line, at most `MAX_REASON_CHARS` characters.
fn clip(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one_line = one_line.trim();
    if one_line.chars().count() <= MAX_REASON_CHARS {
        one_line.to_string()
    } else {
        let mut clipped: String = one_line.chars().take(MAX_REASON_CHARS).collect();
        clipped.push('…');
        clipped
    }
}

/// `text` with every occurrence of `key` blotted out (before any clipping,
/// so that no part of a key is ever shown).
pub fn redact(text: &str, key: &str) -> String {
    let key = key.trim();
    if key.is_empty() {
        text.to_string()
    } else {
        text.replace(key, "[redacted]")
    }
}

#[cfg(test)]
#[path = "providers/tests.rs"]
mod tests;
