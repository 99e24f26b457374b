//! The dispatcher: places due calls with their providers itself, as a
//! worker outside would with `claim_due_calls()`, `mark_call_placed()` and
//! `mark_call_failed()`.
//!
//! A pass is two transactions (`dispatch_due_calls()`, sql/dispatch.sql):
//!
//! 1. `dialer.dispatch_claim()` claims due calls by the same rules as
//!    `claim_due_calls()`, of providers whose API is known
//!    (`call_service_providers.api`) and that are not paused, and commits:
//!    each call is then in progress without a provider call id, which marks
//!    it as being sent. The claimed calls are kept in this backend.
//! 2. `dialer.dispatch_send()`, run and committed again and again, a run
//!    at a time of `pg_dialer.dispatch_in_flight` calls, builds each call's request
//!    (core/src/providers.rs), sends them several at once
//!    (core/src/sender.rs), and records each answer: the provider's call id
//!    (as `mark_call_placed()`), or a failure (as `mark_call_failed()`,
//!    retryable or not, with the provider's message). A 429 pauses its
//!    provider for its `Retry-After`.
//!
//! A pass cut short between the two (the server stopped, the session died)
//! leaves its calls in progress without a call id: their requests may or
//! may not have reached the provider, so they are not sent again at once;
//! `rescue_stale_calls()` queues them again after
//! `pg_dialer.stale_call_timeout` (at least once, see the README).

use crate::errors::spi;
use crate::identity::require_worker;
use crate::plans;
use crate::routing::{claim, ClaimedCall, Claimer};
use pg_dialer_core::providers::{self, Answer, CallSpec, Failure};
use pg_dialer_core::results::Provider;
use pg_dialer_core::sender::{self, Outgoing};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::Uuid;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// How long a provider whose api or credentials the dispatcher cannot use
/// takes no calls of the dispatcher's.
const PROVIDER_UNUSABLE_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// The most calls one pass claims: a pass sends them in runs of
/// `pg_dialer.dispatch_in_flight`, each up to `pg_dialer.dispatch_timeout`
/// long, and its calls wait in progress meanwhile.
pub const MAX_PASS: i32 = 1000;

thread_local! {
    /// The calls this backend's last `dispatch_claim()` claimed, by id.
    static CLAIMED: RefCell<HashMap<[u8; 16], ClaimedCall>> = RefCell::new(HashMap::new());
}

/// What became of one call of a pass.
pub struct Sent {
    pub call: Uuid,
    /// The provider's id and name.
    pub provider_id: Uuid,
    pub provider: String,
    /// placed, retry, failed, waits (429), or skipped (no longer this
    /// pass's)
    pub outcome: &'static str,
    /// The provider's call id, or the reason.
    pub detail: String,
}

/// A provider as the dispatcher needs it.
struct Api {
    provider: Provider,
    key: Result<String, NoKey>,
}

/// Why a provider has no key to send.
enum NoKey {
    /// No credentials, or none with an api_key: its calls go back and it
    /// pauses (an admin may fix it).
    Unusable(String),
    /// Sealed under a key this server lacks, or damaged: its calls fail
    /// (retryable) with the reason, rather than send garbage.
    Sealed(String),
}

