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
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// No more of an answer's body is read.
pub const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// One request to send.
#[derive(Clone)]
pub struct Outgoing {
    pub provider: Provider,
    /// The provider's base URL (a superuser's setting) and the request's path.
    pub url: String,
    pub request: HttpRequest,
    /// The API key, only to blot it out of what the answer says.
    pub key: String,
}

/// How requests go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    start(outgoing.to_vec(), limits).wait(tick)
}

/// Requests on their way: `start` sends them in threads of their own and
/// returns at once; `wait` collects the answers. Meanwhile the caller may do
/// other work (the dispatcher's worker claims its next calls); the threads
/// never touch PostgreSQL.
pub struct InFlight {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

struct Shared {
    outgoing: Vec<Outgoing>,
    agent: ureq::Agent,
    next: AtomicUsize,
    done: AtomicUsize,
    answers: Mutex<Vec<Option<Answer>>>,
    /// Notified as each answer comes in (or a thread ends).
    woken: (Mutex<()>, Condvar),
}

/// Starts sending `outgoing`, at most `limits.in_flight` at once.
pub fn start(outgoing: Vec<Outgoing>, limits: Limits) -> InFlight {
    let count = outgoing.len();
    let shared = Arc::new(Shared {
        agent: agent(limits),
        answers: Mutex::new(vec![None; count]),
        outgoing,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        woken: (Mutex::new(()), Condvar::new()),
    });
    // The threads start with every signal blocked (they inherit the mask):
    // the server's signal handlers run on its own thread only.
    let mask = BlockedSignals::all();
    let threads = (0..limits.in_flight.clamp(1, count.max(1)))
        .take(count)
        .map(|_| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                // ends the wait below even if this thread panics
                let _wake = Wake(&shared.woken);
                loop {
                    let index = shared.next.fetch_add(1, Ordering::Relaxed);
                    let Some(one) = shared.outgoing.get(index) else {
                        break;
                    };
                    let answer = send(&shared.agent, one);
                    lock(&shared.answers)[index] = Some(answer);
                    shared.done.fetch_add(1, Ordering::Release);
                    let _guard = lock(&shared.woken.0);
                    shared.woken.1.notify_all();
                }
            })
        })
        .collect();
    drop(mask);
    InFlight { shared, threads }
}

/// This thread's signals blocked until dropped (then the mask it had).
struct BlockedSignals(libc::sigset_t);

impl BlockedSignals {
    fn all() -> Self {
        // SAFETY: sigset_t is plain data, filled by sigfillset; the call
        // changes only the calling thread's mask and saves the old one.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            BlockedSignals(old)
        }
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `all`, on the same thread.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}

impl InFlight {
    /// The answers, in the order of the requests, once all are in; `tick`
    /// runs at least every 20 ms meanwhile. A request whose thread ended
    /// without an answer (it panicked) is answered as not sent.
    pub fn wait(self, tick: &mut dyn FnMut()) -> Vec<Answer> {
        let shared = &self.shared;
        let total = shared.outgoing.len();
        let mut guard = lock(&shared.woken.0);
        while shared.done.load(Ordering::Acquire) < total
            && self.threads.iter().any(|thread| !thread.is_finished())
        {
            guard = shared
                .woken
                .1
                .wait_timeout(guard, Duration::from_millis(20))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
            drop(guard);
            tick();
            guard = lock(&shared.woken.0);
        }
        drop(guard);
        let answers = std::mem::take(&mut *lock(&shared.answers));
        answers
            .into_iter()
            .zip(&shared.outgoing)
            .map(|(answer, one)| {
                answer.unwrap_or_else(|| {
                    Answer::Failed(no_answer(
                        one.provider,
                        "the sender stopped",
                        true,
                        &one.key,
                    ))
                })
            })
            .collect()
    }
}

/// A mutex's value, whether or not a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Notifies the waiting caller when dropped (a thread ends, or panics).
struct Wake<'a>(&'a (Mutex<()>, Condvar));

impl Drop for Wake<'_> {
    fn drop(&mut self) {
        let _guard = self
            .0
             .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.0 .1.notify_all();
    }
}

/// The agent for `limits`, kept between runs, so that its connections to
/// each provider stay open (keep-alive) rather than one per request.
fn agent(limits: Limits) -> ureq::Agent {
    static KEPT: Mutex<Option<(Limits, ureq::Agent)>> = Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, agent)) = kept.as_ref().filter(|(kept, _)| *kept == limits) {
        return agent.clone();
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(limits.timeout))
        .timeout_connect(Some(limits.connect_timeout.min(limits.timeout)))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .max_idle_connections(limits.in_flight.max(1) * 3)
        .max_idle_connections_per_host(limits.in_flight.max(1))
        .proxy(None)
        .user_agent("pg_dialer")
        .build()
        .into();
    *kept = Some((limits, agent.clone()));
    agent
}

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
