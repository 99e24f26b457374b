//! Choosing provider and number (`pick_provider_number`) and handing due calls
//! to dialing workers (`claim_due_calls`). The rules live in
//! core/src/routing.rs; this module loads what they need and records the
//! result.

use crate::checks::as_micros;
use crate::errors::{raise, spi};
use crate::identity::{caller_is_privileged, current_identity};
use crate::plans;
use crate::window::CallWindow;
use pg_dialer_core::error::{DialerError, ErrorKind};
use pg_dialer_core::json;
use pg_dialer_core::params::TemplateParams;
use pg_dialer_core::phone::{parse_e164, PhoneNumber};
use pg_dialer_core::routing::{
    area_prefixes, check_caller_number, LoadedNumbers, NumberCandidate, NumberSource, Provider,
    Route, Router,
};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError};
use pgrx::{JsonB, Uuid};
use std::collections::HashMap;

/// A provider number, as a call needs it.
#[derive(Debug, Clone)]
pub struct ProviderNumber {
    id: Uuid,
    phone_id: Option<String>,
    full_number: String,
}

impl PartialEq for ProviderNumber {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// The providers, ready to route calls, and their names.
struct Providers {
    router: Router<Uuid>,
    names: HashMap<Uuid, String>,
    /// Calls in progress, of every provider (or none): no user has more.
    in_progress: i64,
}

/// Who claims: a worker outside (claim_due_calls()), or the dispatcher,
/// which places calls only with providers whose API it speaks and that are
/// not paused (after a 429): the others take none of its calls, as if full,
/// so that a call that must use one of them waits rather than fails.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Claimer {
    Worker,
    Dispatcher,
}

/// Loads every provider, in priority order, with its in-progress calls.
/// `lock` takes the providers' rows for the rest of the transaction, so that
/// claims of concurrent workers count each other's calls.
fn load_providers(
    client: &SpiClient<'_>,
    lock: bool,
    claimer: Claimer,
) -> Result<Providers, SpiError> {
    let query = match (lock, claimer) {
        (true, Claimer::Dispatcher) => {
            "SELECT id, name, CASE WHEN api IS NULL THEN 0 ELSE concurrency_limit END
             FROM public.call_service_providers ORDER BY priority NULLS LAST, name, id FOR NO KEY UPDATE"
        }
        (true, Claimer::Worker) => {
            "SELECT id, name, concurrency_limit
             FROM public.call_service_providers ORDER BY priority NULLS LAST, name, id FOR NO KEY UPDATE"
        }
        (false, _) => {
            "SELECT id, name, concurrency_limit
             FROM public.call_service_providers ORDER BY priority NULLS LAST, name, id"
        }
    };
    // Providers paused after a 429, for the dispatcher (its own table).
    let paused: Vec<Uuid> = if claimer == Claimer::Dispatcher {
        crate::identity::as_extension_owner(|| {
            plans::query(
                client,
                "SELECT s.provider_id FROM dialer.provider_state s WHERE s.paused_until > now()",
                &[],
            )?
            .map(|row| row.get::<Uuid>(1).map(|id| id.expect("a provider id")))
            .collect::<Result<_, _>>()
        })?
    } else {
        Vec::new()
    };
    let mut names = HashMap::new();
    let mut providers = Vec::new();
    for row in plans::query(client, query, &[])? {
        let id: Uuid = row.get(1)?.expect("id is not null");
        names.insert(id, row.get::<String>(2)?.unwrap_or_default());
        providers.push(Provider {
            id,
            concurrency_limit: if paused.contains(&id) {
                Some(0)
            } else {
                row.get::<i32>(3)?
            },
            in_progress: 0,
        });
    }
    // Counted with the owner's privileges: a user's own RLS view of
    // call_queue would hide other users' calls. Only counts leave here.
    let counts = crate::identity::as_extension_owner(|| {
        plans::query(
            client,
            "SELECT q.provider_id, count(*) FROM public.call_queue q
             WHERE q.status = 'in-progress'
             GROUP BY q.provider_id",
            &[],
        )?
        .map(|row| Ok((row.get::<Uuid>(1)?, row.get::<i64>(2)?.unwrap_or(0))))
        .collect::<Result<Vec<_>, SpiError>>()
    })?;
    let mut in_progress = 0;
    for (id, calls) in counts {
        in_progress += calls;
        if let Some(p) = providers.iter_mut().find(|p| Some(p.id) == id) {
            p.in_progress = calls;
        }
    }
    Ok(Providers {
        router: Router::new(providers),
        names,
        in_progress,
    })
}

/// The numbers of a provider that a batch may use (load_numbers()).
const NUMBERS: &str = "
         SELECT array_agg(id), array_agg(phone_id), array_agg(full_number),
                array_agg(country_code), array_agg(area_code), array_agg(last_used)
         FROM (SELECT DISTINCT ON (n.id) n.id, n.phone_id, n.full_number, n.country_code, n.area_code,
                      n.last_used_at AS last_used
               FROM (SELECT * FROM public.provider_phone_numbers
                     WHERE provider_id = $1 AND is_active AND country_code = ANY ($2) AND area_code = ANY ($3)
                     UNION ALL
                     SELECT lru.* FROM unnest($2::text[]) AS c(code)
                     CROSS JOIN LATERAL (SELECT * FROM public.provider_phone_numbers
                                         WHERE provider_id = $1 AND is_active AND country_code = c.code
                                         ORDER BY last_used_at NULLS FIRST, id LIMIT $LIMIT) AS lru
                     UNION ALL
                     (SELECT * FROM public.provider_phone_numbers
                      WHERE provider_id = $1 AND is_active
                      ORDER BY last_used_at NULLS FIRST, id LIMIT $LIMIT)) AS n
               ORDER BY n.id) AS numbers";