/// The providers' APIs and keys (read with the owner's privileges; the
/// keys stay in this backend's memory).
fn load_apis(client: &SpiClient<'_>, ids: &[Uuid]) -> Result<HashMap<[u8; 16], Api>, SpiError> {
    crate::identity::as_extension_owner(|| {
        let mut apis = HashMap::new();
        for row in plans::query(
            client,
            "SELECT p.id, p.api, p.api_credentials::text FROM public.call_service_providers p
             WHERE p.id = ANY ($1)",
            &[ids.to_vec().into()],
        )? {
            let id: Uuid = row.get(1)?.expect("an id");
            let Some(provider) = row
                .get::<String>(2)?
                .as_deref()
                .and_then(Provider::from_api)
            else {
                continue;
            };
            let credentials = row.get::<String>(3)?;
            let stored = credentials
                .as_deref()
                .and_then(|text| serde_json::from_str::<Value>(text).ok())
                .ok_or_else(|| "the provider has no credentials".to_string());
            let key = match stored.map(|value| crate::credentials::open(&id.to_string(), &value)) {
                Ok(Ok(plain)) => providers::api_key(&plain)
                    .map(str::to_string)
                    .map_err(NoKey::Unusable),
                Ok(Err(why)) => Err(NoKey::Sealed(why)),
                Err(why) => Err(NoKey::Unusable(why)),
            };
            apis.insert(*id.as_bytes(), Api { provider, key });
        }
        Ok(apis)
    })
}

/// Each call's agent: its template's provider_agent_id, else its
/// assistant_id; of public templates only. A user writes their private
/// templates' agent ids, and an agent id names an agent of the operator's
/// provider account: any agent, other tenants' included. Publishing a
/// template is an admin's act, so only admins choose which agents calls
/// use; a private template's call goes without one (the caller number's
/// agent at Retell; refused by VAPI and Bland, which need one).
fn load_agents(
    client: &SpiClient<'_>,
    ids: &[Uuid],
) -> Result<HashMap<[u8; 16], String>, SpiError> {
    crate::identity::as_extension_owner(|| {
        plans::query(
            client,
            "SELECT q.id, coalesce(t.provider_agent_id, t.assistant_id::text)
             FROM public.call_queue q JOIN public.call_templates t ON t.id = q.template_id
             WHERE q.id = ANY ($1) AND coalesce(t.is_public, false)",
            &[ids.to_vec().into()],
        )?
        .filter_map(|row| match (row.get::<Uuid>(1), row.get::<String>(2)) {
            (Ok(Some(id)), Ok(Some(agent))) => Some(Ok((*id.as_bytes(), agent))),
            (Err(err), _) | (_, Err(err)) => Some(Err(err)),
            _ => None,
        })
        .collect()
    })
}

/// Whether `call` is still the attempt this pass claimed: in progress, with
/// the attempts it had when claimed, and no call id but `ours` (a result that
/// came early may have set it). Locks the row.
fn still_ours(
    client: &SpiClient<'_>,
    call: &ClaimedCall,
    ours: Option<&str>,
) -> Result<bool, SpiError> {
    Ok(plans::first(
        client,
        "SELECT q.retry_count, q.call_id FROM public.call_queue q
         WHERE q.id = $1 AND q.status = 'in-progress' FOR UPDATE",
        &[call.id.into()],
        |r| Ok((r.get::<i32>(1)?.unwrap_or(0), r.get::<String>(2)?)),
    )?
    .is_some_and(|(attempts, call_id)| {
        attempts == call.attempt - 1 && (call_id.is_none() || call_id.as_deref() == ours)
    }))
}

/// Records one answer (`skipped` when the call is no longer this pass's:
/// done by an early result, rescued, or claimed again).
fn record(client: &SpiClient<'_>, call: &ClaimedCall, answer: &Answer) -> Result<Sent, SpiError> {
    let sent = |outcome, detail: String| Sent {
        call: call.id,
        provider_id: call.provider_id,
        provider: call.provider_name.clone(),
        outcome,
        detail,
    };
    let ours = match answer {
        Answer::Placed { provider_call_id } => Some(provider_call_id.as_str()),
        Answer::Failed(_) => None,
    };
    if !still_ours(client, call, ours)? {
        return Ok(sent("skipped", "the call moved on meanwhile".into()));
    }
    let (outcome, detail, result) = match answer {
        Answer::Placed { provider_call_id } => (
            "placed",
            provider_call_id.clone(),
            crate::calls::place(client, Some(call.id), provider_call_id)?,
        ),
        // Refused for now (429): back in the queue after the pause, no
        // attempt counted.
        Answer::Failed(Failure {
            pause: Some(pause),
            reason,
            ..
        }) => (
            "waits",
            reason.clone(),
            crate::calls::put_back(client, call.id, reason, pause.as_secs_f64())?,
        ),
        Answer::Failed(Failure {
            retryable, reason, ..
        }) => {
            let result = crate::calls::fail(client, Some(call.id), reason, *retryable)?;
            let outcome = match &result {
                Ok(row)
                    if row
                        .get_by_name::<String>("status")
                        .ok()
                        .flatten()
                        .as_deref()
                        == Some("queued") =>
                {
                    "retry"
                }
                _ => "failed",
            };
            (outcome, reason.clone(), result)
        }
    };
    Ok(match result {
        Ok(_) => sent(outcome, detail),
        Err(err) => sent("skipped", err.message),
    })
}

