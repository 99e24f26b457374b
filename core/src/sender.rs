//! Sending create-call requests ([`crate::providers`]), several at a time,
//! each in a thread of its own, and reading each answer into an
//! [`Answer`].
//!
//! This lives in the core crate on purpose: the crate has no PostgreSQL in
//! it (no pgrx), so nothing these threads run can call into the server, which
//! may only ever be entered from the backend's own thread. The caller hands
//! over everything a request needs (URL, headers, body, the key to blot out
//! of reasons) and gets the answers back, in order, once all are in.
//!
//! Connections are not sent through a proxy from the environment, nor do
//! they follow redirects: a key is sent to the URL its provider's setting
//! names and nowhere else.

use crate::providers::{no_answer, read_answer, Answer, HttpRequest};
use crate::results::Provider;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// No more of an answer's body is read.
pub const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// One request to send.
pub struct Outgoing {
    pub provider: Provider,
    /// The provider's base URL (a superuser's setting) and the request's path.
    pub url: String,
    pub request: HttpRequest,
    /// The API key, only to blot it out of what the answer says.
    pub key: String,
}

/// How requests go out.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From the start of a request to the end of its answer.
    pub timeout: Duration,
    /// To open a connection (a request that never got one certainly did not
    /// reach the provider).
    pub connect_timeout: Duration,
    /// Requests in flight at once.
    pub in_flight: usize,
}

/// Sends every request, at most `limits.in_flight` at once, and returns their
/// answers in the same order. While they are out, the calling thread runs
/// `tick` every 20 ms (the server's interrupt check: a cancel ends the wait,
/// each thread still ending its request within the timeout).
pub fn send_all(outgoing: &[Outgoing], limits: Limits, tick: &mut dyn FnMut()) -> Vec<Answer> {
    if outgoing.is_empty() {
        return Vec::new();
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limits.timeout))
        .timeout_connect(Some(limits.connect_timeout.min(limits.timeout)))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .proxy(None)
        .user_agent("pg_dialer")
        .build()
        .into();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let answers: Mutex<Vec<Option<Answer>>> = Mutex::new(vec![None; outgoing.len()]);
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for _ in 0..limits.in_flight.clamp(1, outgoing.len()) {
            threads.push(scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(one) = outgoing.get(index) else {
                    break;
                };
                let answer = send(&agent, one);
                answers.lock().expect("no thread panics holding it")[index] = Some(answer);
                done.fetch_add(1, Ordering::Release);
            }));
        }
        // (a thread that panicked ends the wait: the scope raises its panic)
        while done.load(Ordering::Acquire) < outgoing.len()
            && threads.iter().any(|thread| !thread.is_finished())
        {
            std::thread::sleep(Duration::from_millis(20));
            tick();
        }
    });
    answers
        .into_inner()
        .expect("no thread panics holding it")
        .into_iter()
        .map(|answer| answer.expect("every request was sent"))
        .collect()
}

/// One request and what its answer means.
fn send(agent: &ureq::Agent, one: &Outgoing) -> Answer {
    let mut request = agent.post(&one.url);
    for (name, value) in &one.request.headers {
        request = request.header(*name, value);
    }
    match request.send(one.request.body.as_str()) {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            // An answer whose body cannot be read is judged by its status
            // alone (a 2xx then has no call id: not sent again).
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_ANSWER_BYTES)
                .read_to_vec()
                .unwrap_or_default();
            read_answer(
                one.provider,
                status,
                retry_after.as_deref(),
                &body,
                &one.key,
                DateTime::<Utc>::from(std::time::SystemTime::now()),
            )
        }
        Err(err) => {
            let (what, sent) = describe(&err);
            Answer::Failed(no_answer(one.provider, &what, sent, &one.key))
        }
    }
}

/// What went wrong, and whether the request may have reached the provider.
fn describe(err: &ureq::Error) -> (String, bool) {
    use std::io::ErrorKind as Io;
    use ureq::Timeout;
    match err {
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => {
            ("no connection within the connect timeout".into(), false)
        }
        ureq::Error::Timeout(_) => ("no answer within the timeout".into(), true),
        ureq::Error::HostNotFound => ("host not found".into(), false),
        ureq::Error::ConnectionFailed => ("connection failed".into(), false),
        ureq::Error::BadUri(uri) => (format!("bad URL {uri:?}"), false),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                Io::ConnectionRefused | Io::AddrNotAvailable | Io::NotFound | Io::PermissionDenied
            ) =>
        {
            (format!("connection failed: {io}"), false)
        }
        ureq::Error::Io(io) => (format!("connection lost: {io}"), true),
        other => (other.to_string(), true),
    }
}

#[cfg(test)]
#[path = "sender/tests.rs"]
mod tests;