/// The numbers of a provider that a batch of calls can use, in one row of
/// arrays (far cheaper through SPI than many rows): every active number in
/// the batch's areas, and the `n` least recently used in each of the batch's
/// countries and of all. As a batch routes at most `n` calls, the best number
/// for each call is among them (core/src/routing.rs).
fn load_numbers(
    client: &SpiClient<'_>,
    provider: &Uuid,
    batch: &BatchAreas,
) -> Vec<NumberCandidate<ProviderNumber>> {
    // the same plan for any countries and areas (checked with EXPLAIN): a
    // kept generic plan instead of planning again at every call
    let row = spi(plans::generic(|| {
        plans::first_limited(
            client,
            NUMBERS,
            batch.calls,
            &[
                (*provider).into(),
                batch.countries.clone().into(),
                batch.prefixes.clone().into(),
            ],
            |r| {
                Ok((
                    r.get::<Vec<Option<Uuid>>>(1)?.unwrap_or_default(),
                    r.get::<Vec<Option<String>>>(2)?.unwrap_or_default(),
                    r.get::<Vec<Option<String>>>(3)?.unwrap_or_default(),
                    r.get::<Vec<Option<String>>>(4)?.unwrap_or_default(),
                    r.get::<Vec<Option<String>>>(5)?.unwrap_or_default(),
                    r.get::<Vec<Option<TimestampWithTimeZone>>>(6)?
                        .unwrap_or_default(),
                ))
            },
        )
    }))
    .unwrap_or_default();
    let (ids, phone_ids, full_numbers, countries, areas, last_used) = row;
    ids.into_iter()
        .zip(phone_ids)
        .zip(full_numbers)
        .zip(countries)
        .zip(areas)
        .zip(last_used)
        .filter_map(
            |(((((id, phone_id), full_number), country), area), last_used)| {
                Some(NumberCandidate {
                    id: ProviderNumber {
                        id: id?,
                        phone_id,
                        full_number: full_number.unwrap_or_default(),
                    },
                    country_code: country.unwrap_or_default(),
                    area_code: area.unwrap_or_default(),
                    last_used: last_used.map(|t| unix_micros(t.into())),
                })
            },
        )
        .collect()
}

/// The countries and possible area codes of a batch's recipients.
struct BatchAreas {
    countries: Vec<String>,
    prefixes: Vec<String>,
    calls: i64,
}

impl BatchAreas {
    fn of<'a>(recipients: impl Iterator<Item = &'a PhoneNumber>) -> Self {
        let mut countries = Vec::new();
        let mut prefixes = Vec::new();
        let mut calls = 0;
        for r in recipients {
            calls += 1;
            countries.push(r.country_code.clone());
            prefixes.extend(area_prefixes(r));
        }
        countries.sort_unstable();
        countries.dedup();
        prefixes.sort_unstable();
        prefixes.dedup();
        BatchAreas {
            countries,
            prefixes,
            calls,
        }
    }
}

/// Numbers for a single pick: the least recently used active number in the
/// recipient's area, else in its country, else of all, one query each.
struct TieredNumbers<'a, 'conn> {
    client: &'a SpiClient<'conn>,
    found: Vec<NumberCandidate<ProviderNumber>>,
}

impl NumberSource<Uuid, ProviderNumber> for TieredNumbers<'_, '_> {
    fn candidates(
        &mut self,
        provider: &Uuid,
        recipient: &PhoneNumber,
    ) -> &[NumberCandidate<ProviderNumber>] {
        const TIERS: [&str; 3] = [
            "SELECT id, phone_id, full_number, country_code, area_code, last_used_at
             FROM public.provider_phone_numbers
             WHERE provider_id = $1 AND is_active AND country_code = $2 AND area_code = ANY ($3)
             ORDER BY last_used_at NULLS FIRST, id LIMIT 1",
            "SELECT id, phone_id, full_number, country_code, area_code, last_used_at
             FROM public.provider_phone_numbers
             WHERE provider_id = $1 AND is_active AND country_code = $2 AND $3::text[] IS NOT NULL
             ORDER BY last_used_at NULLS FIRST, id LIMIT 1",
            "SELECT id, phone_id, full_number, country_code, area_code, last_used_at
             FROM public.provider_phone_numbers
             WHERE provider_id = $1 AND is_active AND $2::text IS NOT NULL AND $3::text[] IS NOT NULL
             ORDER BY last_used_at NULLS FIRST, id LIMIT 1",
        ];
        self.found.clear();
        for tier in TIERS {
            let found = spi(plans::first(
                self.client,
                tier,
                &[
                    (*provider).into(),
                    recipient.country_code.as_str().into(),
                    area_prefixes(recipient).into(),
                ],
                |r| {
                    Ok(NumberCandidate {
                        id: ProviderNumber {
                            id: r.get(1)?.expect("id is not null"),
                            phone_id: r.get(2)?,
                            full_number: r.get(3)?.unwrap_or_default(),
                        },
                        country_code: r.get(4)?.unwrap_or_default(),
                        area_code: r.get(5)?.unwrap_or_default(),
                        last_used: r
                            .get::<TimestampWithTimeZone>(6)?
                            .map(|t| unix_micros(t.into())),
                    })
                },
            ));
            if let Some(number) = found {
                self.found.push(number);
                break;
            }
        }
        &self.found
    }

    fn record_use(&mut self, _provider: &Uuid, _number: &ProviderNumber) {}
}

/// A caller's own number.
struct CallerNumber {
    provider: Uuid,
    phone_id: Option<String>,
    full_number: String,
}

pub fn require_read_committed(function: &str) {
    // SAFETY: reads the current transaction's isolation level, as
    // current_setting('transaction_isolation') does.
    let level = unsafe { pg_sys::XactIsoLevel };
    if level == pg_sys::XACT_REPEATABLE_READ as i32 {
        raise(
            DialerError::invalid(format!(
                "{function}() counts calls across transactions and cannot run at REPEATABLE READ"
            ))
            .with_hint("Run it at READ COMMITTED (the default) or SERIALIZABLE."),
        );
    }
}