/// A provider that answered 429 takes no call until its pause ends, and
/// its last error is kept.
fn pause(
    client: &SpiClient<'_>,
    provider: Uuid,
    seconds: f64,
    reason: &str,
) -> Result<(), SpiError> {
    crate::identity::as_extension_owner(|| {
        plans::query(
            client,
            "INSERT INTO dialer.provider_state AS s (provider_id, paused_until, last_error, last_error_at)
             VALUES ($1, now() + make_interval(secs => $2), $3, now())
             ON CONFLICT (provider_id) DO UPDATE
             SET paused_until = greatest(s.paused_until, excluded.paused_until),
                 last_error = excluded.last_error, last_error_at = excluded.last_error_at",
            &[provider.into(), seconds.into(), reason.into()],
        )
        .map(drop)
    })
}

/// Adds a run's outcomes to each provider's counts (`dialer.dispatch_counts`,
/// by 10-second bucket) and keeps its last error; a LOG line per provider
/// that did not take a call (the provider's message, never its key).
fn count(client: &SpiClient<'_>, done: &[Sent]) -> Result<(), SpiError> {
    /// A provider's run: its id and name, placed, failed, the last miss.
    type Tally<'a> = (Uuid, &'a str, i32, i32, Option<&'a Sent>);
    let mut per: HashMap<[u8; 16], Tally> = HashMap::new();
    for sent in done {
        let entry = per.entry(*sent.provider_id.as_bytes()).or_insert((
            sent.provider_id,
            sent.provider.as_str(),
            0,
            0,
            None,
        ));
        match sent.outcome {
            "placed" => entry.2 += 1,
            "retry" | "failed" => {
                entry.3 += 1;
                entry.4 = Some(sent);
            }
            "waits" => entry.4 = Some(sent),
            _ => {}
        }
    }
    for (provider, name, placed, failed, last) in per.into_values() {
        if placed == 0 && failed == 0 && last.is_none() {
            continue;
        }
        if let Some(last) = last {
            pgrx::log!(
                "pg_dialer dispatcher: provider {name}: {failed} call(s) not placed in this run; last: {} ({})",
                last.detail,
                last.outcome
            );
        }
        let error = last.map(|sent| sent.detail.as_str());
        crate::identity::as_extension_owner(|| {
            plans::query(
                client,
                "WITH counted AS (
                     INSERT INTO dialer.dispatch_counts AS c (provider_id, bucket, placed, failed)
                     VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / 10) * 10), $2, $3)
                     ON CONFLICT (provider_id, bucket) DO UPDATE
                     SET placed = c.placed + excluded.placed, failed = c.failed + excluded.failed)
                 INSERT INTO dialer.provider_state AS s (provider_id, last_error, last_error_at)
                 SELECT $1, $4, now() WHERE $4 IS NOT NULL
                 ON CONFLICT (provider_id) DO UPDATE
                 SET last_error = excluded.last_error, last_error_at = excluded.last_error_at",
                &[provider.into(), placed.into(), failed.into(), error.into()],
            )
            .map(drop)
        })?;
    }
    Ok(())
}

