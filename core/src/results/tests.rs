//! Normalization of realistic webhook bodies (demo/payloads/), as each
//! provider delivers them.

use super::*;
use serde_json::json;

fn sample(name: &str) -> Value {
    let text = match name {
        "vapi_end_of_call_report" => {
            include_str!("../../../demo/payloads/vapi_end_of_call_report.json")
        }
        "vapi_no_answer" => include_str!("../../../demo/payloads/vapi_no_answer.json"),
        "vapi_legacy_fields" => include_str!("../../../demo/payloads/vapi_legacy_fields.json"),
        "vapi_status_update" => include_str!("../../../demo/payloads/vapi_status_update.json"),
        "retell_call_ended" => include_str!("../../../demo/payloads/retell_call_ended.json"),
        "retell_call_analyzed" => include_str!("../../../demo/payloads/retell_call_analyzed.json"),
        "retell_dial_busy" => include_str!("../../../demo/payloads/retell_dial_busy.json"),
        "bland_post_call" => include_str!("../../../demo/payloads/bland_post_call.json"),
        "bland_voicemail" => include_str!("../../../demo/payloads/bland_voicemail.json"),
        other => panic!("no sample {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn result(name: &str) -> CallResult {
    result_of(&sample(name))
}

fn result_of(p: &Value) -> CallResult {
    match normalize(p).unwrap() {
        Webhook::Result(r) => r,
        other => panic!("not a result: {other:?}"),
    }
}

#[test]
fn vapi_end_of_call_report() {
    let r = result("vapi_end_of_call_report");
    assert_eq!(r.provider, Provider::Vapi);
    assert_eq!(r.call_id, "3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71");
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.ended_reason.as_deref(), Some("customer-ended-call"));
    assert!(r
        .transcript
        .unwrap()
        .starts_with("AI: Hi, this is Dental Care"));
    assert_eq!(
        r.recording_url.as_deref(),
        Some("https://storage.vapi.ai/3f6c1b2a-9d4e-4c8b-a1f7-5e2d9c0b8a71-1795694625688-mono.wav")
    );
    assert_eq!(
        r.summary.as_deref(),
        Some("Ana Silva confirmed her Tuesday 10:30 appointment.")
    );
    assert_eq!(r.duration_secs, Some(95), "94.286 s rounds up");
    assert_eq!(r.cost, Some(0.1124));
}

#[test]
fn vapi_older_top_level_fields_and_timestamps() {
    let r = result("vapi_legacy_fields");
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(
        r.transcript.as_deref().map(|t| t.starts_with("AI: Hello")),
        Some(true)
    );
    assert_eq!(
        r.recording_url.as_deref(),
        Some("https://storage.vapi.ai/c7d8e9f0-legacy-mono.wav")
    );
    assert_eq!(
        r.summary.as_deref(),
        Some("Reminder delivered; the patient acknowledged it.")
    );
    assert_eq!(
        r.duration_secs,
        Some(122),
        "from startedAt/endedAt: 121.5 s"
    );
}

#[test]
fn vapi_no_answer_is_retryable() {
    let r = result("vapi_no_answer");
    assert_eq!(r.outcome, Outcome::Failed { retryable: true });
    assert_eq!(r.transcript, None);
    assert_eq!(r.duration_secs, Some(30));
}

#[test]
fn vapi_other_messages_are_ignored() {
    assert_eq!(
        normalize(&sample("vapi_status_update")).unwrap(),
        Webhook::Ignored {
            provider: Provider::Vapi,
            event: "status-update".into()
        }
    );
}

#[test]
fn vapi_reasons() {
    let with = |reason: &str| {
        let mut p = sample("vapi_no_answer");
        p["message"]["endedReason"] = json!(reason);
        result_of(&p).outcome
    };
    assert_eq!(with("customer-busy"), Outcome::Failed { retryable: true });
    assert_eq!(with("voicemail"), Outcome::Failed { retryable: true });
    assert_eq!(
        with("assistant-not-found"),
        Outcome::Failed { retryable: false }
    );
    assert_eq!(
        with("call-start-error-neither-assistant-nor-server-set"),
        Outcome::Failed { retryable: false }
    );
    assert_eq!(
        with("pipeline-error-openai-llm-failed"),
        Outcome::Failed { retryable: true }
    );
    assert_eq!(with("manually-canceled"), Outcome::Canceled);
    assert_eq!(with("silence-timed-out"), Outcome::Completed);
    // An unknown reason: completed if connected (it lasted 30 s here).
    assert_eq!(with("something-new"), Outcome::Completed);
}

#[test]
fn retell_call_ended_then_analyzed() {
    let ended = result("retell_call_ended");
    assert_eq!(ended.provider, Provider::Retell);
    assert_eq!(ended.event, "call_ended");
    assert_eq!(ended.call_id, "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6");
    assert_eq!(ended.outcome, Outcome::Completed);
    assert_eq!(ended.duration_secs, Some(153), "152.4 s rounds up");
    assert_eq!(ended.summary, None);
    assert_eq!(ended.cost, Some(0.175));
    let analyzed = result("retell_call_analyzed");
    assert_eq!(analyzed.event, "call_analyzed");
    assert_eq!(analyzed.call_id, ended.call_id);
    assert_eq!(
        analyzed.summary.as_deref(),
        Some("Dev Patel is happy with the repair and rated the service five out of five.")
    );
}

#[test]
fn retell_busy_is_retryable_and_other_events_are_ignored() {
    let busy = result("retell_dial_busy");
    assert_eq!(busy.outcome, Outcome::Failed { retryable: true });
    assert_eq!(busy.duration_secs, Some(0));
    let mut started = sample("retell_call_ended");
    started["event"] = json!("call_started");
    assert!(matches!(
        normalize(&started).unwrap(),
        Webhook::Ignored {
            provider: Provider::Retell,
            ..
        }
    ));
    let mut invalid = sample("retell_dial_busy");
    invalid["call"]["disconnection_reason"] = json!("invalid_destination");
    assert_eq!(
        result_of(&invalid).outcome,
        Outcome::Failed { retryable: false }
    );
}

#[test]
fn bland_post_call() {
    let r = result("bland_post_call");
    assert_eq!(r.provider, Provider::Bland);
    assert_eq!(r.call_id, "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
    assert_eq!(r.outcome, Outcome::Completed);
    assert_eq!(r.duration_secs, Some(48));
    assert_eq!(
        r.summary.as_deref(),
        Some("Lee Park confirmed the service went well.")
    );
    assert_eq!(r.cost, Some(0.072));
    assert!(r.transcript.unwrap().contains("Everything is fine"));
}

#[test]
fn bland_voicemail_and_errors_are_retryable() {
    let r = result("bland_voicemail");
    assert_eq!(r.outcome, Outcome::Failed { retryable: true });
    assert_eq!(r.ended_reason.as_deref(), Some("voicemail"));
    let mut failed = sample("bland_post_call");
    failed["error_message"] = json!("Carrier rejected the call");
    assert_eq!(
        result_of(&failed).outcome,
        Outcome::Failed { retryable: true }
    );
    assert_eq!(
        result_of(&failed).ended_reason.as_deref(),
        Some("Carrier rejected the call")
    );
    let mut busy = sample("bland_post_call");
    busy["queue_status"] = json!("busy");
    assert_eq!(
        result_of(&busy).outcome,
        Outcome::Failed { retryable: true }
    );
    // The reason is the status, not the queue's state.
    for reason in ["no-answer", "busy"] {
        let mut not_reached = sample("bland_post_call");
        not_reached["status"] = json!(reason);
        not_reached["queue_status"] = json!("complete");
        not_reached["completed"] = json!(false);
        let r = result_of(&not_reached);
        assert_eq!(r.outcome, Outcome::Failed { retryable: true });
        assert_eq!(r.ended_reason.as_deref(), Some(reason));
    }
    let mut minutes_only = sample("bland_post_call");
    minutes_only
        .as_object_mut()
        .unwrap()
        .remove("corrected_duration");
    assert_eq!(
        result_of(&minutes_only).duration_secs,
        Some(48),
        "0.8 minutes"
    );
}

#[test]
fn unknown_and_malformed_payloads_are_refused() {
    for bad in [
        json!([1, 2]),
        json!("text"),
        json!({}),
        json!({"hello": "world"}),
        json!({"call": {}}),
    ] {
        let err = normalize(&bad).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023", "{bad}");
    }
    let no_id =
        json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call"}});
    assert_eq!(
        normalize(&no_id).unwrap_err().message,
        "the payload has no message.call.id"
    );
    let no_retell_id =
        json!({"event": "call_ended", "call": {"disconnection_reason": "user_hangup"}});
    assert_eq!(
        normalize(&no_retell_id).unwrap_err().message,
        "the payload has no call.call_id"
    );
}

#[test]
fn bland_errors_that_cannot_pass_are_not_retried() {
    for message in [
        "Invalid phone number",
        "The number +1900555 is not a valid phone number",
        "Number is on the do not call list",
        "Insufficient balance",
        "Unauthorized: invalid API key",
        "Pathway not found",
    ] {
        let mut failed = sample("bland_post_call");
        failed["error_message"] = json!(message);
        let r = result_of(&failed);
        assert_eq!(r.outcome, Outcome::Failed { retryable: false }, "{message}");
        assert_eq!(r.ended_reason.as_deref(), Some(message));
    }
    for message in [
        "Carrier rejected the call",
        "Timeout connecting the call",
        "Network error",
    ] {
        let mut failed = sample("bland_post_call");
        failed["error_message"] = json!(message);
        assert_eq!(
            result_of(&failed).outcome,
            Outcome::Failed { retryable: true },
            "{message}"
        );
    }
}

#[test]
fn implausible_durations_are_refused() {
    let mut long = sample("bland_post_call");
    long["corrected_duration"] = json!("1000000000000");
    let err = normalize(&long).unwrap_err();
    assert_eq!(err.kind.sqlstate(), "22023");
    assert_eq!(
        err.message,
        "the call's duration of 1000000000000 seconds is more than a day (86400 seconds)"
    );
    let mut day = sample("bland_post_call");
    day["corrected_duration"] = json!("86400");
    assert!(normalize(&day).is_ok());
}

#[test]
fn the_dispatchers_call_queue_id_comes_back_in_each_format() {
    let id = "6c1f2d4e-0000-4000-8000-000000000001";
    let vapi = json!({"message": {"type": "end-of-call-report", "endedReason": "customer-ended-call",
        "call": {"id": "c1", "assistantOverrides": {"metadata": {"call_queue_id": id, "attempt": 2}}}}});
    let retell = json!({"event": "call_ended", "call": {"call_id": "c2", "disconnection_reason": "user_hangup",
        "metadata": {"call_queue_id": id, "attempt": 2}}});
    let bland = json!({"call_id": "c3", "completed": true, "status": "completed", "call_length": 1.0, "metadata": {"call_queue_id": id, "attempt": 2}});
    for body in [vapi, retell, bland] {
        assert_eq!(result_of(&body).queued_call.as_deref(), Some(id), "{body}");
        assert_eq!(result_of(&body).queued_attempt, Some(2), "{body}");
    }
    // upper case is written as PostgreSQL writes uuids; anything else is none
    let upper = json!({"call_id": "c3", "completed": true, "call_length": 1.0, "metadata": {"call_queue_id": id.to_uppercase()}});
    assert_eq!(result_of(&upper).queued_call.as_deref(), Some(id));
    for odd in [json!("not-a-uuid"), json!(42), json!(null), json!({"a": 1})] {
        let body = json!({"call_id": "c3", "completed": true, "call_length": 1.0, "metadata": {"call_queue_id": odd}});
        assert_eq!(result_of(&body).queued_call, None, "{body}");
    }
    assert_eq!(result("vapi_end_of_call_report").queued_call, None);
    for odd in [json!(0), json!(1.5), json!("two"), json!(-1)] {
        let body = json!({"call_id": "c3", "completed": true, "call_length": 1.0, "metadata": {"attempt": odd}});
        assert_eq!(result_of(&body).queued_attempt, None, "{body}");
    }
}