/// `pick_provider_number()` (its SQL shell in sql/queue.sql): the provider
/// and number a call to `recipient_number` would go out on now, with the
/// caller's own number `caller_number_id` (the rule of
/// core/src/routing.rs, `check_caller_number`: PT404 when it is not the
/// caller's, returned beside the row) or, without one, the best provider
/// number; `provider_id` pins the provider. No row when no provider has room.
#[allow(clippy::type_complexity)] // pgrx needs the columns spelled out here
#[pg_extern(volatile, parallel_unsafe, schema = "dialer", name = "pick_number")]
fn pick_number(
    recipient_number: &str,
    caller_number_id: Option<Uuid>,
    provider_id: Option<Uuid>,
) -> TableIterator<
    'static,
    (
        name!(provider_id, Option<Uuid>),
        name!(provider_name, Option<String>),
        name!(phone_number_id, Option<Uuid>),
        name!(phone_id, Option<String>),
        name!(from_number, Option<String>),
        name!(error_code, Option<String>),
        name!(error_message, Option<String>),
        name!(error_detail, Option<String>),
        name!(error_hint, Option<String>),
    ),
> {
    let recipient = parse_e164("recipient_number", recipient_number).unwrap_or_else(|e| raise(e));
    let caller = match caller_number_id.map(caller_number).transpose() {
        Ok(caller) => caller,
        Err(err) => {
            let (code, message, detail, hint) = crate::errors::error_columns(err);
            return TableIterator::once((
                None, None, None, None, None, code, message, detail, hint,
            ));
        }
    };
    let picked = spi(Spi::connect_mut(|client| {
        let Providers {
            mut router, names, ..
        } = load_providers(client, false, Claimer::Worker)?;
        let mut numbers = TieredNumbers {
            client,
            found: Vec::new(),
        };
        let picked = route_one(
            &mut numbers,
            &mut router,
            &recipient,
            caller.as_ref(),
            provider_id,
        );
        Ok::<_, SpiError>(picked.map(|(route, from)| {
            (
                Some(route.provider),
                Some(names.get(&route.provider).cloned().unwrap_or_default()),
                from.0,
                from.1,
                Some(from.2),
                None,
                None,
                None,
                None,
            )
        }))
    }));
    TableIterator::new(picked)
}

/// The caller's own number `id`, if they may use it (see `pick_number`): an
/// admin or service_role may use any user's.
fn caller_number(id: Uuid) -> Result<CallerNumber, DialerError> {
    let found = spi(Spi::connect(|client| {
        client
            .select(
                "SELECT user_id, provider_id, phone_id, full_number, coalesce(is_active, false)
                 FROM public.user_phone_numbers WHERE id = $1",
                Some(1),
                &[id.into()],
            )?
            .next()
            .map(|row| -> Result<_, SpiError> {
                Ok((
                    row.get::<Uuid>(1)?,
                    CallerNumber {
                        provider: row.get(2)?.expect("provider_id is not null"),
                        phone_id: row.get(3)?,
                        full_number: row.get(4)?.unwrap_or_default(),
                    },
                    row.get::<bool>(5)?.unwrap_or(false),
                ))
            })
            .transpose()
    }));
    let me = current_identity()
        .user_id
        .map(|u| Uuid::from_bytes(*u.as_bytes()));
    let owned = found
        .as_ref()
        .is_some_and(|(owner, _, _)| (owner.is_some() && *owner == me) || caller_is_privileged());
    let active = found.as_ref().is_some_and(|(_, _, active)| *active);
    check_caller_number(&id.to_string(), owned, active, "your")?;
    Ok(found
        .expect("a caller number that passed the rule exists")
        .1)
}

/// Routes one call; returns the route and (provider number id, external
/// phone id, from number).
#[allow(clippy::type_complexity)]
fn route_one(
    numbers: &mut impl NumberSource<Uuid, ProviderNumber>,
    router: &mut Router<Uuid>,
    recipient: &PhoneNumber,
    caller: Option<&CallerNumber>,
    only: Option<Uuid>,
) -> Option<(
    Route<Uuid, ProviderNumber>,
    (Option<Uuid>, Option<String>, String),
)> {
    match caller {
        Some(caller) => {
            if only.is_some_and(|p| p != caller.provider) {
                return None;
            }
            router.route_caller_number(&caller.provider).map(|route| {
                (
                    route,
                    (None, caller.phone_id.clone(), caller.full_number.clone()),
                )
            })
        }
        None => router
            .route(recipient, only.as_ref(), numbers)
            .map(|route| {
                let number = route
                    .number
                    .clone()
                    .expect("a routed call has a provider number");
                (
                    route,
                    (Some(number.id), number.phone_id, number.full_number),
                )
            }),
    }
}

/// A due call, with what routing and the worker need, and what it is
/// checked against again before it goes out: a call goes out only as it
/// would be queued now.
struct DueCall {
    id: Uuid,
    user_id: Uuid,
    recipient: String,
    attempt: i32,
    caller_number_id: Option<Uuid>,
    caller: Option<CallerNumber>,
    pinned_provider: Option<Uuid>,
    assistant_id: Option<Uuid>,
    voice_id: Option<Uuid>,
    external_voice_id: Option<String>,
    /// The template's params and order and the call's variables, as text:
    /// parsed with the size and depth caps, so that an odd row ends its own
    /// call and nobody else's claim.
    params: Option<String>,
    params_order: Option<String>,
    variables: Option<String>,
    template_provider: Option<Uuid>,
    voice_provider: Option<Uuid>,
    caller_active: bool,
    /// `None` when the call has no voice.
    voice_active: Option<bool>,
    voice_premium: bool,
    /// Its template is another user's and no longer public.
    template_withdrawn: bool,
    /// Its caller number is no longer its user's.
    caller_not_owned: bool,
    /// A subscription period covers the call's time.
    billable: bool,
    plan_premium_voices: bool,
    plan_number_types: Vec<String>,
    limits: PeriodLimits,
    /// Its calling window as stored (NULL: none).
    call_window: Option<String>,
    expires_at: Option<TimestampWithTimeZone>,
}