thread_local! {
    /// When this backend last dropped counts older than an hour.
    static PRUNED: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// Drops counts older than an hour, at most once a minute per backend.
fn prune_counts(client: &SpiClient<'_>) -> Result<(), SpiError> {
    if PRUNED.with(|p| p.get().is_some_and(|at| at.elapsed().as_secs() < 60)) {
        return Ok(());
    }
    PRUNED.with(|p| p.set(Some(std::time::Instant::now())));
    crate::identity::as_extension_owner(|| {
        plans::query(
            client,
            "DELETE FROM dialer.dispatch_counts WHERE bucket < now() - interval '1 hour'",
            &[],
        )
        .map(drop)
    })
}

/// Claims up to `max_calls` due calls for the dispatcher (committed by the
/// caller before `send`), by the rules of `claim_due_calls()`.
pub fn claim_calls(max_calls: i32) -> Vec<ClaimedCall> {
    spi(Spi::connect(|client| {
        prune_counts(client)?;
        claim(client, max_calls, Claimer::Dispatcher)
    }))
}

/// Puts back claimed calls whose requests certainly did not leave (the
/// worker stops between runs): queued again at once, no attempt counted.
/// Returns how many.
pub fn put_back_unsent(calls: Vec<ClaimedCall>) -> usize {
    spi(Spi::connect_mut(|client| {
        let mut back = 0;
        for call in &calls {
            if still_ours(client, call, None)?
                && crate::calls::put_back(
                    client,
                    call.id,
                    "the dispatcher stopped before sending it",
                    0.0,
                )?
                .is_ok()
            {
                back += 1;
            }
        }
        Ok(back)
    }))
}

/// A run of calls ready to go: the requests to send, and what became of
/// the calls that go nowhere (moved on, paused, unusable).
pub struct Prepared {
    calls: Vec<ClaimedCall>,
    done: Vec<Sent>,
    /// Per call in `calls`: its answer already (it cannot be sent), or
    /// `None`: the next of the requests' answers.
    answers: Vec<Option<Answer>>,
    outgoing: Vec<Outgoing>,
    /// The calls marked as being sent (`prepare_run`).
    marked: Vec<Uuid>,
}

/// Sends the claimed `calls` (those this backend claimed) and records what
/// became of each, in the caller's transaction: the run's calls stay locked
/// (no rescue takes one) until their answers are recorded.
pub fn send(calls: Vec<ClaimedCall>) -> Vec<Sent> {
    if calls.is_empty() {
        return Vec::new();
    }
    let mut prepared = spi(Spi::connect_mut(|client| prepare(client, calls)));
    let answers = sender::start(requests(&mut prepared), crate::settings::dispatch_limits()).wait(
        &mut || {
            check_for_interrupts!();
        },
    );
    spi(Spi::connect_mut(|client| finish(client, prepared, answers)))
}

/// The namespace of the session-level advisory locks on calls being sent by
/// the worker (keyed by `hashtext(id)`); `rescue_stale_calls()` leaves a
/// call whose lock it cannot take. A lock ends with its session, so a call
/// of a worker that died can be taken back.
const SENDING: i32 = 1_886_350_437;

/// The ids of a prepared run's calls whose requests go out.
fn sending(prepared: &Prepared) -> Vec<Uuid> {
    prepared
        .calls
        .iter()
        .zip(&prepared.answers)
        .filter(|(_, answer)| answer.is_none())
        .map(|(call, _)| call.id)
        .collect()
}

/// The worker's first half of a run, in a transaction of its own: the calls
/// checked and their requests built, each call that goes out marked as
/// being sent (a session-level advisory lock, kept past the commit). Its
/// requests then go with `sender::start` (`requests`), while the worker
/// claims and prepares its next run; `finish_run` records them.
pub fn prepare_run(calls: Vec<ClaimedCall>) -> Prepared {
    spi(Spi::connect_mut(|client| {
        let prepared = prepare(client, calls)?;
        // Never waits: a key another session holds (any role may take
        // advisory locks) only leaves that call unmarked, sent all the same.
        let mut prepared = prepared;
        prepared.marked = plans::query(
            client,
            "SELECT id FROM pg_catalog.unnest($1::uuid[]) id
             WHERE pg_catalog.pg_try_advisory_lock($2, pg_catalog.hashtext(id::text))",
            &[sending(&prepared).into(), SENDING.into()],
        )?
        .map(|row| row.get::<Uuid>(1).map(|id| id.expect("an id")))
        .collect::<Result<_, _>>()?;
        Ok(prepared)
    }))
}

/// The requests of a prepared run (to `sender::start`).
pub fn requests(prepared: &mut Prepared) -> Vec<Outgoing> {
    std::mem::take(&mut prepared.outgoing)
}

/// The worker's second half of a run, in a transaction of its own: the
/// answers recorded onto the calls still as claimed (`still_ours`), their
/// marks released.
pub fn finish_run(mut prepared: Prepared, answers: Vec<Answer>) -> Vec<Sent> {
    spi(Spi::connect_mut(|client| {
        let marked = std::mem::take(&mut prepared.marked);
        let done = finish(client, prepared, answers)?;
        plans::query(
            client,
            "SELECT pg_catalog.pg_advisory_unlock($2, pg_catalog.hashtext(id::text)) FROM pg_catalog.unnest($1::uuid[]) id",
            &[marked.into(), SENDING.into()],
        )?;
        Ok(done)
    }))
}

/// The answers of a run recorded: each call's answer (as it came, or as it
/// was known before), the pauses they ask for, the counts.
fn finish(
    client: &SpiClient<'_>,
    prepared: Prepared,
    sent: Vec<Answer>,
) -> Result<Vec<Sent>, SpiError> {
    let Prepared {
        calls,
        mut done,
        answers,
        ..
    } = prepared;
    let mut sent = sent.into_iter();
    let answers: Vec<Answer> = answers
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|| sent.next().expect("one answer per request")))
        .collect();
    for (call, answer) in calls.iter().zip(&answers) {
        if let Answer::Failed(Failure {
            pause: Some(p),
            reason,
            ..
        }) = answer
        {
            pause(client, call.provider_id, p.as_secs_f64(), reason)?;
        }
        done.push(record(client, call, answer)?);
    }
    count(client, &done)?;
    Ok(done)
}

