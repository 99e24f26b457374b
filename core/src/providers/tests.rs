use super::*;
use chrono::TimeZone;

const KEY: &str = "sk_live_4f9a8c7e2b1d";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn variables() -> Map<String, Value> {
    json!({"patient_name": "Ana Silva", "visits": 3, "vip": true})
        .as_object()
        .unwrap()
        .clone()
}

fn call<'a>(
    variables: &'a Map<String, Value>,
    agent: Option<&'a str>,
    voice: Option<&'a str>,
) -> CallSpec<'a> {
    CallSpec {
        call_queue_id: "6c1f2d4e-0000-4000-8000-000000000001",
        attempt: 2,
        to: "+14155550123",
        from: "+12125550100",
        phone_id: Some("pn_7a1b"),
        agent,
        voice,
        variables,
        webhook_url: None,
    }
}

fn body(request: &HttpRequest) -> Value {
    serde_json::from_str(&request.body).unwrap()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> &'a str {
    &request.headers.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn vapi_request_is_post_call_with_assistant_number_customer_and_overrides() {
    let vars = variables();
    let request = build(
        Provider::Vapi,
        KEY,
        &call(
            &vars,
            Some("a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b"),
            Some("11labs:21m00Tcm4TlvDq8ikWAM"),
        ),
    )
    .unwrap();
    assert_eq!(request.path, "/call");
    assert_eq!(header(&request, "authorization"), format!("Bearer {KEY}"));
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(
        body(&request),
        json!({
            "assistantId": "a3f1c2d4-5b6e-4f70-8a9b-0c1d2e3f4a5b",
            "phoneNumberId": "pn_7a1b",
            "customer": {"number": "+14155550123"},
            "assistantOverrides": {
                "variableValues": {"patient_name": "Ana Silva", "visits": 3, "vip": true},
                "metadata": {"call_queue_id": "6c1f2d4e-0000-4000-8000-000000000001", "attempt": 2},
                "voice": {"provider": "11labs", "voiceId": "21m00Tcm4TlvDq8ikWAM"}
            }
        })
    );
    // VAPI refuses unknown top-level properties: only documented ones
    for field in body(&request).as_object().unwrap().keys() {
        assert!(
            [
                "assistantId",
                "phoneNumberId",
                "customer",
                "assistantOverrides"
            ]
            .contains(&field.as_str()),
            "{field}"
        );
    }
}

#[test]
fn vapi_voice_keeps_everything_after_the_first_colon() {
    let vars = Map::new();
    let request = build(
        Provider::Vapi,
        KEY,
        &call(&vars, Some("a"), Some("playht:s3://voice/en.json")),
    )
    .unwrap();
    assert_eq!(
        body(&request)["assistantOverrides"]["voice"],
        json!({"provider": "playht", "voiceId": "s3://voice/en.json"})
    );
    let request = build(Provider::Vapi, KEY, &call(&vars, Some("a"), None)).unwrap();
    assert!(body(&request)["assistantOverrides"].get("voice").is_none());
}

#[test]
fn vapi_calls_it_cannot_place_are_refused_with_the_reason() {
    let vars = Map::new();
    let err = build(
        Provider::Vapi,
        KEY,
        &call(&vars, Some("a"), Some("jennifer")),
    )
    .unwrap_err();
    assert!(
        err.contains("\"jennifer\"") && err.contains("<voice provider>:<voice id>"),
        "{err}"
    );
    let err = build(Provider::Vapi, KEY, &call(&vars, None, None)).unwrap_err();
    assert!(err.contains("assistant"), "{err}");
    let mut no_phone_id = call(&vars, Some("a"), None);
    no_phone_id.phone_id = None;
    let err = build(Provider::Vapi, KEY, &no_phone_id).unwrap_err();
    assert!(
        err.contains("phoneNumberId") && err.contains("+12125550100"),
        "{err}"
    );
}

#[test]
fn retell_request_has_numbers_agent_override_and_string_variables() {
    let vars = variables();
    let request = build(
        Provider::Retell,
        KEY,
        &call(&vars, Some("agent_8d2f0c"), Some("11labs-Adrian")),
    )
    .unwrap();
    assert_eq!(request.path, "/v2/create-phone-call");
    assert_eq!(header(&request, "authorization"), format!("Bearer {KEY}"));
    assert_eq!(
        body(&request),
        json!({
            "from_number": "+12125550100",
            "to_number": "+14155550123",
            "override_agent_id": "agent_8d2f0c",
            "agent_override": {"agent": {"voice_id": "11labs-Adrian"}},
            "retell_llm_dynamic_variables": {"patient_name": "Ana Silva", "visits": "3", "vip": "true"},
            "metadata": {"call_queue_id": "6c1f2d4e-0000-4000-8000-000000000001", "attempt": 2}
        })
    );
    // without an agent of its own the number's agent answers
    let request = build(Provider::Retell, KEY, &call(&vars, None, None)).unwrap();
    assert!(body(&request).get("override_agent_id").is_none());
    assert!(body(&request).get("agent_override").is_none());
}

#[test]
fn bland_request_has_phone_number_from_pathway_voice_and_request_data() {
    let vars = variables();
    let mut spec = call(
        &vars,
        Some("5e8f3a2b-1c4d-4e6f-9a0b-7c8d9e0f1a2b"),
        Some("maya"),
    );
    spec.webhook_url = Some("https://example.supabase.co/functions/v1/bland");
    let request = build(Provider::Bland, KEY, &spec).unwrap();
    assert_eq!(request.path, "/v1/calls");
    // Bland's reference: the raw key
    assert_eq!(header(&request, "authorization"), KEY);
    assert_eq!(
        body(&request),
        json!({
            "phone_number": "+14155550123",
            "from": "+12125550100",
            "pathway_id": "5e8f3a2b-1c4d-4e6f-9a0b-7c8d9e0f1a2b",
            "voice": "maya",
            "request_data": {"patient_name": "Ana Silva", "visits": 3, "vip": true},
            "metadata": {"call_queue_id": "6c1f2d4e-0000-4000-8000-000000000001", "attempt": 2},
            "webhook": "https://example.supabase.co/functions/v1/bland"
        })
    );
    let err = build(Provider::Bland, KEY, &call(&vars, None, None)).unwrap_err();
    assert!(err.contains("pathway"), "{err}");
}

#[test]
fn a_key_after_16_kb_of_spaces_is_still_blotted_out() {
    let mut body = " ".repeat(16 * 1024 - 4);
    body.push_str(KEY);
    let f = failure(read_answer(
        Provider::Vapi,
        500,
        None,
        body.as_bytes(),
        KEY,
        now(),
    ));
    assert!(!f.reason.contains(&KEY[..4]), "{}", f.reason);
    assert_eq!(f.reason, "vapi 500: [redacted]");
}

#[test]
fn the_shown_request_hides_the_key() {
    let vars = variables();
    for provider in [Provider::Vapi, Provider::Retell, Provider::Bland] {
        let request = build(provider, KEY, &call(&vars, Some("agent"), Some("11labs:x"))).unwrap();
        let shown = request.shown();
        assert!(!shown.contains(KEY), "{shown}");
        assert!(!format!("{request:?}").contains(KEY), "{request:?}");
        assert!(shown.contains("authorization: [redacted]"), "{shown}");
        assert!(shown.contains("+14155550123"), "{shown}");
    }
}

#[test]
fn success_answers_give_the_provider_call_id() {
    let cases = [
        (
            Provider::Vapi,
            201,
            r#"{"id":"c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b","orgId":"o","type":"outboundPhoneCall","status":"queued"}"#,
            "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b",
        ),
        (
            Provider::Retell,
            201,
            r#"{"call_id":"Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6","call_type":"phone_call","call_status":"registered"}"#,
            "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        ),
        (
            Provider::Bland,
            200,
            r#"{"status":"success","message":"Call successfully queued.","call_id":"9d404c1b-6a23-4426-953a-a52c392ff8f1","batch_id":null}"#,
            "9d404c1b-6a23-4426-953a-a52c392ff8f1",
        ),
    ];
    for (provider, status, body, id) in cases {
        assert_eq!(
            read_answer(provider, status, None, body.as_bytes(), KEY, now()),
            Answer::Placed {
                provider_call_id: id.into()
            },
            "{provider:?}"
        );
    }
}

fn failure(answer: Answer) -> Failure {
    match answer {
        Answer::Failed(failure) => failure,
        placed => panic!("not a failure: {placed:?}"),
    }
}

#[test]
fn client_errors_fail_for_good_with_the_providers_message() {
    let f = failure(read_answer(
        Provider::Vapi,
        400,
        None,
        br#"{"message":["customer.number must be a valid phone number in the E.164 format","property foo should not exist"],"error":"Bad Request","statusCode":400}"#,
        KEY,
        now(),
    ));
    assert!(!f.retryable);
    assert_eq!(
        f.reason,
        "vapi 400: customer.number must be a valid phone number in the E.164 format; property foo should not exist"
    );
    let f = failure(read_answer(
        Provider::Retell,
        401,
        None,
        br#"{"status":"error","message":"API key is missing or invalid."}"#,
        KEY,
        now(),
    ));
    assert_eq!(
        (f.retryable, f.reason.as_str()),
        (false, "retell 401: API key is missing or invalid.")
    );
    let f = failure(read_answer(
        Provider::Bland,
        400,
        None,
        br#"{"data":null,"errors":[{"error":"INVALID_PHONE_NUMBER","message":"Invalid phone number"}]}"#,
        KEY,
        now(),
    ));
    assert_eq!(
        (f.retryable, f.reason.as_str()),
        (false, "bland 400: Invalid phone number")
    );
    assert_eq!(f.pause, None);
}

#[test]
fn bland_can_refuse_with_a_success_status_code() {
    let f = failure(read_answer(
        Provider::Bland,
        200,
        None,
        br#"{"status":"error","message":"Insufficient balance"}"#,
        KEY,
        now(),
    ));
    assert!(!f.retryable);
    assert_eq!(f.reason, "bland refused the call: Insufficient balance");
}

#[test]
fn rate_limits_pause_the_provider_for_retry_after() {
    let body =
        br#"{"status":"error","message":"Account rate limited, please throttle your requests."}"#;
    let f = failure(read_answer(
        Provider::Retell,
        429,
        Some("7"),
        body,
        KEY,
        now(),
    ));
    assert!(f.retryable);
    assert_eq!(f.pause, Some(Duration::from_secs(7)));
    assert_eq!(
        f.reason,
        "retell 429: Account rate limited, please throttle your requests."
    );
    let f = failure(read_answer(Provider::Retell, 429, None, body, KEY, now()));
    assert_eq!(f.pause, Some(DEFAULT_PAUSE));
    let f = failure(read_answer(
        Provider::Vapi,
        429,
        Some("Fri, 27 Nov 2026 12:00:30 GMT"),
        b"",
        KEY,
        now(),
    ));
    assert_eq!(f.pause, Some(Duration::from_secs(30)));
    assert_eq!(f.reason, "vapi 429: (no body)");
    // garbage, a date passed, a huge ask
    let f = failure(read_answer(
        Provider::Vapi,
        429,
        Some("soon"),
        b"",
        KEY,
        now(),
    ));
    assert_eq!(f.pause, Some(DEFAULT_PAUSE));
    assert_eq!(
        pause_for("Fri, 27 Nov 2026 11:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
    assert_eq!(pause_for("99999999", now()), Some(MAX_PAUSE));
}

#[test]
fn server_errors_and_timeouts_are_retried() {
    for status in [500, 502, 503, 504, 408] {
        let f = failure(read_answer(
            Provider::Vapi,
            status,
            None,
            b"<html>Bad Gateway</html>",
            KEY,
            now(),
        ));
        assert!(f.retryable, "{status}");
        assert_eq!(f.reason, format!("vapi {status}: <html>Bad Gateway</html>"));
    }
    let f = no_answer(Provider::Bland, "timed out after 10 s", true, KEY);
    assert!(f.retryable);
    assert_eq!(f.reason, "bland did not answer: timed out after 10 s");
    let f = no_answer(Provider::Retell, "connection refused", false, KEY);
    assert_eq!(f.reason, "retell could not be reached: connection refused");
}

#[test]
fn a_success_without_a_call_id_is_not_sent_again() {
    for body in [
        &b"not json"[..],
        br#"{"id": 42}"#,
        br#"{"status":"queued"}"#,
        b"",
    ] {
        let f = failure(read_answer(Provider::Vapi, 201, None, body, KEY, now()));
        assert!(!f.retryable, "{}", String::from_utf8_lossy(body));
        assert!(
            f.reason
                .starts_with("vapi answered 201 without a call id; the call may exist there"),
            "{}",
            f.reason
        );
    }
}

#[test]
fn no_reason_shows_the_key_or_runs_long() {
    // a provider echoing the key, in JSON and in plain text
    let echoed = format!(r#"{{"message":"Invalid Key {KEY}. Hot tip: check the key"}}"#);
    let f = failure(read_answer(
        Provider::Vapi,
        401,
        None,
        echoed.as_bytes(),
        KEY,
        now(),
    ));
    assert_eq!(
        f.reason,
        "vapi 401: Invalid Key [redacted]. Hot tip: check the key"
    );
    let plain = format!("bearer {KEY} refused");
    let f = failure(read_answer(
        Provider::Bland,
        403,
        None,
        plain.as_bytes(),
        KEY,
        now(),
    ));
    assert!(
        !f.reason.contains(KEY) && f.reason.contains("[redacted]"),
        "{}",
        f.reason
    );
    // a huge body, with the key at the clip
    let mut huge = "x".repeat(MAX_REASON_CHARS - 5);
    huge.push_str(KEY);
    huge.push_str(&"y".repeat(1 << 20));
    let f = failure(read_answer(
        Provider::Retell,
        500,
        None,
        huge.as_bytes(),
        KEY,
        now(),
    ));
    assert!(
        f.reason.chars().count() <= MAX_REASON_CHARS + 1,
        "{}",
        f.reason.len()
    );
    assert!(!f.reason.contains(&KEY[..4]), "{}", f.reason);
    // control characters do not break a log line
    let f = failure(read_answer(
        Provider::Bland,
        400,
        None,
        b"line one\nline two\r\x1b[31m",
        KEY,
        now(),
    ));
    assert_eq!(f.reason, "bland 400: line one line two  [31m");
    let f = no_answer(
        Provider::Vapi,
        &format!("error sending to https://x/?k={KEY}"),
        false,
        KEY,
    );
    assert!(!f.reason.contains(KEY), "{}", f.reason);
}

#[test]
fn apis_are_named_by_data() {
    assert_eq!(Provider::from_api("vapi"), Some(Provider::Vapi));
    assert_eq!(Provider::from_api("retell"), Some(Provider::Retell));
    assert_eq!(Provider::from_api("bland"), Some(Provider::Bland));
    assert_eq!(Provider::from_api("VAPI"), None);
    assert_eq!(Provider::from_api(""), None);
}

#[test]
fn keys_are_read_from_the_credentials() {
    assert_eq!(api_key(&json!({"api_key": KEY})), Ok(KEY));
    assert!(api_key(&json!({"api_key": "  "})).is_err());
    assert!(api_key(&json!({"key": KEY})).is_err());
    assert!(api_key(&json!({"api_key": 12})).is_err());
}