/// The plan's limits in the call's period, and what is used of them.
struct PeriodLimits {
    calls: Option<i64>,
    minutes: Option<i64>,
    calls_used: i64,
    minutes_used: i64,
    /// The user's calls in progress in the period; `None` when so few calls
    /// are in progress that the plan has room for all of them and the batch.
    in_progress: Option<i64>,
}

impl PeriodLimits {
    /// What of the plan the period has used up, if anything: "calls" or
    /// "minutes".
    fn used_up(&self) -> Option<&'static str> {
        let reached = |limit: Option<i64>, used: i64| limit.is_some_and(|limit| used >= limit);
        if reached(self.calls, self.calls_used) {
            Some("calls")
        } else if reached(self.minutes, self.minutes_used) {
            Some("minutes")
        } else {
            None
        }
    }

    /// Whether the plan has room for one more call once `claimed` more of
    /// the user's calls went out in this claim.
    fn has_room(&self, claimed: i64) -> bool {
        match (self.calls, self.in_progress) {
            (Some(limit), Some(in_progress)) => self.calls_used + in_progress + claimed < limit,
            _ => true,
        }
    }
}

impl DueCall {
    /// Why the call can never be placed as it is, if it cannot: its caller
    /// number, template, voice and subscription were checked when it was
    /// queued, and may have changed since (the SQL of `broken!`).
    fn never_routable(&self) -> Option<String> {
        if let Some(number) = self.caller_number_id {
            let rule = check_caller_number(
                &number.to_string(),
                !self.caller_not_owned,
                self.caller_active,
                "its user's",
            );
            if let Err(err) = rule {
                return Some(match err.kind {
                    ErrorKind::NotFound => {
                        "cannot be placed: its caller number is no longer its user's".into()
                    }
                    _ => "cannot be placed: its caller number is no longer active".into(),
                });
            }
        }
        if self.template_withdrawn {
            return Some(
                "cannot be placed: its template is no longer available to its user".into(),
            );
        }
        if self.voice_id.is_some() && self.voice_active != Some(true) {
            return Some("cannot be placed: its voice is no longer available".into());
        }
        if let (Some(t), Some(v)) = (self.template_provider, self.voice_provider) {
            if t != v {
                return Some(format!(
                    "cannot be placed: its template now belongs to provider {t} but its voice to provider {v}"
                ));
            }
        }
        if let (Some(caller), Some(pinned)) = (&self.caller, self.pinned_provider) {
            if caller.provider != pinned {
                return Some(format!(
                    "cannot be placed: its caller number now belongs to provider {} but its template or voice to provider {pinned}",
                    caller.provider
                ));
            }
        }
        if !self.billable {
            return Some("cannot be placed: no subscription period covers its time".into());
        }
        if self.voice_premium && !self.plan_premium_voices {
            return Some("cannot be placed: its voice is premium and its plan does not include premium voices".into());
        }
        self.limits.used_up().map(|what| {
            format!("cannot be placed: the plan's {what} for its billing period are used up")
        })
    }

    /// The variables the call goes out with (the template's defaults, then
    /// its own), checked as when it was queued: its recipient's kind against
    /// its plan, its variables against the template as it is now.
    fn checked_variables(
        &self,
        recipient: &PhoneNumber,
        setting_types: &[String],
    ) -> Result<serde_json::Map<String, serde_json::Value>, DialerError> {
        let mut allowed = self.plan_number_types.clone();
        allowed.extend_from_slice(setting_types);
        recipient.check_cost("recipient_number", &allowed)?;
        let params = TemplateParams::parse(
            json::parse_field("template params", self.params.as_deref())?.as_ref(),
            json::parse_field("template params_order", self.params_order.as_deref())?.as_ref(),
        )?;
        let own = params
            .check(json::parse_field("custom_variables", self.variables.as_deref())?.as_ref())?;
        Ok(params.merged(&own))
    }
}

/// A call claimed for the worker: what it needs to place the call.
pub struct ClaimedCall {
    pub id: Uuid,
    pub user_id: Uuid,
    pub attempt: i32,
    pub provider_id: Uuid,
    pub provider_name: String,
    pub number_id: Option<Uuid>,
    pub phone_id: Option<String>,
    pub from_number: String,
    pub recipient_number: String,
    pub caller_number_id: Option<Uuid>,
    pub assistant_id: Option<Uuid>,
    pub voice_id: Option<Uuid>,
    pub external_voice_id: Option<String>,
    pub variables: serde_json::Map<String, serde_json::Value>,
}

/// A claimed call as claim_due_calls() returns it, in its column order.
type ClaimedRow = (
    Uuid,
    Uuid,
    i32,
    Uuid,
    String,
    Option<Uuid>,
    Option<String>,
    String,
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
    JsonB,
);

impl ClaimedCall {
    fn into_row(self) -> ClaimedRow {
        (
            self.id,
            self.user_id,
            self.attempt,
            self.provider_id,
            self.provider_name,
            self.number_id,
            self.phone_id,
            self.from_number,
            self.recipient_number,
            self.caller_number_id,
            self.assistant_id,
            self.voice_id,
            self.external_voice_id,
            JsonB(serde_json::Value::Object(self.variables)),
        )
    }
}

#[allow(clippy::type_complexity)] // pgrx needs the columns spelled out here
#[pg_extern(volatile, parallel_unsafe)]
fn claim_due_calls(
    batch_size: default!(i32, 10),
) -> TableIterator<
    'static,
    (
        name!(call_queue_id, Uuid),
        name!(user_id, Uuid),
        name!(attempt, i32),
        name!(provider_id, Uuid),
        name!(provider_name, String),
        name!(phone_number_id, Option<Uuid>),
        name!(phone_id, Option<String>),
        name!(from_number, String),
        name!(recipient_number, String),
        name!(caller_number_id, Option<Uuid>),
        name!(assistant_id, Option<Uuid>),
        name!(voice_id, Option<Uuid>),
        name!(external_voice_id, Option<String>),
        name!(variables, JsonB),
    ),