/// A run's calls checked, locked and their requests built (see `send`).
fn prepare(client: &SpiClient<'_>, calls: Vec<ClaimedCall>) -> Result<Prepared, SpiError> {
    {
        // Only the calls still as this backend claimed them: in progress,
        // no call id, the same attempt (a claim rolled back, a rescue or
        // another claim meanwhile leave a call out), locked until this run
        // commits, so that no rescue takes one while its request is out.
        let as_claimed: Vec<[u8; 16]> = plans::query(
            client,
            "SELECT q.id, coalesce(q.retry_count, 0) FROM public.call_queue q
             WHERE q.id = ANY ($1) AND q.status = 'in-progress' AND q.call_id IS NULL
             FOR UPDATE",
            &[calls.iter().map(|c| c.id).collect::<Vec<_>>().into()],
        )?
        .filter_map(|r| match (r.get::<Uuid>(1), r.get::<i32>(2)) {
            (Ok(Some(id)), Ok(attempts)) => Some((id, attempts.unwrap_or(0))),
            _ => None,
        })
        .filter(|(id, attempts)| {
            calls
                .iter()
                .any(|c| c.id == *id && c.attempt - 1 == *attempts)
        })
        .map(|(id, _)| *id.as_bytes())
        .collect();
        let mut done = Vec::new();
        let (calls, moved_on): (Vec<ClaimedCall>, Vec<ClaimedCall>) = calls
            .into_iter()
            .partition(|c| as_claimed.contains(c.id.as_bytes()));
        for call in moved_on {
            done.push(Sent {
                call: call.id,
                provider_id: call.provider_id,
                provider: call.provider_name,
                outcome: "skipped",
                detail: "the call moved on before it was sent".into(),
            });
        }
        // Providers paused since the claim (a 429 in an earlier run of this
        // pass): their calls go back until the pause ends, unsent.
        let paused: HashMap<[u8; 16], f64> = crate::identity::as_extension_owner(|| {
            plans::query(
                client,
                "SELECT s.provider_id, extract(epoch FROM s.paused_until - now())::float8
                 FROM dialer.provider_state s WHERE s.paused_until > now()",
                &[],
            )?
            .map(|r| {
                Ok((
                    *r.get::<Uuid>(1)?.expect("a provider").as_bytes(),
                    r.get::<f64>(2)?.unwrap_or(0.0),
                ))
            })
            .collect::<Result<_, SpiError>>()
        })?;
        let (calls, waiting): (Vec<ClaimedCall>, Vec<ClaimedCall>) = calls
            .into_iter()
            .partition(|c| !paused.contains_key(c.provider_id.as_bytes()));
        for call in waiting {
            let secs = paused[call.provider_id.as_bytes()];
            let reason = format!("provider {} is paused", call.provider_name);
            let result = crate::calls::put_back(client, call.id, &reason, secs)?;
            done.push(Sent {
                call: call.id,
                provider_id: call.provider_id,
                provider: call.provider_name,
                outcome: if result.is_ok() { "waits" } else { "skipped" },
                detail: reason,
            });
        }
        let provider_ids: Vec<Uuid> = calls.iter().map(|c| c.provider_id).collect();
        let call_ids: Vec<Uuid> = calls.iter().map(|c| c.id).collect();
        let apis = load_apis(client, &provider_ids)?;
        let agents = load_agents(client, &call_ids)?;
        let webhook = crate::settings::bland_webhook_url();
        // Each call's request, or the reason it cannot be made.
        let mut outgoing = Vec::new();
        let mut answers: Vec<Option<Answer>> = Vec::new();
        for call in &calls {
            // A provider the dispatcher cannot use now (its api unset or its
            // credentials unreadable since the claim): the call goes back,
            // no attempt counted, and the provider pauses; a call that
            // cannot be sent as it is fails for good.
            let unusable = |reason: String| {
                Answer::Failed(Failure {
                    retryable: true,
                    reason,
                    pause: Some(PROVIDER_UNUSABLE_PAUSE),
                })
            };
            let built = apis
                .get(call.provider_id.as_bytes())
                .ok_or_else(|| {
                    unusable(format!(
                        "provider {} has no api the dispatcher speaks",
                        call.provider_name
                    ))
                })
                .and_then(|api| {
                    let key = match &api.key {
                        Ok(key) => key.clone(),
                        Err(NoKey::Unusable(why)) => return Err(unusable(why.clone())),
                        Err(NoKey::Sealed(why)) => {
                            return Err(Answer::Failed(Failure {
                                retryable: true,
                                reason: format!("provider {}: {why}", call.provider_name),
                                pause: None,
                            }))
                        }
                    };
                    // A user writes their own numbers: only one an admin
                    // verified (gave the provider's phone_id, which users
                    // may not write) is sent as a caller number.
                    if let (Some(number), None) = (call.caller_number_id, &call.phone_id) {
                        return Err(Answer::Failed(Failure {
                            retryable: false,
                            reason: format!(
                                "caller number {number} is not verified: an admin verifies a user's number by setting its phone_id"
                            ),
                            pause: None,
                        }));
                    }
                    let spec = CallSpec {
                        call_queue_id: &call.id.to_string(),
                        attempt: call.attempt,
                        to: &call.recipient_number,
                        from: &call.from_number,
                        phone_id: call.phone_id.as_deref(),
                        agent: agents.get(call.id.as_bytes()).map(String::as_str),
                        voice: call.external_voice_id.as_deref(),
                        variables: &call.variables,
                        webhook_url: webhook.as_deref(),
                    };
                    let request =
                        providers::build(api.provider, &key, &spec).map_err(|reason| {
                            Answer::Failed(Failure {
                                retryable: false,
                                reason,
                                pause: None,
                            })
                        })?;
                    Ok(Outgoing {
                        provider: api.provider,
                        url: format!(
                            "{}{}",
                            crate::settings::base_url(api.provider),
                            request.path
                        ),
                        request,
                        key,
                    })
                });
            match built {
                Ok(one) => {
                    outgoing.push(one);
                    answers.push(None);
                }
                Err(answer) => answers.push(Some(answer)),
            }
        }
        Ok(Prepared {
            calls,
            done,
            answers,
            outgoing,
            marked: Vec::new(),
        })
    }
}