> {
    crate::identity::require_worker("claim_due_calls");
    require_read_committed("claim_due_calls");
    if !(1..=10_000).contains(&batch_size) {
        raise(DialerError::invalid(format!(
            "batch_size must be between 1 and 10000, not {batch_size}"
        )));
    }
    let claimed = spi(Spi::connect(|client| {
        claim(client, batch_size, Claimer::Worker)
    }));
    TableIterator::new(claimed.into_iter().map(ClaimedCall::into_row))
}

/// A claim: the due calls that providers with room can take, routed in
/// queue order within the batch and the providers' limits, written as in
/// progress; calls that can never be placed as they are end, failed.
pub fn claim(
    client: &SpiClient<'_>,
    batch_size: i32,
    claimer: Claimer,
) -> Result<Vec<ClaimedCall>, SpiError> {
    let Providers {
        mut router,
        names,
        in_progress,
    } = load_providers(client, true, claimer)?;
    if !router.has_capacity() {
        return Ok(Vec::new());
    }
    // No claim routes more calls than the providers have room for: the due
    // calls are read for that many (a worker asking for 1,000 while 3 slots
    // are free reads a few rows, not thousands).
    let batch_size = router.free_capacity().map_or(batch_size, |free| {
        batch_size.min(i32::try_from(free).unwrap_or(i32::MAX))
    });
    // No user has more calls in progress than all of them: a plan with more
    // room than that and the batch needs no count of its user's.
    let bound = in_progress.saturating_add(i64::from(batch_size));
    // Campaigns whose calls wait (paused) or are not placed (canceled): few,
    // read once, so that the due calls' plan stays the index scan it was.
    let held: Vec<Uuid> = plans::query(
        client,
        "SELECT c.id FROM public.campaigns c WHERE c.paused OR c.canceled_at IS NOT NULL",
        &[],
    )?
    .map(|row| row.get::<Uuid>(1).map(|id| id.expect("an id")))
    .collect::<Result<_, _>>()?;
    // Read in rounds: a read takes the oldest due calls of providers with
    // room, and one provider's backlog may fill it (a provider with 2 free
    // slots and the 200 oldest calls); the next round reads again for the
    // providers still with room.
    let mut read: Vec<Uuid> = Vec::new();
    let mut claimed: Vec<ClaimedCall> = Vec::new();
    let mut so_far = SoFar::default();
    for round in 0..MAX_READS {
        let want = batch_size - i32::try_from(claimed.len()).unwrap_or(i32::MAX);
        if want <= 0 || !router.has_capacity() {
            break;
        }
        let due = load_due_calls(client, &router, want, bound, &held, &read)?;
        let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= due_limit(want);
        if round == 0 {
            // Calls that can never be placed as they are end now, with the
            // reason: those among the `batch_size` oldest due calls, so that
            // each claim ends a bounded number (the calls after them are
            // claimed meanwhile) and the query that finds them stays cheap.
            so_far.unroutable =
                load_broken_calls(client, i64::from(batch_size), &due, bound, &held)?
                    .iter()
                    .map(|call| {
                        let reason = call.never_routable();
                        (call.id, reason.unwrap_or_else(|| "cannot be placed".into()))
                    })
                    .collect();
        }
        let ids: Vec<Uuid> = due.iter().map(|call| call.id).collect();
        let routed = route_calls(client, &mut router, &names, due, want, &mut so_far);
        // In progress now: the next read does not see them again; it is
        // kept from the others read (few: those of providers with room
        // that could not take them).
        record_claims(client, &routed)?;
        read.extend(
            ids.into_iter()
                .filter(|id| !routed.iter().any(|call| call.id == *id)),
        );
        claimed.extend(routed);
        if !full {
            break;
        }
    }
    let SoFar {
        unroutable, held, ..
    } = so_far;
    end_unroutable(client, unroutable)?;
    crate::calls::expire(client, &held.expired)?;
    defer(client, held.waiting)?;
    Ok(claimed)
}

/// What a claim's reads found so far besides the calls it routed: calls
/// that cannot be placed (with the reason), calls held back, and the calls
/// of each user routed (against their plan's limit).
#[derive(Default)]
struct SoFar {
    unroutable: Vec<(Uuid, String)>,
    held: Held,
    claimed_of: HashMap<Uuid, i64>,
}

/// Due calls a claim holds back: those past their latest time (to end as
/// expired) and those outside their window (to wait for its next opening).
#[derive(Default)]
struct Held {
    expired: Vec<Uuid>,
    waiting: Vec<(Uuid, TimestampWithTimeZone)>,
}

/// Whether a due call may go out at `now`: `Ok(None)` when it may, the
/// next opening of its window when it must wait, `Err` when it never can.
fn window_at(
    call: &DueCall,
    recipient: &PhoneNumber,
    now: TimestampWithTimeZone,
) -> Result<Option<TimestampWithTimeZone>, DialerError> {
    if call.call_window.is_none() {
        return Ok(None);
    }
    let window = CallWindow::of_call(call.call_window.as_deref(), recipient)?;
    let opening = window.opening(now)?;
    Ok((as_micros(opening) != as_micros(now)).then_some(opening))
}

/// Calls outside their window wait for its next opening: their time moves
/// there, so that the claims after this one do not read them again. The
/// rows pass the queued-call trigger (they were checked when queued; only
/// their time changes).
fn defer(
    client: &SpiClient<'_>,
    waiting: Vec<(Uuid, TimestampWithTimeZone)>,
) -> Result<(), SpiError> {
    if waiting.is_empty() {
        return Ok(());
    }
    let (ids, times): (Vec<Uuid>, Vec<TimestampWithTimeZone>) = waiting.into_iter().unzip();
    let _passing = crate::queue::Passing::rows(ids.iter().copied());
    plans::query(
        client,
        "UPDATE public.call_queue q SET scheduled_time = a.at
         FROM unnest($1::uuid[], $2::timestamptz[]) AS a(id, at)
         WHERE q.id = a.id AND q.status = 'queued'",
        &[ids.into(), times.into()],
    )
    .map(drop)
}