#[pg_schema]
mod dialer {
    use super::*;

    /// The first step of `dispatch_due_calls()`: claims up to `max_calls`
    /// due calls for the dispatcher and keeps them in this backend; the
    /// caller commits before `dispatch_send()`.
    #[pg_extern(volatile, strict, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    fn dispatch_claim(max_calls: i32) -> Vec<Uuid> {
        require_worker("dispatch_due_calls");
        crate::routing::require_read_committed("dispatch_due_calls");
        if !(1..=MAX_PASS).contains(&max_calls) {
            crate::errors::raise(pg_dialer_core::error::DialerError::invalid(format!(
                "max_calls must be between 1 and {MAX_PASS}, not {max_calls}"
            )));
        }
        let claimed = claim_calls(max_calls);
        let ids = claimed.iter().map(|c| c.id).collect();
        CLAIMED.with(|kept| {
            let mut kept = kept.borrow_mut();
            kept.clear();
            kept.extend(claimed.into_iter().map(|c| (*c.id.as_bytes(), c)));
        });
        ids
    }

    /// The second step of `dispatch_due_calls()`, run until it returns no
    /// row, with a commit after each run: sends the next calls of `calls`
    /// that this backend claimed and has not sent (others are left alone),
    /// as many as `pg_dialer.dispatch_in_flight`, and records what became of
    /// each. Each run's answers are committed before the next requests
    /// leave: an error or a cancel loses at most one run's records, and a
    /// provider's result rarely comes before its call id.
    #[pg_extern(volatile, strict, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    fn dispatch_send(
        calls: Vec<Uuid>,
    ) -> TableIterator<
        'static,
        (
            name!(call_queue_id, Uuid),
            name!(provider, String),
            name!(outcome, String),
            name!(detail, String),
        ),
    > {
        require_worker("dispatch_due_calls");
        crate::routing::require_read_committed("dispatch_due_calls");
        let run = crate::settings::dispatch_limits().in_flight;
        let mine: Vec<ClaimedCall> = CLAIMED.with(|kept| {
            let mut kept = kept.borrow_mut();
            calls
                .iter()
                .filter_map(|id| kept.remove(id.as_bytes()))
                .take(run)
                .collect()
        });
        TableIterator::new(
            send(mine)
                .into_iter()
                .map(|s| (s.call, s.provider, s.outcome.to_string(), s.detail)),
        )
    }
}