/// Routes `due` in order, up to `batch_size` calls and while providers have
/// room: each call's plan must have room, its recipient and variables must
/// pass, and a provider and number must take it. Calls that fail their own
/// checks join `unroutable`, with the reason.
fn route_calls(
    client: &SpiClient<'_>,
    router: &mut Router<Uuid>,
    names: &HashMap<Uuid, String>,
    due: Vec<DueCall>,
    batch_size: i32,
    so_far: &mut SoFar,
) -> Vec<ClaimedCall> {
    let SoFar {
        unroutable,
        held,
        claimed_of,
    } = so_far;
    // SAFETY: reads the clock, as clock_timestamp() does.
    let clock = unsafe { pg_sys::GetCurrentTimestamp() };
    let now = unix_micros(clock);
    let time_now = TimestampWithTimeZone::try_from(clock).expect("the clock reads a valid time");
    let recipients: Vec<Result<PhoneNumber, DialerError>> = due
        .iter()
        .map(|call| parse_e164("recipient_number", &call.recipient))
        .collect();
    let mut batch = BatchAreas::of(recipients.iter().filter_map(|r| r.as_ref().ok()));
    batch.calls = batch.calls.min(i64::from(batch_size));
    let mut numbers = LoadedNumbers::new(|p: &Uuid| load_numbers(client, p, &batch), now);

    let mut claimed = Vec::new();
    // `claimed_of`: calls of each user claimed so far in this claim (its
    // earlier reads included), against the plan's call limit (claims run
    // one at a time, see load_providers).
    // pg_dialer.allowed_number_types, read once for the whole claim.
    let setting_types = crate::settings::allowed_number_types();
    for (call, recipient) in due.into_iter().zip(recipients) {
        if claimed.len() >= usize::try_from(batch_size).unwrap_or(0) || !router.has_capacity() {
            break;
        }
        check_for_interrupts!();
        let claimed_before = claimed_of.get(&call.user_id).copied().unwrap_or(0);
        if !call.limits.has_room(claimed_before) {
            continue;
        }
        if call
            .expires_at
            .is_some_and(|at| as_micros(at) <= as_micros(time_now))
        {
            held.expired.push(call.id);
            continue;
        }
        let checked = recipient.and_then(|r| Ok((call.checked_variables(&r, &setting_types)?, r)));
        let (variables, recipient) = match checked {
            Ok(checked) => checked,
            Err(err) => {
                unroutable.push((call.id, format!("cannot be placed: {}", err.message)));
                continue;
            }
        };
        match window_at(&call, &recipient, time_now) {
            Ok(None) => {}
            Ok(Some(opening)) => {
                held.waiting.push((call.id, opening));
                continue;
            }
            Err(err) => {
                unroutable.push((call.id, format!("cannot be placed: {}", err.message)));
                continue;
            }
        }
        let Some((route, (number_id, phone_id, from))) = route_one(
            &mut numbers,
            router,
            &recipient,
            call.caller.as_ref(),
            call.pinned_provider,
        ) else {
            continue;
        };
        claimed_of.insert(call.user_id, claimed_before + 1);
        claimed.push(ClaimedCall {
            id: call.id,
            user_id: call.user_id,
            attempt: call.attempt,
            provider_id: route.provider,
            provider_name: names.get(&route.provider).cloned().unwrap_or_default(),
            number_id,
            phone_id,
            from_number: from,
            recipient_number: recipient.e164,
            caller_number_id: call.caller_number_id,
            assistant_id: call.assistant_id,
            voice_id: call.voice_id,
            external_voice_id: call.external_voice_id,
            variables,
        });
    }
    claimed
}

/// The claimed calls go in progress with their provider and number, and
/// the numbers' use is recorded.
fn record_claims(client: &SpiClient<'_>, claimed: &[ClaimedCall]) -> Result<(), SpiError> {
    if claimed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = claimed.iter().map(|c| c.id).collect();
    let providers: Vec<Uuid> = claimed.iter().map(|c| c.provider_id).collect();
    let numbers: Vec<Option<Uuid>> = claimed.iter().map(|c| c.number_id).collect();
    plans::query(
        client,
        "UPDATE public.call_queue q
         SET status = 'in-progress', provider_id = a.provider_id,
             provider_phone_number_id = a.number_id, claimed_at = now(), call_id = NULL
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS a(id, provider_id, number_id)
         WHERE q.id = a.id",
        &[ids.into(), providers.into(), numbers.clone().into()],
    )?;
    let used: Vec<Uuid> = numbers.into_iter().flatten().collect();
    plans::query(
        client,
        "UPDATE public.provider_phone_numbers SET last_used_at = now() WHERE id = ANY ($1)",
        &[used.into()],
    )?;
    Ok(())
}

/// Calls that can never be placed as they are end as failed, with the reason.
fn end_unroutable(client: &SpiClient<'_>, unroutable: Vec<(Uuid, String)>) -> Result<(), SpiError> {
    if unroutable.is_empty() {
        return Ok(());
    }
    let (ids, errors): (Vec<Uuid>, Vec<String>) = unroutable.into_iter().unzip();
    plans::query(
        client,
        "UPDATE public.call_queue q SET status = 'failed', last_error = a.error
         FROM unnest($1::uuid[], $2::text[]) AS a(id, error) WHERE q.id = a.id",
        &[ids.into(), errors.into()],
    )?;
    Ok(())
}

/// A PostgreSQL timestamp in microseconds since the Unix epoch, within
/// ±9e18: `±infinity` (a number's `last_used_at` a DBA set so) stay the
/// earliest and latest of all.
fn unix_micros(raw: pg_sys::TimestampTz) -> i64 {
    /// 2000-01-01, PostgreSQL's epoch, in microseconds since 1970-01-01.
    const POSTGRES_EPOCH: i64 = 946_684_800_000_000;
    const BOUND: i64 = 9_000_000_000_000_000_000;
    raw.saturating_add(POSTGRES_EPOCH).clamp(-BOUND, BOUND)
}

/// Of `open` providers, those with at least one active number.
fn providers_with_numbers(client: &SpiClient<'_>, open: &[Uuid]) -> Result<Vec<Uuid>, SpiError> {
    plans::query(
        client,
        "SELECT p FROM unnest($1::uuid[]) AS p
         WHERE EXISTS (SELECT FROM public.provider_phone_numbers n WHERE n.provider_id = p AND n.is_active)",
        &[open.to_vec().into()],
    )?
    .map(|row| row.get::<Uuid>(1).map(|id| id.expect("an id")))
    .collect()
}

/// The select list and joins of a due call, as `DueCall` reads them: what
/// the call uses as it is now, and the plan and usage of the period it is
/// billed to (dialer.billing_period() of an active or trialing subscription,
/// earlier periods included: a call queued in a period that has since ended
/// is placed and billed there), with the user's calls in progress in it.
macro_rules! due_calls {
    ($where:expr) => {
        due_calls!("public.call_queue q", $where)
    };
    ($from:expr, $where:expr) => {
        concat!(
            "SELECT q.id, q.user_id, q.recipient_number, least(coalesce(q.retry_count, 0)::bigint + 1, 2147483647)::int,
                    q.caller_number_id, cn.provider_id, cn.phone_id, cn.full_number,
                    coalesce(t.provider_id, v.provider_id),
                    t.assistant_id, v.id, v.voice_id, t.params::text, t.params_order::text, q.custom_variables::text,
                    t.provider_id, v.provider_id, coalesce(cn.is_active, false), v.is_active,
                    coalesce(v.is_premium, false), t.id IS NOT NULL AND t.created_by IS DISTINCT FROM q.user_id
                        AND NOT coalesce(t.is_public, false),
                    q.caller_number_id IS NOT NULL AND cn.user_id IS DISTINCT FROM q.user_id,
                    bp.subscription_id IS NOT NULL,
                    bp.premium_voices, bp.allowed_number_types,
                    bp.call_limit, bp.minutes_limit, pu.calls_used, pu.minutes_used, busy.calls,
                    q.call_window::text, q.expires_at
             FROM ",
            $from,
            "
             LEFT JOIN public.user_phone_numbers cn ON cn.id = q.caller_number_id
             LEFT JOIN public.call_templates t ON t.id = q.template_id
             LEFT JOIN public.voice_options v ON v.id = coalesce(q.voice_id, t.voice_id)
             -- the period the call is billed to, and its usage (sql/billing.sql),
             -- inlined by the planner
             LEFT JOIN LATERAL dialer.billing_period(
                 q.user_id, coalesce(q.scheduled_time, q.created_at), earlier => true) AS bp ON true
             LEFT JOIN LATERAL dialer.period_usage(q.user_id, bp.period_start) AS pu ON true
             -- the user's calls in progress in the period, counted only where
             -- they could matter: $1 bounds them (all calls in progress, and
             -- the batch) and is usually far below the plan's limit
             LEFT JOIN LATERAL (
                 SELECT CASE WHEN bp.call_limit IS NULL OR pu.calls_used + $1 < bp.call_limit THEN NULL
                        ELSE (SELECT count(*) FROM public.call_queue x
                              WHERE x.user_id = q.user_id AND x.status = 'in-progress'
                                AND coalesce(x.scheduled_time, x.created_at) >= bp.period_start
                                AND coalesce(x.scheduled_time, x.created_at) < bp.period_end) END AS calls) AS busy
                 ON true
             WHERE q.status = 'queued' AND (q.scheduled_time <= now() OR q.scheduled_time IS NULL)
               AND ",
            $where,
            "
             ORDER BY q.scheduled_time NULLS FIRST, q.created_at, q.id
             LIMIT $LIMIT
             FOR UPDATE OF q SKIP LOCKED"
        )
    };
}

/// Whether a queued call can no longer be placed as it is, by what SQL can
/// tell (`DueCall::never_routable` says why; the checks only Rust can make,
/// on its recipient and variables, run on the calls routed).
macro_rules! broken {
    () => {
        "((q.caller_number_id IS NOT NULL AND NOT coalesce(cn.is_active, false))
          OR (q.caller_number_id IS NOT NULL AND cn.user_id IS DISTINCT FROM q.user_id)
          OR (t.id IS NOT NULL AND t.created_by IS DISTINCT FROM q.user_id AND NOT coalesce(t.is_public, false))
          OR (v.id IS NOT NULL AND NOT coalesce(v.is_active, false))
          OR t.provider_id <> v.provider_id
          OR cn.provider_id <> coalesce(t.provider_id, v.provider_id)
          OR bp.subscription_id IS NULL
          OR (coalesce(v.is_premium, false) AND NOT coalesce(bp.premium_voices, false))
          OR pu.calls_used >= bp.call_limit
          OR pu.minutes_used >= bp.minutes_limit)"
    };
}