/// The dispatcher per provider, for admins and service_role: calls in
/// progress (of which being sent: no provider call id yet), placed and
/// failed in the last minute and hour (failed: each request that did not
/// place its call, retried or not), the last error, and until when the
/// provider is paused.
#[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
#[search_path(pg_catalog)]
#[allow(clippy::type_complexity)]
fn dispatcher_status() -> TableIterator<
    'static,
    (
        name!(provider_id, Uuid),
        name!(provider, String),
        name!(api, Option<String>),
        name!(concurrency_limit, Option<i32>),
        name!(in_progress, i64),
        name!(being_sent, i64),
        name!(placed_last_minute, i64),
        name!(failed_last_minute, i64),
        name!(placed_last_hour, i64),
        name!(failed_last_hour, i64),
        name!(last_error, Option<String>),
        name!(last_error_at, Option<TimestampWithTimeZone>),
        name!(paused_until, Option<TimestampWithTimeZone>),
    ),
> {
    require_worker("dispatcher_status");
    let rows = spi(Spi::connect(|client| {
        crate::identity::as_extension_owner(|| {
            plans::query(
                client,
                "SELECT p.id, p.name, p.api, p.concurrency_limit,
                        (SELECT count(*) FROM public.call_queue q
                          WHERE q.provider_id = p.id AND q.status = 'in-progress'),
                        (SELECT count(*) FROM public.call_queue q
                          WHERE q.provider_id = p.id AND q.status = 'in-progress' AND q.call_id IS NULL),
                        coalesce(sum(c.placed) FILTER (WHERE c.bucket > now() - interval '1 minute'), 0)::int8,
                        coalesce(sum(c.failed) FILTER (WHERE c.bucket > now() - interval '1 minute'), 0)::int8,
                        coalesce(sum(c.placed), 0)::int8, coalesce(sum(c.failed), 0)::int8,
                        s.last_error, s.last_error_at, s.paused_until
                 FROM public.call_service_providers p
                 LEFT JOIN dialer.dispatch_counts c
                        ON c.provider_id = p.id AND c.bucket > now() - interval '1 hour'
                 LEFT JOIN dialer.provider_state s ON s.provider_id = p.id
                 GROUP BY p.id, s.provider_id
                 ORDER BY p.priority DESC NULLS LAST, p.name, p.id",
                &[],
            )?
            .map(|r| {
                Ok((
                    r.get::<Uuid>(1)?.expect("an id"),
                    r.get::<String>(2)?.unwrap_or_default(),
                    r.get(3)?,
                    r.get(4)?,
                    r.get::<i64>(5)?.unwrap_or(0),
                    r.get::<i64>(6)?.unwrap_or(0),
                    r.get::<i64>(7)?.unwrap_or(0),
                    r.get::<i64>(8)?.unwrap_or(0),
                    r.get::<i64>(9)?.unwrap_or(0),
                    r.get::<i64>(10)?.unwrap_or(0),
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                ))
            })
            .collect::<Result<Vec<_>, SpiError>>()
        })
    }));
    TableIterator::new(rows)
}

/// The dispatcher's background worker, for admins and service_role:
/// whether the library is preloaded, whether the worker is on and for which
/// database, and the running worker's pid, when it connected and when it
/// last began a loop (NULL when none runs).
#[pg_extern(volatile, parallel_unsafe, requires = ["tables"])]
#[search_path(pg_catalog)]
#[allow(clippy::type_complexity)]
fn dispatcher_worker() -> TableIterator<
    'static,
    (
        name!(preloaded, bool),
        name!(enabled, bool),
        name!(database, String),
        name!(pid, Option<i32>),
        name!(started_at, Option<TimestampWithTimeZone>),
        name!(last_loop, Option<TimestampWithTimeZone>),
    ),
> {
    require_worker("dispatcher_worker");
    let state = crate::worker::state();
    let at = |micros: i64| TimestampWithTimeZone::try_from(micros).ok();
    TableIterator::once((
        crate::worker::preloaded(),
        crate::settings::dispatcher_enabled(),
        crate::settings::dispatcher_database(),
        state.map(|s| s.0),
        state.and_then(|s| at(s.1)),
        state.and_then(|s| at(s.2)),
    ))
}