/// Of the `limit` oldest due calls, those that can never be placed as they
/// are, to be ended (a bounded look: each claim ends those at the head).
/// `candidates` are the calls the claim will route: the checks run only on
/// the oldest calls that are not among them (none, usually).
fn load_broken_calls(
    client: &SpiClient<'_>,
    limit: i64,
    candidates: &[DueCall],
    bound: i64,
    held: &[Uuid],
) -> Result<Vec<DueCall>, SpiError> {
    let head: Vec<Uuid> = plans::query_limited(
        client,
        "SELECT h.id FROM public.call_queue h
         WHERE h.status = 'queued' AND (h.scheduled_time <= now() OR h.scheduled_time IS NULL)
           AND (h.campaign_id IS NULL OR h.campaign_id <> ALL ($1))
         ORDER BY h.scheduled_time NULLS FIRST, h.created_at, h.id
         LIMIT $LIMIT",
        // a few kept plans (plans::query_limited), the rows cut to `limit`
        rounded_limit(limit),
        &[held.to_vec().into()],
    )?
    .take(usize::try_from(limit).unwrap_or(0))
    .map(|row| row.get::<Uuid>(1).map(|id| id.expect("an id")))
    .collect::<Result<_, _>>()?;
    let others: Vec<Uuid> = head
        .into_iter()
        .filter(|id| !candidates.iter().any(|call| call.id == *id))
        .collect();
    if others.is_empty() {
        return Ok(Vec::new());
    }
    read_due_calls(plans::query_limited(
        client,
        due_calls!(
            "unnest($2::uuid[]) AS head(id) JOIN public.call_queue q ON q.id = head.id",
            broken!()
        ),
        limit,
        &[bound.into(), others.into()],
    )?)
}

/// The oldest due calls that a provider with room could take: calls waiting
/// for a full provider, or for one without numbers (unless the call brings
/// its own), never keep other calls from being claimed.
fn load_due_calls(
    client: &SpiClient<'_>,
    router: &Router<Uuid>,
    batch_size: i32,
    bound: i64,
    held: &[Uuid],
    read: &[Uuid],
) -> Result<Vec<DueCall>, SpiError> {
    // `open` have room, `with_numbers` also have numbers
    let open = router.with_capacity();
    let with_numbers = providers_with_numbers(client, &open)?;
    let limit = due_limit(batch_size);
    read_due_calls(plans::query_limited(
        client,
        due_calls!(concat!(
            "NOT coalesce(",
            broken!(),
            ", false)
               -- a call the plan has room for once calls in progress end waits
               AND (busy.calls IS NULL OR pu.calls_used + busy.calls < bp.call_limit)
               -- a paused campaign's calls wait; a canceled one's are not placed
               AND (q.campaign_id IS NULL OR q.campaign_id <> ALL ($4))
               -- not read by an earlier round of this claim
               AND q.id <> ALL ($5)
               AND CASE
                     -- its own caller number: that number's provider must have room
                     WHEN cn.provider_id IS NOT NULL THEN cn.provider_id = ANY ($2)
                     -- pinned by template or voice: that provider, with numbers
                     WHEN coalesce(t.provider_id, v.provider_id) IS NOT NULL
                         THEN coalesce(t.provider_id, v.provider_id) = ANY ($3)
                     -- anywhere: any provider with room and numbers
                     ELSE cardinality($3) > 0
                   END"
        )),
        limit,
        &[
            bound.into(),
            open.into(),
            with_numbers.into(),
            held.to_vec().into(),
            read.to_vec().into(),
        ],
    )?)
}

/// How many due calls a read takes for a batch: twice the batch (a
/// provider that fills up during the batch skips the calls pinned to it;
/// every other call the query returns can go out), rounded up to a power of
/// two: each LIMIT has a plan of its own (plans::query_limited), and a few
/// keep being reused where every batch size would be planned again.
fn due_limit(batch_size: i32) -> i64 {
    rounded_limit(i64::from(batch_size).saturating_mul(2))
}

/// `limit` rounded up to a power of two, from 8 to 16,384.
fn rounded_limit(limit: i64) -> i64 {
    u64::try_from(limit.clamp(8, 16_384)).map_or(16_384, |l| {
        i64::try_from(l.next_power_of_two()).unwrap_or(16_384)
    })
}

/// The most reads of due calls in one claim.
const MAX_READS: usize = 4;

fn read_due_calls(rows: pgrx::spi::SpiTupleTable<'_>) -> Result<Vec<DueCall>, SpiError> {
    let mut calls = Vec::with_capacity(rows.len());
    for row in rows {
        check_for_interrupts!();
        let caller_provider: Option<Uuid> = row.get(6)?;
        calls.push(DueCall {
            id: row.get(1)?.expect("id is not null"),
            user_id: row.get(2)?.expect("user_id is not null"),
            recipient: row.get(3)?.unwrap_or_default(),
            attempt: row.get(4)?.unwrap_or(1),
            caller_number_id: row.get(5)?,
            caller: caller_provider.map(|provider| CallerNumber {
                provider,
                phone_id: row.get(7).ok().flatten(),
                full_number: row.get(8).ok().flatten().unwrap_or_default(),
            }),
            pinned_provider: row.get(9)?,
            assistant_id: row.get(10)?,
            voice_id: row.get(11)?,
            external_voice_id: row.get(12)?,
            params: row.get(13)?,
            params_order: row.get(14)?,
            variables: row.get(15)?,
            template_provider: row.get(16)?,
            voice_provider: row.get(17)?,
            caller_active: row.get::<bool>(18)?.unwrap_or(false),
            voice_active: row.get::<bool>(19)?,
            voice_premium: row.get::<bool>(20)?.unwrap_or(false),
            template_withdrawn: row.get::<bool>(21)?.unwrap_or(false),
            caller_not_owned: row.get::<bool>(22)?.unwrap_or(false),
            billable: row.get::<bool>(23)?.unwrap_or(false),
            plan_premium_voices: row.get::<bool>(24)?.unwrap_or(false),
            plan_number_types: row.get::<Vec<String>>(25)?.unwrap_or_default(),
            limits: PeriodLimits {
                calls: row.get::<i32>(26)?.map(i64::from),
                minutes: row.get::<i32>(27)?.map(i64::from),
                calls_used: row.get::<i64>(28)?.unwrap_or(0),
                minutes_used: row.get::<i64>(29)?.unwrap_or(0),
                in_progress: row.get::<i64>(30)?,
            },
            call_window: row.get(31)?,
            expires_at: row.get(32)?,
        });
    }
    Ok(calls)
}
